/* Shared by every kernel body: the block size, the grid-stride index, and the fixed-order block
 * reduction. Included by kernels/NAME.cuh; compiled by nvcc, or as host C++ under
 * kernels/cuda_emulation.h (which must then be included first). */
#ifndef GAN_KERNELS_COMMON_CUH
#define GAN_KERNELS_COMMON_CUH

#include <stddef.h>
#include <stdint.h>

#include "gan/backend.h"
#include "gan/elementwise_math.h"

/* Threads per block of every kernel. A power of two: the block reduction relies on it. */
#define GAN_BLOCK_THREADS 256

/* Grid-stride loops: element i of `count` is handled by thread i, i + stride, ... so any grid
 * size covers any count (the launcher caps the grid). */
__device__ __forceinline__ size_t gan_thread_index(void)
{
    return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ size_t gan_thread_stride(void)
{
    return (size_t)gridDim.x * blockDim.x;
}

/* Index math in 32 bits where it fits. The GPU has no 64-bit integer divide: each 64-bit / or %
 * is a software routine of tens of instructions, and an indexing kernel with several per element
 * (a gather, im2col) spends more on them than on its memory traffic. Such a kernel takes its body
 * as a template over the index type and runs it in uint32_t when gan_index_narrow(extent) says
 * so, else in size_t: `extent` is the element count of the largest array it indexes, and below
 * 2^31 every index it forms, and every index plus the grid stride (under 2^24: the launchers cap
 * grids at 65535 blocks of GAN_BLOCK_THREADS), stays below 2^32. The same arithmetic either way,
 * so the same elements and values. */
#ifdef GAN_CUDA_EMULATION
/* Under the emulation a test may lower the limit (to 0: every kernel takes its size_t body), so
 * that both bodies of every kernel run through the launchers at the tests' sizes. */
static size_t gan_index_narrow_limit = (size_t)1 << 31;
#define GAN_INDEX_NARROW_LIMIT gan_index_narrow_limit
#else
#define GAN_INDEX_NARROW_LIMIT ((size_t)1 << 31)
#endif
__host__ __device__ __forceinline__ bool gan_index_narrow(size_t extent)
{
    return extent <= GAN_INDEX_NARROW_LIMIT;
}
/* A kernel's body run at the index width gan_index_narrow(extent) allows: body<uint32_t>(...) or
 * body<size_t>(...), the same arguments (the sizes convert to the body's index type: they fit
 * where it is narrow). */
#define GAN_INDEX_BODY(extent, body, ...)      \
    do {                                       \
        if (gan_index_narrow(extent))          \
            body<uint32_t>(__VA_ARGS__);       \
        else                                   \
            body<size_t>(__VA_ARGS__);         \
    } while (0)

/* The shared-memory tree of the block sums stops at this many partials, one per lane of warp 0,
 * which finishes with shuffles. */
#define GAN_WARP_THREADS 32
#if GAN_BLOCK_THREADS < GAN_WARP_THREADS
#error "GAN_BLOCK_THREADS must be at least a warp"
#endif

/* Sums `value` over the GAN_BLOCK_THREADS threads of the block in a fixed order: a binary tree
 * pairing thread t with t + half, over shared memory down to 32 partials, then within warp 0 by
 * shuffles (lane t adds lane t + offset, offset 16, 8, 4, 2, 1: the same pairs as the shared
 * tree would take, with no barrier). The order depends only on the block size, so a reduction
 * gives the same bits on every run (no atomics). Every thread of the block must call it (it
 * synchronises); the total is returned to thread 0 only. `partial` is a __shared__
 * float[GAN_BLOCK_THREADS] of the calling kernel, used by this call alone. After the last barrier
 * warp 0 reads only its own slots partial[t], t < 32, so a next call may reuse `partial` at once. */
__device__ __forceinline__ float gan_block_sum(float value, float *partial)
{
    unsigned t = threadIdx.x;
    partial[t] = value;
    __syncthreads();
    for (unsigned half = GAN_BLOCK_THREADS / 2; half >= GAN_WARP_THREADS; half /= 2) {
        if (t < half)
            partial[t] += partial[t + half];
        __syncthreads();
    }
    float total = 0.0f;
    if (t < GAN_WARP_THREADS) { /* all of warp 0: the full mask */
        total = partial[t];
        for (unsigned offset = GAN_WARP_THREADS / 2; offset > 0; offset /= 2)
            total += __shfl_down_sync(0xffffffffu, total, offset);
    }
    return t == 0 ? total : 0.0f;
}

/* The same sum in double, for reductions whose terms are many float partial sums (batch norm's
 * statistics): `partial` is a __shared__ double[GAN_BLOCK_THREADS]. */
__device__ __forceinline__ double gan_block_sum_double(double value, double *partial)
{
    unsigned t = threadIdx.x;
    partial[t] = value;
    __syncthreads();
    for (unsigned half = GAN_BLOCK_THREADS / 2; half >= GAN_WARP_THREADS; half /= 2) {
        if (t < half)
            partial[t] += partial[t + half];
        __syncthreads();
    }
    double total = 0.0;
    if (t < GAN_WARP_THREADS) {
        total = partial[t];
        for (unsigned offset = GAN_WARP_THREADS / 2; offset > 0; offset /= 2)
            total += __shfl_down_sync(0xffffffffu, total, offset);
    }
    return t == 0 ? total : 0.0;
}

#endif
