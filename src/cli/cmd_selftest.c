/* gan selftest [--device cuda|cuda:N] [--config FILE] [--batch N] [section.key=value ...]: every op
 * of the CUDA backend against the CPU backend, then one whole training iteration compared the same
 * way. The CUDA backend computes as the config says (train.precision, train.deterministic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gan/backend.h"
#include "gan/backend_select.h"
#include "gan/config.h"
#include "gan/selftest.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: gan selftest [--device cuda|cuda:N] [--config FILE] [--batch N (2..65536)] [section.key=value ...]\n"
                 "  every CUDA op and one training iteration of the config (default\n"
                 "  configs/dcgan_celeba64.ini at batch 16) against the CPU backend; the CUDA backend\n"
                 "  computes as train.precision (fp32|tf32|bf16) and train.deterministic say\n");
}

/* The config the iteration runs: FILE at batch N, with the overrides. */
static gan_status load_config(const char *path, int batch, char **overrides, int override_count,
                              gan_config *cfg)
{
    gan_config_defaults(cfg);
    GAN_TRY(gan_config_load(cfg, path));
    char batch_override[64];
    snprintf(batch_override, sizeof batch_override, "train.batch_size=%d", batch);
    GAN_TRY(gan_config_override(cfg, batch_override));
    for (int i = 0; i < override_count; i++)
        GAN_TRY(gan_config_override(cfg, overrides[i]));
    return GAN_OK;
}

/* The config, the CPU and CUDA backends, and the ops and the iteration compared on them. */
static gan_status selftest(const char *device, const char *config_path, int batch, char **overrides,
                           int override_count, bool *ops_ok, bool *iteration_ok)
{
    gan_config cfg;
    GAN_TRY(load_config(config_path, batch, overrides, override_count, &cfg));
    gan_backend_options options = gan_backend_options_for_config(&cfg);
    gan_backend *cpu = NULL, *cuda = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(gan_backend_open("cpu", NULL, &cpu, NULL, 0));
    GAN_CHECK(gan_backend_open(device, &options, &cuda, NULL, 0));
    printf("gan selftest: cuda (%s, %sdeterministic) against cpu\n", gan_precision_name(options.precision),
           options.deterministic ? "" : "not ");
    GAN_CHECK(gan_selftest_ops(cpu, cuda, stdout, ops_ok));
    GAN_CHECK(gan_selftest_iteration(cpu, cuda, &cfg, stdout, iteration_ok));
cleanup:
    if (cuda)
        cuda->destroy(cuda);
    if (cpu)
        cpu->destroy(cpu);
    return status;
}

int gan_cmd_selftest(int argc, char **argv)
{
    const char *device = "cuda", *config_path = "configs/dcgan_celeba64.ini";
    int batch = 16;
    char *overrides[64];
    int override_count = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            device = argv[++i];
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if (!gan_arg_int("selftest", "--batch", argv[++i], 2, 65536, &batch))
                return 2;
        } else if (argv[i][0] != '-' && strchr(argv[i], '=') && override_count < 64) {
            overrides[override_count++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (strncmp(device, "cuda", 4)) {
        fprintf(stderr, "gan selftest: only --device cuda is tested against the CPU backend\n");
        return 2;
    }
    bool ops_ok = false, iteration_ok = false;
    if (selftest(device, config_path, batch, overrides, override_count, &ops_ok, &iteration_ok) != GAN_OK) {
        fprintf(stderr, "gan selftest: %s\n", gan_error_message());
        return 1;
    }
    printf("gan selftest: ops %s, iteration %s\n", ops_ok ? "within tolerance" : "OUT OF TOLERANCE",
           iteration_ok ? "within tolerance" : "OUT OF TOLERANCE");
    return ops_ok && iteration_ok ? 0 : 1;
}
