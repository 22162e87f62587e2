/* gan train CONFIG [section.key=value ...] [--out DIR] [--device auto|cpu|cuda]
 * gan train --resume DIR [section.key=value ...] [--device ...]
 * Under mpirun -np N (or srun with PMIx) every rank runs this; rank 0 reads the config and hands it
 * to the others, a failure is reported once (gan/dist.h) and ends the job with MPI_Abort. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gan/checkpoint.h"
#include "gan/config.h"
#include "gan/dist.h"
#include "gan/nn.h"
#include "gan/run.h"

static void train_usage(FILE *out)
{
    fprintf(out,
            "usage: gan train CONFIG [section.key=value ...] [--out DIR] [--device auto|cpu|cuda]\n"
            "                 [--quiet]\n"
            "       gan train --resume DIR [section.key=value ...] [--device auto|cpu|cuda]\n"
            "\n"
            "Trains the GAN a config describes (configs/*.ini). The run directory (default\n"
            "runs/<config name>) receives config.ini (resolved), metrics.jsonl, samples/*.png and\n"
            "checkpoints/ckpt_*.safetensors. Ctrl-C finishes the step, writes a checkpoint and\n"
            "exits with status 130; --resume DIR continues from the newest checkpoint.\n"
            "The backend computes in train.precision (fp32, or tf32 or bf16 on CUDA) and, with\n"
            "train.deterministic = true (the default), repeats bit for bit.\n"
            "mpirun -np N gan train ... trains one run on N processes (data parallel: each takes\n"
            "train.batch_size / N samples of every batch; rank 0 writes the run directory).\n"
            "The model grammar and the training iteration are described in docs/DESIGN.md.\n"
            "\n");
    gan_config_print_help(out);
}

/* The run's config (the newest checkpoint's with --resume, CONFIG's otherwise), the overrides
 * applied, and its directory. */
static gan_status load_config(const char *config_path, const char *out_dir, const char *resume_dir,
                              const char *const *overrides, int override_count, gan_config *cfg,
                              char *run_dir, size_t run_dir_bytes)
{
    gan_config_defaults(cfg);
    if (resume_dir) {
        char checkpoint[4300];
        GAN_TRY(gan_run_check_available(resume_dir)); /* a directory in use says so, first */
        GAN_TRY(gan_run_latest_checkpoint(resume_dir, checkpoint, sizeof checkpoint));
        GAN_TRY(gan_checkpoint_read_config(checkpoint, cfg));
        snprintf(run_dir, run_dir_bytes, "%s", resume_dir);
    } else {
        GAN_TRY(gan_config_load(cfg, config_path));
        snprintf(run_dir, run_dir_bytes, "%s", out_dir ? out_dir : "");
        if (!out_dir)
            snprintf(run_dir, run_dir_bytes, "runs/%s", cfg->name);
    }
    for (int i = 0; i < override_count; i++)
        GAN_TRY(gan_config_override(cfg, overrides[i]));
    return GAN_OK;
}

/* What gan_run_train would find only after it has made the run directory and its lock (it builds
 * the models after taking the directory), or not at all: a layer string that does not parse or
 * whose shapes do not fit, and a value the stored config cannot carry (found otherwise only when a
 * checkpoint's config is read back). Checked here first, so such a run leaves nothing behind. The
 * models are built with no backend (shapes only, no memory). (A device that cannot be had:
 * gan_run_train opens it before it takes the directory.) */
static gan_status check_models(const gan_config *cfg)
{
    GAN_TRY(gan_config_validate(cfg));
    GAN_TRY(gan_config_check_storable(cfg));
    gan_model *g = NULL, *d = NULL;
    gan_shape z = {cfg->nz, 1, 1}, image = {cfg->channels, cfg->image_size, cfg->image_size};
    gan_status status = GAN_OK;
    GAN_CHECK(gan_model_create("G", cfg->generator, z, cfg->batch_size, NULL, &g));
    GAN_CHECK(gan_model_create("D", cfg->discriminator, image, cfg->batch_size, NULL, &d));
    gan_shape g_out = g->output_shape;
    if (g_out.c != image.c || g_out.h != image.h || g_out.w != image.w) {
        status = gan_error(GAN_ERR_SHAPE, "G's output [N, %d, %d, %d] does not match D's input [N, %d, %d, %d] "
                                          "(data.channels, data.image_size)",
                           g_out.c, g_out.h, g_out.w, image.c, image.h, image.w);
        goto cleanup;
    }
    if (gan_shape_count(d->output_shape) != 1) {
        status = gan_error(GAN_ERR_SHAPE, "D must give one value per sample; it gives [N, %d, %d, %d]",
                           d->output_shape.c, d->output_shape.h, d->output_shape.w);
        goto cleanup;
    }
cleanup:
    gan_model_destroy(g);
    gan_model_destroy(d);
    return status;
}

/* One line on stderr for the failure in gan_error_message(), from the rank that reports it
 * (gan_dist_should_report); a failure of some ranks only names the rank. */
static void report(const gan_dist *dist)
{
    if (!gan_dist_should_report(dist))
        return;
    if (!gan_dist_failure_shared(dist))
        fprintf(stderr, "gan train: rank %d of %d: %s\n", dist->rank, dist->world_size, gan_error_message());
    else
        fprintf(stderr, "gan train: %s\n", gan_error_message());
}

/* A usage error every rank meets alike: said once. */
static int usage_error(const gan_dist *dist, const char *fmt, const char *arg)
{
    gan_dist_note_shared_failure(dist);
    if (gan_dist_should_report(dist))
        fprintf(stderr, fmt, arg);
    return 2;
}

/* The config and run directory on every rank: rank 0 reads them (the files, the newest checkpoint
 * of a resumed run) and hands them to the others, so they cannot disagree and a bad config is
 * reported once. */
static gan_status shared_config(const gan_dist *dist, const char *config_path, const char *out_dir,
                                const char *resume_dir, const char *const *overrides, int override_count,
                                gan_config *cfg, char *run_dir, size_t run_dir_bytes)
{
    gan_status status = GAN_OK;
    if (dist->rank == 0)
        status = load_config(config_path, out_dir, resume_dir, overrides, override_count, cfg, run_dir,
                             run_dir_bytes);
    if (dist->rank == 0 && status == GAN_OK)
        status = check_models(cfg);
    GAN_TRY(gan_dist_agree(dist, status));
    GAN_TRY(gan_dist_broadcast(dist, cfg, sizeof *cfg, 0));
    return gan_dist_broadcast(dist, run_dir, run_dir_bytes, 0);
}

/* The end of the command on this rank: a run that succeeded or stopped on a signal (every rank
 * agreed on the stop) finalises MPI; a failure aborts the job, so that no rank waits forever. */
static int finish(gan_dist *dist, int code)
{
    if (dist->mpi && code != 0 && code != 130)
        gan_dist_abort(dist, code, !gan_dist_should_report(dist));
    gan_dist_finalize(dist);
    return code;
}

static int train_command(int argc, char **argv, const gan_dist *dist);

int gan_cmd_train(int argc, char **argv)
{
    gan_dist dist;
    if (gan_dist_init(&argc, &argv, &dist) != GAN_OK) {
        fprintf(stderr, "gan train: %s\n", gan_error_message());
        return 1;
    }
    return finish(&dist, train_command(argc, argv, &dist));
}

static int train_command(int argc, char **argv, const gan_dist *dist)
{
    const char *config_path = NULL, *out_dir = NULL, *device = "auto", *resume_dir = NULL;
    const char *overrides[256];
    int override_count = 0;
    bool quiet = false;
    struct stat st;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            if (dist->rank == 0)
                train_usage(stdout);
            return 0;
        } else if (!strcmp(arg, "--out") && i + 1 < argc) {
            out_dir = argv[++i];
            if (!gan_arg_path("train", arg, out_dir))
                return 2;
        } else if (!strcmp(arg, "--device") && i + 1 < argc) {
            device = argv[++i];
        } else if (!strcmp(arg, "--resume") && i + 1 < argc) {
            resume_dir = argv[++i];
            if (!gan_arg_path("train", arg, resume_dir))
                return 2;
        } else if (!strcmp(arg, "--quiet")) {
            quiet = true;
        } else if (arg[0] == '-') {
            return usage_error(dist, "gan train: unknown or incomplete option '%s' (gan train --help)\n", arg);
        } else if (strchr(arg, '=') && !(stat(arg, &st) == 0 && S_ISREG(st.st_mode))) {
            /* section.key=value; an existing file is the config even with '=' in its name */
            if (override_count == (int)(sizeof overrides / sizeof overrides[0]))
                return usage_error(dist, "gan train: too many overrides%s\n", "");
            overrides[override_count++] = arg;
        } else if (!config_path) {
            config_path = arg;
        } else {
            return usage_error(dist, "gan train: unexpected argument '%s' (gan train --help)\n", arg);
        }
    }
    if (!config_path && !resume_dir) {
        gan_dist_note_shared_failure(dist);
        if (gan_dist_should_report(dist))
            train_usage(stderr);
        return 2;
    }
    if (config_path && resume_dir)
        return usage_error(dist, "gan train: give a CONFIG or --resume DIR, not both (a resumed run uses "
                                 "the config stored in its checkpoint)%s\n", "");

    gan_config cfg;
    char run_dir[4200] = "";
    gan_config_defaults(&cfg);
    if (shared_config(dist, config_path, out_dir, resume_dir, overrides, override_count, &cfg, run_dir,
                      sizeof run_dir) != GAN_OK) {
        report(dist);
        return 1;
    }
    if (out_dir && resume_dir && strcmp(out_dir, resume_dir))
        return usage_error(dist, "gan train: --out and --resume name different directories%s\n", "");
    char threads[512];
    gan_dist_set_threads(dist, threads, sizeof threads);
    if (threads[0] && dist->rank == 0)
        printf("%s\n", threads);
    gan_run_result result = GAN_RUN_FINISHED;
    gan_run_options options = {run_dir, device, resume_dir != NULL, quiet, dist};
    if (gan_run_train(&cfg, &options, &result) != GAN_OK) {
        report(dist);
        return 1;
    }
    return result == GAN_RUN_INTERRUPTED ? 130 : 0;
}
