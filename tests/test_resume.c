/* Checkpoints: 2N steps straight equal N steps, checkpoint, a fresh process state resumed from
 * it, N more steps, bit for bit on the CPU (weights, BN statistics and counters, Adam moments,
 * noise, dropout and data positions all round-trip). And bad checkpoints are refused with one
 * message, leaving the trainer untouched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/checkpoint.h"
#include "gan/safetensors.h"
#include "gan/train.h"
#include "test_util.h"

enum { N = 7, BATCH = 16 };

static const char *CONFIG =
    "[model]\nnz = 8\n"
    "generator = linear(32,bias) bn relu linear(2,bias) reshape(2,1,1)\n"
    "discriminator = flatten linear(32,bias) lrelu(0.2) dropout(0.3) linear(1,bias) sigmoid\n"
    "init = pytorch\n"
    "[data]\nformat = toy\nchannels = 2\nimage_size = 1\n"
    "[train]\nbatch_size = 16\nseed = 5\nd_steps = 2\nlr_g = 0.001\nlr_d = 0.001\n";

static gan_backend *be;

static void make(const char *text, gan_data_source **data, gan_trainer **t)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg, text, "resume.ini"));
    CHECK_OK(gan_toy_ring_source_open(BATCH, cfg.seed, 2.0, 0.1, 100, data));
    CHECK_OK(gan_trainer_create(&cfg, be, *data, NULL, t));
}

static void steps(gan_trainer *t, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_OK(gan_trainer_step(t));
}

static bool same_model(const gan_model *a, const gan_model *b, const char *what)
{
    bool same = !memcmp(a->weights, b->weights, a->trainable_count * 4) &&
                !memcmp(a->adam_m, b->adam_m, a->trainable_count * 4) &&
                !memcmp(a->adam_v, b->adam_v, a->trainable_count * 4) &&
                (!a->buffer_count || !memcmp(a->buffers, b->buffers, a->buffer_count * 4));
    CHECK_MSG(same, "%s differs between the straight run and the resumed one", what);
    return same;
}

int main(void)
{
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    const char *dir = test_temp_dir("test_resume");
    char ckpt[4200], bad[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);

    gan_data_source *data_a = NULL, *data_b = NULL, *data_c = NULL;
    gan_trainer *a = NULL, *b = NULL, *c = NULL;
    make(CONFIG, &data_a, &a);
    steps(a, 2 * N);

    make(CONFIG, &data_b, &b);
    steps(b, N);
    CHECK_OK(gan_trainer_save_checkpoint(b, data_b, 0, ckpt));
    gan_trainer_destroy(b);
    data_b->close(data_b);

    make(CONFIG, &data_c, &c);
    int64_t epoch = -1;
    CHECK_OK(gan_trainer_load_checkpoint(c, data_c, ckpt, &epoch));
    CHECK(c->iteration == N && epoch == 0);
    steps(c, N);
    CHECK(c->iteration == 2 * N);
    same_model(a->g, c->g, "G");
    same_model(a->d, c->d, "D");
    CHECK(gan_model_bn_batches_tracked(a->g, 1) == gan_model_bn_batches_tracked(c->g, 1));
    CHECK(gan_model_bn_batches_tracked(a->g, 1) == 2 * N * 2); /* a G forward per D step */
    gan_step_stats sa, sc;
    bool fa, fc;
    CHECK_OK(gan_trainer_read_stats(a, &sa, &fa));
    CHECK_OK(gan_trainer_read_stats(c, &sc, &fc));
    CHECK(!memcmp(&sa, &sc, sizeof sa));

    /* The stored config comes back. */
    gan_config stored;
    CHECK_OK(gan_checkpoint_read_config(ckpt, &stored));
    CHECK(stored.nz == 8 && stored.d_steps == 2 && !strcmp(stored.generator, a->cfg.generator));

    /* Bad checkpoints: each refused with a message naming the file; the trainer is unchanged. */
    float *before = malloc(c->g->trainable_count * 4);
    memcpy(before, c->g->weights, c->g->trainable_count * 4);
    FILE *in = fopen(ckpt, "rb");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    CHECK(fread(bytes, 1, (size_t)size, in) == (size_t)size);
    fclose(in);
    snprintf(bad, sizeof bad, "%s/truncated.safetensors", dir);
    FILE *out = fopen(bad, "wb");
    fwrite(bytes, 1, (size_t)size / 2, out);
    fclose(out);
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, bad, NULL), GAN_ERR_FORMAT, "truncated.safetensors");
    snprintf(bad, sizeof bad, "%s/export.safetensors", dir);
    CHECK_OK(gan_trainer_export_generator(c, bad));
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, bad, NULL), GAN_ERR_FORMAT, "not a gan checkpoint");
    snprintf(bad, sizeof bad, "%s/garbage.safetensors", dir);
    out = fopen(bad, "wb");
    fputs("this is not a checkpoint at all", out);
    fclose(out);
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, bad, NULL), GAN_ERR_FORMAT, "garbage.safetensors");
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, "/nonexistent/ckpt.safetensors", NULL), GAN_ERR_IO,
                     "/nonexistent/ckpt.safetensors");
    /* Another model's checkpoint: a wider G. */
    gan_data_source *data_d = NULL;
    gan_trainer *d = NULL;
    char other[2048];
    snprintf(other, sizeof other, "%s", CONFIG);
    char *wide = strstr(other, "linear(32,bias) bn");
    memcpy(wide, "linear(48,bias) bn", strlen("linear(48,bias) bn"));
    make(other, &data_d, &d);
    snprintf(bad, sizeof bad, "%s/other.safetensors", dir);
    CHECK_OK(gan_trainer_save_checkpoint(d, data_d, 0, bad));
    CHECK_FAILS_WITH(gan_trainer_load_checkpoint(c, data_c, bad, NULL), GAN_ERR_FORMAT, "another model");
    CHECK_MSG(!memcmp(before, c->g->weights, c->g->trainable_count * 4),
              "a refused checkpoint changed the trainer's weights");
    CHECK(c->iteration == 2 * N);

    free(before);
    free(bytes);
    gan_trainer_destroy(a);
    gan_trainer_destroy(c);
    gan_trainer_destroy(d);
    data_a->close(data_a);
    data_c->close(data_c);
    data_d->close(data_d);
    be->destroy(be);
    return test_finish();
}
