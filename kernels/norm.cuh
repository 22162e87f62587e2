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
    float sum = 0.0f;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x)
        sum += x[gan_channel_element(j, ch, c, hw)];
    double total = gan_block_sum_double((double)sum, partial);
    if (threadIdx.x == 0)
        channel_mean = (float)(total / (double)count);
    __syncthreads();
    const float m = channel_mean;
    float squares = 0.0f;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        float d = x[gan_channel_element(j, ch, c, hw)] - m;
        squares += d * d;
    }
    double squares_total = gan_block_sum_double((double)squares, partial);
    __shared__ float channel_alpha, channel_shift;
    if (threadIdx.x == 0) {
        double mean = total / (double)count, var = squares_total / (double)count;
        float invstd = (float)(1.0 / sqrt(var + eps));
        channel_alpha = invstd * gamma[ch];
        channel_shift = beta[ch] - m * channel_alpha;
        save_mean[ch] = m;
        save_invstd[ch] = invstd;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] +
                                  momentum * var * (double)count / ((double)count - 1.0));
    }
    __syncthreads();
    const float alpha = channel_alpha, shift = channel_shift;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float v = x[i] * alpha + shift;
        y[i] = v;
        if (act != GAN_FUSED_NONE)
            y_act[i] = gan_fused_act_forward(act, slope, v);
    }
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
    float sum_g = 0.0f, sum_g_xhat = 0.0f;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float g = act == GAN_FUSED_NONE ? dy[i] : gan_fused_act_backward(act, slope, y[i], dy[i]);
        sum_g += g;
        sum_g_xhat += g * ((x[i] - m) * invstd);
    }
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

#endif
