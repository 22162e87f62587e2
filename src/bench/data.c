/* gan_bench_data: the data pipeline's speed.
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
 * usage: gan_bench_data [--images N] [--size S] [--batch B] [--threads T] [--runs R] [--batches K]
 *                       [--step-ms MS] [--no-step] [--steps M] [--device auto|cpu|cuda]
 *                       [--config FILE] [--dir DIR] [--keep] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
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

static gan_status write_images(const char *dir, int n, double *mean_bytes)
{
    uint8_t *px = malloc((size_t)CELEBA_W * CELEBA_H * 3);
    if (!px)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    double total = 0;
    gan_status status = GAN_OK;
    for (int i = 0; i < n && status == GAN_OK; i++) {
        synthesize(px, i);
        uint8_t *jpeg = NULL;
        size_t size = 0;
        status = gan_jpeg_encode(px, CELEBA_W, CELEBA_H, 3, 90, &jpeg, &size);
        char path[4200];
        snprintf(path, sizeof path, "%s/%06d.jpg", dir, i + 1);
        FILE *f = status == GAN_OK ? fopen(path, "wb") : NULL;
        if (status == GAN_OK && (!f || fwrite(jpeg, 1, size, f) != size))
            status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        free(jpeg);
        total += (double)size;
    }
    free(px);
    *mean_bytes = total / n;
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
    gan_status status = open_cache_loader(cache, o, &loader);
    timed_source timed = {0};
    gan_trainer *trainer = NULL;
    if (status == GAN_OK) {
        timed.inner = loader;
        timed.outer = *loader;
        timed.outer.impl = &timed;
        timed.outer.next_batch = timed_next_batch;
        timed.outer.get_position = timed_get_position;
        timed.outer.set_position = timed_set_position;
        timed.outer.close = timed_close;
        status = gan_trainer_create(&cfg, be, &timed.outer, NULL, &trainer);
    }
    gan_step_stats stats;
    bool finite;
    if (status == GAN_OK) /* warm-up: first-touch of memory, cuDNN plans */
        status = gan_trainer_step(trainer);
    if (status == GAN_OK)
        status = gan_trainer_read_stats(trainer, &stats, &finite);
    timed.seconds = 0;
    timed.calls = 0;
    double t0 = gan_now_s();
    for (int i = 0; i < o->steps && status == GAN_OK; i++) {
        status = gan_trainer_step(trainer);
        if (status == GAN_OK)
            status = gan_trainer_read_stats(trainer, &stats, &finite); /* waits for the device */
    }
    double seconds = gan_now_s() - t0;
    if (status == GAN_OK) {
        *step_ms = seconds * 1e3 / o->steps;
        *loader_ms = timed.calls ? timed.seconds * 1e3 / timed.calls : 0;
    }
    gan_trainer_destroy(trainer);
    if (loader)
        loader->close(loader);
    be->destroy(be);
    return status;
}

static int usage(void)
{
    fprintf(stderr, "usage: gan_bench_data [--images N] [--size S] [--batch B] [--threads T] [--runs R]\n"
                    "                      [--batches K] [--step-ms MS] [--no-step] [--steps M]\n"
                    "                      [--device auto|cpu|cuda] [--config FILE] [--dir DIR] [--keep]\n");
    return 2;
}

int gan_bench_data(int argc, char **argv)
{
    bench_options o = {.images = 4000, .size = 64, .batch = 128, .threads = 0, .runs = 3, .batches = 300,
                       .steps = 3, .step_ms = 10.0, .train_step = true, .device = "auto",
                       .config = GAN_SOURCE_DIR "/configs/dcgan_celeba64.ini"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-step")) {
            o.train_step = false;
            continue;
        }
        if (!strcmp(a, "--keep")) {
            o.keep = true;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--images"))
            o.images = atoi(v);
        else if (!strcmp(a, "--size"))
            o.size = atoi(v);
        else if (!strcmp(a, "--batch"))
            o.batch = atoi(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--runs"))
            o.runs = atoi(v);
        else if (!strcmp(a, "--batches"))
            o.batches = atoi(v);
        else if (!strcmp(a, "--steps"))
            o.steps = atoi(v);
        else if (!strcmp(a, "--step-ms"))
            o.step_ms = atof(v);
        else if (!strcmp(a, "--device"))
            o.device = v;
        else if (!strcmp(a, "--config"))
            o.config = v;
        else if (!strcmp(a, "--dir"))
            o.dir = v;
        else
            return usage();
    }
    if (o.images < o.batch || o.size < 1 || o.batch < 1 || o.runs < 1 || o.batches < 1 || o.steps < 1) {
        fprintf(stderr, "gan_bench_data: needs --images >= --batch >= 1, and positive counts\n");
        return 2;
    }
    char dir[4096];
    if (o.dir) {
        snprintf(dir, sizeof dir, "%s", o.dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "gan_bench_data: %s: %s\n", dir, strerror(errno));
            return 1;
        }
    } else {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof dir, "%s/gan_bench_data.XXXXXX", tmp);
        if (!mkdtemp(dir)) {
            fprintf(stderr, "gan_bench_data: %s: %s\n", dir, strerror(errno));
            return 1;
        }
    }
    char images[4200], cache[4200];
    snprintf(images, sizeof images, "%s/images", dir);
    snprintf(cache, sizeof cache, "%s/cache.npy", dir);
    mkdir(images, 0755);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    double mean_bytes = 0, t0 = gan_now_s();
    gan_status status = write_images(images, o.images, &mean_bytes);
    if (status == GAN_OK)
        printf("images      : %d synthetic %dx%d JPEGs (quality 90, %.1f KB on average) written in %.1f s to %s\n",
               o.images, CELEBA_W, CELEBA_H, mean_bytes / 1024, gan_now_s() - t0, images);

    /* prepare */
    double best = 0;
    char runs[512] = "";
    for (int r = 0; r < o.runs && status == GAN_OK; r++) {
        gan_prepare_options po = {.data = {.path = images, .format = "folder", .size = o.size, .channels = 3},
                                  .output = cache,
                                  .threads = o.threads,
                                  .max_bad_fraction = 0};
        gan_prepare_result result;
        status = gan_prepare_cache(&po, &result);
        if (status == GAN_OK) {
            double rate = result.written / result.seconds;
            best = rate > best ? rate : best;
            size_t len = strlen(runs);
            snprintf(runs + len, sizeof runs - len, "%s%.0f", r ? ", " : "", rate);
        }
    }
    if (status == GAN_OK)
        printf("prepare     : %.0f images/s (runs: %s) for %dx%d JPEG -> %dx%dx3 on %d threads (%ld cores)\n",
               best, runs, CELEBA_W, CELEBA_H, o.size, o.size, o.threads > 0 ? o.threads : (int)cores, cores);

    /* the loader from the cache */
    gan_data_source *src = NULL;
    uint8_t *batch = NULL;
    if (status == GAN_OK)
        status = open_cache_loader(cache, &o, &src);
    if (status == GAN_OK) {
        batch = malloc((size_t)o.batch * o.size * o.size * 3);
        if (!batch)
            status = gan_error(GAN_ERR_NOMEM, "out of memory");
    }
    double back_to_back_ms = 0, between_steps_ms = 0;
    if (status == GAN_OK) {
        status = src->next_batch(src, batch); /* starts the thread, first touch of the mapping */
        double start = gan_now_s();
        for (int k = 0; k < o.batches && status == GAN_OK; k++)
            status = src->next_batch(src, batch);
        back_to_back_ms = (gan_now_s() - start) * 1e3 / o.batches;
        double inside = 0;
        int measured = o.batches < 50 ? o.batches : 50;
        for (int k = 0; k < measured && status == GAN_OK; k++) {
            sleep_ms(o.step_ms); /* a training step: the loader works meanwhile */
            double s = gan_now_s();
            status = src->next_batch(src, batch);
            inside += gan_now_s() - s;
        }
        between_steps_ms = inside * 1e3 / measured;
    }
    if (status == GAN_OK) {
        double mb = (double)o.batch * o.size * o.size * 3 / 1e6;
        printf("loader      : batch %d x %dx%dx3 uint8 (%.1f MB) from the memory-mapped cache: %.3f ms/batch back "
               "to back; %.3f ms/batch in next_batch between %.0f ms steps (wait + copy)\n",
               o.batch, o.size, o.size, mb, back_to_back_ms, between_steps_ms, o.step_ms);
    }
    if (src)
        src->close(src);
    free(batch);

    /* a training step fed by the loader */
    if (status == GAN_OK && o.train_step) {
        double step_ms = 0, loader_ms = 0;
        const char *device = "?";
        gan_status s = bench_train_step(cache, &o, &step_ms, &loader_ms, &device);
        if (s == GAN_OK)
            printf("train step  : dcgan_celeba64, batch %d on %s: %.1f ms/step; the loader's next_batch inside "
                   "it %.3f ms = %.4f%% of a step (target < 2%%)\n",
                   o.batch, device, step_ms, loader_ms, 100.0 * loader_ms / step_ms);
        else
            printf("train step  : not measured: %s\n", gan_error_message());
    }

    if (status != GAN_OK)
        fprintf(stderr, "gan_bench_data: %s\n", gan_error_message());
    printf("reproduce   : %s --images %d --size %d --batch %d --threads %d --runs %d --batches %d --step-ms %g%s%s "
           "--steps %d --device %s\n",
           argv[0], o.images, o.size, o.batch, o.threads, o.runs, o.batches, o.step_ms,
           o.train_step ? "" : " --no-step", o.keep ? " --keep" : "", o.steps, o.device);
    if (!o.keep) { /* what we made: the whole folder when it was ours, else its two entries */
        char cmd[8800];
        if (o.dir)
            snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", images, cache);
        else
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "gan_bench_data: could not remove %s\n", dir);
    }
    return status == GAN_OK ? 0 : 1;
}
