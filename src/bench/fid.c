/* gan bench fid: images per second of the FID Inception's feature extraction on the backend
 * (src/eval/inception.c), as `gan fid` runs it: uint8 images of S x S x C uploaded, converted,
 * resized to 299x299, through the network, features downloaded. Synthetic images (the speed does
 * not depend on the pixels); the real weights (--weights, $GAN_FID_WEIGHTS) or random ones of the
 * same shapes (--random-weights: on a GPU machine the 87 MB file may not be at hand).
 *
 * Then the evaluation ops one by one at the network's shapes (--ops, default on): time per call,
 * GB/s counting each tensor once; and with --profile one pass's time split by kind of op (each op
 * between two synchronisations, so the total is slower than the timed runs).
 *
 * Timing: W warm-up batches, then R runs of N images each (whole batches); printed: best and median
 * img/s, ms per batch, and GFLOP/s of the convolutions (11.42 GFLOP per image) against the gemm
 * peak measured in the same run. bench/compare_fid.py runs pytorch-fid's extraction beside it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "gan/inception.h"

typedef struct fid_options {
    const char *device, *weights;
    const char *overrides[16];
    int override_count;
    bool random_weights, ops, profile;
    int batch, size, channels, images, runs, warmup;
} fid_options;

static gan_status time_batches(gan_inception *net, const uint8_t *images, int batches, const fid_options *o,
                               float *features, double *seconds)
{
    double t0 = gan_now_s();
    for (int b = 0; b < batches; b++)
        GAN_TRY(gan_inception_features_u8(net, images, o->batch, o->size, o->size, o->channels, features));
    *seconds = gan_now_s() - t0; /* the features' download waits for the backend */
    return GAN_OK;
}

/* ---- the evaluation ops alone ------------------------------------------------------------- */

typedef struct op_case {
    const char *name, *shape;
    int kind; /* 0 max pool, 1 avg pool, 2 copy channels, 3 resize, 4 global average, 5 bias + relu */
    gan_pool2d_geom g;
    int n, c, hw, h_in, w_in, y_channels;
    double bytes; /* read + written once */
} op_case;

static gan_status op_run(gan_backend *be, const op_case *k, const float *x, float *y, const float *bias)
{
    switch (k->kind) {
    case 0: return be->max_pool_forward(be, &k->g, x, y);
    case 1: return be->avg_pool_forward(be, &k->g, false, x, y);
    case 2: return be->copy_channels(be, k->n, k->c, k->hw, x, k->y_channels, k->y_channels - k->c, y);
    case 3: return be->resize_bilinear(be, k->n, k->c, k->h_in, k->w_in, 299, 299, x, y);
    case 4: return be->global_avg_pool(be, k->n, k->c, k->hw, x, y);
    default: return be->bias_act_forward(be, k->n, k->c, k->hw, bias, GAN_ACT_RELU, 0.0f, y);
    }
}

static gan_status bench_ops(gan_backend *be, const fid_options *o, double copy_gbps)
{
    const int n = o->batch;
    const double f = sizeof(float);
    op_case cases[] = {
        {"max_pool 3x3 s2", "[n,64,147,147]", 0, {n, 64, 147, 147, 73, 73, 3, 3, 2, 2, 0, 0}, 0, 0, 0, 0, 0, 0,
         f * n * 64 * (147.0 * 147 + 73 * 73)},
        {"avg_pool 3x3 s1 p1 excl", "[n,288,35,35]", 1, {n, 288, 35, 35, 35, 35, 3, 3, 1, 1, 1, 1}, 0, 0, 0, 0, 0,
         0, f * n * 288 * 1225 * 2},
        {"avg_pool 3x3 s1 p1 excl", "[n,768,17,17]", 1, {n, 768, 17, 17, 17, 17, 3, 3, 1, 1, 1, 1}, 0, 0, 0, 0, 0,
         0, f * n * 768 * 289 * 2},
        {"max_pool 3x3 s1 p1", "[n,2048,8,8]", 0, {n, 2048, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0,
         f * n * 2048 * 64 * 2},
        {"copy_channels", "[n,96,35,35] into 288", 2, {0}, n, 96, 1225, 0, 0, 288, f * n * 96 * 1225 * 2},
        {"resize_bilinear", "[n,3,S,S] -> 299", 3, {0}, n, 3, 0, o->size, o->size, 0,
         f * n * 3 * ((double)o->size * o->size + 299.0 * 299)},
        {"global_avg_pool", "[n,2048,8,8]", 4, {0}, n, 2048, 64, 0, 0, 0, f * n * 2048 * 65},
        {"bias_act relu", "[n,64,147,147]", 5, {0}, n, 64, 147 * 147, 0, 0, 0, f * n * 64 * 147 * 147 * 2},
    };
    size_t most = (size_t)n * 64 * 147 * 147;
    float *x = NULL, *y = NULL, *bias = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(be->alloc(be, most * sizeof(float), (void **)&x));
    GAN_CHECK(be->alloc(be, most * sizeof(float), (void **)&y));
    GAN_CHECK(be->alloc(be, 2048 * sizeof(float), (void **)&bias));
    GAN_CHECK(be->rng_normal(be, most, 5, 1, gan_count_of(0), 0.0f, 1.0f, x));
    GAN_CHECK(be->rng_normal(be, 2048, 5, 2, gan_count_of(0), 0.0f, 0.1f, bias));
    printf("\n%-26s %-24s %10s %10s %9s %7s\n", "op", "shape (n = batch)", "best ms", "median ms", "GB/s", "% copy");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const op_case *k = &cases[i];
        double samples[16];
        int runs = o->runs + 2 > 16 ? 16 : o->runs + 2;
        GAN_CHECK(op_run(be, k, x, y, bias));
        for (int r = 0; r < runs; r++) {
            GAN_CHECK(be->synchronize(be));
            double t0 = gan_now_s();
            GAN_CHECK(op_run(be, k, x, y, bias));
            GAN_CHECK(be->synchronize(be));
            samples[r] = gan_now_s() - t0;
        }
        double best = bench_min(samples, runs), median = bench_median(samples, runs);
        printf("%-26s %-24s %10.3f %10.3f %9.1f %6.1f%%\n", k->name, k->shape, best * 1e3, median * 1e3,
               k->bytes / best * 1e-9, 100.0 * k->bytes / best * 1e-9 / copy_gbps);
    }
cleanup:
    if (x)
        be->free(be, x);
    if (y)
        be->free(be, y);
    if (bias)
        be->free(be, bias);
    return status;
}

/* ---- the whole extraction ----------------------------------------------------------------- */

static gan_status bench_fid(const char *prog, const fid_options *o)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    for (int i = 0; i < o->override_count; i++)
        GAN_TRY(gan_config_override(&cfg, o->overrides[i]));
    gan_backend *be = NULL;
    GAN_TRY(bench_open_backend(o->device, &cfg, &be));
    gan_inception *net = NULL;
    uint8_t *images = NULL;
    float *features = NULL;
    double peak = 0.0, peak_after = 0.0, copy_gbps = 0.0;
    char what[256] = "";
    gan_status status = GAN_OK;
    bench_print_machine(be, stdout, "");
    GAN_CHECK(bench_measure_gemm_peak(be, &peak, what, sizeof what));
    GAN_CHECK(bench_measure_copy_gbps(be, &copy_gbps));
    printf("peak        : %.1f GFLOP/s %s; copy %.1f GB/s\n", peak, what, copy_gbps);
    if (o->random_weights)
        GAN_CHECK(gan_inception_create_random(be, 1234, o->batch, &net));
    else
        GAN_CHECK(gan_inception_create(be, o->weights, o->batch, &net));
    const double flops = gan_inception_flops_per_image(net);
    printf("network     : FID Inception-v3, %s, batch %d, input %dx%dx%d uint8 -> 299x299, %.2f GFLOP per image, "
           "%.1f MiB of %s memory\n",
           o->random_weights ? "random weights of the real shapes" : o->weights, o->batch, o->size, o->size,
           o->channels, flops * 1e-9, (double)gan_inception_memory_bytes(net) / (1 << 20), be->name);
    size_t image_bytes = (size_t)o->size * o->size * o->channels;
    images = malloc((size_t)o->batch * image_bytes);
    features = malloc((size_t)o->batch * GAN_INCEPTION_FEATURES * sizeof *features);
    if (!images || !features) {
        status = gan_error(GAN_ERR_NOMEM, "bench fid: out of memory");
        goto cleanup;
    }
    uint32_t state = 12345;
    for (size_t i = 0; i < (size_t)o->batch * image_bytes; i++) {
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        images[i] = (uint8_t)(state >> 24);
    }
    double warm = 0.0;
    GAN_CHECK(time_batches(net, images, o->warmup, o, features, &warm));
    int batches = (o->images + o->batch - 1) / o->batch;
    double samples[64];
    for (int r = 0; r < o->runs; r++) {
        GAN_CHECK(time_batches(net, images, batches, o, features, &samples[r]));
        printf("run %-8d: %d images in %.3f s, %.2f img/s\n", r + 1, batches * o->batch, samples[r],
               batches * o->batch / samples[r]);
        fflush(stdout);
    }
    double best = bench_min(samples, o->runs), median = bench_median(samples, o->runs);
    double per_batch_ms = median / batches * 1e3, img_s = batches * o->batch / median;
    printf("fid features: %.2f img/s median, %.2f best (%.1f ms per batch of %d); convolutions %.1f GFLOP/s, "
           "%.1f%% of the gemm peak\n",
           img_s, batches * o->batch / best, per_batch_ms, o->batch, img_s * flops * 1e-9,
           100.0 * img_s * flops * 1e-9 / peak);
    if (o->profile) {
        gan_inception_profile profile;
        memset(&profile, 0, sizeof profile);
        gan_inception_set_profile(net, &profile);
        GAN_CHECK(gan_inception_features_u8(net, images, o->batch, o->size, o->size, o->channels, features));
        gan_inception_set_profile(net, NULL);
        double total = 0.0;
        for (int k = 0; k < GAN_INCEPTION_OP_COUNT; k++)
            total += profile.seconds[k];
        printf("\nprofile of one batch (each op synchronised): %.1f ms\n", total * 1e3);
        for (int k = 0; k < GAN_INCEPTION_OP_COUNT; k++)
            printf("  %-18s %9.2f ms %5.1f%%  %4lld calls\n", gan_inception_op_name((gan_inception_op)k),
                   profile.seconds[k] * 1e3, total > 0 ? 100.0 * profile.seconds[k] / total : 0.0,
                   (long long)profile.calls[k]);
    }
    if (o->ops)
        GAN_CHECK(bench_ops(be, o, copy_gbps));
    GAN_CHECK(bench_measure_gemm_peak(be, &peak_after, what, sizeof what));
    printf("\npeak again  : %.1f GFLOP/s at the end (%.1f at the start; the percentage uses the start)\n", peak_after,
           peak);
    printf("reproduce   : %s", prog);
    for (int i = 0; i < o->override_count; i++)
        printf(" %s", o->overrides[i]);
    printf(" --device %s %s%s --batch %d --size %d --channels %d --images %d --runs %d --warmup %d%s%s\n",
           !strcmp(o->device, "auto") ? be->name : o->device, o->random_weights ? "--random-weights" : "--weights ",
           o->random_weights ? "" : o->weights, o->batch, o->size, o->channels, o->images, o->runs, o->warmup,
           o->ops ? "" : " --no-ops", o->profile ? " --profile" : "");
cleanup:
    free(images);
    free(features);
    gan_inception_destroy(net);
    be->destroy(be);
    return status;
}

static int usage(FILE *out)
{
    fprintf(out,
            "usage: gan bench fid [train.precision=fp32|tf32|bf16 train.deterministic=true|false]\n"
            "                     [--weights FILE | --random-weights] [--device auto|cpu|cuda|cuda:N]\n"
            "                     [--batch N] [--size S] [--channels 1|3] [--images N] [--runs R] [--warmup W]\n"
            "                     [--no-ops] [--profile]\n"
            "\n"
            "Images per second of the FID Inception's feature extraction as gan fid runs it: uint8 SxSxC\n"
            "images uploaded, resized to 299x299, through the network, features downloaded. Then the\n"
            "evaluation ops alone at the network's shapes (unless --no-ops); --profile splits one batch by\n"
            "kind of op. Weights: --weights FILE (default $GAN_FID_WEIGHTS) or --random-weights (same\n"
            "shapes; for machines without the weights file). Defaults: --batch 50 --size 64 --channels 3\n"
            "--images 50 (one batch per run) --runs 3 --warmup 1. bench/compare_fid.py runs pytorch-fid beside it;\n"
            "bench/RESULTS.md has the latest numbers.\n");
    return out == stdout ? 0 : 2;
}

int gan_bench_fid(int argc, char **argv)
{
    fid_options o = {.device = "auto", .ops = true, .batch = 50, .size = 64, .channels = 3, .images = 0, .runs = 3,
                     .warmup = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        int *number = !strcmp(a, "--batch")      ? &o.batch
                      : !strcmp(a, "--size")     ? &o.size
                      : !strcmp(a, "--channels") ? &o.channels
                      : !strcmp(a, "--images")   ? &o.images
                      : !strcmp(a, "--runs")     ? &o.runs
                      : !strcmp(a, "--warmup")   ? &o.warmup
                                                 : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout);
        if (a[0] != '-' && strchr(a, '=') && o.override_count < 16) {
            o.overrides[o.override_count++] = a;
        } else if (!strcmp(a, "--device") && has_value) {
            o.device = argv[++i];
        } else if (!strcmp(a, "--weights") && has_value) {
            o.weights = argv[++i];
        } else if (!strcmp(a, "--random-weights")) {
            o.random_weights = true;
        } else if (!strcmp(a, "--no-ops")) {
            o.ops = false;
        } else if (!strcmp(a, "--profile")) {
            o.profile = true;
        } else if (number && has_value) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 0 || v > 1 << 20) {
                fprintf(stderr, "gan bench fid: %s %s: expected a whole number\n", a, argv[i]);
                return 2;
            }
            *number = (int)v;
        } else {
            fprintf(stderr, "gan bench fid: unknown or incomplete option '%s'\n", a);
            return usage(stderr);
        }
    }
    if (o.images == 0)
        o.images = o.batch;
    if (o.batch < 1 || o.batch > 4096 || o.size < 1 || o.size > 4096 || (o.channels != 1 && o.channels != 3) ||
        o.runs < 1 || o.runs > 64 || o.images < 1) {
        fprintf(stderr, "gan bench fid: needs 1 <= --batch <= 4096, 1 <= --size <= 4096, --channels 1 or 3, "
                        "1 <= --runs <= 64, --images >= 1\n");
        return 2;
    }
    if (!o.random_weights && !o.weights)
        o.weights = getenv("GAN_FID_WEIGHTS");
    if (!o.random_weights && (!o.weights || !*o.weights)) {
        fprintf(stderr, "gan bench fid: no FID Inception weights: give --weights FILE, set GAN_FID_WEIGHTS, or "
                        "measure with --random-weights (same shapes)\n");
        return 2;
    }
    if (bench_fid(argv[0], &o) != GAN_OK) {
        fprintf(stderr, "gan bench fid: %s\n", gan_error_message());
        return 1;
    }
    return 0;
}
