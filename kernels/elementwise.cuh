/* Fill, multiply (dropout backward), bias add, and the uint8 NHWC -> float NCHW conversion of an
 * image batch. One element per thread, grid-stride. */
#ifndef GAN_KERNELS_ELEMENTWISE_CUH
#define GAN_KERNELS_ELEMENTWISE_CUH

#include "common.cuh"

/* dst[count] = value */
__global__ void gan_fill_kernel(float *dst, float value, size_t count)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        dst[i] = value;
}

/* data[count] *= scale (the mean after a sum over ranks) */
__global__ void gan_scale_kernel(size_t count, float scale, float *data)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        data[i] *= scale;
}

/* y[count] = a[count] * b[count] */
__global__ void gan_multiply_kernel(size_t count, const float *a, const float *b, float *y)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        y[i] = a[i] * b[i];
}

/* y[n, c, hw] += bias[c]: element i belongs to channel (i / hw) % c (index math in 32 bits where
 * it fits: gan_index_narrow). */
template <typename I>
__device__ __forceinline__ void gan_bias_forward_body(I count, I c, I hw, const float *bias, float *y)
{
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride())
        y[i] += bias[(i / hw) % c];
}
__global__ void gan_bias_forward_kernel(size_t count, size_t c, size_t hw, const float *bias,
                                        float *y)
{
    GAN_INDEX_BODY(count, gan_bias_forward_body, count, c, hw, bias, y);
}

/* nchw [n, c, h*w] float from nhwc [n, h*w, c] uint8: thread i writes output element i (so the
 * writes are coalesced) and reads pixel (b, p) channel ch of the input. */
template <typename I>
__device__ __forceinline__ void gan_images_to_float_body(I count, I c, I hw, const uint8_t *nhwc, float *nchw)
{
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride()) {
        I b = i / (c * hw);
        I ch = (i / hw) % c;
        I p = i % hw;
        nchw[i] = gan_pixel_to_unit(nhwc[(b * hw + p) * c + ch]);
    }
}
__global__ void gan_images_to_float_kernel(size_t count, size_t c, size_t hw, const uint8_t *nhwc,
                                           float *nchw)
{
    /* both have count elements */
    GAN_INDEX_BODY(count, gan_images_to_float_body, count, c, hw, nhwc, nchw);
}

#endif
