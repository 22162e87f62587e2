/* Every layer, BCE and Adam against PyTorch 1.13 (fixtures by tools/make_fixtures.py).
 *
 * Each layer fixture holds the layer text in our grammar, the input shape and batch, the weights
 * before the pass ("before.<param>"), x, y, the upstream gradient dy (L = sum(y * dy)), dx,
 * "grad.<param>" and the running statistics after the pass ("after.<buffer>"). A one-layer model
 * is built from the fixture itself, the weights uploaded, and forward + backward compared.
 *
 * Tolerance for single layers: |ours - torch| <= 1e-5 + 1e-4 |torch|. Both are FP32; sums run
 * in different orders (im2col + OpenBLAS vs PyTorch's own kernels), a few ulps times sqrt(terms)
 * for at most 48-term sums here (~1e-6 relative); a wrong index, tap, sign or statistic gives
 * errors of the order of the values (> 1e-2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "parity_util.h"
#include "test_util.h"

static gan_backend *be;
static const double RTOL = 1e-4, ATOL = 1e-5;

static void layer_case(const char *name)
{
    gan_safetensors st;
    if (!parity_open(name, &st))
        return;
    const char *layers = gan_safetensors_metadata(&st, "layers");
    const char *input = gan_safetensors_metadata(&st, "input");
    gan_shape in = {0, 0, 0};
    CHECK_MSG(layers && input && sscanf(input, "%d,%d,%d", &in.c, &in.h, &in.w) == 3,
              "%s: metadata 'layers' or 'input' (c,h,w) missing", st.path);
    int batch = (int)parity_meta_long(&st, "batch", 0);
    bool training = parity_meta_long(&st, "training", 1) != 0;
    gan_pool pool;
    gan_model *m = NULL;
    if (layers)
        CHECK_OK(gan_model_create_allocated(name, layers, in, batch, be, &pool, &m));
    if (!m) {
        gan_safetensors_close(&st);
        return;
    }
    const char *const prefixes[] = {"before.", "grad.", "after."};
    parity_check_names(&st, m, prefixes, 3);

    size_t in_count = gan_shape_count(in) * (size_t)batch;
    size_t out_count = gan_shape_count(m->output_shape) * (size_t)batch;
    char key[128], label[192];
    /* Weights and buffers as PyTorch had them before the pass. */
    for (int i = 0; i < m->param_count; i++) {
        snprintf(key, sizeof key, "before.%s", m->params[i].name);
        const float *v = parity_tensor(&st, key, m->params[i].count);
        if (v)
            parity_upload_into(be, m->params[i].value, v, m->params[i].count);
    }
    /* Dropout: PyTorch's own mask (0 or 1/(1-p) per element), replayed. */
    float *mask = NULL;
    if (gan_safetensors_find(&st, "mask")) {
        const float *host_mask = parity_tensor(&st, "mask", in_count);
        mask = host_mask ? parity_upload(be, host_mask, in_count) : NULL;
        if (mask)
            CHECK_OK(gan_model_set_dropout_mask(m, 0, mask));
    }
    const float *x = parity_tensor(&st, "x", in_count), *y = parity_tensor(&st, "y", out_count);
    const float *dy = parity_tensor(&st, "dy", out_count), *dx = parity_tensor(&st, "dx", in_count);
    float *x_dev = x ? parity_upload(be, x, in_count) : NULL;
    float *dy_dev = dy ? parity_upload(be, dy, out_count) : NULL;
    if (x_dev && y) {
        CHECK_OK(gan_model_forward(m, x_dev, training));
        snprintf(label, sizeof label, "%s y", name);
        parity_check_close(be, label, gan_model_output(m), y, out_count, RTOL, ATOL);
        /* Running statistics: updated in training mode, untouched in eval mode. */
        for (int i = 0; i < m->param_count; i++) {
            gan_param *p = &m->params[i];
            if (p->trainable)
                continue;
            snprintf(key, sizeof key, "after.%s", p->name);
            const float *want = parity_tensor(&st, key, p->count);
            snprintf(label, sizeof label, "%s %s (%s mode)", name, key, training ? "training" : "eval");
            if (want)
                parity_check_close(be, label, p->value, want, p->count, RTOL, ATOL);
        }
        if (gan_model_bn_batches_tracked(m, 0) >= 0)
            CHECK_MSG(gan_model_bn_batches_tracked(m, 0) == (training ? 1 : 0),
                      "%s: num_batches_tracked %lld after one %s pass", name,
                      (long long)gan_model_bn_batches_tracked(m, 0), training ? "training" : "eval");
    }
    /* Backward after a training forward (the only kind the trainer runs). */
    if (training && x_dev && dy_dev && dx) {
        CHECK_OK(gan_model_backward(m, dy_dev, GAN_GRADS_OVERWRITE, true));
        snprintf(label, sizeof label, "%s dx", name);
        parity_check_close(be, label, m->grad_input, dx, in_count, RTOL, ATOL);
        for (int i = 0; i < m->param_count; i++) {
            gan_param *p = &m->params[i];
            if (!p->trainable)
                continue;
            snprintf(key, sizeof key, "grad.%s", p->name);
            const float *want = parity_tensor(&st, key, p->count);
            snprintf(label, sizeof label, "%s %s", name, key);
            if (want)
                parity_check_close(be, label, p->grad, want, p->count, RTOL, ATOL);
        }
    }
    be->free(be, x_dev);
    be->free(be, dy_dev);
    be->free(be, mask);
    gan_model_destroy(m);
    gan_pool_release(&pool);
    gan_safetensors_close(&st);
}

/* BCE from logits against BCEWithLogitsLoss (to float rounding), and against Sigmoid + BCELoss
 * where the sigmoid does not saturate (the fixture's logits are in [-4, 4]: BCELoss's log clamp
 * at -100 and the rounding of 1 - sigmoid stay far away). */
static void bce_case(void)
{
    gan_safetensors st;
    if (!parity_open("bce", &st))
        return;
    enum { N = 16 };
    const float *logits = parity_tensor(&st, "logits", N);
    float *logits_dev = logits ? parity_upload(be, logits, N) : NULL;
    float zeros[N + 2] = {0};
    float *out_dev = parity_upload(be, zeros, N + 2); /* [loss, prob_mean, dlogits[N]] */
    const char *keys[3] = {"1p0", "0p0", "0p9"};
    const float targets[3] = {1.0f, 0.0f, 0.9f};
    for (int t = 0; t < 3 && logits_dev && out_dev; t++) {
        CHECK_OK(be->bce_logits(be, N, logits_dev, targets[t], 1.0f, out_dev, out_dev + 1, out_dev + 2));
        char key[64];
        const char *kinds[2] = {"with_logits", "sigmoid_bce"};
        for (int k = 0; k < 2; k++) {
            /* the mean loss: log1p/exp in float, one rounding per term */
            snprintf(key, sizeof key, "loss_%s.%s", kinds[k], keys[t]);
            const float *want_loss = parity_tensor(&st, key, 1);
            if (want_loss)
                parity_check_close(be, key, out_dev, want_loss, 1, 1e-5, 1e-6);
            /* (sigmoid(x) - t) / N: a sigmoid's rounding, relative */
            snprintf(key, sizeof key, "grad_%s.%s", kinds[k], keys[t]);
            const float *want_grad = parity_tensor(&st, key, N);
            if (want_grad)
                parity_check_close(be, key, out_dev + 2, want_grad, N, 1e-4, 1e-7);
        }
        snprintf(key, sizeof key, "prob_mean.%s", keys[t]);
        const float *want_prob = parity_tensor(&st, key, 1);
        if (want_prob)
            parity_check_close(be, key, out_dev + 1, want_prob, 1, 1e-6, 1e-7);
    }
    be->free(be, logits_dev);
    be->free(be, out_dev);
    gan_safetensors_close(&st);
}

static double meta_double(const gan_safetensors *st, const char *key)
{
    const char *text = gan_safetensors_metadata(st, key);
    CHECK_MSG(text != NULL, "%s: metadata %s missing", st->path, key);
    return text ? atof(text) : 0.0;
}

/* Adam: five steps against torch.optim.Adam, the scalars computed as the trainer computes them
 * (gan/elementwise_math.h: in double, then rounded to float). */
static void adam_case(const char *name)
{
    gan_safetensors st;
    if (!parity_open(name, &st))
        return;
    double lr = meta_double(&st, "lr"), beta1 = meta_double(&st, "beta1");
    double beta2 = meta_double(&st, "beta2"), eps = meta_double(&st, "eps");
    int steps = (int)parity_meta_long(&st, "steps", 0);
    enum { N = 37 };
    const float *p0 = parity_tensor(&st, "param.0", N);
    float zeros[3 * N] = {0};
    float *param = p0 ? parity_upload(be, p0, N) : NULL, *grad = parity_upload(be, zeros, N);
    float *moments = parity_upload(be, zeros, 2 * N); /* [m[N], v[N]] */
    CHECK_MSG(steps >= 2, "%s: %d steps (bias correction needs several)", name, steps);
    for (int step = 1; step <= steps && param && grad && moments; step++) {
        char key[32], label[64];
        snprintf(key, sizeof key, "grad.%d", step);
        const float *g = parity_tensor(&st, key, N);
        const gan_adam_hyper hyper = {lr, beta1, beta2, eps};
        if (g) {
            parity_upload_into(be, grad, g, N);
            CHECK_OK(be->adam_step(be, N, param, grad, moments, moments + N, hyper, gan_count_of((uint64_t)step)));
        }
        snprintf(key, sizeof key, "param.%d", step);
        const float *want = parity_tensor(&st, key, N);
        snprintf(label, sizeof label, "%s step %d", name, step);
        /* element for element the same float operations as PyTorch's: an ulp or two */
        if (want)
            parity_check_close(be, label, param, want, N, 1e-6, 1e-7);
    }
    be->free(be, param);
    be->free(be, grad);
    be->free(be, moments);
    gan_safetensors_close(&st);
}

int main(void)
{
    bool skip;
    be = parity_backend(&skip);
    if (skip)
        return TEST_SKIP_EXIT_CODE;
    if (!be)
        return test_finish();
    const char *layers[] = {
        /* conv: k 3/4, stride 1/2, pad 0/1, with and without bias, batch 3, non-square */
        "conv_k3_s1_p1_bias", "conv_k4_s2_p1", "conv_k3_s2_p0", "conv_k4_s1_p0", "conv_k4_s2_p0_bias",
        /* convt, weights [C_in, C_out, k, k] */
        "convt_k4_s2_p1", "convt_k4_s1_p0_bias", "convt_k3_s2_p0", "convt_k3_s1_p1_bias", "convt_k4_s2_p1_bias",
        "linear", "linear_bias",
        /* BN 2-d and 1-d in training mode (running stats after the pass); 2-d in eval mode */
        "bn2d_train", "bn2d_eval", "bn1d_train",
        "relu", "lrelu", "tanh", "sigmoid", "dropout",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        layer_case(layers[i]);
    bce_case();
    adam_case("adam_dcgan");
    adam_case("adam_default");
    be->destroy(be);
    return test_finish();
}
