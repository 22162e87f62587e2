/* The CPU backend's fused conv_forward_act and conv_backward_data_act against the two ops they
 * replace (conv_forward / conv_backward_data, then activation_forward), compared as raw bits: on
 * DCGAN's kernel 4 stride 2 padding 1, a 3x3 stride 1 padding 1, a whole-input kernel (one GEMM;
 * its backward-data is G's first layer, a transposed convolution) and a 1x1 stride 1 (x its own
 * col for one image), with 1, 2 and 3 threads, batches of 1, 3 and 5 images and workspace budgets
 * of one image per GEMM and the default (several images per GEMM where the outputs are small),
 * for ReLU, LeakyReLU 0.2 and 0, tanh and sigmoid. An unknown activation is refused. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h" /* the thread count and the conv workspace budget */
#include "gan/backend.h"
#include "test_util.h"

static gan_backend *be;

typedef struct activation_case {
    const char *name;
    gan_activation act;
    float slope;
} activation_case;

static const activation_case activations[] = {
    {"relu", GAN_ACT_RELU, 0.0f},     {"lrelu 0.2", GAN_ACT_LRELU, 0.2f}, {"lrelu 0", GAN_ACT_LRELU, 0.0f},
    {"tanh", GAN_ACT_TANH, 0.0f},     {"sigmoid", GAN_ACT_SIGMOID, 0.0f},
};
enum { ACTIVATIONS = sizeof activations / sizeof activations[0] };

/* What the runs covered, checked at the end: the chunked paths and -0 outputs did occur. */
static int runs_multi_image, runs_one_image, negative_zero_outputs;

static gan_conv_geom geom(int n, int ci, int hi, int wi, int co, int k, int s, int p)
{
    gan_conv_geom g = {n, ci, hi, wi, co, (hi + 2 * p - k) / s + 1, (wi + 2 * p - k) / s + 1, k, k, s, s, p, p, GAN_STORAGE_F32_NCHW, GAN_STORAGE_F32_NCHW, GAN_STORAGE_F32_NCHW};
    return g;
}

/* Values with both signs, exact +0 and -0, and images (odd ones) of tiny negatives whose products
 * with the tiny weights (`tiny_row`: the last output channel's, and every weight of the last
 * input channel) underflow: summed with fused multiply-adds they give -0 outputs, where act(x + 0)
 * and act(x) differ (LeakyReLU, tanh). */
static void fill_data(float *v, size_t count, size_t image, unsigned seed)
{
    test_fill_uniform(v, count, seed, -1.0f, 1.0f);
    for (size_t i = 0; i < count; i++) {
        if ((i / image) % 2 == 1)
            v[i] = -1e-30f * (float)(1 + i % 5);
        if (i % 7 == 3)
            v[i] = 0.0f;
        if (i % 11 == 5)
            v[i] = -0.0f;
    }
}

static void fill_weights(const gan_conv_geom *g, float *w)
{
    const size_t taps = (size_t)g->k_h * g->k_w, count = (size_t)g->c_out * g->c_in * taps;
    test_fill_uniform(w, count, 7, -1.0f, 1.0f);
    for (int co = 0; co < g->c_out; co++)
        for (int ci = 0; ci < g->c_in; ci++)
            if (co == g->c_out - 1 || ci == g->c_in - 1)
                for (size_t t = 0; t < taps; t++)
                    w[((size_t)co * g->c_in + ci) * taps + t] = 1e-30f * (float)(1 + t % 3);
}

static int count_negative_zeros(const float *v, size_t count)
{
    int zeros = 0;
    for (size_t i = 0; i < count; i++)
        zeros += v[i] == 0.0f && signbit(v[i]);
    return zeros;
}

/* The first index where a and b differ in bits, or count. */
static size_t first_difference(const float *a, const float *b, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0)
            return i;
    return count;
}

static void check_difference(const char *op, const char *act, const gan_conv_geom *g, int threads,
                             const float *got, const float *want, size_t count)
{
    size_t i = first_difference(got, want, count);
    uint32_t got_bits = 0, want_bits = 0;
    if (i < count) {
        memcpy(&got_bits, &got[i], sizeof got_bits);
        memcpy(&want_bits, &want[i], sizeof want_bits);
    }
    CHECK_MSG(i == count,
              "%s, %s: n %d, %dx%dx%d -> %dx%dx%d, kernel %d stride %d padding %d, %d threads: element %zu "
              "is %a (0x%08x), want %a (0x%08x)",
              op, act, g->n, g->c_in, g->h_in, g->w_in, g->c_out, g->h_out, g->w_out, g->k_h, g->stride_h,
              g->pad_h, threads, i, i < count ? (double)got[i] : 0.0, got_bits,
              i < count ? (double)want[i] : 0.0, want_bits);
}

/* Both fused ops on one geometry with the backend's current threads and budget, every activation. */
static void check_geometry(const gan_conv_geom *g)
{
    const cpu_backend_state *state = be->impl;
    const size_t image_in = (size_t)g->c_in * g->h_in * g->w_in, image_out = (size_t)g->c_out * g->h_out * g->w_out;
    const size_t nx = (size_t)g->n * image_in, ny = (size_t)g->n * image_out;
    const size_t nw = (size_t)g->c_out * g->c_in * g->k_h * g->k_w;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *dy = malloc(ny * sizeof *dy);
    float *y = malloc(ny * sizeof *y), *y_act = malloc(ny * sizeof *y_act), *y_fused = malloc(ny * sizeof *y_fused);
    float *dx = malloc(nx * sizeof *dx), *dx_act = malloc(nx * sizeof *dx_act), *dx_fused = malloc(nx * sizeof *dx_fused);
    const size_t ws_bytes = be->conv_workspace_bytes(be, g, GAN_CONV_PASSES_ALL);
    void *ws = NULL;
    if (ws_bytes)
        CHECK_OK(be->alloc(be, ws_bytes, &ws));
    if (!x || !w || !dy || !y || !y_act || !y_fused || !dx || !dx_act || !dx_fused || (ws_bytes && !ws)) {
        CHECK_MSG(false, "out of memory");
        goto done;
    }
    /* images per GEMM, from the workspace: each thread holds col [K, chunk P] and [Co, chunk P] */
    if (ws_bytes) { /* none for a whole-input kernel: one GEMM */
        const size_t per_image = ((size_t)g->c_in * g->k_h * g->k_w + g->c_out) * g->h_out * g->w_out *
                                 sizeof(float);
        size_t chunk = ws_bytes / ((size_t)state->threads * per_image);
        runs_multi_image += chunk > 1;
        runs_one_image += chunk == 1;
    }
    fill_data(x, nx, image_in, 1);
    fill_data(dy, ny, image_out, 2);
    fill_weights(g, w);
    CHECK_OK(be->conv_forward(be, g, x, w, y, ws));
    CHECK_OK(be->conv_backward_data(be, g, dy, w, dx, ws));
    negative_zero_outputs += count_negative_zeros(y, ny);
    for (int a = 0; a < ACTIVATIONS; a++) {
        const activation_case *c = &activations[a];
        CHECK_OK(be->activation_forward(be, c->act, c->slope, ny, y, y_act));
        CHECK_OK(be->activation_forward(be, c->act, c->slope, nx, dx, dx_act));
        memset(y_fused, 0xff, ny * sizeof *y_fused); /* NaN: an element left unwritten shows */
        memset(dx_fused, 0xff, nx * sizeof *dx_fused);
        CHECK_OK(be->conv_forward_act(be, g, x, w, c->act, c->slope, y_fused, ws));
        CHECK_OK(be->conv_backward_data_act(be, g, dy, w, c->act, c->slope, dx_fused, ws));
        check_difference("conv_forward_act", c->name, g, state->threads, y_fused, y_act, ny);
        check_difference("conv_backward_data_act", c->name, g, state->threads, dx_fused, dx_act, nx);
    }
done:
    if (ws)
        be->free(be, ws);
    free(x);
    free(w);
    free(dy);
    free(y);
    free(y_act);
    free(y_fused);
    free(dx);
    free(dx_act);
    free(dx_fused);
}

/* Every geometry and batch with 1, 2 and 3 threads (3 threads on a batch of 5: images 0, 1-2,
 * 3-4; 2 threads: 0-1, 2-4), the budget at one image per GEMM and at the default. */
static void check_fused_ops(void)
{
    cpu_backend_state *state = be->impl;
    const size_t budget = state->conv_workspace_budget_bytes;
    const int threads = state->threads;
    const int batches[] = {1, 3, 5};
    for (int team = 1; team <= 3; team++) {
        state->threads = team;
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            const int n = batches[b];
            const gan_conv_geom geoms[] = {
                geom(n, 5, 16, 16, 7, 4, 2, 1), /* D's downsampling: k4s2p1's im2col and col2im */
                geom(n, 4, 9, 7, 3, 3, 1, 1),   /* kernel 3, stride 1, padding 1: the generic ones */
                geom(n, 5, 4, 4, 6, 4, 1, 0),   /* whole input: D's last layer, G's first transposed */
                geom(n, 6, 5, 5, 4, 1, 1, 0),   /* 1x1, stride 1 */
            };
            for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
                const gan_conv_geom *g = &geoms[gi];
                const size_t per_image = ((size_t)g->c_in * g->k_h * g->k_w + g->c_out) * g->h_out * g->w_out *
                                         sizeof(float);
                state->conv_workspace_budget_bytes = per_image + per_image / 2; /* one image per GEMM */
                check_geometry(g);
                state->conv_workspace_budget_bytes = budget;
                check_geometry(g);
            }
        }
    }
    state->conv_workspace_budget_bytes = budget;
    state->threads = threads;
    CHECK_MSG(runs_multi_image > 0 && runs_one_image > 0,
              "the runs had %d with several images per GEMM and %d with one; want both", runs_multi_image,
              runs_one_image);
    /* -0 outputs come from fused multiply-adds that underflow; a BLAS without FMA may give none,
     * and then a bias of 0 added on the way (act(-0 + 0) != act(-0)) would go unseen */
    if (negative_zero_outputs == 0)
        printf("note: no -0 among the convolutions' outputs (a BLAS without FMA?): adding a bias of 0 "
               "would go unseen\n");
}

static void check_unknown_activation(void)
{
    const gan_conv_geom g = geom(2, 3, 8, 8, 4, 4, 2, 1);
    float *x = calloc((size_t)2 * 3 * 8 * 8, sizeof *x), *w = calloc((size_t)4 * 3 * 16, sizeof *w);
    float *y = calloc((size_t)2 * 4 * 4 * 4, sizeof *y);
    void *ws = NULL;
    CHECK_OK(be->alloc(be, be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL), &ws));
    const gan_activation unknown = (gan_activation)(GAN_ACT_SIGMOID + 7);
    if (x && w && y && ws) {
        CHECK_FAILS_WITH(be->conv_forward_act(be, &g, x, w, unknown, 0.0f, y, ws), GAN_ERR_ARG,
                         "conv forward + activation: unknown activation");
        CHECK_FAILS_WITH(be->conv_backward_data_act(be, &g, y, w, unknown, 0.0f, x, ws), GAN_ERR_ARG,
                         "conv backward-data + activation: unknown activation");
    }
    be->free(be, ws);
    free(x);
    free(w);
    free(y);
}

int main(void)
{
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    CHECK(be->conv_forward_act != NULL && be->conv_backward_data_act != NULL);
    if (be->conv_forward_act && be->conv_backward_data_act) {
        check_fused_ops();
        check_unknown_activation();
    }
    be->destroy(be);
    return test_finish();
}
