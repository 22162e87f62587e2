/* Checkpoint and export files as safetensors (see gan/checkpoint.h for the layout). */
#include "gan/checkpoint.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/safetensors.h"

/* A model's state copied to host memory: weights [trainable], buffers [buffer_count], Adam
 * moments, and the BN counters. */
typedef struct host_model {
    float *weights, *buffers, *adam_m, *adam_v;
    int64_t *batches_tracked; /* [param_count], used at BN running_var entries */
} host_model;

static void host_model_free(host_model *h)
{
    free(h->weights);
    free(h->buffers);
    free(h->adam_m);
    free(h->adam_v);
    free(h->batches_tracked);
    memset(h, 0, sizeof *h);
}

/* `weights_only` (a gan_checkpoint_model's): the trainable parameters alone, from that buffer. */
static gan_status host_model_download(gan_model *m, bool with_adam, const float *weights_only, host_model *h)
{
    gan_backend *be = m->backend;
    with_adam = with_adam && !weights_only;
    memset(h, 0, sizeof *h);
    size_t p = m->trainable_count ? m->trainable_count : 1, b = m->buffer_count ? m->buffer_count : 1;
    h->weights = malloc(p * sizeof(float));
    h->buffers = malloc(b * sizeof(float));
    h->adam_m = with_adam ? malloc(p * sizeof(float)) : NULL;
    h->adam_v = with_adam ? malloc(p * sizeof(float)) : NULL;
    h->batches_tracked = calloc((size_t)m->param_count + 1, sizeof(int64_t));
    if (!h->weights || !h->buffers || !h->batches_tracked || (with_adam && (!h->adam_m || !h->adam_v))) {
        host_model_free(h);
        return gan_error(GAN_ERR_NOMEM, "out of host memory for %s's state", m->name);
    }
    gan_status status = GAN_OK;
    GAN_CHECK(be->download(be, h->weights, weights_only ? weights_only : m->weights,
                           m->trainable_count * sizeof(float)));
    if (weights_only)
        return GAN_OK;
    if (m->buffer_count)
        GAN_CHECK(be->download(be, h->buffers, m->buffers, m->buffer_count * sizeof(float)));
    if (with_adam) {
        GAN_CHECK(be->download(be, h->adam_m, m->adam_m, m->trainable_count * sizeof(float)));
        GAN_CHECK(be->download(be, h->adam_v, m->adam_v, m->trainable_count * sizeof(float)));
    }
    for (int i = 0; i < m->param_count; i++)
        h->batches_tracked[i] = gan_model_bn_batches_tracked(m, m->params[i].module_index);
    return GAN_OK;
cleanup:
    host_model_free(h);
    return status;
}

static bool is_running_var(const gan_param *p) { return strstr(p->name, ".running_var") != NULL; }

static const float *host_value(const gan_model *m, const host_model *h, const gan_param *p)
{
    return p->trainable ? h->weights + (p->value - m->weights) : h->buffers + (p->value - m->buffers);
}

/* Tensor entries for one model: every parameter and buffer under `prefix` (+ num_batches_tracked
 * after each BN's running_var), then the Adam moments when `h->adam_m` is set; with
 * `weights_only`, the trainable parameters alone. Names are written into `names` (one 96-byte slot
 * per entry). */
static int model_entries(const gan_model *m, const host_model *h, const char *prefix, bool weights_only,
                         gan_st_tensor *out, char (*names)[96])
{
    int n = 0;
    for (int i = 0; i < m->param_count; i++) {
        const gan_param *p = &m->params[i];
        if (weights_only && !p->trainable)
            continue;
        snprintf(names[n], 96, "%s.%s", prefix, p->name);
        out[n] = (gan_st_tensor){.name = names[n], .dtype = GAN_ST_F32, .ndim = p->ndim,
                                 .data = host_value(m, h, p)};
        for (int d = 0; d < p->ndim; d++)
            out[n].shape[d] = p->dims[d];
        n++;
        if (is_running_var(p) && !weights_only) {
            snprintf(names[n], 96, "%s.%d.num_batches_tracked", prefix, p->module_index);
            out[n] = (gan_st_tensor){.name = names[n], .dtype = GAN_ST_I64, .ndim = 0,
                                     .data = &h->batches_tracked[i]};
            n++;
        }
    }
    if (h->adam_m) {
        snprintf(names[n], 96, "%s.adam.m", prefix);
        out[n] = (gan_st_tensor){.name = names[n], .dtype = GAN_ST_F32, .ndim = 1,
                                 .shape = {(int64_t)m->trainable_count}, .data = h->adam_m};
        n++;
        snprintf(names[n], 96, "%s.adam.v", prefix);
        out[n] = (gan_st_tensor){.name = names[n], .dtype = GAN_ST_F32, .ndim = 1,
                                 .shape = {(int64_t)m->trainable_count}, .data = h->adam_v};
        n++;
    }
    return n;
}

static int max_entries(const gan_model *m) { return 2 * m->param_count + 2; }

static gan_status config_text(const gan_config *cfg, char **text)
{
    size_t size = 0;
    FILE *mem = open_memstream(text, &size);
    if (!mem)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = gan_config_write(cfg, mem);
    fclose(mem);
    return status;
}

/* Host copies of several models, with their tensor entries (names in `names`, 96 bytes each). */
typedef struct host_models {
    host_model *hosts;     /* [count] */
    gan_st_tensor *tensors;
    char (*names)[96];
    int count, tensor_count;
} host_models;

static void host_models_free(host_models *h)
{
    for (int i = 0; h->hosts && i < h->count; i++)
        host_model_free(&h->hosts[i]);
    free(h->hosts);
    free(h->tensors);
    free(h->names);
    memset(h, 0, sizeof *h);
}

/* Downloads every model (the Adam moments where asked) and lists its tensor entries. */
static gan_status host_models_download(const gan_checkpoint_model *models, int count, host_models *h)
{
    memset(h, 0, sizeof *h);
    int capacity = 0;
    for (int i = 0; i < count; i++)
        capacity += max_entries(models[i].model);
    h->hosts = calloc((size_t)count, sizeof *h->hosts);
    h->tensors = calloc((size_t)capacity, sizeof *h->tensors);
    h->names = calloc((size_t)capacity, sizeof *h->names);
    if (!h->hosts || !h->tensors || !h->names) {
        host_models_free(h);
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    }
    h->count = count;
    gan_status status = GAN_OK;
    for (int i = 0; i < count; i++) {
        GAN_CHECK(host_model_download(models[i].model, models[i].with_adam, models[i].weights_only, &h->hosts[i]));
        h->tensor_count += model_entries(models[i].model, &h->hosts[i], models[i].prefix,
                                         models[i].weights_only != NULL, h->tensors + h->tensor_count,
                                         h->names + h->tensor_count);
    }
    return GAN_OK;
cleanup:
    host_models_free(h);
    return status;
}

enum { MAX_COUNTERS = 32, COUNTER_TEXT = 32, MAX_TEXTS = 8 };

/* The version a checkpoint of these models is written as: 3 where one model is weights only (the
 * EMA generator), else 2, so a checkpoint without one stays readable by gan before version 3. */
static const char *version_for(const gan_checkpoint_model *models, int model_count)
{
    for (int i = 0; i < model_count; i++)
        if (models[i].weights_only)
            return GAN_CHECKPOINT_VERSION;
    return GAN_CHECKPOINT_VERSION_PLAIN;
}

gan_status gan_checkpoint_write(const char *path, const gan_config *cfg,
                                const gan_checkpoint_model *models, int model_count,
                                const gan_checkpoint_counter *counters, int counter_count,
                                const gan_checkpoint_text *texts, int text_count)
{
    if (counter_count > MAX_COUNTERS)
        return gan_error(GAN_ERR_ARG, "%s: %d counters, at most %d", path, counter_count, MAX_COUNTERS);
    if (text_count < 0 || text_count > MAX_TEXTS)
        return gan_error(GAN_ERR_ARG, "%s: %d texts, at most %d", path, text_count, MAX_TEXTS);
    host_models h;
    GAN_TRY(host_models_download(models, model_count, &h));
    char *config = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(config_text(cfg, &config));
    char values[MAX_COUNTERS][COUNTER_TEXT];
    gan_st_metadata meta[MAX_COUNTERS + MAX_TEXTS + 4] = {
        {"format", GAN_CHECKPOINT_FORMAT}, {"version", (char *)version_for(models, model_count)},
        {"name", (char *)cfg->name}, {"config", config},
    };
    for (int i = 0; i < counter_count; i++) {
        if (counters[i].is_signed)
            snprintf(values[i], COUNTER_TEXT, "%" PRId64, counters[i].value.i64);
        else
            snprintf(values[i], COUNTER_TEXT, "%" PRIu64, counters[i].value.u64);
        meta[4 + i] = (gan_st_metadata){(char *)counters[i].key, values[i]};
    }
    for (int i = 0; i < text_count; i++)
        meta[4 + counter_count + i] = (gan_st_metadata){(char *)texts[i].key, (char *)texts[i].value};
    GAN_CHECK(gan_safetensors_write_with_crc(path, h.tensors, h.tensor_count, meta,
                                             4 + counter_count + text_count, GAN_CHECKPOINT_CRC_KEY));
cleanup:
    free(config);
    host_models_free(&h);
    return status;
}

const char *gan_checkpoint_text_of(const gan_checkpoint *ck, const char *key)
{
    return gan_safetensors_metadata(&ck->st, key);
}

gan_status gan_checkpoint_open(const char *path, gan_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    gan_safetensors *st = &ck->st;
    GAN_TRY(gan_safetensors_open(path, st));
    const char *format = gan_safetensors_metadata(st, "format");
    const char *version = gan_safetensors_metadata(st, "version");
    gan_status status = GAN_OK;
    bool has_crc = false;
    if (!format || strcmp(format, GAN_CHECKPOINT_FORMAT)) {
        status = gan_error(GAN_ERR_FORMAT, "%s: not a gan checkpoint (metadata format is '%s'; an "
                                           "exported generator is not a checkpoint)",
                           path, format ? format : "missing");
    } else if (!version || (strcmp(version, "1") && strcmp(version, "2") && strcmp(version, GAN_CHECKPOINT_VERSION))) {
        status = gan_error(GAN_ERR_FORMAT, "%s: checkpoint version '%s'; this gan reads versions 1 to %s",
                           path, version ? version : "missing", GAN_CHECKPOINT_VERSION);
    } else {
        ck->version = atoi(version);
        status = gan_safetensors_check_crc(st, GAN_CHECKPOINT_CRC_KEY, &has_crc);
        if (status == GAN_OK && ck->version >= 2 && !has_crc)
            status = gan_error(GAN_ERR_FORMAT, "%s: a version %d checkpoint without its checksum (metadata '%s'): "
                                               "the file is damaged",
                               path, ck->version, GAN_CHECKPOINT_CRC_KEY);
    }
    /* the message is written: only now may the metadata it quotes go */
    if (status != GAN_OK) {
        gan_safetensors_close(st);
        return status;
    }
    if (!has_crc)
        fprintf(stderr, "gan: warning: %s: a version %d checkpoint carries no checksum: its data cannot be "
                        "verified (checkpoints written now are version %s, or %s with an EMA generator)\n",
                path, ck->version, GAN_CHECKPOINT_VERSION_PLAIN, GAN_CHECKPOINT_VERSION);
    return GAN_OK;
}

void gan_checkpoint_close(gan_checkpoint *ck) { gan_safetensors_close(&ck->st); }

gan_status gan_checkpoint_config(const gan_checkpoint *ck, gan_config *cfg)
{
    const char *path = ck->st.path;
    const char *text = gan_safetensors_metadata(&ck->st, "config");
    const char *name = gan_safetensors_metadata(&ck->st, "name");
    if (!text)
        return gan_error(GAN_ERR_FORMAT, "%s: the checkpoint holds no config", path);
    gan_config_defaults(cfg);
    gan_status status = gan_config_load_string(cfg, text, path);
    if (status != GAN_OK)
        return gan_error_prefix(status, "%s: stored config: ", path);
    snprintf(cfg->name, sizeof cfg->name, "%s", name ? name : "checkpoint");
    return GAN_OK;
}

gan_status gan_checkpoint_read_config(const char *path, gan_config *cfg)
{
    gan_checkpoint ck;
    GAN_TRY(gan_checkpoint_open(path, &ck));
    gan_status status = gan_checkpoint_config(&ck, cfg);
    gan_checkpoint_close(&ck);
    return status;
}

gan_status gan_checkpoint_read_counters(const gan_checkpoint *ck, gan_checkpoint_counter *counters,
                                        int count)
{
    for (int i = 0; i < count; i++) {
        const char *v = gan_safetensors_metadata(&ck->st, counters[i].key);
        char *end = NULL;
        errno = 0;
        /* decimal digits only (a sign where the counter has one), within its type's range */
        bool digits = v && (isdigit((unsigned char)v[0]) || (counters[i].is_signed && v[0] == '-'));
        if (digits && counters[i].is_signed)
            counters[i].value.i64 = (int64_t)strtoll(v, &end, 10);
        else if (digits)
            counters[i].value.u64 = (uint64_t)strtoull(v, &end, 10);
        if (!digits || *end || errno == ERANGE)
            return gan_error(GAN_ERR_FORMAT, "%s: metadata '%s' is missing or not an integer in range",
                             ck->st.path, counters[i].key);
    }
    return GAN_OK;
}

/* The file's tensor named as `want`, which must have its dtype and shape. */
static gan_status find_tensor(const gan_safetensors *st, const gan_st_tensor *want,
                              const gan_st_tensor **out)
{
    const gan_st_tensor *got = gan_safetensors_find(st, want->name);
    bool same = got && got->dtype == want->dtype && got->ndim == want->ndim;
    for (int dim = 0; same && dim < got->ndim; dim++)
        same = got->shape[dim] == want->shape[dim];
    if (!same)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: checkpoint of another model: %s is %s (this config's model needs "
                         "%s with %d dims, first %lld)",
                         st->path, want->name, got ? "of another dtype or shape" : "missing",
                         gan_st_dtype_name(want->dtype), want->ndim,
                         (long long)(want->ndim ? want->shape[0] : 0));
    *out = got;
    return GAN_OK;
}

/* Checks every tensor the model expects against the file (name, dtype, shape) and copies it
 * into `h`; `expected` counts them so extra tensors can be refused. */
static gan_status read_model(const gan_safetensors *st, gan_model *m, const char *prefix, bool weights_only,
                             host_model *h, int *expected)
{
    int capacity = max_entries(m);
    gan_st_tensor *want = calloc((size_t)capacity, sizeof *want);
    char(*names)[96] = calloc((size_t)capacity, sizeof *names);
    if (!want || !names) {
        free(want);
        free(names);
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    }
    int n = model_entries(m, h, prefix, weights_only, want, names);
    *expected += n;
    gan_status status = GAN_OK;
    for (int i = 0; i < n; i++) {
        const gan_st_tensor *got = NULL;
        GAN_CHECK(find_tensor(st, &want[i], &got));
        memcpy((void *)want[i].data, got->data, got->nbytes);
    }
cleanup:
    free(want);
    free(names);
    return status;
}

static gan_status upload_model(gan_model *m, float *weights_only, const host_model *h)
{
    gan_backend *be = m->backend;
    GAN_TRY(be->upload(be, weights_only ? weights_only : m->weights, h->weights, m->trainable_count * sizeof(float)));
    if (weights_only)
        return GAN_OK;
    if (m->buffer_count)
        GAN_TRY(be->upload(be, m->buffers, h->buffers, m->buffer_count * sizeof(float)));
    if (h->adam_m) {
        GAN_TRY(be->upload(be, m->adam_m, h->adam_m, m->trainable_count * sizeof(float)));
        GAN_TRY(be->upload(be, m->adam_v, h->adam_v, m->trainable_count * sizeof(float)));
    }
    for (int i = 0; i < m->param_count; i++)
        if (is_running_var(&m->params[i]))
            GAN_TRY(gan_model_set_bn_batches_tracked(m, m->params[i].module_index, h->batches_tracked[i]));
    return GAN_OK;
}

/* Every model's tensors from the file into `h`, and no tensor the models do not have. */
static gan_status read_models(const gan_checkpoint *ck, const gan_checkpoint_model *models,
                              int model_count, host_models *h)
{
    int expected = 0;
    for (int i = 0; i < model_count; i++)
        GAN_TRY(read_model(&ck->st, models[i].model, models[i].prefix, models[i].weights_only != NULL, &h->hosts[i],
                           &expected));
    if (ck->st.tensor_count != expected)
        return gan_error(GAN_ERR_FORMAT, "%s: checkpoint of another model: %d tensors, this model has %d",
                         ck->st.path, ck->st.tensor_count, expected);
    return GAN_OK;
}

gan_status gan_checkpoint_load_models(const gan_checkpoint *ck, const gan_checkpoint_model *models,
                                      int model_count)
{
    /* Host buffers shaped like the models; read_model fills them from the file. */
    host_models h;
    GAN_TRY(host_models_download(models, model_count, &h));
    gan_status status = GAN_OK;
    GAN_CHECK(read_models(ck, models, model_count, &h));
    /* Everything checked: only now do the models change. */
    for (int i = 0; i < model_count; i++)
        GAN_CHECK(upload_model(models[i].model, models[i].weights_only, &h.hosts[i]));
cleanup:
    host_models_free(&h);
    return status;
}

gan_status gan_model_export_safetensors(gan_model *model, const char *prefix, const char *model_name,
                                        const char *path)
{
    gan_checkpoint_model entry = {prefix, model, false, NULL};
    host_models h;
    GAN_TRY(host_models_download(&entry, 1, &h));
    gan_st_metadata meta[] = {{"format", "pt"}, {"source", "gan export"}, {"model", (char *)model_name}};
    gan_status status = gan_safetensors_write_with_crc(path, h.tensors, h.tensor_count, meta, 3,
                                                       GAN_CHECKPOINT_CRC_KEY);
    host_models_free(&h);
    return status;
}
