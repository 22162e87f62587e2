/* gan: the command line. Each subcommand lives in its own file (cmd_*.c); this file dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "gan %s: a GAN training engine\n"
            "\n"
            "usage:\n"
            "  gan train CONFIG [section.key=value ...] [--out DIR] [--device auto|cpu|cuda|cuda:N]\n"
            "  gan train --resume DIR [section.key=value ...]   continue a run from its newest checkpoint\n"
            "  gan sample CKPT [--n N] [--grid FILE.png] [--dir DIR] [--npy FILE.npy] [--noise Z.npy] [--seed S]\n"
            "                  [--ema]               --ema: the EMA of G of a run with train.ema_decay > 0\n"
            "  gan export CKPT [--format safetensors|onnx] [--ema] -o FILE   the generator (or its EMA): PyTorch's\n"
            "                                        names, or ONNX (opset 17)\n"
            "  gan prepare DATA -o FILE.npy --size S [--channels C]   decode + Resize/CenterCrop once into a uint8 cache\n"
            "  gan fid A B [--weights FILE] [--device ...] [--batch N]   Frechet Inception Distance, as pytorch-fid\n"
            "  gan fid --save-stats DATA -o STATS.npz          a set's FID statistics (pytorch-fid's .npz)\n"
            "  gan info [--no-bench]                 version, build, BLAS, threads, sgemm speed, CUDA\n"
            "  gan selftest [--device cuda] [section.key=value ...]   every CUDA op and one DCGAN-64 iteration vs the CPU\n"
            "  gan bench ops|train|data [...]        op, training-step and data benchmarks (gan bench --help)\n"
            "  gan help                              this text\n"
            "\n"
            "Each command takes --help. The design is described in docs/DESIGN.md.\n",
            GAN_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *command = argv[1];
    if (!strcmp(command, "info"))
        return gan_cmd_info(argc - 1, argv + 1);
    if (!strcmp(command, "train"))
        return gan_cmd_train(argc - 1, argv + 1);
    if (!strcmp(command, "sample"))
        return gan_cmd_sample(argc - 1, argv + 1);
    if (!strcmp(command, "export"))
        return gan_cmd_export(argc - 1, argv + 1);
    if (!strcmp(command, "prepare")) return gan_cmd_prepare(argc - 1, argv + 1);
    if (!strcmp(command, "fid"))
        return gan_cmd_fid(argc - 1, argv + 1);
    if (!strcmp(command, "bench"))
        return gan_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(command, "selftest"))
        return gan_cmd_selftest(argc - 1, argv + 1);
    fprintf(stderr, "gan: unknown command '%s' (gan help lists them)\n", command);
    return 2;
}
