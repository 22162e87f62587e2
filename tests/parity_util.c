#include "parity_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend_select.h"
#include "test_util.h"

gan_backend *parity_backend(bool *skip)
{
    *skip = false;
    const char *device = getenv("GAN_PARITY_DEVICE");
    if (!device || !*device)
        device = "cpu";
    gan_backend *be = NULL;
    gan_status status = gan_backend_open(device, NULL, &be, NULL, 0);
    if (status == GAN_ERR_UNSUPPORTED && strcmp(device, "cpu") != 0) {
        printf("skipped: GAN_PARITY_DEVICE=%s: %s\n", device, gan_error_message());
        *skip = true;
        return NULL;
    }
    CHECK_OK(status);
    if (be)
        printf("parity on the %s backend\n", be->name);
    return status == GAN_OK ? be : NULL;
}

bool parity_open(const char *name, gan_safetensors *st)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s.safetensors", test_source_dir(), name);
    gan_status status = gan_safetensors_open(path, st);
    CHECK_OK(status);
    return status == GAN_OK;
}

const float *parity_tensor(const gan_safetensors *st, const char *name, size_t count)
{
    const gan_st_tensor *t = gan_safetensors_find(st, name);
    CHECK_MSG(t != NULL, "%s: no tensor %s", st->path, name);
    if (!t)
        return NULL;
    CHECK_MSG(t->dtype == GAN_ST_F32 && t->count == count, "%s: %s has %zu values (dtype %s), expected %zu F32",
              st->path, name, t->count, gan_st_dtype_name(t->dtype), count);
    return t->dtype == GAN_ST_F32 && t->count == count ? t->data : NULL;
}

long parity_meta_long(const gan_safetensors *st, const char *key, long fallback)
{
    const char *text = gan_safetensors_metadata(st, key);
    char *end = NULL;
    long value = text ? strtol(text, &end, 10) : 0;
    bool ok = text && end != text && *end == '\0';
    CHECK_MSG(ok, "%s: metadata %s is %s%s%s, expected an integer", st->path, key, text ? "'" : "missing",
              text ? text : "", text ? "'" : "");
    return ok ? value : fallback;
}

float *parity_upload(gan_backend *be, const float *host, size_t count)
{
    void *dst = NULL;
    gan_status status = be->alloc(be, (count ? count : 1) * sizeof(float), &dst);
    CHECK_OK(status);
    if (status != GAN_OK)
        return NULL;
    if (count)
        CHECK_OK(be->upload(be, dst, host, count * sizeof(float)));
    return dst;
}

void parity_upload_into(gan_backend *be, float *dst, const float *host, size_t count)
{
    CHECK_OK(be->upload(be, dst, host, count * sizeof(float)));
}

float *parity_download(gan_backend *be, const float *src, size_t count)
{
    float *host = calloc(count ? count : 1, sizeof(float));
    CHECK_OK(be->download(be, host, src, count * sizeof(float)));
    return host;
}

void parity_check_close(gan_backend *be, const char *label, const float *got, const float *want, size_t n,
                        double rtol, double atol)
{
    float *host = parity_download(be, got, n);
    CHECK_ALLCLOSE(label, host, want, n, rtol, atol);
    free(host);
}

void parity_check_names(const gan_safetensors *st, gan_model *m, const char *const *prefixes, int prefix_count)
{
    for (int i = 0; i < st->tensor_count; i++)
        for (int k = 0; k < prefix_count; k++) {
            size_t len = strlen(prefixes[k]);
            const char *name = st->tensors[i].name;
            if (!strncmp(name, prefixes[k], len))
                CHECK_MSG(gan_model_find_param(m, name + len) != NULL,
                          "%s: fixture tensor %s has no parameter '%s' in the model built from its "
                          "layers", st->path, name, name + len);
        }
}

float parity_hash_uniform(uint64_t i, uint64_t seed)
{
    uint64_t x = (i * 2654435761u + seed * 40503u + 1u) & 0xFFFFFFFFu;
    x ^= x >> 15;
    x = (x * 0x2C1B3C6Du) & 0xFFFFFFFFu;
    x ^= x >> 12;
    x = (x * 0x297A2D39u) & 0xFFFFFFFFu;
    x ^= x >> 15;
    return (float)((double)(x >> 8) / 8388608.0 - 1.0);
}

void parity_hash_weights(gan_model *m)
{
    for (int i = 0; i < m->param_count; i++) {
        gan_param *p = &m->params[i];
        if (!p->trainable)
            continue;
        float *host = calloc(p->count, sizeof(float)); /* biases stay 0 */
        bool bn = p->ndim == 1;
        /* As numpy computes `1.0 + 0.02 * 1.7320508 * u` for a float32 array u: the Python
         * floats become float32 and the product and sum are float32 operations. */
        const float scale = (float)(0.02 * 1.7320508);
        for (size_t k = 0; host && !strstr(p->name, ".bias") && k < p->count; k++) {
            float w = scale * parity_hash_uniform(k, (uint64_t)p->module_index);
            host[k] = bn ? 1.0f + w : w;
        }
        CHECK_MSG(host != NULL, "out of memory");
        if (host)
            parity_upload_into(m->backend, p->value, host, p->count);
        free(host);
    }
}
