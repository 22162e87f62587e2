/* The evaluation ops on the CPU (gan/backend.h: pooling, the global average, channel copies for
 * concatenation, the bilinear resize, the bias + activation epilogue): what the FID Inception
 * (src/eval/inception.c) runs besides its convolutions. Inference only.
 *
 * Every output element is computed by one loop iteration from its own inputs in a fixed order
 * (window rows, then columns), with the per-element math of gan/elementwise_math.h that the CUDA
 * kernels (kernels/eval.cuh) call too, so both backends give the same bits. The planes
 * (image, channel) are split over OpenMP threads. */
#include <math.h>
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

/* One output row of a pooling window over one plane: the windows that lie wholly inside the input
 * columns [lo, hi) are computed together, a tile of outputs at a time, with the window's rows
 * outermost and its columns next, so that each output still takes its inputs in the order of
 * gan_max_window / gan_sum_window (rows, then columns) and gets the same bits, while the loop over
 * outputs vectorises (stride 1 or 2); the clipped windows at the edges go one by one through those
 * functions. */
enum { POOL_TILE = 256 };

static inline float max_or_nan(float best, float v)
{
    /* gan_max_window's rule: v wins when larger or NaN (a NaN once in stays: v > NaN is false) */
    return cpu_select_float(v > best || v != v, v, best);
}

static void pool_row(const gan_pool2d_geom *g, bool is_max, bool count_include_pad, const float *in, int oh,
                     float *out_row)
{
    int h0, h1, padded_h;
    gan_pool_window(oh, g->k_h, g->stride_h, g->pad_h, g->h_in, &h0, &h1, &padded_h);
    const int s = g->stride_w, k = g->k_w;
    /* interior: ow * s - pad >= 0 and ow * s - pad + k <= w_in */
    int lo = (g->pad_w + s - 1) / s, hi = g->w_in + g->pad_w - k >= 0 ? (g->w_in + g->pad_w - k) / s + 1 : 0;
    if (hi > g->w_out)
        hi = g->w_out;
    if (lo > hi || (s != 1 && s != 2))
        lo = hi = 0; /* no interior (or an unusual stride): every window one by one */
    for (int ow = 0; ow < g->w_out; ow++) {
        if (ow == lo && hi > lo) {
            ow = hi - 1;
            continue;
        }
        int w0, w1, padded_w;
        gan_pool_window(ow, k, s, g->pad_w, g->w_in, &w0, &w1, &padded_w);
        if (is_max) {
            out_row[ow] = gan_max_window(in, g->w_in, h0, h1, w0, w1);
        } else {
            int divisor = count_include_pad ? padded_h * padded_w : (h1 - h0) * (w1 - w0);
            out_row[ow] = gan_sum_window(in, g->w_in, h0, h1, w0, w1) / (float)divisor;
        }
    }
    const float divisor = (float)(count_include_pad ? padded_h * k : (h1 - h0) * k);
    float acc[POOL_TILE];
    for (int t0 = lo; t0 < hi; t0 += POOL_TILE) {
        const int n = hi - t0 < POOL_TILE ? hi - t0 : POOL_TILE;
        for (int j = 0; j < n; j++)
            acc[j] = is_max ? -INFINITY : 0.0f;
        for (int ih = h0; ih < h1; ih++) {
            const float *row = in + (size_t)ih * g->w_in + (size_t)(t0 * s - g->pad_w);
            for (int kw = 0; kw < k; kw++) {
                const float *tap = row + kw;
                if (is_max && s == 1)
                    for (int j = 0; j < n; j++)
                        acc[j] = max_or_nan(acc[j], tap[j]);
                else if (is_max)
                    for (int j = 0; j < n; j++)
                        acc[j] = max_or_nan(acc[j], tap[2 * j]);
                else if (s == 1)
                    for (int j = 0; j < n; j++)
                        acc[j] += tap[j];
                else
                    for (int j = 0; j < n; j++)
                        acc[j] += tap[2 * j];
            }
        }
        for (int j = 0; j < n; j++)
            out_row[t0 + j] = is_max ? acc[j] : acc[j] / divisor;
    }
}

static gan_status pool_forward(const gan_pool2d_geom *g, bool is_max, bool count_include_pad, const float *x, float *y)
{
    const long planes = (long)g->n * g->c;
    const size_t plane_in = (size_t)g->h_in * g->w_in, plane_out = (size_t)g->h_out * g->w_out;
#pragma omp parallel for schedule(static) PARALLEL_IF(planes * plane_out * g->k_h * g->k_w)
    for (long p = 0; p < planes; p++)
        for (int oh = 0; oh < g->h_out; oh++)
            pool_row(g, is_max, count_include_pad, x + (size_t)p * plane_in, oh, y + (size_t)p * plane_out + (size_t)oh * g->w_out);
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
    if (act != GAN_ACT_RELU && act != GAN_ACT_LRELU && act != GAN_ACT_TANH && act != GAN_ACT_SIGMOID)
        return gan_error(GAN_ERR_ARG, "cpu bias + activation: unknown activation %d", (int)act);
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) PARALLEL_IF((size_t)planes * hw)
    for (long p = 0; p < planes; p++)
        cpu_bias_act_plane(y + (size_t)p * hw, (size_t)hw, bias[p % c], act, slope);
    return GAN_OK;
}
