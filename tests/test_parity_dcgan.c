/* The dcgan_fmnist32 generator and discriminator, forward and backward on a batch of 4 in
 * training mode, against PyTorch 1.13 (tests/fixtures/dcgan_fmnist32_{G,D}.safetensors; the
 * layer text, input shape and batch come from the fixture's metadata). L = sum(output * R) for a
 * fixed random R ("dy"); D's output is compared after its final sigmoid.
 *
 * Weights come from hash_uniform, computed identically here and in tools/make_fixtures.py
 * (uniform with the DCGAN init's std 0.02; BN weight 1 + the same, biases 0), so the fixture
 * needs only a sample of them ("weight.<name>", every wstride-th element), which must match ours
 * exactly before anything else is compared. Gradients of large weights are stored every k-th
 * element with k odd, so every kernel tap and channel is among those compared.
 *
 * Tolerance |ours - torch| <= 1e-4 |torch| + 1e-4 max|torch| for outputs and gradients: four
 * layers of FP32 sums over up to 4096 terms each, in other orders (~1e-6 relative per layer),
 * and each BN's division by a batch standard deviation taken over few values (64 per channel at
 * G's first BN: 4 samples x 4x4) amplifying those differences; a wrong weight layout, tap or BN
 * statistic gives errors of the order of the values themselves. Running statistics after the pass: 1e-5 relative, 1e-6 absolute
 * (one momentum update of batch means and variances). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "parity_util.h"
#include "test_util.h"

static double max_abs(const float *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Every stride-th element of backend memory src[count], into host memory (malloc'ed). */
static float *download_strided(gan_backend *be, const float *src, size_t count, size_t stride, size_t *stored)
{
    float *all = parity_download(be, src, count);
    *stored = (count + stride - 1) / stride;
    for (size_t k = 0; k < *stored; k++)
        all[k] = all[k * stride];
    return all;
}

/* The stride named by metadata `kind`.<param>; 0 after a failed check. */
static size_t stride_of(const gan_safetensors *st, const char *kind, const gan_param *p)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", kind, p->name);
    long stride = parity_meta_long(st, key, 0);
    CHECK_MSG(stride >= 1, "%s: %s = %ld", st->path, key, stride);
    return stride >= 1 ? (size_t)stride : 0;
}

static void network_case(const char *name, gan_backend *be)
{
    gan_safetensors st;
    if (!parity_open(name, &st))
        return;
    const char *layers = gan_safetensors_metadata(&st, "layers");
    const char *input = gan_safetensors_metadata(&st, "input");
    const char *weights = gan_safetensors_metadata(&st, "weights");
    gan_shape in = {0, 0, 0};
    int batch = (int)parity_meta_long(&st, "batch", 0);
    CHECK_MSG(layers && input && sscanf(input, "%d,%d,%d", &in.c, &in.h, &in.w) == 3,
              "%s: metadata 'layers' or 'input' (c,h,w) missing", st.path);
    CHECK_MSG(weights && !strcmp(weights, "hash_uniform"), "%s: weights are '%s', this test makes "
              "hash_uniform", st.path, weights ? weights : "(missing)");
    gan_pool pool;
    gan_model *m = NULL;
    if (layers)
        CHECK_OK(gan_model_create_allocated(name, layers, in, batch, be, &pool, &m));
    if (!m) {
        gan_safetensors_close(&st);
        return;
    }
    const char *const prefixes[] = {"grad.", "weight.", "after."};
    parity_check_names(&st, m, prefixes, 3);
    parity_hash_weights(m);
    char label[160], key[128];
    /* The starting weights are PyTorch's, bit for bit. */
    for (int i = 0; i < m->param_count; i++) {
        gan_param *p = &m->params[i];
        size_t stride = p->trainable ? stride_of(&st, "wstride", p) : 0, stored;
        if (!stride)
            continue;
        float *ours = download_strided(be, p->value, p->count, stride, &stored);
        snprintf(key, sizeof key, "weight.%s", p->name);
        const float *want = parity_tensor(&st, key, stored);
        snprintf(label, sizeof label, "%s starting %s (hash_uniform)", name, key);
        if (want)
            CHECK_ALLCLOSE(label, ours, want, stored, 0.0, 0.0);
        free(ours);
    }

    size_t in_count = gan_shape_count(in) * (size_t)batch;
    size_t out_count = gan_shape_count(m->output_shape) * (size_t)batch;
    const float *x = parity_tensor(&st, "x", in_count), *y = parity_tensor(&st, "y", out_count);
    const float *dy = parity_tensor(&st, "dy", out_count), *dx = parity_tensor(&st, "dx", in_count);
    float *x_dev = x ? parity_upload(be, x, in_count) : NULL;
    float *dy_dev = dy ? parity_upload(be, dy, out_count) : NULL;
    if (x_dev && y && dy_dev && dx) {
        CHECK_OK(gan_model_forward(m, x_dev, true));
        snprintf(label, sizeof label, "%s output", name);
        parity_check_close(be, label, gan_model_output(m), y, out_count, 1e-4, 1e-4 * max_abs(y, out_count));
        CHECK_OK(gan_model_backward(m, dy_dev, GAN_GRADS_OVERWRITE, true));
        snprintf(label, sizeof label, "%s dL/dinput", name);
        parity_check_close(be, label, m->grad_input, dx, in_count, 1e-4, 1e-4 * max_abs(dx, in_count));
        int compared = 0;
        for (int i = 0; i < m->param_count; i++) {
            gan_param *p = &m->params[i];
            if (p->trainable) {
                size_t stride = stride_of(&st, "stride", p), stored;
                if (!stride)
                    continue;
                float *ours = download_strided(be, p->grad, p->count, stride, &stored);
                snprintf(key, sizeof key, "grad.%s", p->name);
                const float *want = parity_tensor(&st, key, stored);
                snprintf(label, sizeof label, "%s %s", name, key);
                if (want)
                    CHECK_ALLCLOSE(label, ours, want, stored, 1e-4, 1e-4 * max_abs(want, stored));
                free(ours);
            } else {
                snprintf(key, sizeof key, "after.%s", p->name);
                const float *want = parity_tensor(&st, key, p->count);
                snprintf(label, sizeof label, "%s %s", name, key);
                if (want)
                    parity_check_close(be, label, p->value, want, p->count, 1e-5, 1e-6);
            }
            compared++;
        }
        CHECK_MSG(compared == m->param_count, "%s: compared %d of %d tensors", name, compared, m->param_count);
    }
    be->free(be, x_dev);
    be->free(be, dy_dev);
    gan_model_destroy(m);
    gan_pool_release(&pool);
    gan_safetensors_close(&st);
}

int main(void)
{
    bool skip;
    gan_backend *be = parity_backend(&skip);
    if (skip)
        return TEST_SKIP_EXIT_CODE;
    if (!be)
        return test_finish();
    network_case("dcgan_fmnist32_G", be);
    network_case("dcgan_fmnist32_D", be);
    be->destroy(be);
    return test_finish();
}
