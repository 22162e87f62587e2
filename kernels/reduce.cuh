/* The kernels that reduce: the bias gradient (a sum per channel) and the fused sigmoid + binary
 * cross-entropy (a mean over the batch). Both reduce in a fixed order with gan_block_sum, never
 * with atomics, so a run repeats bit for bit. */
#ifndef GAN_KERNELS_REDUCE_CUH
#define GAN_KERNELS_REDUCE_CUH

#include "common.cuh"

/* One block per channel: db[ch] = beta * db[ch] + sum over (b, p) of dy[b, ch, p], dy
 * [n, c, hw]. With beta == 0, db is overwritten without being read (it may hold garbage). */
__global__ void gan_bias_backward_kernel(size_t n, size_t c, size_t hw, const float *dy,
                                         float beta, float *db)
{
    __shared__ float partial[GAN_BLOCK_THREADS];
    size_t ch = blockIdx.x;
    float sum = 0.0f;
    for (size_t j = threadIdx.x; j < n * hw; j += blockDim.x) {
        size_t b = j / hw, p = j % hw;
        sum += dy[(b * c + ch) * hw + p];
    }
    float total = gan_block_sum(sum, partial);
    if (threadIdx.x == 0)
        db[ch] = beta == 0.0f ? total : beta * db[ch] + total;
}

/* One block for the whole batch of logits[n]: writes loss[0] = mean BCE, prob_mean[0] = mean
 * sigmoid (if not NULL), dlogits[n] = (sigmoid(x) - target) * grad_scale_over_n (if not NULL). */
__global__ void gan_bce_logits_kernel(int n, const float *logits, float target,
                                      float grad_scale_over_n, float *loss, float *prob_mean,
                                      float *dlogits)
{
    __shared__ float loss_partial[GAN_BLOCK_THREADS];
    __shared__ float prob_partial[GAN_BLOCK_THREADS];
    float loss_sum = 0.0f, prob_sum = 0.0f;
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x) {
        float x = logits[i];
        loss_sum += gan_bce_logits_loss(x, target);
        prob_sum += gan_sigmoid_forward(x);
        if (dlogits)
            dlogits[i] = gan_bce_logits_grad(x, target, grad_scale_over_n);
    }
    float loss_total = gan_block_sum(loss_sum, loss_partial);
    float prob_total = gan_block_sum(prob_sum, prob_partial);
    if (threadIdx.x == 0) {
        loss[0] = loss_total / (float)n;
        if (prob_mean)
            prob_mean[0] = prob_total / (float)n;
    }
}

#endif
