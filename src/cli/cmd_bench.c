/* gan bench ops|train|data: the benchmarks of bench/ (each also a standalone gan_bench_NAME). */
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "cli/args.h"
#include "cli/commands.h"

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: gan bench ops [--device auto|cpu|cuda] [--batch 64,128] [--configs dcgan_celeba64,dcgan_fmnist32]\n"
            "                     [--runs R] [--warmup W] [--ops conv,bn,act,bce,adam]\n"
            "       gan bench train [CONFIG] [section.key=value ...] [--device auto|cpu|cuda] [--iterations N]\n"
            "                       [--warmup W] [--rounds R] [--seconds S] [--fast-math]\n"
            "       gan bench data [--images N] [--size S] [--batch B] [--device ...] [...]\n"
            "\n"
            "ops:   every op at every layer shape of the configs: time, GFLOP/s or GB/s, %% of the peak\n"
            "train: end-to-end training iterations on synthetic data, ending with one summary line\n"
            "data:  gan prepare on synthetic JPEGs, the loader from the cache, steps fed by it\n"
            "Each takes --help. bench/RESULTS.md has the latest numbers.\n");
}

int gan_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* argv[0] of a benchmark is what its "reproduce" line prints */
    static char ops_name[] = "gan bench ops", train_name[] = "gan bench train", data_name[] = "gan bench data";
    char **sub = argv + 1;
    int sub_argc = argc - 1;
    if (!strcmp(argv[1], "ops")) {
        sub[0] = ops_name;
        return gan_bench_ops(sub_argc, sub);
    }
    if (!strcmp(argv[1], "train")) {
        sub[0] = train_name;
        return gan_bench_train(sub_argc, sub);
    }
    if (!strcmp(argv[1], "data")) {
        if (gan_args_want_help(sub_argc, sub)) { /* gan_bench_data prints its usage on stderr */
            bench_usage(stdout);
            return 0;
        }
        sub[0] = data_name;
        return gan_bench_data(sub_argc, sub);
    }
    fprintf(stderr, "gan bench: unknown benchmark '%s' (ops, train or data)\n", argv[1]);
    return 2;
}
