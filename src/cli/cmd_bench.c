/* gan bench ops|train|data|fid: the benchmarks of src/bench/. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "cli/commands.h"

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: gan bench ops [section.key=value ...] [--device auto|cpu|cuda|cuda:N] [--batch 64,128]\n"
            "                     [--configs dcgan_celeba64,dcgan_fmnist32] [--runs R] [--warmup W] [--ops conv,bn,act,bce,adam]\n"
            "       gan bench train [CONFIG] [section.key=value ...] [--device auto|cpu|cuda|cuda:N] [--iterations N]\n"
            "                       [--warmup W] [--rounds R] [--seconds S]\n"
            "       gan bench data [--images N] [--size S] [--batch B] [--device ...] [...]\n"
            "       gan bench fid [--weights FILE | --random-weights] [--device ...] [--batch N] [--size S] [...]\n"
            "\n"
            "ops:   every op at every layer shape of the configs: time, GFLOP/s or GB/s, %% of the peak\n"
            "train: end-to-end training iterations on synthetic data, ending with one summary line\n"
            "data:  gan prepare on synthetic JPEGs, the loader from the cache, steps fed by it\n"
            "fid:   images/s of the FID Inception's feature extraction, and its ops at the network's shapes\n"
            "train.precision=fp32|tf32|bf16 and train.deterministic=true|false set how the backend computes.\n"
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
    static char fid_name[] = "gan bench fid";
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
        sub[0] = data_name;
        return gan_bench_data(sub_argc, sub);
    }
    if (!strcmp(argv[1], "fid")) {
        sub[0] = fid_name;
        return gan_bench_fid(sub_argc, sub);
    }
    fprintf(stderr, "gan bench: unknown benchmark '%s' (ops, train, data or fid)\n", argv[1]);
    return 2;
}
