/* gan selftest [--device cuda] [--fast] [--config FILE]: every op of the CUDA backend against the
 * CPU backend, then one whole training iteration compared the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gan/backend.h"
#include "gan/backend_select.h"
#include "gan/config.h"
#include "gan/cuda_backend.h"
#include "gan/selftest.h"
#include "gan/train.h"

int gan_cmd_selftest(int argc, char **argv)
{
    const char *device = "cuda", *config_path = "configs/dcgan_celeba64.ini";
    bool fast = false;
    int batch = 16;
    static const char usage[] = "usage: gan selftest [--device cuda] [--fast] [--config FILE] [--batch N (2..65536)]\n";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config_path = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if (!gan_arg_int("selftest", "--batch", argv[++i], 2, 65536, &batch))
                return 2;
        } else if (!strcmp(argv[i], "--fast"))
            fast = true;
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (strcmp(device, "cuda")) {
        fprintf(stderr, "gan selftest: only --device cuda is tested against the CPU backend\n");
        return 2;
    }
    gan_backend *cpu = NULL, *cuda = NULL;
    char why[512] = "";
    gan_status status = gan_backend_open("cpu", &cpu, NULL, 0);
    if (status == GAN_OK)
        status = gan_backend_open("cuda", &cuda, why, sizeof why);
    if (status == GAN_OK && fast)
        status = gan_cuda_set_math_mode(cuda, GAN_CUDA_MATH_FAST);
    if (status != GAN_OK) {
        fprintf(stderr, "gan selftest: %s\n", gan_error_message());
        if (cpu)
            cpu->destroy(cpu);
        return 1;
    }
    printf("gan selftest: cuda (%s math) against cpu\n", fast ? "fast" : "parity");
    bool ops_ok = false, iteration_ok = false;
    status = gan_selftest_ops(cpu, cuda, stdout, &ops_ok);
    gan_config cfg;
    gan_config_defaults(&cfg);
    char batch_override[64];
    snprintf(batch_override, sizeof batch_override, "train.batch_size=%d", batch);
    if (status == GAN_OK)
        status = gan_config_load(&cfg, config_path);
    if (status == GAN_OK)
        status = gan_config_override(&cfg, batch_override);
    if (status == GAN_OK)
        status = gan_selftest_iteration(cpu, cuda, &cfg, stdout, &iteration_ok);
    cuda->destroy(cuda);
    cpu->destroy(cpu);
    if (status != GAN_OK) {
        fprintf(stderr, "gan selftest: %s\n", gan_error_message());
        return 1;
    }
    printf("gan selftest: ops %s, iteration %s\n", ops_ok ? "within tolerance" : "OUT OF TOLERANCE",
           iteration_ok ? "within tolerance" : "OUT OF TOLERANCE");
    return ops_ok && iteration_ok ? 0 : 1;
}
