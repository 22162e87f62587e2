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

/* Sums `value` over the GAN_BLOCK_THREADS threads of the block in a fixed order: a binary tree
 * over shared memory, pairing thread t with t + half. The order depends only on the block size,
 * so a reduction gives the same bits on every run (no atomics). Every thread of the block must
 * call it (it synchronises); the total is returned to thread 0 only. `partial` is a
 * __shared__ float[GAN_BLOCK_THREADS] of the calling kernel, used by this call alone. */
__device__ __forceinline__ float gan_block_sum(float value, float *partial)
{
    unsigned t = threadIdx.x;
    partial[t] = value;
    __syncthreads();
    for (unsigned half = GAN_BLOCK_THREADS / 2; half > 0; half /= 2) {
        if (t < half)
            partial[t] += partial[t + half];
        __syncthreads();
    }
    return t == 0 ? partial[0] : 0.0f;
}

/* The same sum in double, for reductions whose terms are many float partial sums (batch norm's
 * statistics): `partial` is a __shared__ double[GAN_BLOCK_THREADS]. */
__device__ __forceinline__ double gan_block_sum_double(double value, double *partial)
{
    unsigned t = threadIdx.x;
    partial[t] = value;
    __syncthreads();
    for (unsigned half = GAN_BLOCK_THREADS / 2; half > 0; half /= 2) {
        if (t < half)
            partial[t] += partial[t + half];
        __syncthreads();
    }
    return t == 0 ? partial[0] : 0.0;
}

#endif
