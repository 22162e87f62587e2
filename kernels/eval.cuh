/* The evaluation ops (gan/backend.h; the FID Inception's inference, src/eval/inception.c):
 * max and average pooling, the global average, channel copies for concatenation, the bilinear
 * resize, and the bias + activation epilogue of a convolution with its batch norm folded in.
 * One output element per thread, grid-stride; each element is computed from its own inputs in
 * a fixed order by the per-element functions of gan/elementwise_math.h, the same ones the CPU
 * backend's loops call (src/backend/cpu_eval.c), so the two give the same bits (but for tanh
 * and sigmoid, whose device expf/tanhf may differ from glibc's by an ulp). */
#ifndef GAN_KERNELS_EVAL_CUH
#define GAN_KERNELS_EVAL_CUH

#include "activation.cuh"
#include "common.cuh"

/* Index math in 32 bits where every index fits (gan_index_narrow, kernels/common.cuh): each kernel's
 * body is a template over the index type I. */

/* y [n, c, h_out, w_out]: element i is plane i / (h_out w_out) at (oh, ow). */
template <typename I>
__device__ __forceinline__ void gan_max_pool_body(const gan_pool2d_geom &g, I count, const float *x, float *y)
{
    const I plane_in = (I)g.h_in * (I)g.w_in, plane_out = (I)g.h_out * (I)g.w_out, w_out = (I)g.w_out;
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride()) {
        I p = i / plane_out, rest = i % plane_out;
        int oh = (int)(rest / w_out), ow = (int)(rest % w_out);
        int h0, h1, w0, w1, padded;
        gan_pool_window(oh, g.k_h, g.stride_h, g.pad_h, g.h_in, &h0, &h1, &padded);
        gan_pool_window(ow, g.k_w, g.stride_w, g.pad_w, g.w_in, &w0, &w1, &padded);
        y[i] = gan_max_window(x + p * plane_in, g.w_in, h0, h1, w0, w1);
    }
}

/* The larger of a pooling's (or resize's) input and output element counts. */
__device__ __forceinline__ size_t gan_planes_extent(size_t count, size_t plane_in, size_t plane_out)
{
    size_t in = plane_out ? count / plane_out * plane_in : 0;
    return in > count ? in : count;
}

__global__ void gan_max_pool_kernel(gan_pool2d_geom g, size_t count, const float *x, float *y)
{
    const size_t extent = gan_planes_extent(count, (size_t)g.h_in * g.w_in, (size_t)g.h_out * g.w_out);
    GAN_INDEX_BODY(extent, gan_max_pool_body, g, count, x, y);
}

template <typename I>
__device__ __forceinline__ void gan_avg_pool_body(const gan_pool2d_geom &g, int count_include_pad, I count,
                                                  const float *x, float *y)
{
    const I plane_in = (I)g.h_in * (I)g.w_in, plane_out = (I)g.h_out * (I)g.w_out, w_out = (I)g.w_out;
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride()) {
        I p = i / plane_out, rest = i % plane_out;
        int oh = (int)(rest / w_out), ow = (int)(rest % w_out);
        int h0, h1, w0, w1, padded_h, padded_w;
        gan_pool_window(oh, g.k_h, g.stride_h, g.pad_h, g.h_in, &h0, &h1, &padded_h);
        gan_pool_window(ow, g.k_w, g.stride_w, g.pad_w, g.w_in, &w0, &w1, &padded_w);
        int divisor = count_include_pad ? padded_h * padded_w : (h1 - h0) * (w1 - w0);
        y[i] = gan_sum_window(x + p * plane_in, g.w_in, h0, h1, w0, w1) / (float)divisor;
    }
}
__global__ void gan_avg_pool_kernel(gan_pool2d_geom g, int count_include_pad, size_t count,
                                    const float *x, float *y)
{
    const size_t extent = gan_planes_extent(count, (size_t)g.h_in * g.w_in, (size_t)g.h_out * g.w_out);
    GAN_INDEX_BODY(extent, gan_avg_pool_body, g, count_include_pad, count, x, y);
}

/* y[planes] = the mean of each plane of x [planes, hw]. */
__global__ void gan_global_avg_pool_kernel(size_t planes, int hw, const float *x, float *y)
{
    for (size_t i = gan_thread_index(); i < planes; i += gan_thread_stride())
        y[i] = gan_sum_window(x + i * (size_t)hw, hw, 0, 1, 0, hw) / (float)hw;
}

/* x [n, c, hw] into channels offset .. offset + c - 1 of y [n, y_channels, hw]: thread i reads
 * element i of x (coalesced) and writes its place in y (coalesced within each image). */
template <typename I>
__device__ __forceinline__ void gan_copy_channels_body(I count, I block, I y_block, I y_offset, const float *x,
                                                       float *y)
{
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride())
        y[(i / block) * y_block + y_offset + i % block] = x[i];
}
__global__ void gan_copy_channels_kernel(size_t count, size_t block, size_t y_block, size_t y_offset,
                                         const float *x, float *y)
{
    /* y has count / block blocks of y_block */
    const size_t y_count = block ? count / block * y_block : 0, extent = count > y_count ? count : y_count;
    GAN_INDEX_BODY(extent, gan_copy_channels_body, count, block, y_block, y_offset, x, y);
}

/* y [planes, h_out, w_out] from x [planes, h_in, w_in]. */
template <typename I>
__device__ __forceinline__ void gan_resize_bilinear_body(I count, int h_in, int w_in, int h_out, int w_out,
                                                         const float *x, float *y)
{
    const I plane_in = (I)h_in * (I)w_in, plane_out = (I)h_out * (I)w_out;
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride()) {
        I p = i / plane_out, rest = i % plane_out;
        int oh = (int)(rest / (I)w_out), ow = (int)(rest % (I)w_out);
        y[i] = gan_bilinear_value(x + p * plane_in, w_in, gan_bilinear_taps_at(oh, h_in, h_out),
                                  gan_bilinear_taps_at(ow, w_in, w_out));
    }
}
__global__ void gan_resize_bilinear_kernel(size_t count, int h_in, int w_in, int h_out, int w_out,
                                           const float *x, float *y)
{
    const size_t extent = gan_planes_extent(count, (size_t)h_in * w_in, (size_t)h_out * w_out);
    GAN_INDEX_BODY(extent, gan_resize_bilinear_body, count, h_in, w_in, h_out, w_out, x, y);
}

/* y[n, c, hw] = act(y + bias[c]); `kind` is a gan_activation (the same for every thread). */
template <typename I>
__device__ __forceinline__ void gan_bias_act_body(I count, I c, I hw, const float *bias, int kind, float slope,
                                                  float *y)
{
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride())
        y[i] = gan_act_or_none(kind, slope, y[i] + bias[(i / hw) % c]);
}
__global__ void gan_bias_act_kernel(size_t count, size_t c, size_t hw, const float *bias, int kind,
                                    float slope, float *y)
{
    GAN_INDEX_BODY(count, gan_bias_act_body, count, c, hw, bias, kind, slope, y);
}

#endif
