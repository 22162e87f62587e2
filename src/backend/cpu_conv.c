/* Convolutions on the CPU: im2col / col2im around sgemm, the work split over the backend's
 * OpenMP threads, each thread running OpenBLAS on its own part (src/blas.c).
 *
 * With x [n, Ci, Hi, Wi], w [Co, Ci, kh, kw], y [n, Co, Ho, Wo], K = Ci kh kw and P = Ho Wo, a
 * chunk of `cnt` images becomes
 *   col [K, cnt P]    (row (c, ki, kj), column (image, oh, ow): im2col)
 *   ybuf [Co, cnt P]  = w [Co, K] col                      forward
 *   col               = w^T dybuf                           backward-data (then col2im)
 *   dw [Co, K]       += dybuf col^T                         backward-filter
 * Forward and backward-data give each thread its own images, in chunks: im2col, GEMM and
 * col2im of a chunk run back to back on one core while the chunk is in its cache. Backward-
 * filter gives each thread its own rows of col, i.e. its own columns of dw, over all images
 * (with few rows, a first layer's, its own images and a dw of its own, added up at the end).
 * Batching images into one GEMM keeps the GEMM large for the small late layers of DCGAN (4x4
 * outputs); with cnt = 1 ybuf is y's own plane and no copy is made. A chunk is as many images
 * as keep a thread's workspace under conv_workspace_budget_bytes and make a GEMM at most
 * CPU_CONV_GEMM_COLUMNS wide (cpu_internal.h). DCGAN's kernel 4, stride 2, padding 1 has an
 * im2col and a col2im of its own (whole input rows as stride-2 copies).
 * A kernel that covers the whole unpadded input (DCGAN's last D layer, 4x4 -> 1x1, and G's first,
 * 1x1 -> 4x4) needs no im2col: x [n, K] is its own col, and each pass is one GEMM. Neither does
 * the forward pass of a 1x1 convolution (stride 1, no padding: the FID Inception's) on a chunk of
 * one image: the image [K, P] is its own col.
 * Every thread writes its own outputs and each output's sums have one fixed order, so results
 * do not depend on timing, only on the thread count. */
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "gan/blas.h"
#include "gan/cuda_args.h"

gan_status cpu_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    return gan_blas_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static size_t conv_k(const gan_conv_geom *g) { return (size_t)g->c_in * g->k_h * g->k_w; }
static size_t conv_p(const gan_conv_geom *g) { return (size_t)g->h_out * g->w_out; }

/* The kernel covers the whole unpadded input: one output per image and channel, col = x, and
 * each pass is one GEMM (gan_conv_whole_input_gemm, shared with the CUDA backend). */
static bool whole_input_kernel(const gan_conv_geom *g) { return gan_conv_is_whole_input(g); }

/* Images per thread; the threads' images are split as evenly as they go. */
static int images_per_thread(const gan_backend *be, const gan_conv_geom *g)
{
    const cpu_backend_state *state = be->impl;
    return (g->n + state->threads - 1) / state->threads;
}

/* Images per GEMM on one thread: as many as the budget holds, at least 1, at most the thread's
 * share of the batch (and see below). */
static int conv_chunk(const gan_backend *be, const gan_conv_geom *g)
{
    const cpu_backend_state *state = be->impl;
    size_t per_image = (conv_k(g) + (size_t)g->c_out) * conv_p(g) * sizeof(float);
    size_t chunk = state->conv_workspace_budget_bytes / per_image;
    size_t share = (size_t)images_per_thread(be, g);
    /* no more images than make a GEMM CPU_CONV_GEMM_COLUMNS wide: wider gains little, and a
     * chunk of one image needs no gather or scatter (32x32 and larger outputs) */
    size_t enough = (CPU_CONV_GEMM_COLUMNS + conv_p(g) - 1) / conv_p(g);
    if (chunk > enough)
        chunk = enough;
    if (chunk < 1)
        chunk = 1;
    if (chunk > share)
        chunk = share;
    return (int)chunk;
}

/* Backward-filter with few rows of col per thread (a first layer's few input channels: GEMMs
 * that narrow run at half speed) gives each thread its own images instead, each summing its
 * images' gradient into a [Co, K] of its own, added up in thread order at the end. */
static bool filter_by_images(const gan_backend *be, const gan_conv_geom *g)
{
    const cpu_backend_state *state = be->impl;
    return state->threads > 1 && conv_k(g) < (size_t)CPU_CONV_GEMM_COLUMNS / 4 * state->threads;
}

/* floats of one thread's workspace */
static size_t thread_slice(const gan_backend *be, const gan_conv_geom *g)
{
    size_t slice = (conv_k(g) + (size_t)g->c_out) * (size_t)conv_chunk(be, g) * conv_p(g);
    if (filter_by_images(be, g))
        slice += (size_t)g->c_out * conv_k(g); /* its own dw */
    return slice;
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
    if (g->x_storage != GAN_STORAGE_F32_NCHW || g->y_storage != GAN_STORAGE_F32_NCHW ||
        g->w_storage != GAN_STORAGE_F32_NCHW)
        return "the CPU backend keeps every tensor FP32 NCHW (BF16 NHWC storage is CUDA's, in bf16)";
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

/* 0 for a geometry the convolutions refuse (they report why) and for those that need none. Every
 * pass uses the same per-thread slice, so `passes` changes nothing here. */
size_t cpu_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g, unsigned passes)
{
    (void)passes;
    if (!be || !be->impl || geom_problem(g) || whole_input_kernel(g))
        return 0;
    const cpu_backend_state *state = be->impl;
    return (size_t)state->threads * thread_slice(be, g) * sizeof(float);
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

/* Rows row0 .. row1 - 1 of col [K, cnt P] from images img0 .. img0 + cnt - 1 of x, on the
 * calling thread; row r of col lands at col + (r - row0) cnt P. */
static void im2col_any(const gan_conv_geom *g, const float *x, int img0, int cnt, int row0,
                       int row1, float *col)
{
    const int kk = g->k_h * g->k_w;
    const size_t P = conv_p(g), plane_in = (size_t)g->h_in * g->w_in;
    const size_t row_len = (size_t)cnt * P;
    const int w_out = g->w_out, stride_w = g->stride_w;
    for (int r = row0; r < row1; r++) {
        const int c = r / kk, ki = (r / g->k_w) % g->k_h, kj = r % g->k_w;
        int oh_lo, oh_hi, ow_lo, ow_hi;
        tap_range(g->h_out, g->stride_h, g->pad_h, ki, g->h_in, &oh_lo, &oh_hi);
        tap_range(w_out, stride_w, g->pad_w, kj, g->w_in, &ow_lo, &ow_hi);
        const int iw0 = ow_lo * stride_w - g->pad_w + kj; /* input column of ow_lo */
        for (int img = 0; img < cnt; img++) {
            const float *plane = x + ((size_t)(img0 + img) * g->c_in + c) * plane_in;
            float *out = col + (size_t)(r - row0) * row_len + (size_t)img * P;
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

/* dx images img0 .. img0 + cnt - 1 = col2im(col), on the calling thread: overwrites those
 * images. Each dx element sums its taps in the order (ki, kj, oh, ow). */
static void col2im_any(const gan_conv_geom *g, const float *col, int img0, int cnt, float *dx)
{
    const int kk = g->k_h * g->k_w;
    const size_t P = conv_p(g), plane_in = (size_t)g->h_in * g->w_in;
    const size_t row_len = (size_t)cnt * P;
    const int planes = cnt * g->c_in, stride_w = g->stride_w;
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

/* DCGAN's convolution: kernel 4, stride 2, padding 1, an even input twice the output, rows of
 * at most K4S2P1_MAX_W_OUT outputs (the stack buffers of col2im_k4s2p1). */
enum { K4S2P1_MAX_W_OUT = 1024 };

static bool is_k4s2p1(const gan_conv_geom *g)
{
    return g->k_h == 4 && g->k_w == 4 && g->stride_h == 2 && g->stride_w == 2 && g->pad_h == 1 &&
           g->pad_w == 1 && g->h_in == 2 * g->h_out && g->w_in == 2 * g->w_out &&
           g->w_out <= K4S2P1_MAX_W_OUT;
}

/* The (ki, oh) pairs whose tap row oh * 2 - 1 + ki is input row ih: two, or one at the edges. */
static int k4s2p1_rows_of(int ih, int h_out, int ki[2], int oh[2])
{
    int count = 0, m = ih / 2;
    if (ih % 2 == 0) { /* ih = 2m: ki 1 at oh m, ki 3 at oh m - 1 */
        ki[count] = 1, oh[count++] = m;
        if (m >= 1)
            ki[count] = 3, oh[count++] = m - 1;
    } else { /* ih = 2m + 1: ki 2 at oh m, ki 0 at oh m + 1 */
        ki[count] = 2, oh[count++] = m;
        if (m + 1 < h_out)
            ki[count] = 0, oh[count++] = m + 1;
    }
    return count;
}

/* One input row into the 4 col rows (kj 0..3) of one (ki, oh): tap kj of output ow reads input
 * column 2 ow - 1 + kj, so kj 1 and 2 are the even and odd columns, kj 0 and 3 the same shifted
 * by one output with a zero at the edge. Inlined with Wo a constant for the common widths. */
static inline __attribute__((always_inline)) void
k4s2p1_im2col_row(const float *restrict in, float *restrict o0, float *restrict o1,
                  float *restrict o2, float *restrict o3, const int Wo)
{
    for (int ow = 0; ow < Wo; ow++) {
        o1[ow] = in[2 * ow];
        o2[ow] = in[2 * ow + 1];
    }
    o0[0] = 0.0f; /* column -1 */
    for (int ow = 1; ow < Wo; ow++)
        o0[ow] = in[2 * ow - 1];
    for (int ow = 0; ow < Wo - 1; ow++)
        o3[ow] = in[2 * ow + 2];
    o3[Wo - 1] = 0.0f; /* column W */
}

static inline __attribute__((always_inline)) void
k4s2p1_im2col(const gan_conv_geom *g, const float *x, int img0, int cnt, int c0, int c1,
              float *col, const int Wo)
{
    const int H = g->h_in, W = 2 * Wo, Ho = g->h_out;
    const size_t P = (size_t)Ho * Wo, row_len = (size_t)cnt * P;
    for (int img = 0; img < cnt; img++) {
        for (int c = c0; c < c1; c++) {
            const float *plane = x + ((size_t)(img0 + img) * g->c_in + c) * H * W;
            float *rows = col + (size_t)(c - c0) * 16 * row_len + (size_t)img * P; /* + r row_len */
            for (int kj = 0; kj < 4; kj++) { /* taps above the first and below the last row */
                memset(rows + (size_t)(0 * 4 + kj) * row_len, 0, sizeof(float) * Wo);
                memset(rows + (size_t)(3 * 4 + kj) * row_len + (size_t)(Ho - 1) * Wo, 0, sizeof(float) * Wo);
            }
            for (int ih = 0; ih < H; ih++) {
                int ki[2], oh[2];
                int pairs = k4s2p1_rows_of(ih, Ho, ki, oh);
                for (int q = 0; q < pairs; q++) {
                    float *o0 = rows + (size_t)(ki[q] * 4) * row_len + (size_t)oh[q] * Wo;
                    k4s2p1_im2col_row(plane + (size_t)ih * W, o0, o0 + row_len, o0 + 2 * row_len,
                                      o0 + 3 * row_len, Wo);
                }
            }
        }
    }
}

/* im2col for k4s2p1, channels c0 .. c1 - 1 (col rows (c - c0) 16 + ki 4 + kj): each input row is
 * read once and written to the 8 col rows it feeds. */
static void im2col_k4s2p1(const gan_conv_geom *g, const float *x, int img0, int cnt, int c0, int c1,
                          float *col)
{
    switch (g->w_out) {
    case 4: k4s2p1_im2col(g, x, img0, cnt, c0, c1, col, 4); break;
    case 8: k4s2p1_im2col(g, x, img0, cnt, c0, c1, col, 8); break;
    case 16: k4s2p1_im2col(g, x, img0, cnt, c0, c1, col, 16); break;
    case 32: k4s2p1_im2col(g, x, img0, cnt, c0, c1, col, 32); break;
    default: k4s2p1_im2col(g, x, img0, cnt, c0, c1, col, g->w_out); break;
    }
}

/* One dx row from its (at most) 2 x 4 col rows a[q][kj] at one oh each: dx[ih, 2j] sums taps kj 1
 * (ow j) and 3 (ow j - 1), dx[ih, 2j + 1] taps kj 2 (ow j) and 0 (ow j + 1), pair by pair. */
static inline __attribute__((always_inline)) void
k4s2p1_col2im_row(const float *const a[2], int pairs, size_t row_len, float *restrict out,
                  const int Wo)
{
    float even[K4S2P1_MAX_W_OUT], odd[K4S2P1_MAX_W_OUT];
    for (int q = 0; q < pairs; q++) {
        const float *restrict a0 = a[q], *restrict a1 = a0 + row_len;
        const float *restrict a2 = a1 + row_len, *restrict a3 = a2 + row_len;
        if (q == 0) {
            for (int j = 0; j < Wo; j++) {
                even[j] = a1[j];
                odd[j] = a2[j];
            }
        } else {
            for (int j = 0; j < Wo; j++) {
                even[j] += a1[j];
                odd[j] += a2[j];
            }
        }
        for (int j = 1; j < Wo; j++)
            even[j] += a3[j - 1];
        for (int j = 0; j < Wo - 1; j++)
            odd[j] += a0[j + 1];
    }
    for (int j = 0; j < Wo; j++) {
        out[2 * j] = even[j];
        out[2 * j + 1] = odd[j];
    }
}

static inline __attribute__((always_inline)) void
k4s2p1_col2im(const gan_conv_geom *g, const float *col, int img0, int cnt, float *dx, const int Wo)
{
    const int H = g->h_in, W = 2 * Wo, Ho = g->h_out;
    const size_t P = (size_t)Ho * Wo, row_len = (size_t)cnt * P;
    for (int img = 0; img < cnt; img++) {
        for (int c = 0; c < g->c_in; c++) {
            float *plane = dx + ((size_t)(img0 + img) * g->c_in + c) * H * W;
            const float *rows = col + (size_t)c * 16 * row_len + (size_t)img * P;
            for (int ih = 0; ih < H; ih++) {
                int ki[2], oh[2];
                int pairs = k4s2p1_rows_of(ih, Ho, ki, oh);
                const float *a[2];
                for (int q = 0; q < pairs; q++)
                    a[q] = rows + (size_t)(ki[q] * 4) * row_len + (size_t)oh[q] * Wo;
                k4s2p1_col2im_row(a, pairs, row_len, plane + (size_t)ih * W, Wo);
            }
        }
    }
}

/* col2im for k4s2p1: each dx row gathers its taps and is written once (no memset, no
 * read-modify-write with a run-time stride), in the order of k4s2p1_rows_of. */
static void col2im_k4s2p1(const gan_conv_geom *g, const float *col, int img0, int cnt, float *dx)
{
    switch (g->w_out) {
    case 4: k4s2p1_col2im(g, col, img0, cnt, dx, 4); break;
    case 8: k4s2p1_col2im(g, col, img0, cnt, dx, 8); break;
    case 16: k4s2p1_col2im(g, col, img0, cnt, dx, 16); break;
    case 32: k4s2p1_col2im(g, col, img0, cnt, dx, 32); break;
    default: k4s2p1_col2im(g, col, img0, cnt, dx, g->w_out); break;
    }
}

/* col rows row0 .. row1 - 1 (whole channels where both are multiples of k_h k_w). */
static void im2col(const gan_conv_geom *g, const float *x, int img0, int cnt, int row0, int row1,
                   float *col)
{
    if (is_k4s2p1(g) && row0 % 16 == 0 && row1 % 16 == 0)
        im2col_k4s2p1(g, x, img0, cnt, row0 / 16, row1 / 16, col);
    else
        im2col_any(g, x, img0, cnt, row0, row1, col);
}

static void col2im(const gan_conv_geom *g, const float *col, int img0, int cnt, float *dx)
{
    if (is_k4s2p1(g))
        col2im_k4s2p1(g, col, img0, cnt, dx);
    else
        col2im_any(g, col, img0, cnt, dx);
}

/* Planes (c, img) for c in [c0, c1) of [Co, cnt P] <-> images img0.. of an NCHW tensor with
 * `channels` channels of P values (scatter: into channels offset.. of one with nchw_channels). */
static void gather_planes(const float *nchw, int channels, size_t P, int img0, int cnt, int c0,
                          int c1, float *buf)
{
    for (int c = c0; c < c1; c++)
        for (int img = 0; img < cnt; img++)
            memcpy(buf + ((size_t)c * cnt + img) * P,
                   nchw + ((size_t)(img0 + img) * channels + c) * P, sizeof(float) * P);
}

static void scatter_planes(const float *buf, int channels, size_t P, int img0, int cnt, float *nchw,
                           int nchw_channels, int offset)
{
    for (int c = 0; c < channels; c++)
        for (int img = 0; img < cnt; img++)
            memcpy(nchw + ((size_t)(img0 + img) * nchw_channels + offset + c) * P,
                   buf + ((size_t)c * cnt + img) * P, sizeof(float) * P);
}

/* [lo, hi) of `count` items for thread t of `team`, as even as they go. */
static void thread_range(int count, int t, int team, int *lo, int *hi)
{
    *lo = (int)((long long)count * t / team);
    *hi = (int)((long long)count * (t + 1) / team);
}

/* Row-major C [m, n] = alpha op(A) op(B) + beta C with each thread computing its own block of
 * C's columns (of its rows when C is taller than wide), blocks a multiple of 16 wide. */
static gan_status gemm_split(const gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k,
                             float alpha, const float *a, int lda, const float *b, int ldb,
                             float beta, float *c, int ldc)
{
    const cpu_backend_state *state = be->impl;
    const bool by_columns = n >= m;
    const int len = by_columns ? n : m;
    gan_status status = GAN_OK;
#pragma omp parallel num_threads(state->threads) if ((double)m * n * k >= CPU_PARALLEL_MIN_COUNT)
    {
        int team = omp_get_num_threads(), per = (len + team - 1) / team;
        per = (per + 15) / 16 * 16;
        int lo = omp_get_thread_num() * per, hi = lo + per < len ? lo + per : len;
        if (lo < hi && by_columns)
            gan_status_keep_first(&status, gan_blas_sgemm_this_thread(
                                     trans_a, trans_b, m, hi - lo, k, alpha, a, lda,
                                     b + (trans_b ? (size_t)lo * ldb : (size_t)lo), ldb, beta, c + lo, ldc));
        else if (lo < hi)
            gan_status_keep_first(&status, gan_blas_sgemm_this_thread(
                                     trans_a, trans_b, hi - lo, n, k, alpha,
                                     a + (trans_a ? (size_t)lo : (size_t)lo * lda), lda, b, ldb, beta,
                                     c + (size_t)lo * ldc, ldc));
    }
    return status;
}

/* Pass `pass` of a whole-input convolution: c = beta c + op(a) op(b) as the shared mapping
 * says (a = x or dy, b = w or x). */
static gan_status whole_input_pass(const gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass,
                                   const float *a, const float *b, float beta, float *c)
{
    gan_conv_gemm m;
    GAN_TRY(gan_conv_whole_input_gemm(g, pass, &m));
    return gemm_split(be, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, a, m.lda, b, m.ldb, beta, c,
                      m.ldc);
}

/* What conv_bias_act_forward and conv_forward_act add to the plain forward: the output's place
 * in a wider tensor (y [n, y_channels, P], channels offset..) and the bias + activation, or the
 * activation alone, applied to each chunk's GEMM output while it is in cache. */
typedef struct conv_epilogue {
    int y_channels, offset;
    bool activate;     /* false: nothing applied (the plain forward) */
    const float *bias; /* NULL: the activation alone, no bias (adding 0 would turn -0 into +0) */
    gan_activation act;
    float slope;
} conv_epilogue;

/* rows [c_out, len] (row stride `stride`): row c = act(row + bias[c]), or act(row) */
static void apply_epilogue(const conv_epilogue *e, int c_out, float *rows, size_t len, size_t stride)
{
    if (!e->activate)
        return;
    for (int c = 0; c < c_out; c++) {
        if (e->bias)
            cpu_bias_act_plane(rows + (size_t)c * stride, len, e->bias[c], e->act, e->slope);
        else
            cpu_act_plane(rows + (size_t)c * stride, len, e->act, e->slope);
    }
}

static gan_status conv_forward_into(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                    float *y, const conv_epilogue *e, void *workspace)
{
    const int K = (int)conv_k(g);
    const size_t P = conv_p(g), yc = (size_t)e->y_channels;
    if (whole_input_kernel(g)) { /* y [n, Co], rows y_channels apart (the shared mapping's ldc) */
        gan_conv_gemm m;
        GAN_TRY(gan_conv_whole_input_gemm(g, GAN_CONV_FORWARD, &m));
        GAN_TRY(gemm_split(be, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, x, m.lda, w, m.ldb, 0.0f,
                           y + e->offset, e->y_channels));
        for (int i = 0; i < g->n; i++) /* image i's [Co, 1] */
            apply_epilogue(e, g->c_out, y + (size_t)i * yc + e->offset, 1, 1);
        return GAN_OK;
    }
    const cpu_backend_state *state = be->impl;
    const int chunk = conv_chunk(be, g);
    const size_t slice = thread_slice(be, g);
    const bool pointwise = g->k_h == 1 && g->k_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
                           g->pad_h == 0 && g->pad_w == 0;
    gan_status status = GAN_OK;
#pragma omp parallel num_threads(state->threads)
    {
        int t = omp_get_thread_num(), lo, hi;
        thread_range(g->n, t, omp_get_num_threads(), &lo, &hi);
        float *col = (float *)workspace + (size_t)t * slice, *ybuf = col + (size_t)K * chunk * P;
        for (int img0 = lo; img0 < hi; img0 += chunk) {
            int cnt = hi - img0 < chunk ? hi - img0 : chunk;
            int cols = (int)(cnt * P);
            /* one image of a 1x1 convolution: x [K, P] is its own col */
            const float *in = pointwise && cnt == 1 ? x + (size_t)img0 * K * P : col;
            if (in == col)
                im2col(g, x, img0, cnt, 0, K, col);
            float *out = cnt == 1 ? y + ((size_t)img0 * yc + (size_t)e->offset) * P : ybuf;
            gan_status_keep_first(&status, gan_blas_sgemm_this_thread(false, false, g->c_out, cols, K, 1.0f, w,
                                                            K, in, cols, 0.0f, out, cols));
            apply_epilogue(e, g->c_out, out, (size_t)cols, (size_t)cols);
            if (cnt > 1)
                scatter_planes(ybuf, g->c_out, P, img0, cnt, y, e->y_channels, e->offset);
        }
    }
    return status;
}

gan_status cpu_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                            const float *w, float *y, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv forward"));
    if (!x || !w || !y || (!workspace && !whole_input_kernel(g)))
        return gan_error(GAN_ERR_ARG, "cpu conv forward: NULL pointer");
    const conv_epilogue plain = {g->c_out, 0, false, NULL, GAN_ACT_RELU, 0.0f};
    return conv_forward_into(be, g, x, w, y, &plain, workspace);
}

gan_status cpu_conv_forward_act(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                gan_activation act, float slope, float *y, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv forward + activation"));
    if (!x || !w || !y || (!workspace && !whole_input_kernel(g)))
        return gan_error(GAN_ERR_ARG, "cpu conv forward + activation: NULL pointer");
    if (!gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "cpu conv forward + activation: unknown activation %d", (int)act);
    const conv_epilogue e = {g->c_out, 0, true, NULL, act, slope};
    return conv_forward_into(be, g, x, w, y, &e, workspace);
}

gan_status cpu_conv_bias_act_forward(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                     const float *bias, gan_activation act, float slope, int y_channels,
                                     int offset, float *y, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv + bias + activation"));
    if (!x || !w || !bias || !y || (!workspace && !whole_input_kernel(g)))
        return gan_error(GAN_ERR_ARG, "cpu conv + bias + activation: NULL pointer");
    if (offset < 0 || (long)offset + g->c_out > y_channels)
        return gan_error(GAN_ERR_ARG, "cpu conv + bias + activation: %d channels at %d do not fit %d", g->c_out,
                         offset, y_channels);
    if (!gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "cpu conv + bias + activation: unknown activation %d", (int)act);
    const conv_epilogue e = {y_channels, offset, true, bias, act, slope};
    return conv_forward_into(be, g, x, w, y, &e, workspace);
}

/* Backward-data, then act(dx) when `activate` (conv_backward_data_act): each thread applies it
 * to the images it has just written with col2im, while they are in its cache. */
static gan_status conv_backward_data_into(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                          const float *w, bool activate, gan_activation act,
                                          float slope, float *dx, void *workspace)
{
    const int K = (int)conv_k(g);
    const size_t image_in = (size_t)g->c_in * g->h_in * g->w_in; /* values of one dx image */
    const cpu_backend_state *state = be->impl;
    if (whole_input_kernel(g)) { /* dx [n, K], K = image_in: act after the one GEMM */
        GAN_TRY(whole_input_pass(be, g, GAN_CONV_BACKWARD_DATA, dy, w, 0.0f, dx));
#pragma omp parallel for num_threads(state->threads) schedule(static) \
    if (activate && (size_t)g->n * image_in >= CPU_PARALLEL_MIN_COUNT)
        for (int i = 0; i < (activate ? g->n : 0); i++)
            cpu_act_plane(dx + (size_t)i * image_in, image_in, act, slope);
        return GAN_OK;
    }
    const int chunk = conv_chunk(be, g);
    const size_t P = conv_p(g), slice = thread_slice(be, g);
    gan_status status = GAN_OK;
#pragma omp parallel num_threads(state->threads)
    {
        int t = omp_get_thread_num(), lo, hi;
        thread_range(g->n, t, omp_get_num_threads(), &lo, &hi);
        float *col = (float *)workspace + (size_t)t * slice, *dybuf = col + (size_t)K * chunk * P;
        for (int img0 = lo; img0 < hi; img0 += chunk) {
            int cnt = hi - img0 < chunk ? hi - img0 : chunk;
            int cols = (int)(cnt * P);
            const float *in = dy + (size_t)img0 * g->c_out * P;
            if (cnt > 1) {
                gather_planes(dy, g->c_out, P, img0, cnt, 0, g->c_out, dybuf);
                in = dybuf;
            }
            /* col [K, cols] = w^T [K, Co] dy [Co, cols] */
            gan_status_keep_first(&status, gan_blas_sgemm_this_thread(true, false, K, cols, g->c_out, 1.0f, w,
                                                            K, in, cols, 0.0f, col, cols));
            col2im(g, col, img0, cnt, dx);
            if (activate) /* this chunk's dx images, all written */
                cpu_act_plane(dx + (size_t)img0 * image_in, (size_t)cnt * image_in, act, slope);
        }
    }
    return status;
}

gan_status cpu_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                  const float *w, float *dx, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv backward-data"));
    if (!dy || !w || !dx || (!workspace && !whole_input_kernel(g)))
        return gan_error(GAN_ERR_ARG, "cpu conv backward-data: NULL pointer");
    return conv_backward_data_into(be, g, dy, w, false, GAN_ACT_RELU, 0.0f, dx, workspace);
}

gan_status cpu_conv_backward_data_act(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                      const float *w, gan_activation act, float slope, float *dx,
                                      void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv backward-data + activation"));
    if (!dy || !w || !dx || (!workspace && !whole_input_kernel(g)))
        return gan_error(GAN_ERR_ARG, "cpu conv backward-data + activation: NULL pointer");
    if (!gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "cpu conv backward-data + activation: unknown activation %d", (int)act);
    return conv_backward_data_into(be, g, dy, w, true, act, slope, dx, workspace);
}

/* Backward-filter, each thread over its own images into a dw of its own (filter_by_images). */
static gan_status conv_backward_filter_by_images(gan_backend *be, const gan_conv_geom *g,
                                                 const float *x, const float *dy, float beta,
                                                 float *dw, void *workspace)
{
    const cpu_backend_state *state = be->impl;
    const int K = (int)conv_k(g), chunk = conv_chunk(be, g);
    const size_t P = conv_p(g), slice = thread_slice(be, g), dw_count = (size_t)g->c_out * K;
    float *const base = workspace;
    gan_status status = GAN_OK;
#pragma omp parallel num_threads(state->threads)
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads(), lo, hi;
        thread_range(g->n, t, team, &lo, &hi);
        float *col = base + (size_t)t * slice, *dybuf = col + (size_t)K * chunk * P;
        float *my_dw = dybuf + (size_t)g->c_out * chunk * P;
        if (lo == hi)
            memset(my_dw, 0, sizeof(float) * dw_count);
        for (int img0 = lo; img0 < hi; img0 += chunk) {
            int cnt = hi - img0 < chunk ? hi - img0 : chunk;
            int cols = (int)(cnt * P);
            im2col(g, x, img0, cnt, 0, K, col);
            const float *in = dy + (size_t)img0 * g->c_out * P;
            if (cnt > 1) {
                gather_planes(dy, g->c_out, P, img0, cnt, 0, g->c_out, dybuf);
                in = dybuf;
            }
            /* my_dw [Co, K] (+)= dy [Co, cols] col^T [cols, K] */
            gan_status_keep_first(&status, gan_blas_sgemm_this_thread(false, true, g->c_out, K, cols, 1.0f, in,
                                                            cols, col, cols, img0 == lo ? 0.0f : 1.0f,
                                                            my_dw, K));
        }
#pragma omp barrier
        /* dw = beta dw + the threads' sums, added in thread order */
#pragma omp for schedule(static)
        for (size_t i = 0; i < dw_count; i++) {
            float sum = beta != 0.0f ? beta * dw[i] : 0.0f;
            for (int u = 0; u < team; u++)
                sum += base[(size_t)u * slice + ((size_t)K + g->c_out) * chunk * P + i];
            dw[i] = sum;
        }
    }
    return status;
}

gan_status cpu_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                    const float *dy, float beta, float *dw, void *workspace)
{
    GAN_TRY(check_conv(be, g, "conv backward-filter"));
    if (!x || !dy || !dw || (!workspace && !whole_input_kernel(g)))
        return gan_error(GAN_ERR_ARG, "cpu conv backward-filter: NULL pointer");
    const int K = (int)conv_k(g);
    if (whole_input_kernel(g))
        return whole_input_pass(be, g, GAN_CONV_BACKWARD_FILTER, dy, x, beta, dw);
    const cpu_backend_state *state = be->impl;
    if (filter_by_images(be, g))
        return conv_backward_filter_by_images(be, g, x, dy, beta, dw, workspace);
    /* All threads take the same images at a time (the workspace of every thread at once), each
     * its own rows of col: dybuf is gathered once for all of them. */
    const int chunk = conv_chunk(be, g) * state->threads;
    const size_t P = conv_p(g);
    float *col = workspace, *dybuf = col + (size_t)K * chunk * P;
    gan_status status = GAN_OK;
#pragma omp parallel num_threads(state->threads)
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads(), row0, row1, c0, c1;
        const int kk = g->k_h * g->k_w;
        if (g->c_in >= team) { /* whole input channels per thread */
            thread_range(g->c_in, t, team, &row0, &row1);
            row0 *= kk;
            row1 *= kk;
        } else {
            thread_range(K, t, team, &row0, &row1);
        }
        thread_range(g->c_out, t, team, &c0, &c1);
        for (int img0 = 0; img0 < g->n; img0 += chunk) {
            int cnt = g->n - img0 < chunk ? g->n - img0 : chunk;
            int cols = (int)(cnt * P);
            const float *in = dy + (size_t)img0 * g->c_out * P;
            if (cnt > 1) {
#pragma omp barrier /* every thread is done with the last chunk's dybuf */
                gather_planes(dy, g->c_out, P, img0, cnt, c0, c1, dybuf);
#pragma omp barrier
                in = dybuf;
            }
            /* this thread's rows, at a place that does not move with cnt: another thread may
             * still be reading its rows of the last chunk */
            float *my_col = col + (size_t)row0 * chunk * P;
            im2col(g, x, img0, cnt, row0, row1, my_col);
            /* dw [Co, rows] = beta dw + dy [Co, cols] col^T [cols, rows] */
            if (row1 > row0)
                gan_status_keep_first(&status, gan_blas_sgemm_this_thread(false, true, g->c_out, row1 - row0, cols,
                                                                1.0f, in, cols, my_col, cols,
                                                                img0 == 0 ? beta : 1.0f, dw + row0, K));
        }
    }
    return status;
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

void cpu_conv_describe(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, char *out,
                       size_t bytes)
{
    if (whole_input_kernel(g))
        snprintf(out, bytes, "sgemm (whole-input kernel)");
    else if (pass == GAN_CONV_BACKWARD_FILTER && filter_by_images(be, g))
        snprintf(out, bytes, "%s + sgemm, images per thread", is_k4s2p1(g) ? "im2col k4s2p1" : "im2col");
    else if (pass == GAN_CONV_BACKWARD_DATA)
        snprintf(out, bytes, "sgemm + %s", is_k4s2p1(g) ? "col2im k4s2p1" : "col2im");
    else
        snprintf(out, bytes, "%s + sgemm", is_k4s2p1(g) ? "im2col k4s2p1" : "im2col");
}

/* The CPU's passes share nothing to convert: the two ops, one after the other. It keeps no copies
 * (no conv_keep_pass), so `kept` must be NULL. */
gan_status cpu_conv_grads(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy, float beta,
                          float *dw, gan_conv_pass other, const float *w, float *out, const void *kept,
                          void *workspace)
{
    if (other != GAN_CONV_BACKWARD_DATA && other != GAN_CONV_FORWARD)
        return gan_error(GAN_ERR_ARG, "cpu conv grads: the second pass must be backward-data or forward, not %d",
                         (int)other);
    if (kept)
        return gan_error(GAN_ERR_ARG, "cpu conv grads: a kept copy was given, and the cpu backend keeps none");
    GAN_TRY(cpu_conv_backward_filter(be, g, x, dy, beta, dw, workspace));
    if (!out)
        return GAN_OK;
    if (other == GAN_CONV_BACKWARD_DATA)
        return cpu_conv_backward_data(be, g, dy, w, out, workspace);
    return cpu_conv_forward(be, g, x, w, out, workspace);
}
