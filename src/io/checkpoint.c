/* Checkpoints and generator exports as safetensors (see gan/checkpoint.h for the layout). */
#include "gan/checkpoint.h"

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

static gan_status host_model_download(gan_model *m, bool with_adam, host_model *h)
{
    gan_backend *be = m->backend;
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
    gan_status status = be->download(be, h->weights, m->weights, m->trainable_count * sizeof(float));
    if (status == GAN_OK && m->buffer_count)
        status = be->download(be, h->buffers, m->buffers, m->buffer_count * sizeof(float));
    if (status == GAN_OK && with_adam)
        status = be->download(be, h->adam_m, m->adam_m, m->trainable_count * sizeof(float));
    if (status == GAN_OK && with_adam)
        status = be->download(be, h->adam_v, m->adam_v, m->trainable_count * sizeof(float));
    for (int i = 0; i < m->param_count; i++)
        h->batches_tracked[i] = gan_model_bn_batches_tracked(m, m->params[i].module_index);
    if (status != GAN_OK)
        host_model_free(h);
    return status;
}

static bool is_running_var(const gan_param *p) { return strstr(p->name, ".running_var") != NULL; }

static const float *host_value(const gan_model *m, const host_model *h, const gan_param *p)
{
    return p->trainable ? h->weights + (p->value - m->weights) : h->buffers + (p->value - m->buffers);
}

/* Tensor entries for one model: every parameter and buffer under `prefix` (+ num_batches_tracked
 * after each BN's running_var), then the Adam moments when `h->adam_m` is set. Names are
 * written into `names` (one 96-byte slot per entry). */
static int model_entries(const gan_model *m, const host_model *h, const char *prefix,
                         gan_st_tensor *out, char (*names)[96])
{
    int n = 0;
    for (int i = 0; i < m->param_count; i++) {
        const gan_param *p = &m->params[i];
        snprintf(names[n], 96, "%s.%s", prefix, p->name);
        out[n] = (gan_st_tensor){.name = names[n], .dtype = GAN_ST_F32, .ndim = p->ndim,
                                 .data = host_value(m, h, p)};
        for (int d = 0; d < p->ndim; d++)
            out[n].shape[d] = p->dims[d];
        n++;
        if (is_running_var(p)) {
            snprintf(names[n], 96, "%s.%d.num_batches_tracked", prefix, p->module_index);
            out[n] = (gan_st_tensor){.name = names[n], .dtype = GAN_ST_I64, .ndim = 0,
                                     .data = &h->batches_tracked[i]};
            n++;
        }
    }
    if (h->adam_m) {
        snprintf(names[n], 96, "%s.adam.m", prefix);
        out[n++] = (gan_st_tensor){.name = names[n - 1], .dtype = GAN_ST_F32, .ndim = 1,
                                   .shape = {(int64_t)m->trainable_count}, .data = h->adam_m};
        snprintf(names[n], 96, "%s.adam.v", prefix);
        out[n++] = (gan_st_tensor){.name = names[n - 1], .dtype = GAN_ST_F32, .ndim = 1,
                                   .shape = {(int64_t)m->trainable_count}, .data = h->adam_v};
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

enum { META_VALUE = 32 };

gan_status gan_checkpoint_save(gan_trainer *t, gan_data_source *data, int64_t epoch, const char *path)
{
    host_model g, d;
    GAN_TRY(host_model_download(t->g, true, &g));
    gan_status status = host_model_download(t->d, true, &d);
    if (status != GAN_OK) {
        host_model_free(&g);
        return status;
    }
    int capacity = max_entries(t->g) + max_entries(t->d);
    gan_st_tensor *tensors = calloc((size_t)capacity, sizeof *tensors);
    char(*names)[96] = calloc((size_t)capacity, sizeof *names);
    char *config = NULL;
    if (!tensors || !names)
        status = gan_error(GAN_ERR_NOMEM, "out of memory");
    if (status == GAN_OK)
        status = config_text(&t->cfg, &config);
    gan_data_position pos = {0, 0, 0};
    if (status == GAN_OK && data)
        status = data->get_position(data, &pos);
    if (status == GAN_OK) {
        int n = model_entries(t->g, &g, "G", tensors, names);
        n += model_entries(t->d, &d, "D", tensors + n, names + n);
        char values[12][META_VALUE];
        snprintf(values[0], META_VALUE, "%" PRId64, t->iteration);
        snprintf(values[1], META_VALUE, "%" PRId64, epoch);
        snprintf(values[2], META_VALUE, "%" PRId64, t->adam_step_g);
        snprintf(values[3], META_VALUE, "%" PRId64, t->adam_step_d);
        snprintf(values[4], META_VALUE, "%" PRIu64, t->noise_offset);
        snprintf(values[5], META_VALUE, "%" PRIu64, t->g->dropout_offset);
        snprintf(values[6], META_VALUE, "%" PRIu64, t->d->dropout_offset);
        snprintf(values[7], META_VALUE, "%" PRIu64, pos.seed);
        snprintf(values[8], META_VALUE, "%" PRId64, pos.epoch);
        snprintf(values[9], META_VALUE, "%" PRId64, pos.index);
        gan_st_metadata meta[] = {
            {"format", GAN_CHECKPOINT_FORMAT}, {"version", GAN_CHECKPOINT_VERSION},
            {"name", t->cfg.name}, {"config", config},
            {"iteration", values[0]}, {"epoch", values[1]},
            {"adam_step_g", values[2]}, {"adam_step_d", values[3]},
            {"noise_offset", values[4]}, {"dropout_offset_g", values[5]},
            {"dropout_offset_d", values[6]}, {"data_seed", values[7]},
            {"data_epoch", values[8]}, {"data_index", values[9]},
        };
        status = gan_safetensors_write(path, tensors, n, meta, (int)(sizeof meta / sizeof meta[0]));
    }
    free(config);
    free(tensors);
    free(names);
    host_model_free(&g);
    host_model_free(&d);
    return status;
}

static gan_status open_checkpoint(const char *path, gan_safetensors *st)
{
    GAN_TRY(gan_safetensors_open(path, st));
    const char *format = gan_safetensors_metadata(st, "format");
    const char *version = gan_safetensors_metadata(st, "version");
    gan_status status = GAN_OK;
    if (!format || strcmp(format, GAN_CHECKPOINT_FORMAT))
        status = gan_error(GAN_ERR_FORMAT, "%s: not a gan checkpoint (metadata format is '%s'; an "
                                           "exported generator is not a checkpoint)",
                           path, format ? format : "missing");
    else if (!version || strcmp(version, GAN_CHECKPOINT_VERSION))
        status = gan_error(GAN_ERR_FORMAT, "%s: checkpoint version '%s'; this gan reads version %s",
                           path, version ? version : "missing", GAN_CHECKPOINT_VERSION);
    /* the message is written: only now may the metadata it quotes go */
    if (status != GAN_OK)
        gan_safetensors_close(st);
    return status;
}

gan_status gan_checkpoint_read_config(const char *path, gan_config *cfg)
{
    gan_safetensors st;
    GAN_TRY(open_checkpoint(path, &st));
    const char *text = gan_safetensors_metadata(&st, "config");
    const char *name = gan_safetensors_metadata(&st, "name");
    gan_status status = GAN_OK;
    if (!text)
        status = gan_error(GAN_ERR_FORMAT, "%s: the checkpoint holds no config", path);
    if (status == GAN_OK) {
        gan_config_defaults(cfg);
        status = gan_config_load_string(cfg, text, path);
        if (status != GAN_OK)
            status = gan_error_prefix(status, "%s: stored config: ", path);
        snprintf(cfg->name, sizeof cfg->name, "%s", name ? name : "checkpoint");
    }
    gan_safetensors_close(&st);
    return status;
}

static gan_status metadata_i64(const gan_safetensors *st, const char *key, int64_t *out)
{
    const char *v = gan_safetensors_metadata(st, key);
    char *end = NULL;
    long long value = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end)
        return gan_error(GAN_ERR_FORMAT, "%s: metadata '%s' is missing or not an integer", st->path, key);
    *out = (int64_t)value;
    return GAN_OK;
}

static gan_status metadata_u64(const gan_safetensors *st, const char *key, uint64_t *out)
{
    const char *v = gan_safetensors_metadata(st, key);
    char *end = NULL;
    unsigned long long value = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end)
        return gan_error(GAN_ERR_FORMAT, "%s: metadata '%s' is missing or not an integer", st->path, key);
    *out = (uint64_t)value;
    return GAN_OK;
}

/* Checks every tensor the model expects against the file (name, dtype, shape) and copies it
 * into `h`; `expected` counts them so extra tensors can be refused. */
static gan_status read_model(const gan_safetensors *st, gan_model *m, const char *prefix,
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
    int n = model_entries(m, h, prefix, want, names);
    gan_status status = GAN_OK;
    for (int i = 0; i < n && status == GAN_OK; i++) {
        const gan_st_tensor *got = gan_safetensors_find(st, want[i].name);
        bool same = got && got->dtype == want[i].dtype && got->ndim == want[i].ndim;
        for (int dim = 0; same && dim < got->ndim; dim++)
            same = got->shape[dim] == want[i].shape[dim];
        if (!same) {
            status = gan_error(GAN_ERR_FORMAT,
                               "%s: checkpoint of another model: %s is %s (this config's model needs "
                               "%s with %d dims, first %lld)",
                               st->path, want[i].name, got ? "of another dtype or shape" : "missing",
                               gan_st_dtype_name(want[i].dtype), want[i].ndim,
                               (long long)(want[i].ndim ? want[i].shape[0] : 0));
            break;
        }
        memcpy((void *)want[i].data, got->data, got->nbytes);
    }
    *expected += n;
    free(want);
    free(names);
    return status;
}

static gan_status upload_model(gan_model *m, const host_model *h)
{
    gan_backend *be = m->backend;
    GAN_TRY(be->upload(be, m->weights, h->weights, m->trainable_count * sizeof(float)));
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

gan_status gan_checkpoint_load(gan_trainer *t, gan_data_source *data, const char *path, int64_t *epoch)
{
    gan_safetensors st;
    GAN_TRY(open_checkpoint(path, &st));
    host_model g, d;
    /* Host buffers shaped like the trainer's models; read_model fills them from the file. */
    gan_status status = host_model_download(t->g, true, &g);
    if (status != GAN_OK) {
        gan_safetensors_close(&st);
        return status;
    }
    status = host_model_download(t->d, true, &d);
    if (status != GAN_OK) {
        host_model_free(&g);
        gan_safetensors_close(&st);
        return status;
    }
    int expected = 0;
    status = read_model(&st, t->g, "G", &g, &expected);
    if (status == GAN_OK)
        status = read_model(&st, t->d, "D", &d, &expected);
    if (status == GAN_OK && st.tensor_count != expected)
        status = gan_error(GAN_ERR_FORMAT, "%s: checkpoint of another model: %d tensors, this model has %d",
                           path, st.tensor_count, expected);
    int64_t iteration = 0, adam_g = 0, adam_d = 0, stored_epoch = 0;
    uint64_t noise_offset = 0, drop_g = 0, drop_d = 0;
    gan_data_position pos = {0, 0, 0};
    if (status == GAN_OK)
        status = metadata_i64(&st, "iteration", &iteration);
    if (status == GAN_OK)
        status = metadata_i64(&st, "epoch", &stored_epoch);
    if (status == GAN_OK)
        status = metadata_i64(&st, "adam_step_g", &adam_g);
    if (status == GAN_OK)
        status = metadata_i64(&st, "adam_step_d", &adam_d);
    if (status == GAN_OK)
        status = metadata_u64(&st, "noise_offset", &noise_offset);
    if (status == GAN_OK)
        status = metadata_u64(&st, "dropout_offset_g", &drop_g);
    if (status == GAN_OK)
        status = metadata_u64(&st, "dropout_offset_d", &drop_d);
    if (status == GAN_OK)
        status = metadata_u64(&st, "data_seed", &pos.seed);
    if (status == GAN_OK)
        status = metadata_i64(&st, "data_epoch", &pos.epoch);
    if (status == GAN_OK)
        status = metadata_i64(&st, "data_index", &pos.index);
    /* Everything checked: only now does the trainer change. */
    if (status == GAN_OK)
        status = upload_model(t->g, &g);
    if (status == GAN_OK)
        status = upload_model(t->d, &d);
    if (status == GAN_OK && data)
        status = data->set_position(data, &pos);
    if (status == GAN_OK) {
        t->iteration = iteration;
        t->adam_step_g = adam_g;
        t->adam_step_d = adam_d;
        t->noise_offset = noise_offset;
        t->g->dropout_offset = drop_g;
        t->d->dropout_offset = drop_d;
        if (epoch)
            *epoch = stored_epoch;
    }
    host_model_free(&g);
    host_model_free(&d);
    gan_safetensors_close(&st);
    return status;
}

gan_status gan_export_generator_safetensors(gan_trainer *t, const char *prefix, const char *path)
{
    host_model g;
    GAN_TRY(host_model_download(t->g, false, &g));
    int capacity = max_entries(t->g);
    gan_st_tensor *tensors = calloc((size_t)capacity, sizeof *tensors);
    char(*names)[96] = calloc((size_t)capacity, sizeof *names);
    gan_status status = GAN_OK;
    if (!tensors || !names)
        status = gan_error(GAN_ERR_NOMEM, "out of memory");
    if (status == GAN_OK) {
        int n = model_entries(t->g, &g, prefix, tensors, names);
        gan_st_metadata meta[] = {{"format", "pt"}, {"source", "gan export"}, {"model", t->cfg.name}};
        status = gan_safetensors_write(path, tensors, n, meta, 3);
    }
    free(tensors);
    free(names);
    host_model_free(&g);
    return status;
}
