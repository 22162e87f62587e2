/* gan bench data: the data pipeline's speed.
 *
 *   1. writes N synthetic CelebA-sized JPEGs (178x218, quality 90, about the size of CelebA's files:
 *      a shaded face-like ellipse on a gradient with a little noise) into a temporary folder;
 *   2. times `gan prepare` on them (decode + Resize(S) + CenterCrop(S) on every core, written to a
 *      uint8 .npy): images/s, best of R runs;
 *   3. times the loader on that cache, batches of B at SxS: back to back (the producer's rate) and
 *      as the trainer sees it between steps (wait + copy per batch);
 *   4. unless --no-step, times DCGAN-64 training steps (configs/dcgan_celeba64.ini, batch B) fed by
 *      that loader, and prints the loader's time per batch inside the steps as a share of a step.
 * It ends with the command that reproduces the run. Nothing is asserted: numbers to read.
 *
 * usage: gan bench data [--images N] [--size S] [--batch B] [--threads T] [--runs R] [--batches K]
 *                       [--step-ms MS] [--no-step] [--steps M] [--device auto|cpu|cuda]
 *                       [--config FILE] [--dir DIR] [--keep] */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli/args.h"
#include "gan/backend_select.h"
#include "gan/config.h"
#include "gan/data.h"
#include "gan/image.h"
#include "gan/train.h"

enum { CELEBA_W = 178, CELEBA_H = 218 };

typedef struct bench_options {
    int images, size, batch, threads, runs, batches, steps;
    double step_ms;
    bool train_step, keep;
    const char *device, *config, *dir;
} bench_options;

/* Where the benchmark writes: a folder of its own (or --dir), its images and the cache. */
typedef struct work_dir {
    char root[4096];
    char images[4200], cache[4200];
    bool owned; /* made by mkdtemp: removed whole */
} work_dir;

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint32_t next_random(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* One synthetic portrait [H, W, 3]: a gradient background, a shaded ellipse with two darker eyes,
 * and noise (JPEG sizes like CelebA's come from that texture). */
static void synthesize(uint8_t *px, int index)
{
    uint32_t s = 2463534242u ^ (uint32_t)index * 2654435761u;
    double bg[3], face[3];
    for (int c = 0; c < 3; c++) {
        bg[c] = 40 + next_random(&s) % 180;
        face[c] = 120 + next_random(&s) % 110;
    }
    double cx = CELEBA_W / 2.0 + (double)(next_random(&s) % 21) - 10, cy = CELEBA_H * 0.55;
    double rx = 48 + next_random(&s) % 16, ry = 66 + next_random(&s) % 16;
    for (int y = 0; y < CELEBA_H; y++)
        for (int x = 0; x < CELEBA_W; x++) {
            double dx = (x - cx) / rx, dy = (y - cy) / ry, r2 = dx * dx + dy * dy;
            double eye = 0;
            for (int side = -1; side <= 1; side += 2) {
                double ex = (x - (cx + side * rx * 0.4)) / 8.0, ey = (y - (cy - ry * 0.2)) / 5.0;
                if (ex * ex + ey * ey < 1)
                    eye = 1;
            }
            for (int c = 0; c < 3; c++) {
                double v = r2 < 1 ? face[c] * (1.0 - 0.35 * r2) * (1 - 0.6 * eye)
                                  : bg[c] + 40.0 * y / CELEBA_H - 20.0 * x / CELEBA_W;
                v += (double)(next_random(&s) % 13) - 6; /* texture */
                px[((size_t)y * CELEBA_W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

/* One synthetic portrait as a JPEG file; its size added to *total_bytes. */
static gan_status write_image(const char *dir, int index, uint8_t *px, double *total_bytes)
{
    synthesize(px, index);
    uint8_t *jpeg = NULL;
    size_t size = 0;
    GAN_TRY(gan_jpeg_encode(px, CELEBA_W, CELEBA_H, 3, 90, &jpeg, &size));
    char path[4200];
    snprintf(path, sizeof path, "%s/%06d.jpg", dir, index + 1);
    gan_status status = GAN_OK;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(jpeg, 1, size, f) != size)
        status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    free(jpeg);
    *total_bytes += (double)size;
    return status;
}

static gan_status write_images(const char *dir, int n, double *mean_bytes)
{
    uint8_t *px = malloc((size_t)CELEBA_W * CELEBA_H * 3);
    if (!px)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    double total = 0;
    gan_status status = GAN_OK;
    for (int i = 0; i < n; i++)
        GAN_CHECK(write_image(dir, i, px, &total));
    *mean_bytes = total / n;
cleanup:
    free(px);
    return status;
}

/* A data source that times its inner source's next_batch: the loader's cost inside training steps. */
typedef struct timed_source {
    gan_data_source outer;
    gan_data_source *inner;
    double seconds;
    int64_t calls;
} timed_source;

static gan_status timed_next_batch(gan_data_source *src, void *host_batch)
{
    timed_source *t = src->impl;
    double t0 = gan_now_s();
    gan_status status = t->inner->next_batch(t->inner, host_batch);
    t->seconds += gan_now_s() - t0;
    t->calls++;
    return status;
}
static gan_status timed_get_position(gan_data_source *src, gan_data_position *pos)
{
    timed_source *t = src->impl;
    return t->inner->get_position(t->inner, pos);
}
static gan_status timed_set_position(gan_data_source *src, const gan_data_position *pos)
{
    timed_source *t = src->impl;
    return t->inner->set_position(t->inner, pos);
}
static void timed_close(gan_data_source *src) { (void)src; }

static gan_status open_cache_loader(const char *cache, const bench_options *o, gan_data_source **out)
{
    gan_dataset_options d = {.path = cache, .format = "npy", .size = o->size, .channels = 3};
    gan_dataset *ds;
    GAN_TRY(gan_dataset_open(&d, &ds));
    gan_loader_options lo;
    gan_loader_options_default(&lo);
    lo.batch_size = o->batch;
    lo.seed = 1;
    return gan_loader_open(ds, &lo, out);
}

/* Training steps of dcgan_celeba64 fed by the cache loader. */
static gan_status bench_train_step(const char *cache, const bench_options *o, double *step_ms,
                                   double *loader_ms, const char **device)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    GAN_TRY(gan_config_load(&cfg, o->config));
    if (cfg.image_size != o->size || cfg.channels != 3)
        return gan_error(GAN_ERR_CONFIG, "%s trains on %dx%dx%d, the cache is %dx%dx3", o->config,
                         cfg.image_size, cfg.image_size, cfg.channels, o->size, o->size);
    cfg.batch_size = o->batch;
    gan_backend *be = NULL;
    char why[512] = "";
    GAN_TRY(gan_backend_open(o->device, NULL, &be, why, sizeof why));
    *device = be->name;
    gan_data_source *loader = NULL;
    timed_source timed = {0};
    gan_trainer *trainer = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(open_cache_loader(cache, o, &loader));
    timed.inner = loader;
    timed.outer = *loader;
    timed.outer.impl = &timed;
    timed.outer.next_batch = timed_next_batch;
    timed.outer.get_position = timed_get_position;
    timed.outer.set_position = timed_set_position;
    timed.outer.close = timed_close;
    GAN_CHECK(gan_trainer_create(&cfg, be, &timed.outer, NULL, &trainer));
    gan_step_stats stats;
    bool finite;
    /* warm-up: first-touch of memory, cuDNN plans */
    GAN_CHECK(gan_trainer_step(trainer));
    GAN_CHECK(gan_trainer_read_stats(trainer, &stats, &finite));
    timed.seconds = 0;
    timed.calls = 0;
    double t0 = gan_now_s();
    for (int i = 0; i < o->steps; i++) {
        GAN_CHECK(gan_trainer_step(trainer));
        GAN_CHECK(gan_trainer_read_stats(trainer, &stats, &finite)); /* waits for the device */
    }
    *step_ms = (gan_now_s() - t0) * 1e3 / o->steps;
    *loader_ms = timed.calls ? timed.seconds * 1e3 / timed.calls : 0;
cleanup:
    gan_trainer_destroy(trainer);
    if (loader)
        loader->close(loader);
    be->destroy(be);
    return status;
}

static int usage(FILE *out)
{
    fprintf(out, "usage: gan bench data [--images N] [--size S] [--batch B] [--threads T] [--runs R]\n"
                 "                      [--batches K] [--step-ms MS] [--no-step] [--steps M]\n"
                 "                      [--device auto|cpu|cuda] [--config FILE] [--dir DIR] [--keep]\n"
                 "  gan prepare on synthetic CelebA-sized JPEGs, the loader from the cache, and\n"
                 "  DCGAN-64 training steps fed by it (the loader's share of a step)\n");
    return out == stdout ? 0 : 2;
}

/* The options; returns -1 to go on, else the exit status (usage or --help). */
static int parse_options(int argc, char **argv, bench_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout);
        if (!strcmp(a, "--no-step")) {
            o->train_step = false;
            continue;
        }
        if (!strcmp(a, "--keep")) {
            o->keep = true;
            continue;
        }
        if (!v)
            return usage(stderr);
        i++;
        /* strict numbers (cli/args.h): atoi took "12x" as 12 and "x" as 0 */
        int *count = !strcmp(a, "--images")    ? &o->images
                     : !strcmp(a, "--size")    ? &o->size
                     : !strcmp(a, "--batch")   ? &o->batch
                     : !strcmp(a, "--threads") ? &o->threads
                     : !strcmp(a, "--runs")    ? &o->runs
                     : !strcmp(a, "--batches") ? &o->batches
                     : !strcmp(a, "--steps")   ? &o->steps
                                               : NULL;
        if (count) {
            if (!gan_arg_int("bench data", a, v, !strcmp(a, "--threads") ? 0 : 1, INT_MAX, count))
                return 2;
        } else if (!strcmp(a, "--step-ms")) {
            if (!gan_arg_double("bench data", a, v, 0, 1e9, &o->step_ms))
                return 2;
        } else if (!strcmp(a, "--device"))
            o->device = v;
        else if (!strcmp(a, "--config"))
            o->config = v;
        else if (!strcmp(a, "--dir"))
            o->dir = v;
        else
            return usage(stderr);
    }
    if (o->images < o->batch || o->size < 1 || o->batch < 1 || o->runs < 1 || o->batches < 1 || o->steps < 1) {
        fprintf(stderr, "%s: needs --images >= --batch >= 1, and positive counts\n", argv[0]);
        return 2;
    }
    return -1;
}

/* --dir DIR, or a new folder under $TMPDIR. */
static gan_status make_work_dir(const bench_options *o, work_dir *w)
{
    memset(w, 0, sizeof *w);
    if (o->dir) {
        snprintf(w->root, sizeof w->root, "%s", o->dir);
        if (mkdir(w->root, 0755) != 0 && errno != EEXIST)
            return gan_error(GAN_ERR_IO, "%s: %s", w->root, strerror(errno));
    } else {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(w->root, sizeof w->root, "%s/gan_bench_data.XXXXXX", tmp);
        if (!mkdtemp(w->root))
            return gan_error(GAN_ERR_IO, "%s: %s", w->root, strerror(errno));
        w->owned = true;
    }
    snprintf(w->images, sizeof w->images, "%s/images", w->root);
    snprintf(w->cache, sizeof w->cache, "%s/cache.npy", w->root);
    if (mkdir(w->images, 0755) != 0 && errno != EEXIST)
        return gan_error(GAN_ERR_IO, "%s: %s", w->images, strerror(errno));
    return GAN_OK;
}

/* What the benchmark made: the whole folder when it was ours, else its two entries. */
static void remove_work_dir(const work_dir *w, const char *prog)
{
    char cmd[8800];
    if (w->owned)
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->root);
    else
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", w->images, w->cache);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: could not remove %s\n", prog, w->root);
}

/* 1. the synthetic JPEGs */
static gan_status bench_write_images(const bench_options *o, const work_dir *w)
{
    double mean_bytes = 0, t0 = gan_now_s();
    GAN_TRY(write_images(w->images, o->images, &mean_bytes));
    printf("images      : %d synthetic %dx%d JPEGs (quality 90, %.1f KB on average) written in %.1f s to %s\n",
           o->images, CELEBA_W, CELEBA_H, mean_bytes / 1024, gan_now_s() - t0, w->images);
    return GAN_OK;
}

/* 2. gan prepare, best of R runs */
static gan_status bench_prepare(const bench_options *o, const work_dir *w)
{
    double best = 0;
    char runs[512] = "";
    for (int r = 0; r < o->runs; r++) {
        gan_prepare_options po = {.data = {.path = w->images, .format = "folder", .size = o->size, .channels = 3},
                                  .output = w->cache,
                                  .threads = o->threads,
                                  .max_bad_fraction = 0};
        gan_prepare_result result;
        GAN_TRY(gan_prepare_cache(&po, &result));
        double rate = result.written / result.seconds;
        best = rate > best ? rate : best;
        size_t len = strlen(runs);
        snprintf(runs + len, sizeof runs - len, "%s%.0f", r ? ", " : "", rate);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("prepare     : %.0f images/s (runs: %s) for %dx%d JPEG -> %dx%dx3 on %d threads (%ld cores)\n",
           best, runs, CELEBA_W, CELEBA_H, o->size, o->size, o->threads > 0 ? o->threads : (int)cores, cores);
    return GAN_OK;
}

/* 3. the loader from the cache: back to back, and between simulated training steps */
static gan_status bench_loader(const bench_options *o, const work_dir *w)
{
    gan_data_source *src = NULL;
    GAN_TRY(open_cache_loader(w->cache, o, &src));
    gan_status status = GAN_OK;
    uint8_t *batch = malloc((size_t)o->batch * o->size * o->size * 3);
    if (!batch)
        GAN_CHECK(gan_error(GAN_ERR_NOMEM, "out of memory"));
    GAN_CHECK(src->next_batch(src, batch)); /* starts the thread, first touch of the mapping */
    double start = gan_now_s();
    for (int k = 0; k < o->batches; k++)
        GAN_CHECK(src->next_batch(src, batch));
    double back_to_back_ms = (gan_now_s() - start) * 1e3 / o->batches;
    double inside = 0;
    int measured = o->batches < 50 ? o->batches : 50;
    for (int k = 0; k < measured; k++) {
        sleep_ms(o->step_ms); /* a training step: the loader works meanwhile */
        double t0 = gan_now_s();
        GAN_CHECK(src->next_batch(src, batch));
        inside += gan_now_s() - t0;
    }
    double mb = (double)o->batch * o->size * o->size * 3 / 1e6;
    printf("loader      : batch %d x %dx%dx3 uint8 (%.1f MB) from the memory-mapped cache: %.3f ms/batch back "
           "to back; %.3f ms/batch in next_batch between %.0f ms steps (wait + copy)\n",
           o->batch, o->size, o->size, mb, back_to_back_ms, inside * 1e3 / measured, o->step_ms);
cleanup:
    src->close(src);
    free(batch);
    return status;
}

/* 4. training steps fed by the loader; a failure here is reported, not fatal */
static void bench_steps(const bench_options *o, const work_dir *w)
{
    double step_ms = 0, loader_ms = 0;
    const char *device = "?";
    if (bench_train_step(w->cache, o, &step_ms, &loader_ms, &device) == GAN_OK)
        printf("train step  : dcgan_celeba64, batch %d on %s: %.1f ms/step; the loader's next_batch inside "
               "it %.3f ms = %.4f%% of a step (target < 2%%)\n",
               o->batch, device, step_ms, loader_ms, 100.0 * loader_ms / step_ms);
    else
        printf("train step  : not measured: %s\n", gan_error_message());
}

int gan_bench_data(int argc, char **argv)
{
    bench_options o = {.images = 4000, .size = 64, .batch = 128, .threads = 0, .runs = 3, .batches = 300,
                       .steps = 3, .step_ms = 10.0, .train_step = true, .device = "auto",
                       .config = GAN_SOURCE_DIR "/configs/dcgan_celeba64.ini"};
    int exit_status = parse_options(argc, argv, &o);
    if (exit_status >= 0)
        return exit_status;
    work_dir w;
    gan_status status = make_work_dir(&o, &w);
    if (status != GAN_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], gan_error_message());
        return 1;
    }
    GAN_CHECK(bench_write_images(&o, &w));
    GAN_CHECK(bench_prepare(&o, &w));
    GAN_CHECK(bench_loader(&o, &w));
    if (o.train_step)
        bench_steps(&o, &w);
cleanup:
    if (status != GAN_OK)
        fprintf(stderr, "%s: %s\n", argv[0], gan_error_message());
    printf("reproduce   : %s --images %d --size %d --batch %d --threads %d --runs %d --batches %d --step-ms %g%s%s "
           "--steps %d --device %s\n",
           argv[0], o.images, o.size, o.batch, o.threads, o.runs, o.batches, o.step_ms,
           o.train_step ? "" : " --no-step", o.keep ? " --keep" : "", o.steps, o.device);
    if (!o.keep)
        remove_work_dir(&w, argv[0]);
    return status == GAN_OK ? 0 : 1;
}
