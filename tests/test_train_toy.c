/* Learning: the MLP GAN on the built-in 8-Gaussian ring must cover at least 7 of the 8 modes,
 * with at least 70% of its samples within 3 standard deviations of a mode, after a fixed number
 * of steps (a few seconds on the CPU). A GAN that does not learn (a wrong gradient sign, a broken
 * Adam, D and G losses swapped) fails this: its samples stay in a blob near the origin. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gan/backend.h"
#include "gan/train.h"
#include "test_util.h"

enum { STEPS = 3000, BATCH = 128, SAMPLES = 2048 };
static const double RADIUS = 2.0, STD = 0.1;

int main(void)
{
    gan_backend *be = NULL;
    CHECK_OK(gan_cpu_backend_create(&be));
    if (!be)
        return test_finish();

    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg,
                                    "[model]\n"
                                    "nz = 16\n"
                                    "generator = linear(128,bias) relu linear(128,bias) relu linear(2,bias)\n"
                                    "    reshape(2,1,1)\n"
                                    "discriminator = flatten linear(128,bias) relu linear(128,bias) relu\n"
                                    "    linear(1,bias) sigmoid\n"
                                    "init = pytorch\n"
                                    "[data]\nformat = toy\nchannels = 2\nimage_size = 1\n"
                                    "[train]\nbatch_size = 128\nseed = 1\nlr_g = 0.001\nlr_d = 0.001\n"
                                    "beta1_g = 0.5\nbeta1_d = 0.5\niterations = 3000\n",
                                    "toy.ini"));
    gan_data_source *data = NULL;
    CHECK_OK(gan_toy_ring_source_open(BATCH, 7, RADIUS, STD, 1 << 20, &data));
    gan_trainer *t = NULL;
    CHECK_OK(gan_trainer_create(&cfg, be, data, NULL, &t));
    if (!t)
        return test_finish();
    for (int i = 0; i < STEPS; i++) {
        gan_status status = gan_trainer_step(t);
        if (status != GAN_OK) {
            CHECK_OK(status);
            break;
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
    CHECK_OK(gan_trainer_draw_noise(t, z, SAMPLES, 12345, 99, 0));
    CHECK_OK(gan_trainer_generate(t, z, SAMPLES, false, points));

    int per_mode[8] = {0};
    int near = 0;
    for (int i = 0; i < SAMPLES; i++) {
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
    int covered = 0;
    for (int m = 0; m < 8; m++)
        covered += per_mode[m] >= SAMPLES / 8 / 10; /* a mode counts with >= 10% of its share */
    double near_fraction = (double)near / SAMPLES;
    printf("toy ring after %d steps: %d of 8 modes covered, %.1f%% of samples within 3 std "
           "(per mode:", STEPS, covered, 100.0 * near_fraction);
    for (int m = 0; m < 8; m++)
        printf(" %d", per_mode[m]);
    printf("); Loss_D %.3f Loss_G %.3f\n", stats.loss_d, stats.loss_g);
    CHECK_MSG(covered >= 7, "only %d of 8 modes covered", covered);
    CHECK_MSG(near_fraction >= 0.70, "only %.1f%% of samples within 3 std of a mode", 100.0 * near_fraction);

    free(points);
    gan_pool_release(&pool);
    gan_trainer_destroy(t);
    data->close(data);
    be->destroy(be);
    return test_finish();
}
