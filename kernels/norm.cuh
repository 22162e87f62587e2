/* Batch norm over [n, c, hw] per channel, training forward and backward, with the ReLU or
 * LeakyReLU after it fused into the same passes (or none): the CUDA backend's own batch norm,
 * written to the CPU backend's formulas (src/backend/cpu_norm.c) so the two agree within
 * rounding.
 *
 * A channel's count = n hw values, indexed j = m hw + p, are cut into `chunks` contiguous ranges
 * (gan_bn_chunk_range; how many: gan_cuda_bn_chunks, from the shape alone), one block each, so
 * that a layer with few channels and large planes still fills the GPU (G's [64, 64, 32, 32] at
 * batch 64 is 64 channels of 65536 values: one block per channel would use 64 SMs of 132). Each
 * thread sums its strided share of its block's range in float, the block adds the threads' sums
 * in double in a fixed tree (gan_block_sum_double), and the chunks' doubles are added in chunk
 * order (gan_bn_fold). Every step has a fixed order, so a run repeats bit for bit.
 *
 * With one chunk, one kernel does a whole training forward (or backward). With several, the
 * chunks' sums go through a scratch buffer of doubles between launches: [c][chunks] sums, then
 * [c][chunks] centred squares (forward), or [2c][chunks] (sum g, sum g xhat) (backward), and
 * every block of the last launch folds its channel's row itself. The kernels of train.sync_bn are
 * the same kernels, with the folded rows written out for the all-reduce in between. */
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

/* Element j (0 .. n hw - 1) of channel ch in [n, c, hw]. The division takes 32 bits where j and
 * hw fit (the GPU divides 64-bit integers in software, several times slower); same address. */
__device__ __forceinline__ size_t gan_channel_element(size_t j, size_t ch, size_t c, size_t hw)
{
    if (j <= UINT32_MAX && hw <= UINT32_MAX) {
        unsigned m = (unsigned)j / (unsigned)hw, p = (unsigned)j - m * (unsigned)hw;
        return ((size_t)m * c + ch) * hw + p;
    }
    return ((j / hw) * c + ch) * hw + j % hw;
}

/* Chunk s of `chunks` over a channel's count values: [*begin, *end), ceil(count / chunks) values
 * each, the last ones shorter (empty where count is small; gan_cuda_bn_chunks never asks that). */
__device__ __forceinline__ void gan_bn_chunk_range(size_t count, size_t chunks, size_t s, size_t *begin,
                                                   size_t *end)
{
    size_t length = (count + chunks - 1) / chunks;
    size_t b = s * length < count ? s * length : count;
    *begin = b;
    *end = count - b < length ? count : b + length;
}

/* Channel ch's total of row ch of `parts` [rows][per_channel], added in chunk order (row ch's
 * first value itself where per_channel is 1: a folded sum is the same double again). */
__device__ __forceinline__ double gan_bn_fold(const double *parts, size_t per_channel, size_t ch)
{
    const double *row = parts + ch * per_channel;
    double total = row[0];
    for (size_t k = 1; k < per_channel; k++)
        total += row[k];
    return total;
}

/* This thread's float share of the sums over [begin, end) of channel ch (elements begin +
 * threadIdx.x, + blockDim.x, ...): of x, and of (x - m)^2. Every kernel below calls the same code,
 * so one chunk adds the same floats in the same order in each. */
__device__ __forceinline__ float gan_bn_thread_sum(const float *x, size_t ch, size_t c, size_t hw, size_t begin,
                                                   size_t end)
{
    float sum = 0.0f;
    for (size_t j = begin + threadIdx.x; j < end; j += blockDim.x)
        sum += x[gan_channel_element(j, ch, c, hw)];
    return sum;
}
__device__ __forceinline__ float gan_bn_thread_squares(const float *x, float m, size_t ch, size_t c, size_t hw,
                                                       size_t begin, size_t end)
{
    float squares = 0.0f;
    for (size_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
        float d = x[gan_channel_element(j, ch, c, hw)] - m;
        squares += d * d;
    }
    return squares;
}
/* The gradient at the batch norm's output: dy itself, or through the fused activation. */
__device__ __forceinline__ float gan_bn_output_grad(const float *y, const float *dy, int act, float slope, size_t i)
{
    return act == GAN_FUSED_NONE ? dy[i] : gan_fused_act_backward(act, slope, y[i], dy[i]);
}
/* This thread's share of (sum g, sum g xhat) over [begin, end), g the gradient at the batch
 * norm's output. */
__device__ __forceinline__ void gan_bn_thread_grad_sums(const float *x, const float *y, const float *dy,
                                                        int act, float slope, float m, float invstd,
                                                        size_t ch, size_t c, size_t hw, size_t begin,
                                                        size_t end, float *sum_g, float *sum_g_xhat)
{
    float g_total = 0.0f, g_xhat_total = 0.0f;
    for (size_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float g = gan_bn_output_grad(y, dy, act, slope, i);
        g_total += g;
        g_xhat_total += g * ((x[i] - m) * invstd);
    }
    *sum_g = g_total;
    *sum_g_xhat = g_xhat_total;
}

/* The end of a training forward once channel ch's sum and centred sum of squares over `count`
 * values are known (`sum` and `squares` are read by thread 0 alone: a block sum's total may be
 * thread 0's only): thread 0 puts the channel's affine map into `affine` (block shared memory,
 * [2]) and, where write_stats (the block of chunk 0), writes the saved and running statistics
 * (momentum, unbiased running variance, as PyTorch); then every thread writes its part of
 * y = x alpha + shift and y_act = act(y) over [begin, end). */
/* Channel ch's affine map y = x alpha + shift from its batch mean and (biased) variance over
 * `count` values, and, where write_stats, its saved and running statistics (momentum, unbiased
 * running variance, as PyTorch). Shared by both layouts' kernels (kernels/norm_nhwc.cuh). */
__device__ __forceinline__ void gan_bn_statistics(size_t ch, double mean, double var, double count, bool write_stats,
                                                  const float *gamma, const float *beta, float momentum, float eps,
                                                  float *running_mean, float *running_var, float *save_mean,
                                                  float *save_invstd, float *alpha, float *shift)
{
    const float m = (float)mean;
    float invstd = (float)(1.0 / sqrt(var + eps));
    *alpha = invstd * gamma[ch];
    *shift = beta[ch] - m * *alpha;
    if (write_stats) {
        save_mean[ch] = m;
        save_invstd[ch] = invstd;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * var * count / (count - 1.0));
    }
}

__device__ void gan_bn_finish_forward(size_t c, size_t hw, size_t ch, size_t begin, size_t end, bool write_stats,
                                      double sum, double squares, double count, const float *x,
                                      const float *gamma, const float *beta, float momentum, float eps,
                                      float *running_mean, float *running_var, float *save_mean,
                                      float *save_invstd, float *y, int act, float slope, float *y_act,
                                      float *affine)
{
    if (threadIdx.x == 0)
        gan_bn_statistics(ch, sum / count, squares / count, count, write_stats, gamma, beta, momentum, eps,
                          running_mean, running_var, save_mean, save_invstd, &affine[0], &affine[1]);
    __syncthreads();
    const float alpha = affine[0], shift = affine[1];
    for (size_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        float v = x[i] * alpha + shift;
        y[i] = v;
        if (act != GAN_FUSED_NONE)
            y_act[i] = gan_fused_act_forward(act, slope, v);
    }
}

/* dgamma, dbeta of channel ch = param_beta old + (sum g xhat, sum g) (param_beta == 0: not read). */
__device__ __forceinline__ void gan_bn_param_grads(size_t ch, double sum_g, double sum_g_xhat, float param_beta,
                                                   float *dgamma, float *dbeta)
{
    dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)sum_g_xhat;
    dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)sum_g;
}

/* dx over [begin, end) of channel ch from the channel's (sum g, sum g xhat) over `count` values:
 * with xhat = (x - mean) invstd, dx = gamma invstd / N (N g - sum g - xhat sum(g xhat)). Every
 * thread computes the same three coefficients from the same doubles. */
/* dx = g_scale g + (x_scale (x - mean) + offset) for channel ch: the three coefficients from its
 * (sum g, sum g xhat) over `count` values. Shared by both layouts' kernels. */
__device__ __forceinline__ void gan_bn_backward_coefficients(size_t ch, double sum_g, double sum_g_xhat, double count,
                                                             const float *gamma, const float *save_invstd,
                                                             float *g_scale, float *x_scale, float *offset)
{
    const float invstd = save_invstd[ch];
    double a = (double)gamma[ch] * invstd;
    *g_scale = (float)a;
    *x_scale = (float)(-a * invstd * sum_g_xhat / count);
    *offset = (float)(-a * sum_g / count);
}

__device__ void gan_bn_finish_backward(size_t c, size_t hw, size_t ch, size_t begin, size_t end, double sum_g,
                                       double sum_g_xhat, double count, const float *x, const float *y,
                                       const float *dy, int act, float slope, const float *gamma,
                                       const float *save_mean, const float *save_invstd, float *dx)
{
    const float m = save_mean[ch];
    float g_scale, x_scale, offset;
    gan_bn_backward_coefficients(ch, sum_g, sum_g_xhat, count, gamma, save_invstd, &g_scale, &x_scale, &offset);
    for (size_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
        size_t i = gan_channel_element(j, ch, c, hw);
        dx[i] = g_scale * gan_bn_output_grad(y, dy, act, slope, i) + (x_scale * (x[i] - m) + offset);
    }
}

/* ---- one chunk per channel: one launch ----------------------------------------------------- */

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
    double total = gan_block_sum_double((double)gan_bn_thread_sum(x, ch, c, hw, 0, count), partial);
    if (threadIdx.x == 0)
        channel_mean = (float)(total / (double)count);
    __syncthreads();
    const float m = channel_mean;
    double squares_total = gan_block_sum_double((double)gan_bn_thread_squares(x, m, ch, c, hw, 0, count), partial);
    __shared__ float channel_affine[2];
    /* the totals are thread 0's, and only thread 0 reads them */
    gan_bn_finish_forward(c, hw, ch, 0, count, true, total, squares_total, (double)count, x, gamma, beta, momentum,
                          eps, running_mean, running_var, save_mean, save_invstd, y, act, slope, y_act,
                          channel_affine);
}

/* y[n, c, hw] = (x - running_mean) / sqrt(running_var + eps) gamma + beta, elementwise (index
 * math in 32 bits where it fits: gan_index_narrow). */
template <typename I>
__device__ __forceinline__ void gan_bn_forward_eval_body(I count, I c, I hw, const float *x, const float *gamma,
                                                         const float *beta, const float *running_mean,
                                                         const float *running_var, float eps, float *y)
{
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride()) {
        I ch = (i / hw) % c;
        float invstd = 1.0f / sqrtf(running_var[ch] + eps);
        y[i] = (x[i] - running_mean[ch]) * invstd * gamma[ch] + beta[ch];
    }
}
__global__ void gan_bn_forward_eval_kernel(size_t count, size_t c, size_t hw, const float *x,
                                           const float *gamma, const float *beta,
                                           const float *running_mean, const float *running_var,
                                           float eps, float *y)
{
    GAN_INDEX_BODY(count, gan_bn_forward_eval_body, count, c, hw, x, gamma, beta, running_mean, running_var, eps,
                   y);
}

/* One block per channel: with g the gradient at the batch norm's output (dy itself, or through
 * the fused activation from its output y and output gradient dy), dx (gan_bn_finish_backward),
 * dgamma = param_beta dgamma + sum(g xhat), dbeta = param_beta dbeta + sum g. */
__global__ void gan_bn_backward_kernel(size_t n, size_t c, size_t hw, const float *x,
                                       const float *y, const float *dy, int act, float slope,
                                       const float *gamma, const float *save_mean,
                                       const float *save_invstd, float *dx, float param_beta,
                                       float *dgamma, float *dbeta)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    __shared__ double channel_sums[2];
    size_t ch = blockIdx.x, count = n * hw;
    float sum_g, sum_g_xhat;
    gan_bn_thread_grad_sums(x, y, dy, act, slope, save_mean[ch], save_invstd[ch], ch, c, hw, 0, count, &sum_g,
                            &sum_g_xhat);
    double total_g = gan_block_sum_double((double)sum_g, partial);
    if (threadIdx.x == 0)
        channel_sums[0] = total_g;
    double total_g_xhat = gan_block_sum_double((double)sum_g_xhat, partial);
    if (threadIdx.x == 0) {
        channel_sums[1] = total_g_xhat;
        gan_bn_param_grads(ch, channel_sums[0], total_g_xhat, param_beta, dgamma, dbeta);
    }
    __syncthreads();
    gan_bn_finish_backward(c, hw, ch, 0, count, channel_sums[0], channel_sums[1], (double)count, x, y, dy, act,
                           slope, gamma, save_mean, save_invstd, dx);
}

/* ---- several chunks per channel, and train.sync_bn ------------------------------------------ *
 * Block b of c chunks blocks takes channel b / chunks, chunk b % chunks: partials[b] is that
 * chunk's row entry in [c][chunks]. `count` is the values per channel (over all ranks for
 * train.sync_bn); `per_channel` the width of the rows the folded sums are read from: chunks where
 * they are this launch's partials, 1 where they were folded (and all-reduced) already. */

/* partials[b] = sum of x over block b's chunk */
__global__ void gan_bn_chunk_sums_kernel(size_t n, size_t c, size_t hw, size_t chunks, const float *x,
                                         double *partials)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    size_t ch = blockIdx.x / chunks, begin, end;
    gan_bn_chunk_range(n * hw, chunks, blockIdx.x % chunks, &begin, &end);
    double total = gan_block_sum_double((double)gan_bn_thread_sum(x, ch, c, hw, begin, end), partial);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = total;
}

/* partials[b] = sum of (x - m)^2 over block b's chunk, m = (float)(channel's folded sum / count) */
__global__ void gan_bn_chunk_squares_kernel(size_t n, size_t c, size_t hw, size_t chunks, const float *x,
                                            const double *sums, size_t per_channel, double count,
                                            double *partials)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    __shared__ float channel_mean;
    size_t ch = blockIdx.x / chunks, begin, end;
    gan_bn_chunk_range(n * hw, chunks, blockIdx.x % chunks, &begin, &end);
    if (threadIdx.x == 0) /* one fold per block, shared */
        channel_mean = (float)(gan_bn_fold(sums, per_channel, ch) / count);
    __syncthreads();
    const float m = channel_mean;
    double total = gan_block_sum_double((double)gan_bn_thread_squares(x, m, ch, c, hw, begin, end), partial);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = total;
}

/* y (and y_act) over block b's chunk from the channel's folded sums and squares; chunk 0 writes
 * the saved and running statistics */
__global__ void gan_bn_chunk_forward_kernel(size_t n, size_t c, size_t hw, size_t chunks, const float *x,
                                            const float *gamma, const float *beta, float momentum, float eps,
                                            const double *sums, const double *squares, size_t per_channel,
                                            double count, float *running_mean, float *running_var,
                                            float *save_mean, float *save_invstd, float *y, int act, float slope,
                                            float *y_act)
{
    __shared__ float channel_affine[2];
    size_t ch = blockIdx.x / chunks, s = blockIdx.x % chunks, begin, end;
    gan_bn_chunk_range(n * hw, chunks, s, &begin, &end);
    /* thread 0 alone reads the totals: it alone folds them */
    const bool first = threadIdx.x == 0;
    gan_bn_finish_forward(c, hw, ch, begin, end, s == 0, first ? gan_bn_fold(sums, per_channel, ch) : 0.0,
                          first ? gan_bn_fold(squares, per_channel, ch) : 0.0, count, x, gamma, beta, momentum, eps,
                          running_mean, running_var, save_mean, save_invstd, y, act, slope, y_act, channel_affine);
}

/* partials[b] = sum g and partials[c chunks + b] = sum g xhat over block b's chunk (rows ch and
 * c + ch of [2c][chunks]); where dgamma is given (one chunk: the rows are the channel's sums),
 * also dgamma, dbeta = param_beta old + them */
__global__ void gan_bn_chunk_grad_sums_kernel(size_t n, size_t c, size_t hw, size_t chunks, const float *x,
                                              const float *y, const float *dy, int act, float slope,
                                              const float *save_mean, const float *save_invstd, float param_beta,
                                              float *dgamma, float *dbeta, double *partials)
{
    __shared__ double partial[GAN_BLOCK_THREADS];
    size_t ch = blockIdx.x / chunks, begin, end;
    gan_bn_chunk_range(n * hw, chunks, blockIdx.x % chunks, &begin, &end);
    float sum_g, sum_g_xhat;
    gan_bn_thread_grad_sums(x, y, dy, act, slope, save_mean[ch], save_invstd[ch], ch, c, hw, begin, end, &sum_g,
                            &sum_g_xhat);
    /* both totals are thread 0's (its registers keep the first across the second sum) */
    double total_g = gan_block_sum_double((double)sum_g, partial);
    double total_g_xhat = gan_block_sum_double((double)sum_g_xhat, partial);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = total_g;
        partials[c * chunks + blockIdx.x] = total_g_xhat;
        if (dgamma)
            gan_bn_param_grads(ch, total_g, total_g_xhat, param_beta, dgamma, dbeta);
    }
}

/* dx over block b's chunk from the channel's folded (sum g, sum g xhat), rows ch and c + ch of
 * `sums`; where dgamma is given, chunk 0 also writes dgamma, dbeta = param_beta old + them */
__global__ void gan_bn_chunk_backward_kernel(size_t n, size_t c, size_t hw, size_t chunks, const float *x,
                                             const float *y, const float *dy, int act, float slope,
                                             const float *gamma, const float *save_mean, const float *save_invstd,
                                             const double *sums, size_t per_channel, double count, float param_beta,
                                             float *dgamma, float *dbeta, float *dx)
{
    __shared__ double channel_sums[2];
    size_t ch = blockIdx.x / chunks, s = blockIdx.x % chunks, begin, end;
    gan_bn_chunk_range(n * hw, chunks, s, &begin, &end);
    if (threadIdx.x == 0) { /* one fold per block, shared */
        channel_sums[0] = gan_bn_fold(sums, per_channel, ch);
        channel_sums[1] = gan_bn_fold(sums, per_channel, c + ch);
        if (dgamma && s == 0)
            gan_bn_param_grads(ch, channel_sums[0], channel_sums[1], param_beta, dgamma, dbeta);
    }
    __syncthreads();
    gan_bn_finish_backward(c, hw, ch, begin, end, channel_sums[0], channel_sums[1], count, x, y, dy, act, slope, gamma,
                           save_mean, save_invstd, dx);
}

/* folded[i] = gan_bn_fold(partials, chunks, i), i < rows: the rows of the chunk kernels' partials
 * as one double each (train.sync_bn's sums, before the all-reduce) */
__global__ void gan_bn_fold_kernel(size_t rows, size_t chunks, const double *partials, double *folded)
{
    for (size_t i = gan_thread_index(); i < rows; i += gan_thread_stride())
        folded[i] = gan_bn_fold(partials, chunks, i);
}

/* The backward's folding: sums[2c] from the partials [2c][chunks], and dgamma, dbeta from them */
__global__ void gan_bn_fold_grad_kernel(size_t c, size_t chunks, const double *partials, float param_beta,
                                        float *dgamma, float *dbeta, double *sums)
{
    for (size_t ch = gan_thread_index(); ch < c; ch += gan_thread_stride()) {
        double sum_g = gan_bn_fold(partials, chunks, ch), sum_g_xhat = gan_bn_fold(partials, chunks, c + ch);
        sums[ch] = sum_g;
        sums[c + ch] = sum_g_xhat;
        gan_bn_param_grads(ch, sum_g, sum_g_xhat, param_beta, dgamma, dbeta);
    }
}

#endif
