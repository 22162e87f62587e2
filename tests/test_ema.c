/* The EMA of G (train.ema_decay): the op against a hand computation; the trainer's average after
 * each G step against one kept on the host from G's weights; EMA-G's samples; checkpoints:
 * version 3 with "G_ema.<name>" round-trips bit for bit and a resumed run continues as the
 * straight one, a run without EMA still writes version 2, a version 3 file with an EMA is refused
 * (naming it) by a trainer without one, a version 2 file starts a trainer's average from its G. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/checkpoint.h"
#include "gan/safetensors.h"
#include "gan/train.h"
#include "test_util.h"

enum { BATCH = 16, STEPS = 5 };

static const char *CONFIG_EMA =
    "[model]\nnz = 8\n"
    "generator = linear(32,bias) bn relu linear(2,bias) reshape(2,1,1)\n"
    "discriminator = flatten linear(32,bias) lrelu(0.2) linear(1,bias) sigmoid\n"
    "init = pytorch\n"
    "[data]\nformat = toy\nchannels = 2\nimage_size = 1\n"
    "[train]\nbatch_size = 16\nseed = 11\nlr_g = 0.01\nlr_d = 0.01\nema_decay = 0.9\n";

static gan_backend *be;

static void make(const char *text, double ema_decay, gan_data_source **data, gan_trainer **t)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg, text, "ema.ini"));
    cfg.ema_decay = ema_decay;
    CHECK_OK(gan_toy_ring_source_open(BATCH, cfg.seed, 2.0, 0.1, 100, data));
    CHECK_OK(gan_trainer_create(&cfg, be, *data, NULL, t));
}

/* One element by hand, as PyTorch computes decay * ema + (1 - decay) * param on float tensors:
 * each product rounded to float on its own (volatile keeps the compiler from fusing them). */
static float ema_by_hand(float ema, float param, double decay)
{
    volatile float d = (float)decay, one_minus = (float)(1.0 - decay);
    volatile float kept = d * ema;
    volatile float added = one_minus * param;
    return kept + added;
}

static void test_op(void)
{
    /* exact values: 0.75 * 1 + 0.25 * 0.25 = 0.8125 */
    float ema = 1.0f, param = 0.25f;
    CHECK_OK(be->ema_update(be, 1, 0.75, &param, &ema));
    CHECK(ema == 0.8125f);
    /* many values, a decay whose float is not exact, several steps: bit for bit the hand rule */
    enum { COUNT = 1001 };
    float *e = malloc(COUNT * sizeof(float)), *want = malloc(COUNT * sizeof(float));
    float *p = malloc(COUNT * sizeof(float));
    double *exact = malloc(COUNT * sizeof(double));
    for (int i = 0; i < COUNT; i++)
        e[i] = want[i] = (float)(exact[i] = sin(i * 0.37));
    for (int step = 0; step < 4; step++) {
        for (int i = 0; i < COUNT; i++)
            p[i] = (float)cos(i * 0.11 + step);
        CHECK_OK(be->ema_update(be, COUNT, 0.999, p, e));
        for (int i = 0; i < COUNT; i++) {
            want[i] = ema_by_hand(want[i], p[i], 0.999);
            exact[i] = 0.999 * exact[i] + 0.001 * p[i];
        }
    }
    int differ = 0;
    double worst = 0.0;
    for (int i = 0; i < COUNT; i++) {
        differ += memcmp(&e[i], &want[i], sizeof(float)) != 0;
        worst = fmax(worst, fabs(e[i] - exact[i]));
    }
    CHECK_MSG(differ == 0, "ema_update: %d of %d values differ from the hand computation", differ, COUNT);
    CHECK_MSG(worst < 1e-6, "ema_update: %g from the average in double", worst);
    /* refused: a decay outside [0, 1) */
    CHECK_FAILS_WITH(be->ema_update(be, 1, 1.0, &param, &ema), GAN_ERR_ARG, "decay");
    free(e);
    free(want);
    free(p);
    free(exact);
}

/* The trainer's average against one kept here from G's weights after every step. */
static void test_trainer_average(gan_trainer *t)
{
    size_t n = t->g->trainable_count;
    float *host = malloc(n * sizeof(float));
    CHECK_MSG(t->ema_weights && !memcmp(t->ema_weights, t->g->weights, n * sizeof(float)),
              "the average does not start as G's initial weights");
    memcpy(host, t->g->weights, n * sizeof(float));
    for (int s = 0; s < STEPS; s++) {
        CHECK_OK(gan_trainer_step(t));
        for (size_t i = 0; i < n; i++)
            host[i] = ema_by_hand(host[i], t->g->weights[i], t->cfg.ema_decay);
    }
    CHECK_MSG(!memcmp(host, t->ema_weights, n * sizeof(float)),
              "after %d steps the trainer's EMA of G differs from the hand computation", STEPS);
    CHECK_MSG(memcmp(t->ema_weights, t->g->weights, n * sizeof(float)) != 0, "the average is G itself");
    free(host);
}

/* EMA-G's samples: G's averaged weights with G's running statistics; G is left as it was. */
static void test_generate(gan_trainer *t)
{
    enum { N = 5 };
    size_t n = t->g->trainable_count, per = gan_shape_count(t->g->output_shape);
    float *z = NULL;
    CHECK_OK(be->alloc(be, N * 8 * sizeof(float), (void **)&z));
    CHECK_OK(gan_trainer_draw_noise(t, z, N, 3, GAN_SAMPLE_NOISE_STREAM, gan_count_of(0)));
    float g_before[N * 2], ema_images[N * 2], g_after[N * 2], via_copy[N * 2];
    CHECK(per == 2);
    CHECK_OK(gan_trainer_generate(t, z, N, false, g_before));
    CHECK_OK(gan_trainer_generate_ema(t, z, N, ema_images));
    CHECK_OK(gan_trainer_generate(t, z, N, false, g_after));
    CHECK_MSG(!memcmp(g_before, g_after, sizeof g_before), "sampling EMA-G changed G's samples");
    CHECK_MSG(memcmp(g_before, ema_images, sizeof g_before) != 0, "EMA-G's samples are G's");
    /* the same as G with the average copied in (gan sample --ema) */
    float *saved = malloc(n * sizeof(float));
    memcpy(saved, t->g->weights, n * sizeof(float));
    CHECK_OK(gan_trainer_use_ema(t));
    CHECK_OK(gan_trainer_generate(t, z, N, false, via_copy));
    CHECK_MSG(!memcmp(via_copy, ema_images, sizeof via_copy), "generate_ema and use_ema give different samples");
    memcpy(t->g->weights, saved, n * sizeof(float));
    free(saved);
    be->free(be, z);
}

static bool has_tensor(const char *path, const char *name, const char *version)
{
    gan_checkpoint ck;
    if (gan_checkpoint_open(path, &ck) != GAN_OK)
        return false;
    bool found = gan_safetensors_find(&ck.st, name) != NULL;
    const char *v = gan_safetensors_metadata(&ck.st, "version");
    CHECK_MSG(v && !strcmp(v, version), "%s: version %s, want %s", path, v ? v : "(none)", version);
    gan_checkpoint_close(&ck);
    return found;
}

int main(void)
{
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    const char *dir = test_temp_dir("test_ema");
    char with_ema[4200], without_ema[4200];
    snprintf(with_ema, sizeof with_ema, "%s/ema.safetensors", dir);
    snprintf(without_ema, sizeof without_ema, "%s/plain.safetensors", dir);
    test_op();

    gan_data_source *data_a = NULL, *data_b = NULL, *data_c = NULL, *data_d = NULL;
    gan_trainer *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    make(CONFIG_EMA, 0.9, &data_a, &a);
    test_trainer_average(a);
    test_generate(a);

    /* version 3: G_ema.<name> for each trainable parameter, and a resumed run continues as the
     * straight one, its average included */
    CHECK_OK(gan_trainer_save_checkpoint(a, data_a, 0, with_ema));
    CHECK(has_tensor(with_ema, "G_ema.0.weight", GAN_CHECKPOINT_VERSION));
    CHECK(has_tensor(with_ema, "G_ema.1.weight", GAN_CHECKPOINT_VERSION));
    CHECK(!has_tensor(with_ema, "G_ema.1.running_mean", GAN_CHECKPOINT_VERSION)); /* weights only */
    make(CONFIG_EMA, 0.9, &data_b, &b);
    CHECK_OK(gan_trainer_load_checkpoint(b, data_b, with_ema, NULL));
    size_t n = a->g->trainable_count;
    CHECK_MSG(!memcmp(a->ema_weights, b->ema_weights, n * sizeof(float)), "the EMA of G did not round-trip");
    CHECK(!b->ema_started_from_g);
    for (int s = 0; s < 3; s++) {
        CHECK_OK(gan_trainer_step(a));
        CHECK_OK(gan_trainer_step(b));
    }
    CHECK_MSG(!memcmp(a->ema_weights, b->ema_weights, n * sizeof(float)),
              "the resumed run's average differs from the straight run's");

    /* a trainer without EMA refuses the file, naming it and the key, and is left as it was */
    make(CONFIG_EMA, 0.0, &data_c, &c);
    CHECK(c->ema_weights == NULL);
    float *before = malloc(c->g->trainable_count * sizeof(float));
    memcpy(before, c->g->weights, c->g->trainable_count * sizeof(float));
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, with_ema, NULL), GAN_ERR_CONFIG, "ema.safetensors");
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, with_ema, NULL), GAN_ERR_CONFIG, "train.ema_decay");
    CHECK(!memcmp(before, c->g->weights, c->g->trainable_count * sizeof(float)) && c->iteration == 0);
    CHECK_FAILS_WITH(gan_trainer_use_ema(c), GAN_ERR_ARG, "no EMA");

    /* without EMA: version 2, no G_ema tensors; loaded by a trainer with EMA, the average starts
     * from the loaded G */
    CHECK_OK(gan_trainer_step(c));
    CHECK_OK(gan_trainer_save_checkpoint(c, data_c, 0, without_ema));
    CHECK(!has_tensor(without_ema, "G_ema.0.weight", GAN_CHECKPOINT_VERSION_PLAIN));
    make(CONFIG_EMA, 0.5, &data_d, &d);
    CHECK_OK(gan_trainer_load_checkpoint(d, data_d, without_ema, NULL));
    CHECK(d->ema_started_from_g);
    CHECK_MSG(!memcmp(d->ema_weights, c->g->weights, n * sizeof(float)) &&
                  !memcmp(d->g->weights, c->g->weights, n * sizeof(float)),
              "a version 2 checkpoint did not start the average from its G");
    /* and a file with EMA loaded afterwards clears that */
    CHECK_OK(gan_trainer_load_checkpoint(d, data_d, with_ema, NULL));
    CHECK(!d->ema_started_from_g);

    free(before);
    gan_trainer_destroy(a);
    gan_trainer_destroy(b);
    gan_trainer_destroy(c);
    gan_trainer_destroy(d);
    data_a->close(data_a);
    data_b->close(data_b);
    data_c->close(data_c);
    data_d->close(data_d);
    be->destroy(be);
    return test_finish();
}
