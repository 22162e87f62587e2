/* gan sample CKPT [--n N] [--grid FILE.png] [--dir DIR] [--npy FILE.npy] [--noise Z.npy]
 *                 [--seed S] [--batch-stats] [--ema] [--device auto|cpu|cuda]
 * gan export CKPT [--format safetensors|onnx] [--ema] -o FILE   (default: onnx when FILE ends in
 *                                                              .onnx, else safetensors)
 * --ema: the EMA of G a run with train.ema_decay > 0 keeps (G's weights averaged, G's batch norm
 * statistics), instead of G; refused naming the checkpoint when it holds none. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gan/backend_select.h"
#include "gan/checkpoint.h"
#include "gan/file_atomic.h"
#include "gan/image.h"
#include "gan/npy.h"
#include "gan/onnx_export.h"
#include "gan/train.h"

/* The generator of a checkpoint, ready to run: a trainer built from the stored config. */
typedef struct loaded {
    gan_backend *be;
    gan_trainer *trainer;
} loaded;

static gan_status load_checkpoint(const char *path, const char *device, bool ema, loaded *out)
{
    memset(out, 0, sizeof *out);
    gan_config cfg;
    GAN_TRY(gan_checkpoint_read_config(path, &cfg));
    /* Samples in fp32, whatever precision the run trained in: the same images on every backend. */
    char why[512] = "";
    GAN_TRY(gan_backend_open(device, NULL, &out->be, why, sizeof why));
    gan_status status = GAN_OK;
    gan_status created = gan_trainer_create(&cfg, out->be, NULL, NULL, &out->trainer);
    if (created != GAN_OK)
        GAN_CHECK(gan_error_prefix(created, "%s: its stored config: ", path));
    GAN_CHECK(gan_trainer_load_checkpoint(out->trainer, NULL, path, NULL));
    /* (a trainer of a config with train.ema_decay > 0 loading a file without the average starts one
     * from G: not an EMA to sample) */
    if (ema && (!out->trainer->ema_weights || out->trainer->ema_started_from_g))
        GAN_CHECK(gan_error(GAN_ERR_ARG, "%s holds no EMA of G (its run had train.ema_decay = 0): --ema needs a "
                                         "checkpoint of a run with train.ema_decay > 0",
                            path));
    if (ema)
        GAN_CHECK(gan_trainer_use_ema(out->trainer));
    return GAN_OK;
cleanup:
    gan_trainer_destroy(out->trainer);
    out->be->destroy(out->be);
    memset(out, 0, sizeof *out);
    return status;
}

static void unload(loaded *l)
{
    gan_trainer_destroy(l->trainer);
    if (l->be)
        l->be->destroy(l->be);
}

/* One PNG per image, [-1, 1] -> [0, 255] as x * 127.5 + 127.5 rounded and clamped. */
static gan_status write_image_dir(const char *dir, const float *images, int n, gan_shape s)
{
    struct stat st;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return gan_error(GAN_ERR_IO, "%s: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0)
        return gan_error(GAN_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: not a directory (--dir names a folder for one PNG per image)", dir);
    size_t plane = (size_t)s.h * s.w;
    uint8_t *pixels = malloc(plane * s.c);
    if (!pixels)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = GAN_OK;
    for (int i = 0; i < n; i++) {
        const float *img = images + (size_t)i * plane * s.c;
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < s.c; c++) {
                float v = img[(size_t)c * plane + p] * 127.5f + 127.5f + 0.5f;
                pixels[p * s.c + c] = (uint8_t)fminf(fmaxf(v, 0.0f), 255.0f);
            }
        char path[4200];
        snprintf(path, sizeof path, "%s/%06d.png", dir, i);
        GAN_CHECK(gan_png_write(path, pixels, s.w, s.h, s.c));
    }
cleanup:
    free(pixels);
    return status;
}

static const char sample_usage[] =
    "usage: gan sample CKPT [--n N] [--grid FILE.png] [--dir DIR] [--npy FILE.npy]\n"
    "                  [--noise Z.npy] [--seed S] [--batch-stats] [--ema] [--device auto|cpu|cuda]\n"
    "  --n N      images to generate, 1 to 1000000 (default 64; with --noise, its rows)\n"
    "  --seed S   noise seed, 0 to 18446744073709551615 (default: the run's train.seed; with it,\n"
    "             --n N draws the noise of the first N images FID during training embeds)\n"
    "  --ema      the EMA of G (train.ema_decay > 0): G's weights averaged over the steps, its\n"
    "             batch norm statistics G's own; refused for a checkpoint without one\n"
    "  --batch-stats  batch norm with each batch's statistics (the tutorial's grids) instead of\n"
    "             the running statistics\n"
    "  an output that is a character device or a FIFO (/dev/stdout, a pipe) is written in place\n";

/* More images would not fit the int counts of the image writers, nor any memory worth asking for. */
enum { SAMPLE_MAX_IMAGES = 1000000 };

/* The latent vectors of a --noise file, float32 [N, nz] or [N, nz, 1, 1] with N from 1 to
 * SAMPLE_MAX_IMAGES, into *z_host (the caller frees it, also on failure); N into *n. */
static gan_status read_noise(const char *path, int nz, float **z_host, int *n)
{
    int ndim = 0;
    int64_t shape[GAN_NPY_MAX_DIMS];
    GAN_TRY(gan_npy_read_f32(path, z_host, &ndim, shape));
    bool fits = ndim >= 2 && shape[1] == nz && (ndim == 2 || (ndim == 4 && shape[2] == 1 && shape[3] == 1));
    if (!fits)
        return gan_error(GAN_ERR_FORMAT, "%s: latent vectors must be float32 [N, %d] or [N, %d, 1, 1]", path,
                         nz, nz);
    if (shape[0] < 1 || shape[0] > SAMPLE_MAX_IMAGES)
        return gan_error(GAN_ERR_FORMAT, "%s: %lld latent vectors; 1 to %d are sampled at once", path,
                         (long long)shape[0], SAMPLE_MAX_IMAGES);
    *n = (int)shape[0];
    return GAN_OK;
}

/* What gan sample writes, and how it draws the images. */
typedef struct sample_request {
    const char *grid, *dir, *npy, *noise;
    bool batch_stats, ema, seed_given;
    uint64_t seed;
} sample_request;

/* The generator of `ckpt` run on *n latent vectors (the --noise file's, else drawn from the seed),
 * the images written where `r` asks; *n becomes the noise file's row count. */
static gan_status sample_images(const char *ckpt, const char *device, const sample_request *r, int *n)
{
    loaded l;
    float *z_host = NULL, *z = NULL, *images = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(load_checkpoint(ckpt, device, r->ema, &l));
    gan_trainer *t = l.trainer;
    int nz = t->cfg.nz;
    if (r->noise)
        GAN_CHECK(read_noise(r->noise, nz, &z_host, n));
    gan_shape s = t->g->output_shape;
    GAN_CHECK(l.be->alloc(l.be, (size_t)*n * nz * sizeof(float), (void **)&z));
    images = malloc((size_t)*n * gan_shape_count(s) * sizeof(float));
    if (!images) {
        status = gan_error(GAN_ERR_NOMEM, "out of memory for %d images", *n);
        goto cleanup;
    }
    if (z_host)
        GAN_CHECK(l.be->upload(l.be, z, z_host, (size_t)*n * nz * sizeof(float)));
    else
        GAN_CHECK(gan_trainer_draw_noise(t, z, *n, r->seed_given ? r->seed : t->cfg.seed, GAN_SAMPLE_NOISE_STREAM,
                                         gan_count_of(0)));
    GAN_CHECK(gan_trainer_generate(t, z, *n, r->batch_stats, images));
    if (r->npy) {
        int64_t shape[4] = {*n, s.c, s.h, s.w};
        GAN_CHECK(gan_npy_write_f32(r->npy, images, 4, shape));
    }
    if (r->grid)
        GAN_CHECK(gan_write_sample_grid(r->grid, images, *n, s.c, s.h, s.w, 8, 2));
    if (r->dir)
        GAN_CHECK(write_image_dir(r->dir, images, *n, s));
cleanup:
    if (z)
        l.be->free(l.be, z);
    free(z_host);
    free(images);
    unload(&l);
    return status;
}

int gan_cmd_sample(int argc, char **argv)
{
    const char *ckpt = NULL, *grid = NULL, *dir = NULL, *npy = NULL, *noise = NULL, *device = "auto";
    int n = 64;
    bool batch_stats = false, ema = false, seed_given = false;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes_value = !strcmp(a, "--n") || !strcmp(a, "--grid") || !strcmp(a, "--dir") ||
                           !strcmp(a, "--npy") || !strcmp(a, "--noise") || !strcmp(a, "--seed") ||
                           !strcmp(a, "--device");
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(sample_usage, stdout);
            return 0;
        }
        if (takes_value && i + 1 == argc) {
            fprintf(stderr, "gan sample: %s needs a value\n", a);
            return 2;
        }
        const char *value = takes_value ? argv[++i] : NULL;
        if (!strcmp(a, "--n")) {
            if (!gan_arg_int("sample", a, value, 1, SAMPLE_MAX_IMAGES, &n))
                return 2;
        } else if (!strcmp(a, "--grid")) {
            if (!gan_arg_path("sample", a, value))
                return 2;
            grid = value;
        } else if (!strcmp(a, "--dir")) {
            if (!gan_arg_path("sample", a, value))
                return 2;
            dir = value;
        } else if (!strcmp(a, "--npy")) {
            if (!gan_arg_path("sample", a, value))
                return 2;
            npy = value;
        } else if (!strcmp(a, "--noise")) {
            if (!gan_arg_path("sample", a, value))
                return 2;
            noise = value;
        } else if (!strcmp(a, "--seed")) {
            if (!gan_arg_u64("sample", a, value, &seed))
                return 2;
            seed_given = true;
        } else if (!strcmp(a, "--device")) {
            device = value;
        } else if (!strcmp(a, "--batch-stats")) {
            batch_stats = true;
        } else if (!strcmp(a, "--ema")) {
            ema = true;
        } else if (a[0] != '-' && !ckpt) {
            ckpt = a;
        } else {
            fprintf(stderr, "gan sample: unknown or extra argument '%s'\n", a);
            fputs(sample_usage, stderr);
            return 2;
        }
    }
    if (!ckpt || (!grid && !dir && !npy)) {
        fprintf(stderr, "gan sample: give a checkpoint and at least one of --grid, --dir, --npy\n");
        return 2;
    }
    /* refuse an output that cannot be written before the work (gan/file_atomic.h's rule) */
    const char *outputs[2] = {npy, grid}, *inputs[2] = {ckpt, noise};
    for (int i = 0; i < 2; i++) {
        gan_output_kind kind;
        char target[4096];
        if (outputs[i] && gan_output_check(outputs[i], &kind, target, sizeof target) != GAN_OK) {
            fprintf(stderr, "gan sample: %s\n", gan_error_message());
            return 1;
        }
        if (!gan_args_output_not_input("sample", outputs[i], inputs, 2))
            return 1;
    }
    sample_request request = {grid, dir, npy, noise, batch_stats, ema, seed_given, seed};
    if (sample_images(ckpt, device, &request, &n) != GAN_OK) {
        fprintf(stderr, "gan sample: %s\n", gan_error_message());
        return 1;
    }
    const char *written[2] = {npy, grid};
    fprintf(gan_args_report_stream(written, 2), "gan sample: %d images from %s%s%s%s%s%s%s%s\n", n,
            ema ? "the EMA of G of " : "", ckpt, grid ? " -> " : "", grid ? grid : "", dir ? " -> " : "", dir ? dir : "",
            npy ? " -> " : "", npy ? npy : "");
    return 0;
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && !strcmp(text + n - m, suffix);
}

/* The generator of `ckpt` written to `out` as ONNX or safetensors, and the line that says so. */
static gan_status export_generator(const char *ckpt, const char *out, bool onnx, bool ema)
{
    loaded l;
    gan_status status = GAN_OK;
    GAN_CHECK(load_checkpoint(ckpt, "cpu", ema, &l));
    const char *prefix = l.trainer->cfg.export_prefix;
    if (onnx)
        GAN_CHECK(gan_onnx_export(l.trainer->g, prefix, out));
    else
        GAN_CHECK(gan_trainer_export_generator(l.trainer, out));
    FILE *report = gan_args_report_stream(&out, 1);
    const char *which = ema ? "EMA generator" : "generator";
    if (onnx)
        fprintf(report, "gan export: %s of %s -> %s (ONNX opset %d, input z, output images, "
                        "dynamic batch)\n", which, ckpt, out, GAN_ONNX_OPSET);
    else
        fprintf(report, "gan export: %s of %s -> %s (names %s.0.weight, ...)\n", which, ckpt, out, prefix);
cleanup:
    unload(&l);
    return status;
}

int gan_cmd_export(int argc, char **argv)
{
    static const char usage[] = "usage: gan export CKPT [--format safetensors|onnx] [--ema] -o FILE\n"
                                "  (without --format: onnx when FILE ends in .onnx, else safetensors;\n"
                                "  a FILE that is a character device or a FIFO is written in place)\n"
                                "  --ema  the EMA of G (train.ema_decay > 0): G's weights averaged over the\n"
                                "         steps with G's batch norm statistics, under the same names;\n"
                                "         refused for a checkpoint without one\n";
    const char *ckpt = NULL, *out = NULL, *format = NULL;
    bool ema = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--ema")) {
            ema = true;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
            if (!gan_arg_path("export", "-o", out))
                return 2;
        } else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (argv[i][0] != '-' && !ckpt) {
            ckpt = argv[i];
        } else {
            fprintf(stderr, "gan export: unknown, incomplete or extra argument '%s'\n", argv[i]);
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!ckpt || !out) {
        fputs(usage, stderr);
        return 2;
    }
    if (!format)
        format = ends_with(out, ".onnx") ? "onnx" : "safetensors";
    bool onnx = !strcmp(format, "onnx");
    if (!onnx && strcmp(format, "safetensors")) {
        fprintf(stderr, "gan export: unknown format '%s' (safetensors or onnx)\n", format);
        return 2;
    }
    gan_output_kind kind;
    char target[4096];
    if (gan_output_check(out, &kind, target, sizeof target) != GAN_OK) {
        fprintf(stderr, "gan export: %s\n", gan_error_message());
        return 1;
    }
    if (!gan_args_output_not_input("export", out, &ckpt, 1))
        return 1;
    if (export_generator(ckpt, out, onnx, ema) != GAN_OK) {
        fprintf(stderr, "gan export: %s\n", gan_error_message());
        return 1;
    }
    return 0;
}
