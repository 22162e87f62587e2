/* What a trainer keeps in a checkpoint (the file layout is src/io/checkpoint.c's): G and D with
 * their Adam moments, and the counters that make a resumed run continue bit for bit on the CPU:
 * the iteration and epoch, both Adam step counts, the noise generator's position, both dropout
 * offsets and the data position. The Philox positions are written in blocks of 4 elements (the
 * trainer keeps them in elements; every advance is whole blocks, so the two convert exactly).
 * With the CUDA backend, its convolution algorithm choices too (metadata conv_algorithms). */
#include "gan/checkpoint.h"
#include "gan/crc32c.h"
#include "gan/train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "train/conv_algorithms.h"

/* The counters in the order they are written (the file's bytes depend on it). */
enum {
    COUNTER_ITERATION,
    COUNTER_EPOCH,
    COUNTER_ADAM_STEP_G,
    COUNTER_ADAM_STEP_D,
    COUNTER_NOISE_OFFSET,
    COUNTER_DROPOUT_OFFSET_G,
    COUNTER_DROPOUT_OFFSET_D,
    COUNTER_DATA_SEED,
    COUNTER_DATA_EPOCH,
    COUNTER_DATA_INDEX,
    COUNTER_COUNT
};

static const gan_checkpoint_counter COUNTERS[COUNTER_COUNT] = {
    [COUNTER_ITERATION] = {"iteration", true, {0}},
    [COUNTER_EPOCH] = {"epoch", true, {0}},
    [COUNTER_ADAM_STEP_G] = {"adam_step_g", true, {0}},
    [COUNTER_ADAM_STEP_D] = {"adam_step_d", true, {0}},
    [COUNTER_NOISE_OFFSET] = {"noise_offset", false, {0}},
    [COUNTER_DROPOUT_OFFSET_G] = {"dropout_offset_g", false, {0}},
    [COUNTER_DROPOUT_OFFSET_D] = {"dropout_offset_d", false, {0}},
    [COUNTER_DATA_SEED] = {"data_seed", false, {0}},
    [COUNTER_DATA_EPOCH] = {"data_epoch", true, {0}},
    [COUNTER_DATA_INDEX] = {"data_index", true, {0}},
};

/* The prefix of the EMA of G's tensors (weights only: G_ema.<name>), present from version 3. */
#define EMA_PREFIX "G_ema"

/* G and D with their Adam state, then (with `ema`) the EMA of G; returns how many. */
static int trainer_models(gan_trainer *t, bool ema, gan_checkpoint_model models[3])
{
    models[0] = (gan_checkpoint_model){"G", t->g, true, NULL};
    models[1] = (gan_checkpoint_model){"D", t->d, true, NULL};
    if (!ema)
        return 2;
    models[2] = (gan_checkpoint_model){EMA_PREFIX, t->g, false, t->ema_weights};
    return 3;
}

enum { MAX_CALLER_TEXTS = 6 };

gan_status gan_trainer_save_checkpoint(gan_trainer *t, gan_data_source *data, int64_t epoch,
                                       const char *path)
{
    return gan_trainer_save_checkpoint_texts(t, data, epoch, path, NULL, 0);
}

gan_status gan_trainer_save_checkpoint_texts(gan_trainer *t, gan_data_source *data, int64_t epoch,
                                             const char *path, const gan_checkpoint_text *extra, int extra_count)
{
    if (extra_count < 0 || extra_count > MAX_CALLER_TEXTS)
        return gan_error(GAN_ERR_ARG, "%s: %d metadata texts, at most %d", path, extra_count, MAX_CALLER_TEXTS);
    gan_data_position pos = {0, 0, 0};
    if (data)
        GAN_TRY(data->get_position(data, &pos));
    gan_checkpoint_counter c[COUNTER_COUNT];
    for (int i = 0; i < COUNTER_COUNT; i++)
        c[i] = COUNTERS[i];
    c[COUNTER_ITERATION].value.i64 = t->iteration;
    c[COUNTER_EPOCH].value.i64 = epoch;
    c[COUNTER_ADAM_STEP_G].value.i64 = t->adam_step_g;
    c[COUNTER_ADAM_STEP_D].value.i64 = t->adam_step_d;
    c[COUNTER_NOISE_OFFSET].value.u64 = t->noise_offset / 4;
    c[COUNTER_DROPOUT_OFFSET_G].value.u64 = t->dropout_offset_g / 4;
    c[COUNTER_DROPOUT_OFFSET_D].value.u64 = t->dropout_offset_d / 4;
    c[COUNTER_DATA_SEED].value.u64 = pos.seed;
    c[COUNTER_DATA_EPOCH].value.i64 = pos.epoch;
    c[COUNTER_DATA_INDEX].value.i64 = pos.index;
    gan_checkpoint_model models[3];
    int model_count = trainer_models(t, t->ema_weights != NULL, models);
    /* The backend's convolution algorithm choices: a resume computes with the same ones. */
    char *algorithms = NULL;
    GAN_TRY(conv_algorithms_text(t->backend, &algorithms));
    gan_checkpoint_text texts[1 + MAX_CALLER_TEXTS];
    int text_count = 0;
    if (algorithms)
        texts[text_count++] = (gan_checkpoint_text){GAN_CONV_ALGORITHMS_KEY, algorithms};
    for (int i = 0; i < extra_count; i++)
        texts[text_count++] = extra[i];
    gan_status status = gan_checkpoint_write(path, &t->cfg, models, model_count, c, COUNTER_COUNT, texts,
                                             text_count);
    free(algorithms);
    return status;
}

/* The counters must describe a run this config could have made: a non-negative iteration (at
 * most train.iterations' limit), one G step and d_steps D steps per iteration, Philox positions
 * that fit in elements, a data position inside an epoch. */
static gan_status check_counters(const char *path, const gan_checkpoint_counter *c, const gan_config *cfg)
{
    const int64_t iteration = c[COUNTER_ITERATION].value.i64;
    const int64_t max_iteration = 1000000000000000; /* train.iterations' limit (src/config.c) */
    if (iteration < 0 || iteration > max_iteration)
        return gan_error(GAN_ERR_FORMAT, "%s: metadata iteration = %lld is outside 0..%lld", path,
                         (long long)iteration, (long long)max_iteration);
    if (c[COUNTER_EPOCH].value.i64 < 0 || c[COUNTER_DATA_EPOCH].value.i64 < 0 ||
        c[COUNTER_DATA_INDEX].value.i64 < 0)
        return gan_error(GAN_ERR_FORMAT, "%s: metadata epoch, data_epoch and data_index must be >= 0", path);
    const int64_t steps_d = c[COUNTER_ADAM_STEP_D].value.i64;
    if (c[COUNTER_ADAM_STEP_G].value.i64 == iteration && iteration > 0 && steps_d > 0 && steps_d % iteration == 0 &&
        steps_d != iteration * cfg->d_steps)
        /* a consistent file made with another d_steps: the config is what changed (an override on
         * resume), not the file, which must not be taken for damaged */
        return gan_error(GAN_ERR_CONFIG,
                         "%s was made with train.d_steps = %lld and this run has train.d_steps = %d: a run keeps "
                         "its d_steps (resume without changing it)",
                         path, (long long)(steps_d / iteration), cfg->d_steps);
    if (c[COUNTER_ADAM_STEP_G].value.i64 != iteration || steps_d != iteration * cfg->d_steps)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: metadata adam_step_g = %lld and adam_step_d = %lld do not fit iteration %lld "
                         "(one G step and train.d_steps = %d D steps per iteration)",
                         path, (long long)c[COUNTER_ADAM_STEP_G].value.i64,
                         (long long)c[COUNTER_ADAM_STEP_D].value.i64, (long long)iteration, cfg->d_steps);
    const uint64_t max_blocks = UINT64_MAX / 8; /* room to count them in elements */
    if (c[COUNTER_NOISE_OFFSET].value.u64 > max_blocks || c[COUNTER_DROPOUT_OFFSET_G].value.u64 > max_blocks ||
        c[COUNTER_DROPOUT_OFFSET_D].value.u64 > max_blocks)
        return gan_error(GAN_ERR_FORMAT, "%s: metadata noise_offset or dropout_offset_* is past 2^61 blocks", path);
    return GAN_OK;
}

gan_status gan_trainer_load_checkpoint(gan_trainer *t, gan_data_source *data, const char *path,
                                       int64_t *epoch)
{
    gan_checkpoint ck;
    GAN_TRY(gan_checkpoint_open(path, &ck));
    gan_checkpoint_counter c[COUNTER_COUNT];
    for (int i = 0; i < COUNTER_COUNT; i++)
        c[i] = COUNTERS[i];
    /* The EMA of G: in the file (version 3) when its first weight is. */
    gan_status status = GAN_OK;
    bool file_ema = false;
    for (int i = 0; i < t->g->param_count && !file_ema; i++)
        if (t->g->params[i].trainable) {
            char name[96];
            snprintf(name, sizeof name, "%s.%s", EMA_PREFIX, t->g->params[i].name);
            file_ema = gan_safetensors_find(&ck.st, name) != NULL;
            break;
        }
    if (file_ema && !t->ema_weights) {
        status = gan_error(GAN_ERR_CONFIG,
                           "%s holds an EMA of G and this run has train.ema_decay = 0: give the run its "
                           "train.ema_decay (an override) to keep the average, or sample it with gan sample --ema",
                           path);
        goto cleanup;
    }
    gan_checkpoint_model models[3];
    int model_count = trainer_models(t, file_ema, models);
    /* The counters are read (and checked) before the models load: once they have, only the data
     * position can still fail. */
    GAN_CHECK(gan_checkpoint_read_counters(&ck, c, COUNTER_COUNT));
    GAN_CHECK(check_counters(path, c, &t->cfg));
    GAN_CHECK(gan_checkpoint_load_models(&ck, models, model_count));
    /* EMA turned on at a resume: the average starts from the loaded G */
    t->ema_started_from_g = t->ema_weights && !file_ema;
    if (t->ema_started_from_g)
        GAN_CHECK(t->backend->copy(t->backend, t->ema_weights, t->g->weights, t->g->trainable_count * sizeof(float)));
    gan_data_position pos = {c[COUNTER_DATA_SEED].value.u64, c[COUNTER_DATA_EPOCH].value.i64,
                             c[COUNTER_DATA_INDEX].value.i64};
    if (data)
        GAN_CHECK(data->set_position(data, &pos));
    t->iteration = c[COUNTER_ITERATION].value.i64;
    t->adam_step_g = c[COUNTER_ADAM_STEP_G].value.i64;
    t->adam_step_d = c[COUNTER_ADAM_STEP_D].value.i64;
    t->noise_offset = c[COUNTER_NOISE_OFFSET].value.u64 * 4;
    t->dropout_offset_g = c[COUNTER_DROPOUT_OFFSET_G].value.u64 * 4;
    t->dropout_offset_d = c[COUNTER_DROPOUT_OFFSET_D].value.u64 * 4;
    GAN_CHECK(gan_trainer_upload_counts(t));
    if (epoch)
        *epoch = c[COUNTER_EPOCH].value.i64;
cleanup:
    gan_checkpoint_close(&ck);
    return status;
}

gan_status gan_trainer_export_generator(gan_trainer *t, const char *path)
{
    return gan_model_export_safetensors(t->g, t->cfg.export_prefix, t->cfg.name, path);
}

gan_status gan_trainer_use_ema(gan_trainer *t)
{
    if (!t->ema_weights)
        return gan_error(GAN_ERR_ARG, "no EMA of G: its run had train.ema_decay = 0");
    gan_backend *be = t->backend;
    return be->copy(be, t->g->weights, t->ema_weights, t->g->trainable_count * sizeof(float));
}

/* CRC-32C over `count` floats of backend memory, continued from *crc. */
static gan_status crc_floats(gan_backend *be, const float *data, size_t count, float *host, uint32_t *crc)
{
    if (!count)
        return GAN_OK;
    GAN_TRY(be->download(be, host, data, count * sizeof(float)));
    *crc = gan_crc32c_extend(*crc, host, count * sizeof(float));
    return GAN_OK;
}

gan_status gan_trainer_state_crc32c(gan_trainer *t, uint32_t *crc)
{
    gan_model *models[2] = {t->g, t->d};
    size_t largest = 1;
    for (int i = 0; i < 2; i++) {
        largest = models[i]->trainable_count > largest ? models[i]->trainable_count : largest;
        largest = models[i]->buffer_count > largest ? models[i]->buffer_count : largest;
    }
    float *host = malloc(largest * sizeof *host);
    if (!host)
        return gan_error(GAN_ERR_NOMEM, "out of memory for the state's checksum");
    gan_status status = GAN_OK;
    *crc = 0;
    for (int i = 0; i < 2; i++) {
        gan_model *m = models[i];
        GAN_CHECK(crc_floats(t->backend, m->weights, m->trainable_count, host, crc));
        GAN_CHECK(crc_floats(t->backend, m->adam_m, m->trainable_count, host, crc));
        GAN_CHECK(crc_floats(t->backend, m->adam_v, m->trainable_count, host, crc));
        GAN_CHECK(crc_floats(t->backend, m->buffers, m->buffer_count, host, crc));
    }
    if (t->ema_weights)
        GAN_CHECK(crc_floats(t->backend, t->ema_weights, t->g->trainable_count, host, crc));
cleanup:
    free(host);
    return status;
}
