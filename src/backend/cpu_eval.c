/* The evaluation ops on the CPU (gan/backend.h: pooling, the global average, channel copies for
 * concatenation, the bilinear resize, the bias + activation epilogue): what the FID Inception
 * (src/eval/inception.c) runs besides its convolutions. Inference only.
 *
 * Every output element is computed by one loop iteration from its own inputs in a fixed order
 * (window rows, then columns), with the per-element math of gan/elementwise_math.h that the CUDA
 * kernels (kernels/eval.cuh) call too, so both backends give the same bits. The planes
 * (image, channel) are split over OpenMP threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"

#define PARALLEL_IF(count) if ((count) >= CPU_PARALLEL_MIN_COUNT)

static gan_status check_pool(const char *op, const gan_pool2d_geom *g, const float *x, const float *y)
{
    const char *problem = gan_pool2d_geom_problem(g);
    if (problem && g)
        return gan_error(GAN_ERR_ARG, "cpu %s: %s: [%d, %d, %d, %d] -> %dx%d, window %dx%d, stride %d,%d, padding %d,%d",
                         op, problem, g->n, g->c, g->h_in, g->w_in, g->h_out, g->w_out, g->k_h, g->k_w,
                         g->stride_h, g->stride_w, g->pad_h, g->pad_w);
    if (problem)
        return gan_error(GAN_ERR_ARG, "cpu %s: %s", op, problem);
    if (!x || !y)
        return gan_error(GAN_ERR_ARG, "cpu %s: NULL pointer", op);
    return GAN_OK;
}

/* Pooling, one plane at a time on each thread: a padded plane is copied into the thread's buffer
 * first (padding -inf for the maximum, 0 for the sums), so that every window is whole and the
 * loop over a row of outputs has no edge cases and vectorises (stride 1 or 2). The results are
 * those of gan_max_window / gan_sum_window over the clipped windows bit for bit: a window's
 * in-bounds values are taken in the same order (rows, then columns), and the padding only adds
 * -inf to a maximum or +0 to a sum, which changes neither (a sum that starts at +0 is never -0).
 * The divisor of an average is computed per output from the clipped window as in those. */
enum { POOL_TILE = 256 };

static inline float max_or_nan(float best, float v)
{
    /* gan_max_window's rule: v wins when larger or NaN (a NaN once in stays: v > NaN is false) */
    return cpu_select_float((v > best) | (v != v), v, best); /* | rather than ||: no branch, so it vectorises */
}

/* The window counts of output o along one axis: in-bounds positions and gan_pool_window's
 * padded length. */
static inline void window_counts(int o, int k, int s, int pad, int in_size, int *inside, int *padded)
{
    int lo, hi;
    gan_pool_window(o, k, s, pad, in_size, &lo, &hi, padded);
    *inside = hi - lo;
}

/* Per output column, the window's columns counted for the average's divisor: inside the input,
 * or (count_include_pad) gan_pool_window's padded length. */
static void column_counts(const gan_pool2d_geom *g, bool count_include_pad, float *counts)
{
    for (int ow = 0; ow < g->w_out; ow++) {
        int inside, padded;
        window_counts(ow, g->k_w, g->stride_w, g->pad_w, g->w_in, &inside, &padded);
        counts[ow] = (float)(count_include_pad ? padded : inside);
    }
}

static void pool_plane(const gan_pool2d_geom *g, bool is_max, bool count_include_pad, const float *in, float *out,
                       float *padded_plane, const float *col_counts)
{
    const int k_h = g->k_h, k_w = g->k_w, s_h = g->stride_h, s_w = g->stride_w;
    const int wp = g->w_in + 2 * g->pad_w, hp = g->h_in + 2 * g->pad_h;
    const float fill = is_max ? -INFINITY : 0.0f;
    const float *src = in;
    if (g->pad_h || g->pad_w) {
        for (int r = 0; r < hp; r++) {
            float *row = padded_plane + (size_t)r * wp;
            int ir = r - g->pad_h;
            if (ir < 0 || ir >= g->h_in) {
                for (int c = 0; c < wp; c++)
                    row[c] = fill;
                continue;
            }
            for (int c = 0; c < g->pad_w; c++)
                row[c] = row[wp - 1 - c] = fill;
            memcpy(row + g->pad_w, in + (size_t)ir * g->w_in, sizeof(float) * (size_t)g->w_in);
        }
        src = padded_plane;
    }
    float acc[POOL_TILE];
    for (int oh = 0; oh < g->h_out; oh++) {
        int rows_inside, rows_padded;
        window_counts(oh, k_h, s_h, g->pad_h, g->h_in, &rows_inside, &rows_padded);
        for (int t0 = 0; t0 < g->w_out; t0 += POOL_TILE) {
            const int n = g->w_out - t0 < POOL_TILE ? g->w_out - t0 : POOL_TILE;
            for (int j = 0; j < n; j++)
                acc[j] = fill;
            for (int kh = 0; kh < k_h; kh++) {
                const float *row = src + (size_t)(oh * s_h + kh) * wp + (size_t)t0 * s_w;
                for (int kw = 0; kw < k_w; kw++) {
                    const float *tap = row + kw;
                    if (is_max && s_w == 1)
                        for (int j = 0; j < n; j++)
                            acc[j] = max_or_nan(acc[j], tap[j]);
                    else if (is_max && s_w == 2)
                        for (int j = 0; j < n; j++)
                            acc[j] = max_or_nan(acc[j], tap[2 * j]);
                    else if (is_max)
                        for (int j = 0; j < n; j++)
                            acc[j] = max_or_nan(acc[j], tap[(size_t)j * s_w]);
                    else if (s_w == 1)
                        for (int j = 0; j < n; j++)
                            acc[j] += tap[j];
                    else if (s_w == 2)
                        for (int j = 0; j < n; j++)
                            acc[j] += tap[2 * j];
                    else
                        for (int j = 0; j < n; j++)
                            acc[j] += tap[(size_t)j * s_w];
                }
            }
            float *dst = out + (size_t)oh * g->w_out + t0;
            if (is_max) {
                memcpy(dst, acc, sizeof(float) * (size_t)n);
                continue;
            }
            /* the divisor (a small whole number, so the float product is exact): one division
             * per output, as gan_sum_window's callers divide, in a loop that vectorises */
            const float rows = (float)(count_include_pad ? rows_padded : rows_inside);
            const float *cols = col_counts + t0;
            for (int j = 0; j < n; j++)
                dst[j] = acc[j] / (rows * cols[j]);
        }
    }
}

static gan_status pool_forward(const gan_pool2d_geom *g, bool is_max, bool count_include_pad, const float *x, float *y)
{
    const long planes = (long)g->n * g->c;
    const size_t plane_in = (size_t)g->h_in * g->w_in, plane_out = (size_t)g->h_out * g->w_out;
    const size_t padded = (g->pad_h || g->pad_w) ? (size_t)(g->h_in + 2 * g->pad_h) * (g->w_in + 2 * g->pad_w) : 0;
    float *col_counts = malloc((size_t)g->w_out * sizeof *col_counts);
    if (!col_counts)
        return gan_error(GAN_ERR_NOMEM, "cpu pooling: out of memory");
    column_counts(g, count_include_pad, col_counts);
    gan_status status = GAN_OK;
#pragma omp parallel PARALLEL_IF(planes * plane_out * g->k_h * g->k_w)
    {
        float *buffer = padded ? malloc(padded * sizeof *buffer) : NULL;
        if (padded && !buffer)
            gan_status_keep_first(&status, GAN_ERR_NOMEM);
#pragma omp for schedule(static)
        for (long p = 0; p < planes; p++)
            if (!padded || buffer)
                pool_plane(g, is_max, count_include_pad, x + (size_t)p * plane_in, y + (size_t)p * plane_out, buffer,
                           col_counts);
        free(buffer);
    }
    free(col_counts);
    if (status != GAN_OK)
        return gan_error(status, "cpu pooling: out of memory for a padded plane of %zu values", padded);
    return GAN_OK;
}

gan_status cpu_max_pool_forward(gan_backend *be, const gan_pool2d_geom *g, const float *x, float *y)
{
    GAN_TRY(check_pool("max pool", g, x, y));
    return pool_forward(g, true, false, x, y);
}

gan_status cpu_avg_pool_forward(gan_backend *be, const gan_pool2d_geom *g, bool count_include_pad,
                                const float *x, float *y)
{
    GAN_TRY(check_pool("average pool", g, x, y));
    return pool_forward(g, false, count_include_pad, x, y);
}

gan_status cpu_global_avg_pool(gan_backend *be, int n, int c, int hw, const float *x, float *y)
{
    if (n < 1 || c < 1 || hw < 1 || !x || !y)
        return gan_error(GAN_ERR_ARG, "cpu global average pool: bad arguments [%d, %d, %d]", n, c, hw);
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) PARALLEL_IF((size_t)planes * hw)
    for (long p = 0; p < planes; p++)
        y[p] = gan_sum_window(x + (size_t)p * hw, hw, 0, 1, 0, hw) / (float)hw;
    return GAN_OK;
}

gan_status cpu_copy_channels(gan_backend *be, int n, int c, int hw, const float *x, int y_channels,
                             int offset, float *y)
{
    if (n < 0 || c < 0 || hw < 0 || offset < 0 || y_channels < 0 || (long)offset + c > y_channels)
        return gan_error(GAN_ERR_ARG, "cpu copy channels: %d channels at %d do not fit %d", c, offset, y_channels);
    if (n && c && hw && (!x || !y))
        return gan_error(GAN_ERR_ARG, "cpu copy channels: NULL pointer");
    const size_t block = (size_t)c * hw;
#pragma omp parallel for schedule(static) PARALLEL_IF(block * n)
    for (int i = 0; i < n; i++)
        memcpy(y + ((size_t)i * y_channels + offset) * hw, x + (size_t)i * block, block * sizeof(float));
    return GAN_OK;
}

gan_status cpu_resize_bilinear(gan_backend *be, int n, int c, int h_in, int w_in, int h_out, int w_out,
                               const float *x, float *y)
{
    if (n < 1 || c < 1 || h_in < 1 || w_in < 1 || h_out < 1 || w_out < 1 || !x || !y)
        return gan_error(GAN_ERR_ARG, "cpu bilinear resize: bad arguments [%d, %d, %d, %d] -> %dx%d", n, c,
                         h_in, w_in, h_out, w_out);
    const long planes = (long)n * c;
    const size_t plane_in = (size_t)h_in * w_in, plane_out = (size_t)h_out * w_out;
#pragma omp parallel for schedule(static) PARALLEL_IF((size_t)planes * plane_out * 4)
    for (long p = 0; p < planes; p++) {
        const float *in = x + (size_t)p * plane_in;
        float *out = y + (size_t)p * plane_out;
        for (int oh = 0; oh < h_out; oh++) {
            gan_bilinear_taps h = gan_bilinear_taps_at(oh, h_in, h_out);
            for (int ow = 0; ow < w_out; ow++)
                out[(size_t)oh * w_out + ow] = gan_bilinear_value(in, w_in, h, gan_bilinear_taps_at(ow, w_in, w_out));
        }
    }
    return GAN_OK;
}

gan_status cpu_bias_act_forward(gan_backend *be, int n, int c, int hw, const float *bias, gan_activation act,
                                float slope, float *y)
{
    if (n < 0 || c < 0 || hw < 0 || (n && c && hw && (!bias || !y)))
        return gan_error(GAN_ERR_ARG, "cpu bias + activation: bad arguments [%d, %d, %d]", n, c, hw);
    if (!gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "cpu bias + activation: unknown activation %d", (int)act);
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) PARALLEL_IF((size_t)planes * hw)
    for (long p = 0; p < planes; p++)
        cpu_bias_act_plane(y + (size_t)p * hw, (size_t)hw, bias[p % c], act, slope);
    return GAN_OK;
}
