/* A non-finite loss is found at the next read of the stats, even when it happened in an earlier
 * step than the one read (the trainer keeps running sums on the backend, read once per log
 * interval), and a checkpoint is never the way it is noticed. */
#include <math.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/train.h"
#include "test_util.h"

int main(void)
{
    gan_backend *be = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg,
                                    "[model]\nnz = 4\n"
                                    "generator = linear(16,bias) relu linear(2,bias) reshape(2,1,1)\n"
                                    "discriminator = flatten linear(16,bias) relu linear(1,bias) sigmoid\n"
                                    "init = pytorch\n"
                                    "[data]\nformat = toy\nchannels = 2\nimage_size = 1\n"
                                    "[train]\nbatch_size = 8\n",
                                    "nonfinite.ini"));
    gan_data_source *data = NULL;
    gan_trainer *t = NULL;
    CHECK_OK(gan_toy_ring_source_open(8, 1, 2.0, 0.1, 1000, &data));
    CHECK_OK(gan_trainer_create(&cfg, be, data, NULL, &t));
    if (!t)
        return test_finish();
    gan_step_stats stats;
    bool finite = false;
    for (int i = 0; i < 3; i++)
        CHECK_OK(gan_trainer_step(t));
    CHECK_OK(gan_trainer_read_stats(t, &stats, &finite));
    CHECK_MSG(finite, "healthy steps reported non-finite");

    /* One step with a NaN in D's weights, then D's weights made finite again: the NaN step's
     * losses must still be reported at the next read. */
    /* the last layer's bias: a NaN there reaches the logits (a ReLU would map an earlier NaN to 0) */
    gan_param *bias = gan_model_find_param(t->d, "2.bias");
    CHECK(bias != NULL);
    if (!bias)
        return test_finish();
    float saved = bias->value[0];
    bias->value[0] = NAN;
    CHECK_OK(gan_trainer_step(t));
    for (size_t i = 0; i < t->d->trainable_count; i++)
        if (!isfinite(t->d->weights[i]))
            t->d->weights[i] = saved;
    memset(t->d->adam_m, 0, t->d->trainable_count * sizeof(float));
    memset(t->d->adam_v, 0, t->d->trainable_count * sizeof(float));
    for (size_t i = 0; i < t->g->trainable_count; i++)
        if (!isfinite(t->g->weights[i]) || !isfinite(t->g->adam_m[i]) || !isfinite(t->g->adam_v[i]))
            t->g->weights[i] = t->g->adam_m[i] = t->g->adam_v[i] = 0.0f;
    CHECK_OK(gan_trainer_step(t));
    CHECK_OK(gan_trainer_read_stats(t, &stats, &finite));
    CHECK_MSG(!finite, "a NaN step followed by a finite one was not reported");
    /* The sums restart after a read. */
    CHECK_OK(gan_trainer_step(t));
    CHECK_OK(gan_trainer_read_stats(t, &stats, &finite));
    CHECK_MSG(finite && isfinite(stats.loss_d) && isfinite(stats.loss_g),
              "finite steps after a reported NaN still read as non-finite");

    gan_trainer_destroy(t);
    data->close(data);
    be->destroy(be);
    return test_finish();
}
