/* Driver for tests/script_loader_tsan.sh: the loader's producer and decoding helpers under
 * ThreadSanitizer. Runs loaders over images in memory and over a folder (with broken files, four
 * decoding threads), takes batches across epoch ends, restores positions while the producer runs,
 * and stops loaders mid-epoch (while batches are being decoded): every close must join promptly.
 * Usage: tsan_loader_driver WORK_DIR. Exit 0 when every check passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gan/data.h"
#include "gan/image.h"

static int failures;

#define EXPECT(cond)                                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, \
                    gan_error_message());                                    \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void quiet(void *ctx, const char *message)
{
    (void)ctx;
    (void)message;
}

static void close_and_time(gan_data_source *src, const char *what)
{
    double t0 = now_s();
    src->close(src);
    double seconds = now_s() - t0;
    if (seconds > 2.0) {
        fprintf(stderr, "FAIL: closing %s took %.2f s\n", what, seconds);
        failures++;
    }
}

static void memory_loaders(void)
{
    for (int round = 0; round < 20; round++) {
        enum { N = 300, S = 6 };
        gan_image_set set = {malloc(N * 8 * 5), N, 8, 5, 1};
        for (int i = 0; i < N * 40; i++)
            set.pixels[i] = (uint8_t)(i * 7);
        gan_dataset *ds = NULL;
        gan_data_source *src = NULL;
        EXPECT(gan_dataset_open_images(&set, S, 3, "memory", &ds) == GAN_OK);
        gan_loader_options o;
        gan_loader_options_default(&o);
        o.batch_size = 16;
        o.seed = (uint64_t)round;
        o.prefetch = 1 + round % 3;
        EXPECT(gan_loader_open(ds, &o, &src) == GAN_OK);
        if (!src)
            continue;
        uint8_t batch[16 * S * S * 3];
        int batches = round * 3 % 40; /* 0 .. 39: some runs end mid-epoch, some after epochs */
        for (int k = 0; k < batches; k++) {
            EXPECT(src->next_batch(src, batch) == GAN_OK);
            if (k == 7) {
                gan_data_position p = {(uint64_t)round, 2, 32};
                EXPECT(src->set_position(src, &p) == GAN_OK);
            }
        }
        close_and_time(src, "a memory loader");
    }
}

static void folder_loaders(const char *work)
{
    char folder[4200], path[4400];
    snprintf(folder, sizeof folder, "%s/images", work);
    mkdir(folder, 0755);
    for (int i = 0; i < 60; i++) {
        enum { W = 40, H = 50 };
        uint8_t px[W * H * 3];
        for (int p = 0; p < W * H * 3; p++)
            px[p] = (uint8_t)(p * 3 + i * 11);
        uint8_t *png;
        size_t size;
        EXPECT(gan_png_encode(px, W, H, 3, &png, &size) == GAN_OK);
        snprintf(path, sizeof path, "%s/%03d.png", folder, i);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(png, 1, i % 29 == 5 ? size / 3 : size, f); /* two truncated: skipped */
            fclose(f);
        }
        free(png);
    }
    for (int round = 0; round < 6; round++) {
        gan_dataset_options d = {.path = folder, .size = 16, .channels = round % 2 ? 1 : 3, .warn = quiet};
        gan_dataset *ds = NULL;
        gan_data_source *src = NULL;
        EXPECT(gan_dataset_open(&d, &ds) == GAN_OK);
        gan_loader_options o;
        gan_loader_options_default(&o);
        o.batch_size = 8;
        o.seed = 9;
        o.threads = 4;
        o.prefetch = 2;
        o.max_bad_fraction = 0.1;
        o.warn = quiet;
        if (ds)
            EXPECT(gan_loader_open(ds, &o, &src) == GAN_OK);
        if (!src)
            continue;
        uint8_t batch[8 * 16 * 16 * 3];
        int batches = round * 4; /* 0, 4, ..., 20: 7 batches an epoch */
        for (int k = 0; k < batches; k++)
            EXPECT(src->next_batch(src, batch) == GAN_OK);
        if (round == 3) {
            gan_data_position p = {9, 1, 24};
            EXPECT(src->set_position(src, &p) == GAN_OK);
            EXPECT(src->next_batch(src, batch) == GAN_OK);
        }
        gan_loader_stats stats;
        EXPECT(gan_loader_get_stats(src, &stats) == GAN_OK);
        close_and_time(src, "a folder loader");
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    memory_loaders();
    folder_loaders(argv[1]);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    else
        printf("loader under ThreadSanitizer: all runs joined cleanly\n");
    return failures ? 1 : 0;
}
