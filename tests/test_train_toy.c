/* Learning: the MLP GAN on the built-in 8-Gaussian ring must cover at least 7 of the 8 modes,
 * with at least 70% of its samples within 3 standard deviations of a mode, after a fixed number
 * of steps (a few seconds on the CPU). A GAN that does not learn (a wrong gradient sign, a broken
 * Adam, D and G losses swapped) fails this: its samples stay in a blob near the origin.
 * GAN training is chaotic: the last bits of a GEMM (which BLAS kernel, how many threads) move
 * where the oscillating G sits after 3000 steps, and one run in a few lands between modes (seed
 * 1: 78.8% with OpenBLAS's SkylakeX kernels, 82.2% with Haswell's on 2 threads, 34.7% with
 * Haswell's on one). So five seeds train, and a majority (three) must meet the bar. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gan/backend.h"
#include "gan/train.h"
#include "test_util.h"

enum { STEPS = 3000, BATCH = 128, SAMPLES = 2048, SEEDS = 5 };
static const double RADIUS = 2.0, STD = 0.1;

/* Trains the toy GAN from `seed` and counts its samples near each mode; false if it could not. */
static bool train_and_count(gan_backend *be, int seed, int *covered, double *near_fraction)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    char text[1024];
    snprintf(text, sizeof text,
             "[model]\n"
             "nz = 16\n"
             "generator = linear(128,bias) relu linear(128,bias) relu linear(2,bias)\n"
             "    reshape(2,1,1)\n"
             "discriminator = flatten linear(128,bias) relu linear(128,bias) relu\n"
             "    linear(1,bias) sigmoid\n"
             "init = pytorch\n"
             "[data]\nformat = toy\nchannels = 2\nimage_size = 1\n"
             "[train]\nbatch_size = 128\nseed = %d\nlr_g = 0.001\nlr_d = 0.001\n"
             "beta1_g = 0.5\nbeta1_d = 0.5\niterations = 3000\n",
             seed);
    CHECK_OK(gan_config_load_string(&cfg, text, "toy.ini"));
    gan_data_source *data = NULL;
    CHECK_OK(gan_toy_ring_source_open(BATCH, 6 + (uint64_t)seed, RADIUS, STD, 1 << 20, &data));
    gan_trainer *t = NULL;
    CHECK_OK(gan_trainer_create(&cfg, be, data, NULL, &t));
    if (!t) {
        if (data)
            data->close(data);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < STEPS && ok; i++) {
        gan_status status = gan_trainer_step(t);
        if (status != GAN_OK) {
            CHECK_OK(status);
            ok = false;
        }
    }
    gan_step_stats stats;
    bool finite = false;
    CHECK_OK(gan_trainer_read_stats(t, &stats, &finite));
    CHECK(finite);

    /* Samples from fresh noise, in eval mode. */
    float *z = NULL, *points = malloc(SAMPLES * 2 * sizeof(float));
    gan_pool pool;
    gan_pool_init(&pool, be);
    CHECK_OK(gan_pool_request_floats(&pool, &z, (size_t)SAMPLES * cfg.nz, "z"));
    CHECK_OK(gan_pool_commit(&pool));
    CHECK_OK(gan_trainer_draw_noise(t, z, SAMPLES, 12345, 99, gan_count_of(0)));
    CHECK_OK(gan_trainer_generate(t, z, SAMPLES, false, points));

    int per_mode[8] = {0};
    int near = 0;
    for (int i = 0; i < SAMPLES && points; i++) {
        for (int m = 0; m < 8; m++) {
            double cx, cy;
            gan_toy_ring_mode(m, RADIUS, &cx, &cy);
            double dx = points[2 * i] - cx, dy = points[2 * i + 1] - cy;
            if (sqrt(dx * dx + dy * dy) <= 3.0 * STD) {
                per_mode[m]++;
                near++;
                break;
            }
        }
    }
    *covered = 0;
    for (int m = 0; m < 8; m++)
        *covered += per_mode[m] >= SAMPLES / 8 / 10; /* a mode counts with >= 10% of its share */
    *near_fraction = (double)near / SAMPLES;
    printf("toy ring, seed %d, after %d steps: %d of 8 modes covered, %.1f%% of samples within 3 std "
           "(per mode:", seed, STEPS, *covered, 100.0 * *near_fraction);
    for (int m = 0; m < 8; m++)
        printf(" %d", per_mode[m]);
    printf("); Loss_D %.3f Loss_G %.3f\n", stats.loss_d, stats.loss_g);

    free(points);
    gan_pool_release(&pool);
    gan_trainer_destroy(t);
    data->close(data);
    return ok && finite;
}

int main(void)
{
    gan_backend *be = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    int learned = 0;
    for (int seed = 1; seed <= SEEDS; seed++) {
        int covered = 0;
        double near_fraction = 0.0;
        if (train_and_count(be, seed, &covered, &near_fraction) && covered >= 7 && near_fraction >= 0.70)
            learned++;
    }
    CHECK_MSG(2 * learned > SEEDS, "only %d of %d seeds reached 7 of 8 modes with 70%% of samples within 3 std",
              learned, SEEDS);
    be->destroy(be);
    return test_finish();
}
