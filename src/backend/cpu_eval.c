/* The evaluation ops on the CPU (gan/backend.h: pooling, the global average, channel copies for
 * concatenation, the bilinear resize, the bias + activation epilogue): what the FID Inception
 * (src/eval/inception.c) runs besides its convolutions. Inference only.
 *
 * Every output element is computed by one loop iteration from its own inputs in a fixed order
 * (window rows, then columns), with the per-element math of gan/elementwise_math.h that the CUDA
 * kernels (kernels/eval.cuh) call too, so both backends give the same bits. The planes
 * (image, channel) are split over OpenMP threads. */
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

gan_status cpu_max_pool_forward(gan_backend *be, const gan_pool2d_geom *g, const float *x, float *y)
{
    GAN_TRY(check_pool("max pool", g, x, y));
    const long planes = (long)g->n * g->c;
    const size_t plane_in = (size_t)g->h_in * g->w_in, plane_out = (size_t)g->h_out * g->w_out;
#pragma omp parallel for schedule(static) PARALLEL_IF(planes * plane_out * g->k_h * g->k_w)
    for (long p = 0; p < planes; p++) {
        const float *in = x + (size_t)p * plane_in;
        float *out = y + (size_t)p * plane_out;
        for (int oh = 0; oh < g->h_out; oh++) {
            int h0, h1, unused;
            gan_pool_window(oh, g->k_h, g->stride_h, g->pad_h, g->h_in, &h0, &h1, &unused);
            for (int ow = 0; ow < g->w_out; ow++) {
                int w0, w1;
                gan_pool_window(ow, g->k_w, g->stride_w, g->pad_w, g->w_in, &w0, &w1, &unused);
                out[(size_t)oh * g->w_out + ow] = gan_max_window(in, g->w_in, h0, h1, w0, w1);
            }
        }
    }
    return GAN_OK;
}

gan_status cpu_avg_pool_forward(gan_backend *be, const gan_pool2d_geom *g, bool count_include_pad,
                                const float *x, float *y)
{
    GAN_TRY(check_pool("average pool", g, x, y));
    const long planes = (long)g->n * g->c;
    const size_t plane_in = (size_t)g->h_in * g->w_in, plane_out = (size_t)g->h_out * g->w_out;
#pragma omp parallel for schedule(static) PARALLEL_IF(planes * plane_out * g->k_h * g->k_w)
    for (long p = 0; p < planes; p++) {
        const float *in = x + (size_t)p * plane_in;
        float *out = y + (size_t)p * plane_out;
        for (int oh = 0; oh < g->h_out; oh++) {
            int h0, h1, padded_h;
            gan_pool_window(oh, g->k_h, g->stride_h, g->pad_h, g->h_in, &h0, &h1, &padded_h);
            for (int ow = 0; ow < g->w_out; ow++) {
                int w0, w1, padded_w;
                gan_pool_window(ow, g->k_w, g->stride_w, g->pad_w, g->w_in, &w0, &w1, &padded_w);
                int divisor = count_include_pad ? padded_h * padded_w : (h1 - h0) * (w1 - w0);
                out[(size_t)oh * g->w_out + ow] = gan_sum_window(in, g->w_in, h0, h1, w0, w1) / (float)divisor;
            }
        }
    }
    return GAN_OK;
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
    for (long p = 0; p < planes; p++) {
        const float b = bias[p % c];
        float *plane = y + (size_t)p * hw;
        switch (act) {
        case GAN_ACT_RELU:
            for (int j = 0; j < hw; j++)
                plane[j] = gan_relu_forward(plane[j] + b);
            break;
        case GAN_ACT_LRELU:
            for (int j = 0; j < hw; j++)
                plane[j] = cpu_lrelu_forward(plane[j] + b, slope);
            break;
        case GAN_ACT_TANH:
            for (int j = 0; j < hw; j++)
                plane[j] = gan_tanh_forward(plane[j] + b);
            break;
        case GAN_ACT_SIGMOID:
            for (int j = 0; j < hw; j++)
                plane[j] = gan_sigmoid_forward(plane[j] + b);
            break;
        }
    }
    return GAN_OK;
}
