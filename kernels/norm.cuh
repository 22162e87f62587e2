/* Batch norm over [n, c, hw] per channel, training forward and backward, with the ReLU or
 * LeakyReLU after it fused into the same passes (or none): the CUDA backend's own batch norm,
 * written to the CPU backend's formulas (src/backend/cpu_norm.c) so the two agree within
 * rounding. One block per channel; each thread sums its strided share of the channel in float,
 * and the block adds the threads' sums in double in a fixed tree (gan_block_sum_double), so a run
 * repeats bit for bit. The eval forward is elementwise. */
#ifndef GAN_KERNELS_NORM_CUH
#define GAN_KERNELS_NORM_CUH

#include "common.cuh"
#include "gan_kernels.h" /* GAN_FUSED_NONE */

/* The activation after the batch norm, forward, and its gradient at the batch norm's output from
 * the activation's output y and output gradient dy (LeakyReLU with slope >= 0: y > 0 exactly
 * where its input is). */
__device__ __forceinline__ float gan_fused_act_forward(int act, float slope, float v)
{
    return act == GAN_ACT_RELU ? gan_relu_forward(v) : gan_lrelu_forward(v, slope);
}
__device__ __forceinline__ float gan_fused_act_backward(int act, float slope, float y, float dy)
{
    if (act == GAN_ACT_RELU)
        return gan_relu_backward(y, dy);
    if (act == GAN_ACT_LRELU)
        return y > 0.0f ? dy : dy * slope;
    return dy;
}

/* Element j (0 .. n hw - 1) of channel ch in [n, c, hw]. */
__device__ __forceinline__ size_t gan_channel_element(size_t j, size_t ch, size_t c, size_t hw)
{
    return ((j / hw) * c + ch) * hw + j % hw;
}

/* This thread's float share of channel ch's sums (elements threadIdx.x, + blockDim.x, ...): of x,
 * and of (x - m)^2. The fused and the split kernels below call the same code, so they add the same
 * floats in the same order. */
__device__ __forceinline__ float gan_bn_thread_sum(const float *x, size_t ch, size_t c, size_t hw,
                                                   size_t count)
{
    float sum = 0.0f;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x)
        sum += x[gan_channel_element(j, ch, c, hw)];
    return sum;
}
__device__ __forceinline__ float gan_bn_thread_squares(const float *x, float m, size_t ch, size_t c,
                                                       size_t hw, size_t count)
{
    float squares = 0.0f;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        float d = x[gan_channel_element(j, ch, c, hw)] - m;
        squares += d * d;
    }
    return squares;
}
/* This thread's share of (sum g, sum g xhat), g the gradient at the batch norm's output. */
__device__ __forceinline__ void gan_bn_thread_grad_sums(const float *x, const float *y, const float *dy,
                                                        int act, float slope, float m, float invstd,
                                                        size_t ch, size_t c, size_t hw, size_t count,
                                                        float *sum_g, float *sum_g_xhat)
{
    float g_total = 0.0f, g_xhat_total = 0.0f;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float g = act == GAN_FUSED_NONE ? dy[i] : gan_fused_act_backward(act, slope, y[i], dy[i]);
        g_total += g;
        g_xhat_total += g * ((x[i] - m) * invstd);
    }
    *sum_g = g_total;
    *sum_g_xhat = g_xhat_total;
}

/* The end of a training forward once channel ch's sum and centred sum of squares over `count`
 * values are known: thread 0 writes the saved and running statistics (momentum, unbiased running
 * variance, as PyTorch) and the channel's affine map into `affine` (block shared memory, [2]);
 * then every thread writes its part of y = x alpha + shift and y_act = act(y) over the n hw values
 * here. Shared by the fused kernel and the one that runs after an all-reduce of the sums. */
__device__ void gan_bn_finish_forward(size_t n, size_t c, size_t hw, size_t ch, double sum,
                                      double squares, double count, const float *x,
                                      const float *gamma, const float *beta, float momentum,
                                      float eps, float *running_mean, float *running_var,
                                      float *save_mean, float *save_invstd, float *y, int act,
                                      float slope, float *y_act, float *affine)
{
    if (threadIdx.x == 0) {
        double mean = sum / count, var = squares / count;
        const float m = (float)mean;
        float invstd = (float)(1.0 / sqrt(var + eps));
        affine[0] = invstd * gamma[ch];
        affine[1] = beta[ch] - m * affine[0];
        save_mean[ch] = m;
        save_invstd[ch] = invstd;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * var * count / (count - 1.0));
    }
    __syncthreads();
    const float alpha = affine[0], shift = affine[1];
    for (size_t j = threadIdx.x; j < n * hw; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float v = x[i] * alpha + shift;
        y[i] = v;
        if (act != GAN_FUSED_NONE)
            y_act[i] = gan_fused_act_forward(act, slope, v);
    }
}

/* One block per channel: batch statistics of x, running statistics updated as PyTorch does
 * (momentum, unbiased running variance), y = x invstd gamma + (beta - mean invstd gamma), and
 * y_act = act(y) when act is not GAN_FUSED_NONE. */
__global__ void gan_bn_forward_train_kernel(size_t n, size_t c, size_t hw, const float *x,
                                            const float *gamma, const float *beta, float momentum,
                                            float eps, float *running_mean, float *running_var,
                                            float *save_mean, float *save_invstd, float *y, int act,
                                            float slope, float *y_act)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    __shared__ float channel_mean;
    size_t ch = blockIdx.x, count = n * hw;
    float sum = gan_bn_thread_sum(x, ch, c, hw, count);
    double total = gan_block_sum_double((double)sum, partial);
    if (threadIdx.x == 0)
        channel_mean = (float)(total / (double)count);
    __syncthreads();
    const float m = channel_mean;
    float squares = gan_bn_thread_squares(x, m, ch, c, hw, count);
    double squares_total = gan_block_sum_double((double)squares, partial);
    __shared__ float channel_affine[2];
    gan_bn_finish_forward(n, c, hw, ch, total, squares_total, (double)count, x, gamma, beta, momentum,
                          eps, running_mean, running_var, save_mean, save_invstd, y, act, slope, y_act,
                          channel_affine);
}

/* y[n, c, hw] = (x - running_mean) / sqrt(running_var + eps) gamma + beta, elementwise. */
__global__ void gan_bn_forward_eval_kernel(size_t count, size_t c, size_t hw, const float *x,
                                           const float *gamma, const float *beta,
                                           const float *running_mean, const float *running_var,
                                           float eps, float *y)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        size_t ch = (i / hw) % c;
        float invstd = 1.0f / sqrtf(running_var[ch] + eps);
        y[i] = (x[i] - running_mean[ch]) * invstd * gamma[ch] + beta[ch];
    }
}

/* One block per channel: with g the gradient at the batch norm's output (dy itself, or through
 * the fused activation from its output y and output gradient dy) and xhat = (x - mean) invstd,
 * dx = gamma invstd / N (N g - sum g - xhat sum(g xhat)), dgamma = param_beta dgamma +
 * sum(g xhat), dbeta = param_beta dbeta + sum g (param_beta == 0: not read). */
__global__ void gan_bn_backward_kernel(size_t n, size_t c, size_t hw, const float *x,
                                       const float *y, const float *dy, int act, float slope,
                                       const float *gamma, const float *save_mean,
                                       const float *save_invstd, float *dx, float param_beta,
                                       float *dgamma, float *dbeta)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    __shared__ double channel_sum_g;
    size_t ch = blockIdx.x, count = n * hw;
    const float m = save_mean[ch], invstd = save_invstd[ch];
    float sum_g, sum_g_xhat;
    gan_bn_thread_grad_sums(x, y, dy, act, slope, m, invstd, ch, c, hw, count, &sum_g, &sum_g_xhat);
    double total_g = gan_block_sum_double((double)sum_g, partial);
    if (threadIdx.x == 0)
        channel_sum_g = total_g;
    double total_g_xhat = gan_block_sum_double((double)sum_g_xhat, partial);
    __shared__ float channel_g_scale, channel_x_scale, channel_offset;
    if (threadIdx.x == 0) {
        double a = (double)gamma[ch] * invstd;
        channel_g_scale = (float)a;
        channel_x_scale = (float)(-a * invstd * total_g_xhat / (double)count);
        channel_offset = (float)(-a * channel_sum_g / (double)count);
        dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)total_g_xhat;
        dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)channel_sum_g;
    }
    __syncthreads();
    const float g_scale = channel_g_scale, x_scale = channel_x_scale, offset = channel_offset;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float g = act == GAN_FUSED_NONE ? dy[i] : gan_fused_act_backward(act, slope, y[i], dy[i]);
        dx[i] = g_scale * g + (x_scale * (x[i] - m) + offset);
    }
}

/* ---- batch norm with its statistics summed over ranks (train.sync_bn) ------------------------ *
 * The kernels above split where an all-reduce adds the ranks' sums: the same per-thread floats and
 * the same double tree, so with one rank every value is the fused kernels' bit for bit. `count` is
 * the values per channel over all ranks. One block per channel. */

/* sums[ch] = sum of x over the channel (double) */
__global__ void gan_bn_sums_kernel(size_t n, size_t c, size_t hw, const float *x, double *sums)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    size_t ch = blockIdx.x;
    double total = gan_block_sum_double((double)gan_bn_thread_sum(x, ch, c, hw, n * hw), partial);
    if (threadIdx.x == 0)
        sums[ch] = total;
}

/* squares[ch] = sum of (x - m)^2, m = (float)(sums[ch] / count) */
__global__ void gan_bn_centered_squares_kernel(size_t n, size_t c, size_t hw, const float *x,
                                               const double *sums, double count, double *squares)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    size_t ch = blockIdx.x;
    const float m = (float)(sums[ch] / count);
    double total = gan_block_sum_double((double)gan_bn_thread_squares(x, m, ch, c, hw, n * hw), partial);
    if (threadIdx.x == 0)
        squares[ch] = total;
}

/* gan_bn_forward_train_kernel's outputs from the summed statistics */
__global__ void gan_bn_forward_from_sums_kernel(size_t n, size_t c, size_t hw, const float *x,
                                                const float *gamma, const float *beta, float momentum,
                                                float eps, const double *sums, const double *squares,
                                                double count, float *running_mean, float *running_var,
                                                float *save_mean, float *save_invstd, float *y, int act,
                                                float slope, float *y_act)
{
    __shared__ float channel_affine[2];
    size_t ch = blockIdx.x;
    gan_bn_finish_forward(n, c, hw, ch, sums[ch], squares[ch], count, x, gamma, beta, momentum, eps,
                          running_mean, running_var, save_mean, save_invstd, y, act, slope, y_act,
                          channel_affine);
}

/* This rank's sums[ch] = sum g, sums[c + ch] = sum g xhat; dgamma, dbeta = param_beta old + them */
__global__ void gan_bn_backward_sums_kernel(size_t n, size_t c, size_t hw, const float *x,
                                            const float *y, const float *dy, int act, float slope,
                                            const float *save_mean, const float *save_invstd,
                                            float param_beta, float *dgamma, float *dbeta, double *sums)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    size_t ch = blockIdx.x;
    float sum_g, sum_g_xhat;
    gan_bn_thread_grad_sums(x, y, dy, act, slope, save_mean[ch], save_invstd[ch], ch, c, hw, n * hw, &sum_g,
                            &sum_g_xhat);
    double total_g = gan_block_sum_double((double)sum_g, partial);
    if (threadIdx.x == 0)
        sums[ch] = total_g;
    double total_g_xhat = gan_block_sum_double((double)sum_g_xhat, partial);
    if (threadIdx.x == 0) {
        sums[c + ch] = total_g_xhat;
        dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)total_g_xhat;
        dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)total_g;
    }
}

/* dx from the summed (sum g, sum g xhat): gan_bn_backward_kernel's formula */
__global__ void gan_bn_backward_from_sums_kernel(size_t n, size_t c, size_t hw, const float *x,
                                                 const float *y, const float *dy, int act, float slope,
                                                 const float *gamma, const float *save_mean,
                                                 const float *save_invstd, const double *sums,
                                                 double count, float *dx)
{
    size_t ch = blockIdx.x;
    const float m = save_mean[ch], invstd = save_invstd[ch];
    double a = (double)gamma[ch] * invstd;
    const float g_scale = (float)a, x_scale = (float)(-a * invstd * sums[c + ch] / count);
    const float offset = (float)(-a * sums[ch] / count);
    for (size_t j = threadIdx.x; j < n * hw; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float g = act == GAN_FUSED_NONE ? dy[i] : gan_fused_act_backward(act, slope, y[i], dy[i]);
        dx[i] = g_scale * g + (x_scale * (x[i] - m) + offset);
    }
}

#endif
