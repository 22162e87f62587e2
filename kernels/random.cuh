/* Philox4x32-10 fills and dropout. Value i of a fill is gan_philox_normal_at / _uniform_at(seed,
 * stream, first + i), the same function the CPU backend calls, so both backends draw the same
 * numbers for the same (seed, stream, first): exactly for uniforms and dropout masks, and up to
 * the last bits of the device's logf/sinf/cosf for normals. `first` is *first_base + first_offset,
 * read on the device (first_base may be NULL), so a captured graph draws fresh numbers on every
 * replay. Each thread computes the Philox block of its own value; neighbouring threads recompute
 * the same block (four values per block), which costs a few integer multiplies and keeps the
 * value-to-thread mapping trivially equal to the CPU's. */
#ifndef GAN_KERNELS_RANDOM_CUH
#define GAN_KERNELS_RANDOM_CUH

#include "common.cuh"

__device__ __forceinline__ uint64_t gan_count_read(const uint64_t *base, uint64_t offset)
{
    return (base ? *base : 0) + offset;
}

/* out[count] = mean + std * z_i */
__global__ void gan_rng_normal_kernel(size_t count, uint64_t seed, uint64_t stream,
                                      const uint64_t *first_base, uint64_t first_offset, float mean,
                                      float std, float *out)
{
    uint64_t first = gan_count_read(first_base, first_offset);
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        out[i] = mean + std * gan_philox_normal_at(seed, stream, first + i);
}

/* out[count] = low + (high - low) * u_i, u_i in [0, 1) */
__global__ void gan_rng_uniform_kernel(size_t count, uint64_t seed, uint64_t stream,
                                       const uint64_t *first_base, uint64_t first_offset, float low,
                                       float high, float *out)
{
    float range = high - low;
    uint64_t first = gan_count_read(first_base, first_offset);
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        out[i] = low + range * gan_philox_uniform_at(seed, stream, first + i);
}

/* mask[count] = 0 or 1/(1-p) from u_i; y[count] = x * mask. */
__global__ void gan_dropout_forward_kernel(size_t count, float p, uint64_t seed, uint64_t stream,
                                           const uint64_t *first_base, uint64_t first_offset,
                                           const float *x, float *mask, float *y)
{
    uint64_t first = gan_count_read(first_base, first_offset);
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float keep_scale = gan_dropout_keep_scale(gan_philox_uniform_at(seed, stream, first + i), p);
        mask[i] = keep_scale;
        y[i] = x[i] * keep_scale;
    }
}

/* One thread per count: count[i] += add[i]. */
__global__ void gan_advance_counts_kernel(gan_count_advance advance)
{
    int i = (int)gan_thread_index();
    if (i < advance.n)
        *advance.count[i] += advance.add[i];
}

#endif
