/* The CPU backend's ops against direct references written from their definitions:
 * convolutions as the cross-correlation sums, their adjoint identity, bias, BCE's gradient by
 * finite differences, dropout's mask statistics, image conversion, and run-to-run determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h" /* the conv workspace budget, lowered to test chunking */
#include "gan/backend.h"
#include "test_util.h"

static gan_backend *be;

/* Separate kernel, stride and padding per axis; the output size follows from them. */
static gan_conv_geom geom_hw(int n, int ci, int hi, int wi, int co, int kh, int kw, int sh, int sw,
                             int ph, int pw)
{
    gan_conv_geom g = {n, ci, hi, wi, co, (hi + 2 * ph - kh) / sh + 1, (wi + 2 * pw - kw) / sw + 1,
                       kh, kw, sh, sw, ph, pw, GAN_STORAGE_F32_NCHW, GAN_STORAGE_F32_NCHW, GAN_STORAGE_F32_NCHW};
    return g;
}

static gan_conv_geom geom(int n, int ci, int hi, int wi, int co, int k, int s, int p)
{
    return geom_hw(n, ci, hi, wi, co, k, k, s, s, p, p);
}

/* y[n, co, oh, ow] = sum_{ci, ki, kj} x[n, ci, oh s - p + ki, ow s - p + kj] w[co, ci, ki, kj] */
static void conv_reference(const gan_conv_geom *g, const float *x, const float *w, double *y)
{
    for (int n = 0; n < g->n; n++)
        for (int co = 0; co < g->c_out; co++)
            for (int oh = 0; oh < g->h_out; oh++)
                for (int ow = 0; ow < g->w_out; ow++) {
                    double sum = 0;
                    for (int ci = 0; ci < g->c_in; ci++)
                        for (int ki = 0; ki < g->k_h; ki++)
                            for (int kj = 0; kj < g->k_w; kj++) {
                                int ih = oh * g->stride_h - g->pad_h + ki, iw = ow * g->stride_w - g->pad_w + kj;
                                if (ih < 0 || ih >= g->h_in || iw < 0 || iw >= g->w_in)
                                    continue;
                                sum += (double)x[((n * g->c_in + ci) * g->h_in + ih) * g->w_in + iw] *
                                       w[((co * g->c_in + ci) * g->k_h + ki) * g->k_w + kj];
                            }
                    y[((n * g->c_out + co) * g->h_out + oh) * g->w_out + ow] = sum;
                }
}

static void check_conv(gan_conv_geom g)
{
    size_t nx = (size_t)g.n * g.c_in * g.h_in * g.w_in, ny = (size_t)g.n * g.c_out * g.h_out * g.w_out;
    size_t nw = (size_t)g.c_out * g.c_in * g.k_h * g.k_w;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *y = malloc(ny * 4), *dy = malloc(ny * 4);
    float *dx = malloc(nx * 4), *dw = malloc(nw * 4), *want = malloc((nx > nw ? nx : nw) * 4 + ny * 4);
    double *ref = malloc(ny * sizeof(double));
    void *ws = NULL;
    CHECK_OK(be->alloc(be, be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL), &ws));
    test_fill_uniform(x, nx, 1, -1, 1);
    test_fill_uniform(w, nw, 2, -1, 1);
    test_fill_uniform(dy, ny, 3, -1, 1);
    char geom_name[96], name[160];
    snprintf(geom_name, sizeof geom_name, "n%d c%d %dx%d -> c%d %dx%d k%dx%d s%d,%d p%d,%d", g.n, g.c_in,
             g.h_in, g.w_in, g.c_out, g.h_out, g.w_out, g.k_h, g.k_w, g.stride_h, g.stride_w, g.pad_h,
             g.pad_w);
    CHECK_OK(be->conv_forward(be, &g, x, w, y, ws));
    conv_reference(&g, x, w, ref);
    for (size_t i = 0; i < ny; i++)
        want[i] = (float)ref[i];
    snprintf(name, sizeof name, "conv forward %s", geom_name);
    CHECK_ALLCLOSE(name, y, want, ny, 1e-5, 1e-5);
    /* dx and dw by the definition: the derivative of <conv(x, w), dy>, i.e. sums of dy times the
     * other operand over every (output, tap) pair that touches the element. */
    double *dx_ref = calloc(nx, sizeof(double)), *dw_ref = calloc(nw, sizeof(double));
    for (int n = 0; n < g.n; n++)
        for (int co = 0; co < g.c_out; co++)
            for (int oh = 0; oh < g.h_out; oh++)
                for (int ow = 0; ow < g.w_out; ow++) {
                    double d = dy[((n * g.c_out + co) * g.h_out + oh) * g.w_out + ow];
                    for (int ci = 0; ci < g.c_in; ci++)
                        for (int ki = 0; ki < g.k_h; ki++)
                            for (int kj = 0; kj < g.k_w; kj++) {
                                int ih = oh * g.stride_h - g.pad_h + ki, iw = ow * g.stride_w - g.pad_w + kj;
                                if (ih < 0 || ih >= g.h_in || iw < 0 || iw >= g.w_in)
                                    continue;
                                size_t xi = ((size_t)(n * g.c_in + ci) * g.h_in + ih) * g.w_in + iw;
                                size_t wi = ((size_t)(co * g.c_in + ci) * g.k_h + ki) * g.k_w + kj;
                                dx_ref[xi] += d * w[wi];
                                dw_ref[wi] += d * x[xi];
                            }
                }
    /* dx is overwritten: NaNs left in it from before must not survive. */
    for (size_t i = 0; i < nx; i++)
        dx[i] = NAN;
    CHECK_OK(be->conv_backward_data(be, &g, dy, w, dx, ws));
    for (size_t i = 0; i < nx; i++)
        want[i] = (float)dx_ref[i];
    snprintf(name, sizeof name, "conv backward-data %s", geom_name);
    CHECK_ALLCLOSE(name, dx, want, nx, 1e-5, 1e-5);
    /* Adjoint identity: <conv(x), dy> == <x, conv_backward_data(dy)>. */
    double lhs = 0, rhs = 0, scale = 0;
    for (size_t i = 0; i < ny; i++) {
        lhs += (double)y[i] * dy[i];
        scale += fabs((double)y[i] * dy[i]);
    }
    for (size_t i = 0; i < nx; i++)
        rhs += (double)x[i] * dx[i];
    CHECK_MSG(fabs(lhs - rhs) <= 1e-5 * (1 + scale), "adjoint %s: <conv(x), dy> %.9g vs <x, conv^T(dy)> %.9g",
              geom_name, lhs, rhs);
    /* beta = 0 ignores what dw held (NaN included). */
    for (size_t i = 0; i < nw; i++)
        dw[i] = NAN;
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 0.0f, dw, ws));
    for (size_t i = 0; i < nw; i++)
        want[i] = (float)dw_ref[i];
    snprintf(name, sizeof name, "conv backward-filter %s", geom_name);
    CHECK_ALLCLOSE(name, dw, want, nw, 1e-5, 1e-5);
    /* beta = 1 accumulates, beta = 0.5 scales what was there. */
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 1.0f, dw, ws));
    for (size_t i = 0; i < nw; i++)
        want[i] = (float)(2.0 * dw_ref[i]);
    snprintf(name, sizeof name, "conv backward-filter beta 1 %s", geom_name);
    CHECK_ALLCLOSE(name, dw, want, nw, 1e-5, 1e-5);
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 0.5f, dw, ws));
    snprintf(name, sizeof name, "conv backward-filter beta 0.5 %s", geom_name);
    CHECK_ALLCLOSE(name, dw, want, nw, 1e-5, 1e-5); /* 0.5 * 2 ref + ref */
    /* conv_grads: the two ops' bits, dw accumulated (beta 1: 2 ref + ref), with backward-data into
     * dx or forward into y */
    float *dw2 = malloc(nw * 4), *out2 = malloc((nx > ny ? nx : ny) * 4);
    memcpy(dw2, dw, nw * 4);
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 1.0f, dw, ws));
    CHECK_OK(be->conv_grads(be, &g, x, dy, 1.0f, dw2, GAN_CONV_BACKWARD_DATA, w, out2, NULL, ws));
    CHECK_MSG(!memcmp(dw, dw2, nw * 4) && !memcmp(dx, out2, nx * 4), "conv grads (backward-data) %s",
              geom_name);
    CHECK_OK(be->conv_grads(be, &g, x, dy, 0.0f, dw2, GAN_CONV_FORWARD, w, out2, NULL, ws));
    CHECK_MSG(!memcmp(y, out2, ny * 4), "conv grads (forward) %s", geom_name);
    /* no out: dw alone (overwritten, beta 0), checked below */
    memset(dw2, 0xff, nw * 4);
    CHECK_OK(be->conv_grads(be, &g, x, dy, 0.0f, dw2, GAN_CONV_FORWARD, NULL, NULL, NULL, ws));
    for (size_t i = 0; i < nw; i++)
        want[i] = (float)dw_ref[i];
    snprintf(name, sizeof name, "conv grads dw %s", geom_name);
    CHECK_ALLCLOSE(name, dw2, want, nw, 1e-5, 1e-5);
    free(dw2);
    free(out2);
    free(dx_ref);
    free(dw_ref);
    free(x);
    free(w);
    free(y);
    free(dy);
    free(dx);
    free(dw);
    free(want);
    free(ref);
    be->free(be, ws);
}

/* A batch split over threads and several GEMMs per thread: 1, 2 and 3 threads (the backend's
 * thread count, lowered or raised as the budget is), and the workspace budget lowered to hold 0
 * (still 1), 1, 2 and 3 images per thread on a batch of 5; with 2 threads images 0-1 and 2-4,
 * i.e. chunks 1+1 | 1+1+1, 2 | 2+1 and 2 | 3. That runs the direct and the gather/scatter paths
 * at image offsets past 0, backward-filter's images split over threads (few rows of col), and dw
 * accumulating across chunks after beta. */
static void check_conv_chunks(void)
{
    cpu_backend_state *state = be->impl;
    const size_t budget = state->conv_workspace_budget_bytes;
    const int threads = state->threads;
    /* the generic im2col and col2im, and DCGAN's kernel 4, stride 2, padding 1 (its own), with
     * 3 input channels (few rows of col) and 8 (128 rows: backward-filter splits them over 2
     * threads, and the images over 3) */
    const gan_conv_geom geoms[4] = {geom(5, 3, 7, 5, 4, 3, 2, 1), geom_hw(5, 2, 6, 9, 3, 4, 1, 1, 2, 1, 0),
                                    geom_hw(5, 3, 8, 6, 4, 4, 4, 2, 2, 1, 1),
                                    geom_hw(5, 8, 8, 6, 4, 4, 4, 2, 2, 1, 1)};
    for (int team = 1; team <= 3; team++) {
        state->threads = team;
        for (int gi = 0; gi < 4; gi++) {
            gan_conv_geom g = geoms[gi];
            const size_t per_image =
                ((size_t)g.c_in * g.k_h * g.k_w + g.c_out) * g.h_out * g.w_out * sizeof(float);
            for (size_t images = 0; images <= 3; images++) {
                state->conv_workspace_budget_bytes = images * per_image + per_image / 2;
                /* per thread: at least one image, at most the thread's share of the batch and
                 * as many as make a GEMM CPU_CONV_GEMM_COLUMNS wide; with few rows of col per
                 * thread, backward-filter's own dw [Co, K] too */
                size_t share = ((size_t)g.n + team - 1) / team;
                size_t enough = (CPU_CONV_GEMM_COLUMNS + (size_t)g.h_out * g.w_out - 1) / ((size_t)g.h_out * g.w_out);
                size_t chunk = images ? images : 1;
                chunk = chunk < share ? chunk : share;
                chunk = chunk < enough ? chunk : enough;
                size_t k = (size_t)g.c_in * g.k_h * g.k_w;
                size_t own_dw = team > 1 && k < (size_t)CPU_CONV_GEMM_COLUMNS / 4 * team
                                    ? (size_t)g.c_out * k * sizeof(float)
                                    : 0;
                size_t want = (size_t)team * (chunk * per_image + own_dw);
                size_t got = be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL);
                CHECK_MSG(got == want, "workspace for %zu images of %zu bytes, %d threads: %zu, want %zu",
                          images, per_image, team, got, want);
                check_conv(g);
            }
        }
    }
    state->conv_workspace_budget_bytes = budget;
    state->threads = threads;
}

/* Every kernel (1, 3, 4), stride (1, 2) and padding (0, 1) on a batch of 3 odd-sized 7x5 images. */
static void check_conv_sweep(void)
{
    const int kernels[3] = {1, 3, 4};
    for (int ki = 0; ki < 3; ki++)
        for (int s = 1; s <= 2; s++)
            for (int p = 0; p <= 1; p++)
                check_conv(geom(3, 2, 7, 5, 3, kernels[ki], s, p));
    /* Kernel 4, stride 2, padding 1 on even inputs (DCGAN's, im2col and col2im of their own):
     * outputs of one row or column, where the zero taps at both edges meet, and a wider one. */
    check_conv(geom(3, 2, 8, 6, 3, 4, 2, 1));
    check_conv(geom(2, 3, 2, 2, 2, 4, 2, 1));
    check_conv(geom_hw(2, 2, 2, 10, 3, 4, 4, 2, 2, 1, 1));
    check_conv(geom(2, 1, 32, 32, 2, 4, 2, 1));
    /* Kernels covering the whole unpadded input (D's last layer, G's first): GEMMs without
     * im2col and no workspace; one padded and one strided look-alike take the im2col path. */
    check_conv(geom(3, 5, 4, 4, 2, 4, 1, 0));
    check_conv(geom_hw(4, 3, 3, 5, 6, 3, 5, 1, 1, 0, 0));
    gan_conv_geom whole = geom(3, 5, 4, 4, 2, 4, 1, 0);
    CHECK(be->conv_workspace_bytes(be, &whole, GAN_CONV_PASSES_ALL) == 0);
    check_conv(geom(3, 5, 4, 4, 2, 4, 1, 1));
    check_conv(geom(3, 5, 5, 5, 2, 4, 2, 0));
    /* The FID Inception's rectangular kernels with per-axis padding (1x7 padded (0, 3), 7x1
     * padded (3, 0), 1x3 and 3x1), its 1x1 pointwise convolutions (no im2col: x is its own col),
     * and its 3x3 stride 2 unpadded, on odd planes. */
    check_conv(geom_hw(3, 4, 9, 11, 5, 1, 7, 1, 1, 0, 3));
    check_conv(geom_hw(3, 4, 9, 11, 5, 7, 1, 1, 1, 3, 0));
    check_conv(geom_hw(2, 3, 5, 4, 6, 1, 3, 1, 1, 0, 1));
    check_conv(geom_hw(2, 3, 5, 4, 6, 3, 1, 1, 1, 1, 0));
    check_conv(geom(5, 7, 9, 7, 6, 1, 1, 0));
    check_conv(geom(3, 5, 17, 17, 4, 1, 1, 0));
    check_conv(geom(3, 4, 13, 11, 3, 3, 2, 0));
}

static void check_conv_arguments(void)
{
    gan_conv_geom g = geom(2, 3, 8, 8, 4, 3, 1, 1);
    float buf[16] = {0};
    g.h_out = 7; /* does not follow from 8 + 2 - 3 + 1 = 8 */
    CHECK_FAILS_WITH(be->conv_forward(be, &g, buf, buf, buf, buf), GAN_ERR_ARG, "conv forward");
    CHECK_FAILS_WITH(be->conv_backward_data(be, &g, buf, buf, buf, buf), GAN_ERR_ARG, "backward-data");
    CHECK_FAILS_WITH(be->conv_backward_filter(be, &g, buf, buf, 0.0f, buf, buf), GAN_ERR_ARG,
                     "backward-filter");
    CHECK(be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL) == 0); /* nothing planned for a refused geometry */
    g = geom(2, 3, 8, 8, 4, 3, 1, 1);
    g.stride_w = 0;
    CHECK_FAILS_WITH(be->conv_forward(be, &g, buf, buf, buf, buf), GAN_ERR_ARG, "conv forward");
    CHECK(be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL) == 0);
    CHECK(be->conv_workspace_bytes(be, NULL, GAN_CONV_PASSES_ALL) == 0);
    CHECK_FAILS_WITH(be->conv_forward(be, NULL, buf, buf, buf, buf), GAN_ERR_ARG, "NULL geometry");
    g = geom(2, 3, 8, 8, 4, 3, 1, 1);
    CHECK_FAILS_WITH(be->conv_backward_filter(be, &g, buf, NULL, 0.0f, buf, buf), GAN_ERR_ARG,
                     "backward-filter");
    CHECK_FAILS_WITH(be->conv_grads(be, &g, buf, buf, 0.0f, buf, GAN_CONV_BACKWARD_FILTER, buf, buf, NULL, buf),
                     GAN_ERR_ARG, "cpu conv grads: the second pass must be backward-data or forward, not 2");
    CHECK_FAILS_WITH(be->conv_grads(be, &g, buf, buf, 0.0f, buf, GAN_CONV_FORWARD, buf, buf, buf, buf), GAN_ERR_ARG,
                     "cpu conv grads: a kept copy was given, and the cpu backend keeps none");
    CHECK_MSG(!be->conv_keep_bytes && !be->conv_keep_pass, "the cpu backend copies no inputs: it keeps none");
}

/* Batch norm in double, from the definitions: the batch's mean and biased variance normalise; the
 * running variance takes the unbiased one (PyTorch). */
static void bn_reference_forward(int n, int c, int hw, const double *x, const float *gamma,
                                 const float *beta, double eps, double *mean, double *var, double *y)
{
    const double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                sum += x[((size_t)i * c + ch) * hw + j];
        mean[ch] = sum / count;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[((size_t)i * c + ch) * hw + j] - mean[ch];
                sq += d * d;
            }
        var[ch] = sq / count;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                y[k] = (x[k] - mean[ch]) / sqrt(var[ch] + eps) * gamma[ch] + beta[ch];
            }
    }
}

static void check_bn(int n, int c, int hw)
{
    const size_t count = (size_t)n * c * hw;
    const float momentum = 0.1f, eps = 1e-5f;
    float *x = malloc(count * 4), *y = malloc(count * 4), *dy = malloc(count * 4), *dx = malloc(count * 4);
    float *want = malloc(count * 4);
    double *xd = malloc(count * sizeof(double)), *yd = malloc(count * sizeof(double));
    double *yp = malloc(count * sizeof(double)), *ym = malloc(count * sizeof(double));
    float *gamma = malloc(c * 4), *beta = malloc(c * 4), *rm = malloc(c * 4), *rv = malloc(c * 4);
    float *smean = malloc(c * 4), *sinv = malloc(c * 4), *dgamma = malloc(c * 4), *dbeta = malloc(c * 4);
    float *cwant = malloc(c * 4);
    double *mean = malloc(c * sizeof(double)), *var = malloc(c * sizeof(double));
    double *mp = malloc(c * sizeof(double)), *vp = malloc(c * sizeof(double));
    char name[96];
    test_fill_uniform(x, count, 11, -2, 3);
    test_fill_uniform(dy, count, 12, -1, 1);
    test_fill_uniform(gamma, c, 13, 0.5f, 1.5f);
    test_fill_uniform(beta, c, 14, -0.5f, 0.5f);
    test_fill_uniform(rm, c, 15, -0.1f, 0.1f);
    test_fill_uniform(rv, c, 16, 0.9f, 1.1f);
    for (size_t i = 0; i < count; i++)
        xd[i] = x[i];
    float *rm0 = malloc(c * 4), *rv0 = malloc(c * 4);
    memcpy(rm0, rm, c * 4);
    memcpy(rv0, rv, c * 4);

    /* training forward: y, saved mean and invstd, running statistics */
    CHECK_OK(be->bn_forward_train(be, n, c, hw, x, gamma, beta, momentum, eps, rm, rv, smean, sinv, y));
    bn_reference_forward(n, c, hw, xd, gamma, beta, eps, mean, var, yd);
    for (size_t i = 0; i < count; i++)
        want[i] = (float)yd[i];
    snprintf(name, sizeof name, "bn train y n%d c%d hw%d", n, c, hw);
    CHECK_ALLCLOSE(name, y, want, count, 1e-5, 1e-5);
    const double N = (double)n * hw;
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)mean[ch];
    CHECK_ALLCLOSE("bn save_mean", smean, cwant, c, 1e-6, 1e-6);
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)(1.0 / sqrt(var[ch] + eps));
    CHECK_ALLCLOSE("bn save_invstd", sinv, cwant, c, 1e-6, 1e-6);
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)((1 - (double)momentum) * rm0[ch] + (double)momentum * mean[ch]);
    CHECK_ALLCLOSE("bn running_mean", rm, cwant, c, 1e-6, 1e-6);
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)((1 - (double)momentum) * rv0[ch] + (double)momentum * var[ch] * N / (N - 1));
    CHECK_ALLCLOSE("bn running_var (unbiased)", rv, cwant, c, 1e-6, 1e-6);

    /* eval forward: the running statistics, not the batch's */
    CHECK_OK(be->bn_forward_eval(be, n, c, hw, x, gamma, beta, rm, rv, eps, y));
    for (size_t i = 0; i < count; i++) {
        int ch = (int)(i / hw % c);
        want[i] = (float)((xd[i] - rm[ch]) / sqrt((double)rv[ch] + eps) * gamma[ch] + beta[ch]);
    }
    snprintf(name, sizeof name, "bn eval y n%d c%d hw%d", n, c, hw);
    CHECK_ALLCLOSE(name, y, want, count, 1e-5, 1e-5);
    /* running variances near eps, where eps is seen */
    float *rv_small = malloc(c * 4);
    test_fill_uniform(rv_small, c, 17, 1e-5f, 4e-5f);
    CHECK_OK(be->bn_forward_eval(be, n, c, hw, x, gamma, beta, rm, rv_small, eps, y));
    for (size_t i = 0; i < count; i++) {
        int ch = (int)(i / hw % c);
        want[i] = (float)((xd[i] - rm[ch]) / sqrt((double)rv_small[ch] + eps) * gamma[ch] + beta[ch]);
    }
    CHECK_ALLCLOSE("bn eval y, running_var near eps", y, want, count, 1e-5, 1e-5);
    free(rv_small);

    /* backward against central differences of L = sum dy * y(x, gamma, beta), in double */
    for (size_t i = 0; i < count; i++)
        dx[i] = NAN; /* overwritten */
    for (int ch = 0; ch < c; ch++)
        dgamma[ch] = dbeta[ch] = NAN; /* param_beta = 0 ignores them */
    CHECK_OK(be->bn_backward(be, n, c, hw, x, dy, gamma, smean, sinv, dx, 0.0f, dgamma, dbeta));
    const double h = 1e-6;
    for (size_t i = 0; i < count; i++) {
        double keep = xd[i], lp = 0, lm = 0;
        xd[i] = keep + h;
        bn_reference_forward(n, c, hw, xd, gamma, beta, eps, mp, vp, yp);
        xd[i] = keep - h;
        bn_reference_forward(n, c, hw, xd, gamma, beta, eps, mp, vp, ym);
        xd[i] = keep;
        int ch = (int)(i / hw % c);
        for (int img = 0; img < n; img++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)img * c + ch) * hw + j; /* only channel ch moves */
                lp += dy[k] * yp[k];
                lm += dy[k] * ym[k];
            }
        want[i] = (float)((lp - lm) / (2 * h));
    }
    snprintf(name, sizeof name, "bn backward dx n%d c%d hw%d", n, c, hw);
    CHECK_ALLCLOSE(name, dx, want, count, 1e-4, 1e-4);
    /* dgamma = sum dy xhat, dbeta = sum dy (the derivatives of L, exact in the parameters) */
    double *dg_ref = calloc(c, sizeof(double)), *db_ref = calloc(c, sizeof(double));
    for (size_t i = 0; i < count; i++) {
        int ch = (int)(i / hw % c);
        dg_ref[ch] += dy[i] * (xd[i] - mean[ch]) / sqrt(var[ch] + eps);
        db_ref[ch] += dy[i];
    }
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)dg_ref[ch];
    CHECK_ALLCLOSE("bn backward dgamma", dgamma, cwant, c, 1e-5, 1e-5);
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)db_ref[ch];
    CHECK_ALLCLOSE("bn backward dbeta", dbeta, cwant, c, 1e-5, 1e-5);
    /* param_beta = 1 accumulates into dgamma and dbeta */
    CHECK_OK(be->bn_backward(be, n, c, hw, x, dy, gamma, smean, sinv, dx, 1.0f, dgamma, dbeta));
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)(2 * dg_ref[ch]);
    CHECK_ALLCLOSE("bn backward dgamma accumulated", dgamma, cwant, c, 1e-5, 1e-5);
    for (int ch = 0; ch < c; ch++)
        cwant[ch] = (float)(2 * db_ref[ch]);
    CHECK_ALLCLOSE("bn backward dbeta accumulated", dbeta, cwant, c, 1e-5, 1e-5);

    free(dg_ref);
    free(db_ref);
    free(x), free(y), free(dy), free(dx), free(want), free(xd), free(yd), free(yp), free(ym);
    free(gamma), free(beta), free(rm), free(rv), free(rm0), free(rv0), free(smean), free(sinv);
    free(dgamma), free(dbeta), free(cwant), free(mean), free(var), free(mp), free(vp);
}

static void check_bn_arguments(void)
{
    float v[4] = {1, 2, 3, 4}, s[4];
    /* one value per channel has no batch variance (PyTorch refuses it too) */
    CHECK_FAILS_WITH(be->bn_forward_train(be, 1, 2, 1, v, v, v, 0.1f, 1e-5f, s, s, s, s, s), GAN_ERR_ARG,
                     "bn forward");
    CHECK_FAILS_WITH(be->bn_forward_eval(be, 0, 2, 1, v, v, v, v, v, 1e-5f, s), GAN_ERR_ARG, "bn forward");
    CHECK_FAILS_WITH(be->bn_backward(be, 2, 2, 1, v, NULL, v, v, v, s, 0.0f, s, s), GAN_ERR_ARG,
                     "bn backward");
}

static double act_reference(gan_activation kind, double slope, double x)
{
    switch (kind) {
    case GAN_ACT_RELU:
        return x > 0 ? x : 0;
    case GAN_ACT_LRELU:
        return x > 0 ? x : slope * x;
    case GAN_ACT_TANH:
        return tanh(x);
    case GAN_ACT_SIGMOID:
        return 1 / (1 + exp(-x));
    }
    return NAN;
}

/* Forward against the double formula; backward against central differences of it (points near
 * the kinks of relu/lrelu are moved away so the difference quotient is the derivative). */
static void check_activations(void)
{
    enum { N = 1000 };
    static const char *names[4] = {"relu", "lrelu", "tanh", "sigmoid"};
    float *x = malloc(N * 4), *y = malloc(N * 4), *dy = malloc(N * 4), *dx = malloc(N * 4), *want = malloc(N * 4);
    test_fill_uniform(x, N, 21, -6, 6);
    test_fill_uniform(dy, N, 22, -1, 1);
    for (int i = 0; i < N; i++)
        if (fabsf(x[i]) < 1e-2f)
            x[i] = 0.5f;
    x[0] = 30.0f; /* saturated sigmoid/tanh stay finite */
    x[1] = -30.0f;
    const float slope = 0.2f;
    char name[64];
    for (int k = 0; k < 4; k++) {
        gan_activation kind = (gan_activation)k;
        CHECK_OK(be->activation_forward(be, kind, slope, N, x, y));
        for (int i = 0; i < N; i++)
            want[i] = (float)act_reference(kind, slope, x[i]);
        snprintf(name, sizeof name, "%s forward", names[k]);
        CHECK_ALLCLOSE(name, y, want, N, 1e-6, 1e-7);
        /* lrelu reads x only, the others y only: the other pointer is NULL */
        const float *xin = kind == GAN_ACT_LRELU ? x : NULL, *yin = kind == GAN_ACT_LRELU ? NULL : y;
        CHECK_OK(be->activation_backward(be, kind, slope, N, xin, yin, dy, dx));
        for (int i = 0; i < N; i++) {
            double h = 1e-5 * (1 + fabs((double)x[i]));
            double d = (act_reference(kind, slope, (double)x[i] + h) - act_reference(kind, slope, (double)x[i] - h)) / (2 * h);
            want[i] = (float)(dy[i] * d);
        }
        snprintf(name, sizeof name, "%s backward vs finite differences", names[k]);
        CHECK_ALLCLOSE(name, dx, want, N, 1e-4, 1e-6);
    }
    CHECK_FAILS_WITH(be->activation_backward(be, GAN_ACT_LRELU, slope, N, NULL, y, dy, dx), GAN_ERR_ARG,
                     "activation backward");
    CHECK_FAILS_WITH(be->activation_forward(be, (gan_activation)17, slope, N, x, y), GAN_ERR_ARG,
                     "activation forward");
    free(x), free(y), free(dy), free(dx), free(want);
}

/* Above the OpenMP threshold every element is still exactly the shared per-element function. */
static void check_parallel_elementwise(void)
{
    const size_t N = 300000; /* > CPU_PARALLEL_MIN_COUNT */
    float *x = malloc(N * 4), *y = malloc(N * 4), *dy = malloc(N * 4), *dx = malloc(N * 4);
    test_fill_uniform(x, N, 31, -4, 4);
    test_fill_uniform(dy, N, 32, -1, 1);
    CHECK_OK(be->activation_forward(be, GAN_ACT_TANH, 0, N, x, y));
    CHECK_OK(be->activation_backward(be, GAN_ACT_TANH, 0, N, NULL, y, dy, dx));
    size_t bad = 0;
    for (size_t i = 0; i < N; i++)
        bad += y[i] != gan_tanh_forward(x[i]) || dx[i] != gan_tanh_backward(y[i], dy[i]);
    CHECK_MSG(bad == 0, "%zu of %zu parallel tanh values differ from the per-element math", bad, N);
    CHECK_OK(be->multiply(be, N, x, dy, y));
    bad = 0;
    for (size_t i = 0; i < N; i++)
        bad += y[i] != x[i] * dy[i];
    CHECK_MSG(bad == 0, "%zu multiply values wrong", bad);
    CHECK_OK(be->fill(be, y, -2.5f, N));
    bad = 0;
    for (size_t i = 0; i < N; i++)
        bad += y[i] != -2.5f;
    CHECK_MSG(bad == 0, "%zu fill values wrong", bad);
    CHECK_OK(be->dropout_forward(be, N, 0.5f, 9, 1, gan_count_of(77 * 4), x, dx, y));
    bad = 0;
    for (size_t i = 0; i < N; i++) {
        float m = gan_dropout_keep_scale(gan_philox_uniform_at(9, 1, 77 * 4 + i), 0.5f);
        bad += dx[i] != m || y[i] != x[i] * m;
    }
    CHECK_MSG(bad == 0, "%zu parallel dropout values differ from the per-element math", bad);
    free(x), free(y), free(dy), free(dx);
}

/* Several Adam steps against torch.optim.Adam's formula carried out in double. */
static void check_adam(void)
{
    enum { N = 257, STEPS = 6 };
    const double lr = 2e-4, b1 = 0.5, b2 = 0.999, eps = 1e-8;
    float *p = malloc(N * 4), *g = malloc(N * 4), *m = calloc(N, 4), *v = calloc(N, 4), *want = malloc(N * 4);
    double *pd = malloc(N * sizeof(double)), *md = calloc(N, sizeof(double)), *vd = calloc(N, sizeof(double));
    test_fill_uniform(p, N, 41, -1, 1);
    for (int i = 0; i < N; i++)
        pd[i] = p[i];
    for (int t = 1; t <= STEPS; t++) {
        test_fill_uniform(g, N, 100 + t, -0.1f, 0.1f);
        g[t] = 0.0f; /* a zero gradient still moves the parameter through m */
        CHECK_OK(be->adam_step(be, N, p, g, m, v, (gan_adam_hyper){lr, b1, b2, eps}, gan_count_of((uint64_t)t)));
        for (int i = 0; i < N; i++) {
            md[i] = b1 * md[i] + (1 - b1) * g[i];
            vd[i] = b2 * vd[i] + (1 - b2) * (double)g[i] * g[i];
            double denom = sqrt(vd[i]) / sqrt(1 - pow(b2, t)) + eps;
            pd[i] -= lr / (1 - pow(b1, t)) * md[i] / denom;
        }
    }
    for (int i = 0; i < N; i++)
        want[i] = (float)pd[i];
    CHECK_ALLCLOSE("adam params after 6 steps", p, want, N, 1e-6, 1e-7);
    for (int i = 0; i < N; i++)
        want[i] = (float)md[i];
    CHECK_ALLCLOSE("adam m", m, want, N, 1e-5, 1e-9);
    for (int i = 0; i < N; i++)
        want[i] = (float)vd[i];
    CHECK_ALLCLOSE("adam v", v, want, N, 1e-5, 1e-12);
    free(p), free(g), free(m), free(v), free(want), free(pd), free(md), free(vd);
}

static void check_bce_gradient(void)
{
    float x[7] = {-6, -2.5f, -0.3f, 0.0f, 0.7f, 3.0f, 9.0f}, grad[7], loss, prob;
    for (int t = 0; t < 3; t++) {
        float target = t == 0 ? 1.0f : t == 1 ? 0.0f : 0.9f;
        CHECK_OK(be->bce_logits(be, 7, x, target, 1.0f, &loss, &prob, grad));
        double sum = 0, psum = 0;
        for (int i = 0; i < 7; i++) {
            double p = 1.0 / (1.0 + exp(-(double)x[i]));
            sum += -(target * log(p) + (1 - target) * log1p(-p));
            psum += p;
            /* central difference of the mean loss in double */
            double h = 1e-4, xp = x[i] + h, xm = x[i] - h;
            double lp = -(target * log(1 / (1 + exp(-xp))) + (1 - target) * log1p(-1 / (1 + exp(-xp))));
            double lm = -(target * log(1 / (1 + exp(-xm))) + (1 - target) * log1p(-1 / (1 + exp(-xm))));
            double numeric = (lp - lm) / (2 * h) / 7.0;
            CHECK_MSG(fabs(grad[i] - numeric) <= 1e-6 + 1e-4 * fabs(numeric), "bce grad[%d] %g vs %g", i,
                      (double)grad[i], numeric);
        }
        CHECK_MSG(fabs(loss - sum / 7) <= 1e-6 * (1 + sum / 7), "bce loss %g vs %g", (double)loss, sum / 7);
        CHECK_MSG(fabs(prob - psum / 7) <= 1e-6, "bce prob mean %g vs %g", (double)prob, psum / 7);
    }
    /* grad_scale multiplies the gradient (the trainer's weighting of a loss term) */
    float grad2[7];
    CHECK_OK(be->bce_logits(be, 7, x, 0.9f, 0.5f, &loss, NULL, grad2));
    for (int i = 0; i < 7; i++)
        CHECK_MSG(grad2[i] == gan_bce_logits_grad(x[i], 0.9f, 0.5f / 7.0f), "bce grad_scale 0.5 [%d]", i);
    CHECK_FAILS_WITH(be->bce_logits(be, 0, x, 1.0f, 1.0f, &loss, NULL, NULL), GAN_ERR_ARG, "bce");
    /* Saturated logits stay finite (no log(0)). */
    float big[2] = {100.0f, -100.0f};
    CHECK_OK(be->bce_logits(be, 2, big, 1.0f, 1.0f, &loss, NULL, NULL));
    CHECK_MSG(isfinite(loss) && fabs(loss - 50.0) < 1e-3, "saturated bce loss %g, want 50", (double)loss);
}

static void check_dropout(void)
{
    enum { N = 100000 };
    float *x = malloc(N * 4), *y = malloc(N * 4), *mask = malloc(N * 4), *mask2 = malloc(N * 4);
    for (int i = 0; i < N; i++)
        x[i] = 1.0f;
    CHECK_OK(be->dropout_forward(be, N, 0.3f, 5, 2, gan_count_of(0), x, mask, y));
    int kept = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        kept += mask[i] != 0.0f;
        bad += !(mask[i] == 0.0f || fabsf(mask[i] - 1.0f / 0.7f) < 1e-6f) || y[i] != x[i] * mask[i];
    }
    CHECK_MSG(bad == 0, "%d mask values are neither 0 nor 1/(1-p)", bad);
    CHECK_MSG(fabs(kept / (double)N - 0.7) < 0.01, "kept fraction %g, want 0.7", kept / (double)N);
    CHECK_OK(be->dropout_forward(be, N, 0.3f, 5, 2, gan_count_of(0), x, mask2, y));
    CHECK(!memcmp(mask, mask2, N * 4));
    CHECK_OK(be->dropout_forward(be, N, 0.3f, 5, 2, gan_count_of(1000 * 4), x, mask2, y));
    CHECK(memcmp(mask, mask2, N * 4) != 0);
    CHECK_FAILS_WITH(be->dropout_forward(be, N, 1.0f, 5, 2, gan_count_of(0), x, mask, y), GAN_ERR_ARG, "p = 1");
    free(x);
    free(y);
    free(mask);
    free(mask2);
}

static void check_images(void)
{
    /* 2 images of 1x2 pixels, RGB: NHWC -> NCHW, (v / 255 - 0.5) / 0.5 */
    uint8_t nhwc[12] = {0, 255, 128, 10, 20, 30, 1, 2, 3, 4, 5, 6};
    float out[12];
    CHECK_OK(be->images_to_float(be, 2, 1, 2, 3, nhwc, out));
    const int order[12] = {0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11};
    for (int i = 0; i < 12; i++) {
        float want = ((float)nhwc[order[i]] / 255.0f - 0.5f) / 0.5f;
        CHECK_MSG(out[i] == want, "images_to_float[%d] = %g, want %g", i, (double)out[i], (double)want);
    }
}

static void check_bias(void)
{
    float y[2 * 3 * 4], b[3] = {1, -2, 0.5f}, db[3] = {10, 10, 10};
    for (int i = 0; i < 24; i++)
        y[i] = (float)i;
    CHECK_OK(be->bias_forward(be, 2, 3, 4, b, y));
    for (int i = 0; i < 24; i++)
        CHECK(y[i] == (float)i + b[(i / 4) % 3]);
    CHECK_OK(be->bias_backward(be, 2, 3, 4, y, 1.0f, db));
    for (int c = 0; c < 3; c++) {
        double sum = 10;
        for (int n = 0; n < 2; n++)
            for (int j = 0; j < 4; j++)
                sum += y[(n * 3 + c) * 4 + j];
        CHECK_MSG(fabs(db[c] - sum) < 1e-4, "bias grad %d: %g vs %g", c, (double)db[c], sum);
    }
}

/* The same conv twice gives the same bits (fixed reduction order for a fixed thread count). */
static void check_determinism(void)
{
    gan_conv_geom g = geom(16, 32, 16, 16, 64, 4, 2, 1);
    size_t nx = (size_t)16 * 32 * 256, nw = (size_t)64 * 32 * 16, ny = (size_t)16 * 64 * 64;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4), *a = malloc(nw * 4), *b = malloc(nw * 4);
    void *ws = NULL;
    CHECK_OK(be->alloc(be, be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL), &ws));
    test_fill_uniform(x, nx, 4, -1, 1);
    test_fill_uniform(dy, ny, 5, -1, 1);
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 0.0f, a, ws));
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 0.0f, b, ws));
    CHECK_MSG(!memcmp(a, b, nw * 4), "two identical backward-filter calls differ");
    free(x);
    free(w);
    free(dy);
    free(a);
    free(b);
    be->free(be, ws);
}

int main(void)
{
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    check_conv_sweep();
    check_conv(geom_hw(3, 2, 7, 5, 3, 3, 2, 2, 1, 1, 0)); /* separate h and w: k 3x2, s 2,1, p 1,0 */
    check_conv(geom_hw(2, 3, 6, 9, 2, 1, 4, 1, 2, 0, 2));
    check_conv(geom(2, 2, 3, 3, 3, 1, 1, 2));          /* whole output rows in the padding */
    check_conv(geom_hw(2, 2, 11, 10, 3, 5, 3, 3, 4, 2, 1)); /* strides 3 and 4 skip input columns */
    check_conv_chunks();
    check_conv_arguments();
    check_conv(geom(3, 2, 7, 5, 4, 3, 1, 1));
    check_conv(geom(3, 3, 9, 6, 2, 4, 2, 1));
    check_conv(geom(3, 2, 8, 7, 3, 3, 2, 0));
    check_conv(geom(3, 4, 5, 3, 5, 1, 1, 0));
    check_conv(geom(2, 5, 4, 4, 3, 4, 1, 0));    /* DCGAN's last D layer: 4x4 -> 1x1 */
    check_conv(geom(130, 3, 6, 5, 4, 3, 2, 1));  /* 130 images in one GEMM (gather/scatter path) */
    check_bias();
    check_bn(3, 4, 10);  /* BatchNorm2d, odd sizes */
    check_bn(5, 3, 1);   /* BatchNorm1d */
    check_bn_arguments();
    check_activations();
    check_parallel_elementwise();
    check_adam();
    check_bce_gradient();
    check_dropout();
    check_images();
    check_determinism();
    be->destroy(be);
    return test_finish();
}
