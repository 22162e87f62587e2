/* Convolutions on the CPU: im2col / col2im around one sgemm per chunk of images.
 *
 * With x [n, Ci, Hi, Wi], w [Co, Ci, kh, kw], y [n, Co, Ho, Wo], K = Ci kh kw and P = Ho Wo, a
 * chunk of `cnt` images becomes
 *   col [K, cnt P]    (row (c, ki, kj), column (image, oh, ow): im2col)
 *   ybuf [Co, cnt P]  = w [Co, K] col                      forward
 *   col               = w^T dybuf                           backward-data (then col2im)
 *   dw [Co, K]       += dybuf col^T                         backward-filter
 * Batching images into one GEMM keeps the GEMM large for the small late layers of DCGAN (4x4
 * outputs); with cnt = 1 ybuf is y's own plane and no copy is made. The chunk is the largest
 * that keeps the workspace under the backend's conv_workspace_budget_bytes (cpu_internal.h). Every
 * loop writes disjoint outputs (col2im: one thread per (image, channel) plane), so results do not
 * depend on timing. */
#include <limits.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "gan/blas.h"

gan_status cpu_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    return gan_blas_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static size_t conv_k(const gan_conv_geom *g) { return (size_t)g->c_in * g->k_h * g->k_w; }
static size_t conv_p(const gan_conv_geom *g) { return (size_t)g->h_out * g->w_out; }

/* Images per GEMM: as many as the budget holds, at least 1, at most n. */
static int conv_chunk(const gan_backend *be, const gan_conv_geom *g)
{
    const cpu_backend_state *state = be->impl;
    size_t per_image = (conv_k(g) + (size_t)g->c_out) * conv_p(g) * sizeof(float);
    size_t chunk = state->conv_workspace_budget_bytes / per_image;
    if (chunk < 1)
        chunk = 1;
    if (chunk > (size_t)g->n)
        chunk = (size_t)g->n;
    return (int)chunk;
}

/* NULL when the geometry is one the convolutions run, else what is wrong with it. The GEMM takes
 * int sizes: one image's K and P must fit in one. */
static const char *geom_problem(const gan_conv_geom *g)
{
    if (!g)
        return "NULL geometry";
    if (g->n < 1 || g->c_in < 1 || g->c_out < 1 || g->h_in < 1 || g->w_in < 1 || g->h_out < 1 ||
        g->w_out < 1 || g->k_h < 1 || g->k_w < 1 || g->stride_h < 1 || g->stride_w < 1 ||
        g->pad_h < 0 || g->pad_w < 0)
        return "impossible geometry (sizes, kernel and stride must be >= 1, padding >= 0)";
    if (((long long)g->h_in + 2LL * g->pad_h - g->k_h) / g->stride_h + 1 != g->h_out ||
        ((long long)g->w_in + 2LL * g->pad_w - g->k_w) / g->stride_w + 1 != g->w_out)
        return "output size does not follow from the input, kernel, stride and padding";
    if (conv_k(g) > INT_MAX || conv_p(g) > INT_MAX)
        return "too large for one GEMM (c_in k_h k_w or h_out w_out exceeds INT_MAX)";
    return NULL;
}

static gan_status check_conv(const gan_backend *be, const gan_conv_geom *g, const char *op)
{
    if (!be || !be->impl)
        return gan_error(GAN_ERR_ARG, "cpu %s: not a CPU backend", op);
    const char *problem = geom_problem(g);
    if (problem && g)
        return gan_error(GAN_ERR_ARG, "cpu %s: %s: n %d, %dx%dx%d -> %dx%dx%d, kernel %dx%d, stride %d,%d, padding %d,%d",
                         op, problem, g->n, g->c_in, g->h_in, g->w_in, g->c_out, g->h_out, g->w_out,
                         g->k_h, g->k_w, g->stride_h, g->stride_w, g->pad_h, g->pad_w);
    if (problem)
        return gan_error(GAN_ERR_ARG, "cpu %s: %s", op, problem);
    return GAN_OK;
}

/* 0 for a geometry the convolutions refuse (they report why). */
size_t cpu_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g)
{
    if (!be || !be->impl || geom_problem(g))
        return 0;
    size_t chunk = (size_t)conv_chunk(be, g);
    return (conv_k(g) + (size_t)g->c_out) * chunk * conv_p(g) * sizeof(float);
}

/* The outputs o in [*lo, *hi) whose input index o * stride - pad + tap lies inside [0, in_len):
 * im2col and col2im copy that interior without a bounds check per element. */
static void tap_range(int out_len, int stride, int pad, int tap, int in_len, int *lo, int *hi)
{
    const int first = pad - tap; /* o * stride >= first */
    const int last = in_len - 1 + pad - tap; /* o * stride <= last */
    int l = first > 0 ? (first + stride - 1) / stride : 0;
    int h = last >= 0 ? last / stride + 1 : 0;
    if (h > out_len)
        h = out_len;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* col [K, cnt P] from images img0 .. img0 + cnt - 1 of x. */
static void im2col(const gan_conv_geom *g, const float *x, int img0, int cnt, float *col)
{
    const int kk = g->k_h * g->k_w, rows = g->c_in * kk;
    const size_t P = conv_p(g), plane_in = (size_t)g->h_in * g->w_in;
    const size_t row_len = (size_t)cnt * P;
    const int w_out = g->w_out, stride_w = g->stride_w;
#pragma omp parallel for collapse(2) schedule(static) if (rows * row_len >= CPU_PARALLEL_MIN_COUNT)
    for (int r = 0; r < rows; r++) {
        for (int img = 0; img < cnt; img++) {
            const int c = r / kk, ki = (r / g->k_w) % g->k_h, kj = r % g->k_w;
            const float *plane = x + ((size_t)(img0 + img) * g->c_in + c) * plane_in;
            float *out = col + (size_t)r * row_len + (size_t)img * P;
            int oh_lo, oh_hi, ow_lo, ow_hi;
            tap_range(g->h_out, g->stride_h, g->pad_h, ki, g->h_in, &oh_lo, &oh_hi);
            tap_range(w_out, stride_w, g->pad_w, kj, g->w_in, &ow_lo, &ow_hi);
            const int iw0 = ow_lo * stride_w - g->pad_w + kj; /* input column of ow_lo */
            memset(out, 0, sizeof(float) * (size_t)oh_lo * w_out);
            for (int oh = oh_lo; oh < oh_hi; oh++) {
                const float *in_row = plane + (size_t)(oh * g->stride_h - g->pad_h + ki) * g->w_in + iw0;
                float *out_row = out + (size_t)oh * w_out;
                for (int ow = 0; ow < ow_lo; ow++)
                    out_row[ow] = 0.0f;
                if (stride_w == 1)
                    memcpy(out_row + ow_lo, in_row, sizeof(float) * (size_t)(ow_hi - ow_lo));
                else
                    for (int ow = ow_lo; ow < ow_hi; ow++)
                        out_row[ow] = in_row[(size_t)(ow - ow_lo) * stride_w];
                for (int ow = ow_hi; ow < w_out; ow++)
                    out_row[ow] = 0.0f;
            }
            memset(out + (size_t)oh_hi * w_out, 0, sizeof(float) * (size_t)(g->h_out - oh_hi) * w_out);
        }
    }
}

/* dx images img0 .. img0 + cnt - 1 = col2im(col): overwrites those images. Each dx element sums
 * its taps in the order (ki, kj, oh, ow), whatever the thread count. */
static void col2im(const gan_conv_geom *g, const float *col, int img0, int cnt, float *dx)
{
    const int kk = g->k_h * g->k_w;
    const size_t P = conv_p(g), plane_in = (size_t)g->h_in * g->w_in;
    const size_t row_len = (size_t)cnt * P;
    const int planes = cnt * g->c_in, stride_w = g->stride_w;
#pragma omp parallel for schedule(static) if ((size_t)planes * kk * P >= CPU_PARALLEL_MIN_COUNT)
    for (int pi = 0; pi < planes; pi++) {
        const int img = pi / g->c_in, c = pi % g->c_in;
        float *plane = dx + ((size_t)(img0 + img) * g->c_in + c) * plane_in;
        memset(plane, 0, sizeof(float) * plane_in);
        for (int ki = 0; ki < g->k_h; ki++) {
            int oh_lo, oh_hi;
            tap_range(g->h_out, g->stride_h, g->pad_h, ki, g->h_in, &oh_lo, &oh_hi);
            for (int kj = 0; kj < g->k_w; kj++) {
                int ow_lo, ow_hi;
                tap_range(g->w_out, stride_w, g->pad_w, kj, g->w_in, &ow_lo, &ow_hi);
                const int iw0 = ow_lo * stride_w - g->pad_w + kj;
                const int r = c * kk + ki * g->k_w + kj;
                const float *in = col + (size_t)r * row_len + (size_t)img * P;
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    float *out_row = plane + (size_t)(oh * g->stride_h - g->pad_h + ki) * g->w_in + iw0;
                    const float *in_row = in + (size_t)oh * g->w_out;
                    if (stride_w == 1)
                        for (int ow = ow_lo; ow < ow_hi; ow++)
                            out_row[ow - ow_lo] += in_row[ow];
                    else
                        for (int ow = ow_lo; ow < ow_hi; ow++)
                            out_row[(size_t)(ow - ow_lo) * stride_w] += in_row[ow];
                }
            }
        }
    }
}

/* [Co, cnt P] <-> images img0.. of an NCHW tensor with Co channels of P values. */
static void gather_planes(const float *nchw, int channels, size_t P, int img0, int cnt, float *buf)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)channels * cnt * P >= CPU_PARALLEL_MIN_COUNT)
    for (int c = 0; c < channels; c++)
        for (int img = 0; img < cnt; img++)
            memcpy(buf + ((size_t)c * cnt + img) * P,
                   nchw + ((size_t)(img0 + img) * channels + c) * P, sizeof(float) * P);
}

static void scatter_planes(const float *buf, int channels, size_t P, int img0, int cnt, float *nchw)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)channels * cnt * P >= CPU_PARALLEL_MIN_COUNT)
    for (int c = 0; c < channels; c++)
        for (int img = 0; img < cnt; img++)
            memcpy(nchw + ((size_t)(img0 + img) * channels + c) * P,
                   buf + ((size_t)c * cnt + img) * P, sizeof(float) * P);
}

gan_status cpu_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                            const float *w, float *y, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv forward"));
    if (!x || !w || !y || !workspace)
        return gan_error(GAN_ERR_ARG, "cpu conv forward: NULL pointer");
    const int K = (int)conv_k(g), chunk = conv_chunk(be, g);
    const size_t P = conv_p(g);
    float *col = workspace, *ybuf = col + (size_t)K * chunk * P;
    for (int img0 = 0; img0 < g->n; img0 += chunk) {
        int cnt = g->n - img0 < chunk ? g->n - img0 : chunk;
        int cols = (int)(cnt * P);
        im2col(g, x, img0, cnt, col);
        float *out = cnt == 1 ? y + (size_t)img0 * g->c_out * P : ybuf;
        GAN_TRY(gan_blas_sgemm(false, false, g->c_out, cols, K, 1.0f, w, K, col, cols, 0.0f, out, cols));
        if (cnt > 1)
            scatter_planes(ybuf, g->c_out, P, img0, cnt, y);
    }
    return GAN_OK;
}

gan_status cpu_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                  const float *w, float *dx, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv backward-data"));
    if (!dy || !w || !dx || !workspace)
        return gan_error(GAN_ERR_ARG, "cpu conv backward-data: NULL pointer");
    const int K = (int)conv_k(g), chunk = conv_chunk(be, g);
    const size_t P = conv_p(g);
    float *col = workspace, *dybuf = col + (size_t)K * chunk * P;
    for (int img0 = 0; img0 < g->n; img0 += chunk) {
        int cnt = g->n - img0 < chunk ? g->n - img0 : chunk;
        int cols = (int)(cnt * P);
        const float *in = dy + (size_t)img0 * g->c_out * P;
        if (cnt > 1) {
            gather_planes(dy, g->c_out, P, img0, cnt, dybuf);
            in = dybuf;
        }
        /* col [K, cols] = w^T [K, Co] dy [Co, cols] */
        GAN_TRY(gan_blas_sgemm(true, false, K, cols, g->c_out, 1.0f, w, K, in, cols, 0.0f, col, cols));
        col2im(g, col, img0, cnt, dx);
    }
    return GAN_OK;
}

gan_status cpu_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                    const float *dy, float beta, float *dw, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv backward-filter"));
    if (!x || !dy || !dw || !workspace)
        return gan_error(GAN_ERR_ARG, "cpu conv backward-filter: NULL pointer");
    const int K = (int)conv_k(g), chunk = conv_chunk(be, g);
    const size_t P = conv_p(g);
    float *col = workspace, *dybuf = col + (size_t)K * chunk * P;
    for (int img0 = 0; img0 < g->n; img0 += chunk) {
        int cnt = g->n - img0 < chunk ? g->n - img0 : chunk;
        int cols = (int)(cnt * P);
        im2col(g, x, img0, cnt, col);
        const float *in = dy + (size_t)img0 * g->c_out * P;
        if (cnt > 1) {
            gather_planes(dy, g->c_out, P, img0, cnt, dybuf);
            in = dybuf;
        }
        /* dw [Co, K] = beta dw + dy [Co, cols] col^T [cols, K] */
        GAN_TRY(gan_blas_sgemm(false, true, g->c_out, K, cols, 1.0f, in, cols, col, cols,
                               img0 == 0 ? beta : 1.0f, dw, K));
    }
    return GAN_OK;
}

gan_status cpu_bias_forward(gan_backend *be, int n, int c, int hw, const float *bias, float *y)
{
    if (n < 0 || c < 0 || hw < 0 || !bias || !y)
        return gan_error(GAN_ERR_ARG, "cpu bias forward: bad arguments");
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= CPU_PARALLEL_MIN_COUNT)
    for (int i = 0; i < n * c; i++) {
        float b = bias[i % c];
        float *plane = y + (size_t)i * hw;
        for (int j = 0; j < hw; j++)
            plane[j] += b;
    }
    return GAN_OK;
}

gan_status cpu_bias_backward(gan_backend *be, int n, int c, int hw, const float *dy, float beta,
                             float *db)
{
    if (n < 0 || c < 0 || hw < 0 || !dy || !db)
        return gan_error(GAN_ERR_ARG, "cpu bias backward: bad arguments");
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= CPU_PARALLEL_MIN_COUNT)
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int img = 0; img < n; img++) {
            const float *plane = dy + ((size_t)img * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                sum += plane[j];
        }
        db[ch] = (beta != 0.0f ? beta * db[ch] : 0.0f) + (float)sum;
    }
    return GAN_OK;
}
