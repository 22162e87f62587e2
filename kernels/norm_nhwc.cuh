/* Batch norm (with the ReLU or LeakyReLU after it fused, or none) over tensors a model stores
 * between layers in NHWC (gan_storage: BF16 in bf16, FP32 in tf32): the CUDA backend's batch norm
 * there, where its neighbours are convolutions that read and write that storage. The formulas
 * are the FP32 NCHW kernels' (kernels/norm.cuh, the CPU backend's src/backend/cpu_norm.c): statistics, affine map
 * and gradient sums in float per thread and double across threads and chunks, the saved and
 * running statistics FP32; only the loads and stores differ, widening BF16 exactly and rounding
 * to nearest even on the way out (FP32 NHWC values are moved as they are).
 *
 * Each tensor has its own storage (x and dx `in_storage`, y, y_act and dy `out_storage`): a batch
 * norm whose input comes from a layer that keeps FP32 NCHW (a whole-input GEMM) and whose output
 * goes into a convolution, or the other way round, runs here too. The kernels see a tensor as
 * [rows = n hw, c], row r = m hw + p: in NHWC element r c + ch, in FP32 NCHW (m c + ch) hw + p
 * (gan_channel_element).
 *
 * The work is laid out for NHWC, where a row's channels are contiguous: a block of
 * GAN_BLOCK_THREADS threads is GAN_BN_NHWC_LANES channel lanes (a warp reads 32 neighbouring
 * channels of one row: coalesced) times GAN_BN_NHWC_GROUPS row groups, and takes one tile of 32
 * channels over one chunk of rows (gan_bn_chunk_range over the rows; how many chunks:
 * gan_cuda_bn_nhwc_chunks, from the shape and the scratch size alone). Block b is tile b / chunks,
 * chunk b % chunks. A thread sums its channel over the rows begin + group, + 8, ... in float; the
 * block adds its 8 groups per channel in group order in double; the chunks' doubles are added in
 * chunk order (gan_bn_fold). Every step has a fixed order, so a run repeats bit for bit (the order
 * is not the FP32 NCHW kernels', so the two round differently).
 *
 * Training forward: each chunk's sum and its squares about its own mean (one launch, the chunk read
 * twice), through the scratch ([c][chunks] sums, then [c][chunks] squares), then the statistics,
 * combined in chunk order as Chan et al. do (gan_bn_nhwc_fold_stats), and y (another launch);
 * backward: sum g and sum g xhat into [2c][chunks], then dgamma, dbeta and dx. With one chunk,
 * each is one launch running the same code. Eval forward: one elementwise launch. */
#ifndef GAN_KERNELS_NORM_NHWC_CUH
#define GAN_KERNELS_NORM_NHWC_CUH

#include "common.cuh"
#include "gan_kernels.h"
#include "norm.cuh"

#ifndef GAN_CUDA_EMULATION
#include <cuda_bf16.h>
#endif

#define GAN_BN_NHWC_LANES 32
#define GAN_BN_NHWC_GROUPS (GAN_BLOCK_THREADS / GAN_BN_NHWC_LANES)
static_assert(GAN_BLOCK_THREADS % GAN_BN_NHWC_LANES == 0, "a block must be whole lanes of row groups");

/* Element (row r, channel ch) of a [rows, c] tensor in `storage`. */
__device__ __forceinline__ size_t gan_stored_index(int storage, size_t r, size_t ch, size_t c, size_t hw)
{
    return storage == GAN_STORAGE_F32_NCHW ? gan_channel_element(r, ch, c, hw) : r * c + ch;
}
/* The value at element i of a tensor in `storage` (BF16 widened exactly). */
__device__ __forceinline__ float gan_stored_load(const void *t, int storage, size_t i)
{
    if (storage == GAN_STORAGE_BF16_NHWC)
        return __bfloat162float(((const __nv_bfloat16 *)t)[i]);
    return ((const float *)t)[i];
}
/* Stores v at element i (rounded to nearest even in BF16). */
__device__ __forceinline__ void gan_stored_store(void *t, int storage, size_t i, float v)
{
    if (storage == GAN_STORAGE_BF16_NHWC)
        ((__nv_bfloat16 *)t)[i] = __float2bfloat16_rn(v);
    else
        ((float *)t)[i] = v;
}

/* This block's tile and chunk, its thread's channel (valid: ch < c) and row group, and its rows. */
struct gan_bn_nhwc_place {
    size_t ch, group, chunk, begin, end;
    bool valid;
};
__device__ __forceinline__ gan_bn_nhwc_place gan_bn_nhwc_place_of(size_t rows, size_t c, size_t chunks)
{
    gan_bn_nhwc_place at;
    size_t tile = blockIdx.x / chunks;
    at.chunk = blockIdx.x % chunks;
    at.ch = tile * GAN_BN_NHWC_LANES + threadIdx.x % GAN_BN_NHWC_LANES;
    at.group = threadIdx.x / GAN_BN_NHWC_LANES;
    at.valid = at.ch < c;
    gan_bn_chunk_range(rows, chunks, at.chunk, &at.begin, &at.end);
    return at;
}

/* The sum over the block's row groups of each lane's `value`, in group order, in double: returned
 * to the threads of group 0 (lane l gets channel l's). `partial` is a __shared__
 * double[GAN_BLOCK_THREADS]. Every thread must call it (it synchronises twice, so the next call
 * may reuse `partial`). */
__device__ __forceinline__ double gan_bn_nhwc_group_sum(double value, double *partial)
{
    partial[threadIdx.x] = value;
    __syncthreads();
    double total = 0.0;
    if (threadIdx.x < GAN_BN_NHWC_LANES)
        for (unsigned g = 0; g < GAN_BN_NHWC_GROUPS; g++)
            total += partial[g * GAN_BN_NHWC_LANES + threadIdx.x];
    __syncthreads();
    return total;
}

/* The mean a chunk's squares are taken about: its own sum over its n_k rows, as a float (the
 * statistics kernel and the fold compute it alike). */
__device__ __forceinline__ float gan_bn_nhwc_chunk_mean(double sum, size_t n_k) { return (float)(sum / (double)n_k); }

/* The block's chunk of its 32 channels: sums[ch][chunk] = sum of x over the chunk's rows, then
 * squares[ch][chunk] = sum of (x - m_k)^2 about the chunk's own mean m_k (a second pass over the
 * same rows, just read). Group 0's threads write their channel's two values and alone read them
 * again (gan_bn_nhwc_forward_part). */
__device__ void gan_bn_nhwc_stats_part(const gan_bn_nhwc_place &at, size_t c, size_t hw, size_t chunks,
                                       int in_storage, const void *x, double *sums, double *squares)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    __shared__ float mean[GAN_BN_NHWC_LANES];
    const size_t lane = threadIdx.x % GAN_BN_NHWC_LANES;
    float sum = 0.0f;
    if (at.valid)
        for (size_t r = at.begin + at.group; r < at.end; r += GAN_BN_NHWC_GROUPS)
            sum += gan_stored_load(x, in_storage, gan_stored_index(in_storage, r, at.ch, c, hw));
    double total = gan_bn_nhwc_group_sum((double)sum, partial);
    if (at.group == 0 && at.valid) {
        sums[at.ch * chunks + at.chunk] = total;
        mean[lane] = gan_bn_nhwc_chunk_mean(total, at.end - at.begin);
    }
    __syncthreads();
    float squared = 0.0f;
    if (at.valid) {
        const float m = mean[lane];
        for (size_t r = at.begin + at.group; r < at.end; r += GAN_BN_NHWC_GROUPS) {
            float d = gan_stored_load(x, in_storage, gan_stored_index(in_storage, r, at.ch, c, hw)) - m;
            squared += d * d;
        }
    }
    double squared_total = gan_bn_nhwc_group_sum((double)squared, partial);
    if (at.group == 0 && at.valid)
        squares[at.ch * chunks + at.chunk] = squared_total;
}

/* The statistics of channel ch from its chunks' sums and squares, in chunk order and double: the
 * mean, and the sum of squares about it as Chan et al. combine the chunks' (each chunk's squares
 * about its own float mean m_k, moved to the total mean: S_k + 2 (m_k - mean)(sum_k - n_k m_k)
 * + n_k (m_k - mean)^2, exact in exact arithmetic). */
__device__ void gan_bn_nhwc_fold_stats(size_t rows, size_t chunks, size_t ch, const double *sums,
                                       const double *squares, double *mean, double *var)
{
    const double *sum_row = sums + ch * chunks, *square_row = squares + ch * chunks;
    double total = sum_row[0];
    for (size_t k = 1; k < chunks; k++)
        total += sum_row[k];
    const double count = (double)rows, m = total / count;
    double m2 = 0.0;
    for (size_t k = 0; k < chunks; k++) {
        size_t begin, end;
        gan_bn_chunk_range(rows, chunks, k, &begin, &end);
        const double n_k = (double)(end - begin), m_k = gan_bn_nhwc_chunk_mean(sum_row[k], end - begin);
        m2 += square_row[k] + 2.0 * (m_k - m) * (sum_row[k] - n_k * m_k) + n_k * (m_k - m) * (m_k - m);
    }
    *mean = m;
    *var = m2 / count;
}

/* The statistics from the chunks' sums and squares (chunk 0's blocks write the saved and running
 * ones, as gan_bn_finish_forward), then y = x alpha + shift and y_act = act(y) over the block's
 * rows. */
__device__ void gan_bn_nhwc_forward_part(const gan_bn_nhwc_place &at, size_t rows, size_t c, size_t hw,
                                         size_t chunks, int in_storage, const void *x, const float *gamma,
                                         const float *beta, float momentum, float eps, const double *sums,
                                         const double *squares, float *running_mean, float *running_var,
                                         float *save_mean, float *save_invstd, int out_storage, void *y, int act,
                                         float slope, void *y_act)
{
    __shared__ float alpha[GAN_BN_NHWC_LANES], shift[GAN_BN_NHWC_LANES];
    const size_t lane = threadIdx.x % GAN_BN_NHWC_LANES;
    if (at.group == 0 && at.valid) {
        double mean, var;
        gan_bn_nhwc_fold_stats(rows, chunks, at.ch, sums, squares, &mean, &var);
        gan_bn_statistics(at.ch, mean, var, (double)rows, at.chunk == 0, gamma, beta, momentum, eps, running_mean,
                          running_var, save_mean, save_invstd, &alpha[lane], &shift[lane]);
    }
    __syncthreads();
    if (!at.valid)
        return;
    const float a = alpha[lane], sh = shift[lane];
    for (size_t r = at.begin + at.group; r < at.end; r += GAN_BN_NHWC_GROUPS) {
        float v = gan_stored_load(x, in_storage, gan_stored_index(in_storage, r, at.ch, c, hw)) * a + sh;
        size_t o = gan_stored_index(out_storage, r, at.ch, c, hw);
        gan_stored_store(y, out_storage, o, v);
        if (act != GAN_FUSED_NONE)
            gan_stored_store(y_act, out_storage, o, gan_fused_act_forward(act, slope, v));
    }
}

/* Several chunks: the statistics of every chunk (one launch), then the forward (another). */
__global__ void gan_bn_nhwc_stats_kernel(size_t rows, size_t c, size_t hw, size_t chunks, int in_storage,
                                         const void *x, double *sums, double *squares)
{
    gan_bn_nhwc_stats_part(gan_bn_nhwc_place_of(rows, c, chunks), c, hw, chunks, in_storage, x, sums, squares);
}

__global__ void gan_bn_nhwc_forward_kernel(size_t rows, size_t c, size_t hw, size_t chunks, int in_storage,
                                           const void *x, const float *gamma, const float *beta, float momentum,
                                           float eps, const double *sums, const double *squares,
                                           float *running_mean, float *running_var, float *save_mean,
                                           float *save_invstd, int out_storage, void *y, int act, float slope,
                                           void *y_act)
{
    gan_bn_nhwc_forward_part(gan_bn_nhwc_place_of(rows, c, chunks), rows, c, hw, chunks, in_storage, x, gamma, beta,
                             momentum, eps, sums, squares, running_mean, running_var, save_mean, save_invstd,
                             out_storage, y, act, slope, y_act);
}

/* One chunk: the whole training forward in one launch, the same code (the statistics through the
 * scratch, written and read again by the same threads). */
__global__ void gan_bn_nhwc_train_one_kernel(size_t rows, size_t c, size_t hw, int in_storage, const void *x,
                                             const float *gamma, const float *beta, float momentum, float eps,
                                             double *sums, double *squares, float *running_mean,
                                             float *running_var, float *save_mean, float *save_invstd,
                                             int out_storage, void *y, int act, float slope, void *y_act)
{
    gan_bn_nhwc_place at = gan_bn_nhwc_place_of(rows, c, 1);
    gan_bn_nhwc_stats_part(at, c, hw, 1, in_storage, x, sums, squares);
    gan_bn_nhwc_forward_part(at, rows, c, hw, 1, in_storage, x, gamma, beta, momentum, eps, sums, squares,
                             running_mean, running_var, save_mean, save_invstd, out_storage, y, act, slope, y_act);
}

/* The gradient at the batch norm's output at element o of the out tensors: dy, or through the
 * fused activation from its output y_act. */
__device__ __forceinline__ float gan_bn_nhwc_output_grad(int out_storage, const void *y_act, const void *dy, int act,
                                                         float slope, size_t o)
{
    float d = gan_stored_load(dy, out_storage, o);
    return act == GAN_FUSED_NONE ? d : gan_fused_act_backward(act, slope, gan_stored_load(y_act, out_storage, o), d);
}

/* partials[ch][chunk] = sum g, partials[c + ch][chunk] = sum g xhat over the block's rows (group 0
 * writes its channel's, and alone reads them again: gan_bn_nhwc_backward_part) */
__device__ void gan_bn_nhwc_grad_part(const gan_bn_nhwc_place &at, size_t c, size_t hw, size_t chunks,
                                      int in_storage, const void *x, int out_storage, const void *y_act,
                                      const void *dy, int act, float slope, const float *save_mean,
                                      const float *save_invstd, double *partials)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    float sum_g = 0.0f, sum_g_xhat = 0.0f;
    if (at.valid) {
        const float m = save_mean[at.ch], invstd = save_invstd[at.ch];
        for (size_t r = at.begin + at.group; r < at.end; r += GAN_BN_NHWC_GROUPS) {
            float g = gan_bn_nhwc_output_grad(out_storage, y_act, dy, act, slope,
                                              gan_stored_index(out_storage, r, at.ch, c, hw));
            float xv = gan_stored_load(x, in_storage, gan_stored_index(in_storage, r, at.ch, c, hw));
            sum_g += g;
            sum_g_xhat += g * ((xv - m) * invstd);
        }
    }
    double total_g = gan_bn_nhwc_group_sum((double)sum_g, partial);
    double total_g_xhat = gan_bn_nhwc_group_sum((double)sum_g_xhat, partial);
    if (at.group == 0 && at.valid) {
        partials[at.ch * chunks + at.chunk] = total_g;
        partials[(c + at.ch) * chunks + at.chunk] = total_g_xhat;
    }
}

/* dx over the block's rows from the folded (sum g, sum g xhat), as gan_bn_finish_backward; chunk 0's
 * blocks write dgamma, dbeta = param_beta old + them. */
__device__ void gan_bn_nhwc_backward_part(const gan_bn_nhwc_place &at, size_t rows, size_t c, size_t hw,
                                          size_t chunks, int in_storage, const void *x, int out_storage,
                                          const void *y_act, const void *dy, int act, float slope,
                                          const float *gamma, const float *save_mean, const float *save_invstd,
                                          const double *sums, float param_beta, float *dgamma, float *dbeta,
                                          void *dx)
{
    __shared__ float g_scale[GAN_BN_NHWC_LANES], x_scale[GAN_BN_NHWC_LANES], offset[GAN_BN_NHWC_LANES];
    const size_t lane = threadIdx.x % GAN_BN_NHWC_LANES;
    if (at.group == 0 && at.valid) {
        double sum_g = gan_bn_fold(sums, chunks, at.ch), sum_g_xhat = gan_bn_fold(sums, chunks, c + at.ch);
        if (at.chunk == 0)
            gan_bn_param_grads(at.ch, sum_g, sum_g_xhat, param_beta, dgamma, dbeta);
        gan_bn_backward_coefficients(at.ch, sum_g, sum_g_xhat, (double)rows, gamma, save_invstd, &g_scale[lane],
                                     &x_scale[lane], &offset[lane]);
    }
    __syncthreads();
    if (!at.valid)
        return;
    const float m = save_mean[at.ch], gs = g_scale[lane], xs = x_scale[lane], off = offset[lane];
    for (size_t r = at.begin + at.group; r < at.end; r += GAN_BN_NHWC_GROUPS) {
        float g = gan_bn_nhwc_output_grad(out_storage, y_act, dy, act, slope,
                                          gan_stored_index(out_storage, r, at.ch, c, hw));
        size_t i = gan_stored_index(in_storage, r, at.ch, c, hw);
        gan_stored_store(dx, in_storage, i, gs * g + (xs * (gan_stored_load(x, in_storage, i) - m) + off));
    }
}

/* Several chunks: the sums (one launch), then dx, dgamma, dbeta (another). */
__global__ void gan_bn_nhwc_grad_sums_kernel(size_t rows, size_t c, size_t hw, size_t chunks, int in_storage,
                                             const void *x, int out_storage, const void *y_act, const void *dy,
                                             int act, float slope, const float *save_mean, const float *save_invstd,
                                             double *partials)
{
    gan_bn_nhwc_grad_part(gan_bn_nhwc_place_of(rows, c, chunks), c, hw, chunks, in_storage, x, out_storage, y_act, dy,
                          act, slope, save_mean, save_invstd, partials);
}

__global__ void gan_bn_nhwc_backward_kernel(size_t rows, size_t c, size_t hw, size_t chunks, int in_storage,
                                            const void *x, int out_storage, const void *y_act, const void *dy,
                                            int act, float slope, const float *gamma, const float *save_mean,
                                            const float *save_invstd, const double *sums, float param_beta,
                                            float *dgamma, float *dbeta, void *dx)
{
    gan_bn_nhwc_backward_part(gan_bn_nhwc_place_of(rows, c, chunks), rows, c, hw, chunks, in_storage, x, out_storage,
                              y_act, dy, act, slope, gamma, save_mean, save_invstd, sums, param_beta, dgamma, dbeta,
                              dx);
}

/* One chunk: the whole backward in one launch, the same code. */
__global__ void gan_bn_nhwc_backward_one_kernel(size_t rows, size_t c, size_t hw, int in_storage, const void *x,
                                                int out_storage, const void *y_act, const void *dy, int act,
                                                float slope, const float *gamma, const float *save_mean,
                                                const float *save_invstd, double *sums, float param_beta,
                                                float *dgamma, float *dbeta, void *dx)
{
    gan_bn_nhwc_place at = gan_bn_nhwc_place_of(rows, c, 1);
    gan_bn_nhwc_grad_part(at, c, hw, 1, in_storage, x, out_storage, y_act, dy, act, slope, save_mean, save_invstd,
                          sums);
    gan_bn_nhwc_backward_part(at, rows, c, hw, 1, in_storage, x, out_storage, y_act, dy, act, slope, gamma, save_mean,
                              save_invstd, sums, param_beta, dgamma, dbeta, dx);
}

/* Eval forward, elementwise over the rows c values in NHWC order: y = (x - running_mean) /
 * sqrt(running_var + eps) gamma + beta, the FP32 kernel's formula. */
__global__ void gan_bn_nhwc_forward_eval_kernel(size_t rows, size_t c, size_t hw, int in_storage, const void *x,
                                                const float *gamma, const float *beta, const float *running_mean,
                                                const float *running_var, float eps, int out_storage, void *y)
{
    const size_t count = rows * c;
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        size_t r = i / c, ch = i % c;
        float invstd = 1.0f / sqrtf(running_var[ch] + eps);
        float v = gan_stored_load(x, in_storage, gan_stored_index(in_storage, r, ch, c, hw));
        gan_stored_store(y, out_storage, gan_stored_index(out_storage, r, ch, c, hw),
                         (v - running_mean[ch]) * invstd * gamma[ch] + beta[ch]);
    }
}

#endif
