/* Philox4x32-10 fills and dropout. Value i of a fill is gan_philox_normal_at / _uniform_at(seed,
 * stream, offset, i), the same function the CPU backend calls, so both backends draw the same
 * numbers for the same (seed, stream, offset): exactly for uniforms and dropout masks, and up to
 * the last bits of the device's logf/sinf/cosf for normals. Each thread computes the Philox
 * block of its own value; neighbouring threads recompute the same block (four values per block),
 * which costs a few integer multiplies and keeps the value-to-thread mapping trivially equal to
 * the CPU's. */
#ifndef GAN_KERNELS_RANDOM_CUH
#define GAN_KERNELS_RANDOM_CUH

#include "common.cuh"

/* out[count] = mean + std * z_i */
__global__ void gan_rng_normal_kernel(size_t count, uint64_t seed, uint64_t stream,
                                      uint64_t offset, float mean, float std, float *out)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        out[i] = mean + std * gan_philox_normal_at(seed, stream, offset, i);
}

/* out[count] = low + (high - low) * u_i, u_i in [0, 1) */
__global__ void gan_rng_uniform_kernel(size_t count, uint64_t seed, uint64_t stream,
                                       uint64_t offset, float low, float high, float *out)
{
    float range = high - low;
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        out[i] = low + range * gan_philox_uniform_at(seed, stream, offset, i);
}

/* mask[count] = 0 or 1/(1-p) from u_i; y[count] = x * mask. */
__global__ void gan_dropout_forward_kernel(size_t count, float p, uint64_t seed, uint64_t stream,
                                           uint64_t offset, const float *x, float *mask,
                                           float *y)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float keep_scale = gan_dropout_keep_scale(gan_philox_uniform_at(seed, stream, offset, i), p);
        mask[i] = keep_scale;
        y[i] = x[i] * keep_scale;
    }
}

#endif
