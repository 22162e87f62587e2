/* Batch norm on the CPU, one channel per loop iteration (so channels run in parallel and each
 * channel's sums have one fixed order, in double). x, y: [n, c, hw]. */
#include <math.h>

#include "backend/cpu_internal.h"

/* A channel's sums: each plane (one image's hw values) in LANES float partial sums, value j into
 * lane j % LANES, added up in lane order in double; the planes' sums added in double, image by
 * image. One fixed order every time, and independent float adds the compiler turns into vector
 * instructions (a single running sum waits for each add to finish); a plane's partial sums
 * hold at most hw / LANES values each (64 for a 32x32 plane), so float loses nothing that
 * matters before the double takes over. */
enum { LANES = 16 };

static double lanes_total(const float lanes[LANES])
{
    double total = 0.0;
    for (int l = 0; l < LANES; l++)
        total += lanes[l];
    return total;
}

/* sum of x over the channel's planes */
static double channel_sum(const float *x, int n, int c, int hw, int ch)
{
    double total = 0.0;
    for (int img = 0; img < n; img++) {
        const float *plane = x + ((size_t)img * c + ch) * hw;
        float lanes[LANES] = {0};
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++)
                lanes[l] += plane[j + l];
        for (; j < hw; j++)
            lanes[j % LANES] += plane[j];
        total += lanes_total(lanes);
    }
    return total;
}

/* sum of (x - mean)^2 over the channel's planes (the difference in float: mean is x's own) */
static double channel_squares(const float *x, int n, int c, int hw, int ch, float mean)
{
    double total = 0.0;
    for (int img = 0; img < n; img++) {
        const float *plane = x + ((size_t)img * c + ch) * hw;
        float lanes[LANES] = {0};
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float d = plane[j + l] - mean;
                lanes[l] += d * d;
            }
        for (; j < hw; j++) {
            float d = plane[j] - mean;
            lanes[j % LANES] += d * d;
        }
        total += lanes_total(lanes);
    }
    return total;
}

/* sum of dy and of dy xhat, xhat = (x - mean) invstd, over the channel's planes */
static void channel_grad_sums(const float *x, const float *dy, int n, int c, int hw, int ch,
                              float mean, float invstd, double *sum_dy, double *sum_dy_xhat)
{
    double total_dy = 0.0, total_dy_xhat = 0.0;
    for (int img = 0; img < n; img++) {
        const float *in = x + ((size_t)img * c + ch) * hw;
        const float *g = dy + ((size_t)img * c + ch) * hw;
        float lanes_dy[LANES] = {0}, lanes_dy_xhat[LANES] = {0};
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++) {
                lanes_dy[l] += g[j + l];
                lanes_dy_xhat[l] += g[j + l] * ((in[j + l] - mean) * invstd);
            }
        for (; j < hw; j++) {
            lanes_dy[j % LANES] += g[j];
            lanes_dy_xhat[j % LANES] += g[j] * ((in[j] - mean) * invstd);
        }
        total_dy += lanes_total(lanes_dy);
        total_dy_xhat += lanes_total(lanes_dy_xhat);
    }
    *sum_dy = total_dy;
    *sum_dy_xhat = total_dy_xhat;
}

static gan_status check_bn(int n, int c, int hw, const void *x, const void *y, const char *op)
{
    if (n < 1 || c < 1 || hw < 1 || !x || !y)
        return gan_error(GAN_ERR_ARG, "cpu %s: bad arguments (n %d, c %d, hw %d)", op, n, c, hw);
    return GAN_OK;
}

gan_status cpu_bn_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                const float *gamma, const float *beta, float momentum, float eps,
                                float *running_mean, float *running_var, float *save_mean,
                                float *save_invstd, float *y)
{
    GAN_TRY(check_bn(n, c, hw, x, y, "bn forward (training)"));
    if (!gamma || !beta || !running_mean || !running_var || !save_mean || !save_invstd)
        return gan_error(GAN_ERR_ARG, "cpu bn forward (training): NULL parameter or statistics");
    if (n * hw < 2)
        return gan_error(GAN_ERR_ARG, "cpu bn forward: one value per channel has no variance");
    const double count = (double)n * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= CPU_PARALLEL_MIN_COUNT)
    for (int ch = 0; ch < c; ch++) {
        const double mean = channel_sum(x, n, c, hw, ch) / count;
        const float m = (float)mean;
        const double var = channel_squares(x, n, c, hw, ch, m) / count; /* biased: what normalises the batch */
        const float invstd = (float)(1.0 / sqrt(var + eps));
        /* y = x alpha + shift, alpha = invstd gamma, shift = beta - mean alpha, as PyTorch's CPU
         * batch norm computes it */
        const float alpha = invstd * gamma[ch], shift = beta[ch] - m * alpha;
        for (int img = 0; img < n; img++) {
            const float *in = x + ((size_t)img * c + ch) * hw;
            float *out = y + ((size_t)img * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                out[j] = in[j] * alpha + shift;
        }
        save_mean[ch] = m;
        save_invstd[ch] = invstd;
        /* PyTorch: running = (1 - momentum) running + momentum * stat, unbiased variance. */
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * var * count / (count - 1.0));
    }
    return GAN_OK;
}

gan_status cpu_bn_forward_eval(gan_backend *be, int n, int c, int hw, const float *x,
                               const float *gamma, const float *beta, const float *running_mean,
                               const float *running_var, float eps, float *y)
{
    GAN_TRY(check_bn(n, c, hw, x, y, "bn forward (eval)"));
    if (!gamma || !beta || !running_mean || !running_var)
        return gan_error(GAN_ERR_ARG, "cpu bn forward (eval): NULL parameter or statistics");
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= CPU_PARALLEL_MIN_COUNT)
    for (int i = 0; i < n * c; i++) {
        const int ch = i % c;
        const float invstd = 1.0f / sqrtf(running_var[ch] + eps);
        const float m = running_mean[ch], g = gamma[ch], b = beta[ch];
        const float *in = x + (size_t)i * hw;
        float *out = y + (size_t)i * hw;
        for (int j = 0; j < hw; j++)
            out[j] = (in[j] - m) * invstd * g + b;
    }
    return GAN_OK;
}

gan_status cpu_bn_backward(gan_backend *be, int n, int c, int hw, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd,
                           float *dx, float param_beta, float *dgamma, float *dbeta)
{
    GAN_TRY(check_bn(n, c, hw, x, dx, "bn backward"));
    if (!dy || !gamma || !save_mean || !save_invstd || !dgamma || !dbeta)
        return gan_error(GAN_ERR_ARG, "cpu bn backward: NULL pointer");
    const double count = (double)n * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= CPU_PARALLEL_MIN_COUNT)
    for (int ch = 0; ch < c; ch++) {
        const float m = save_mean[ch], invstd = save_invstd[ch];
        double sum_dy, sum_dy_xhat;
        channel_grad_sums(x, dy, n, c, hw, ch, m, invstd, &sum_dy, &sum_dy_xhat);
        /* dx = gamma invstd / N (N dy - sum dy - xhat sum(dy xhat))
         *    = a dy + k (x - mean) + b, the coefficients per channel in double */
        const double a = (double)gamma[ch] * invstd;
        const float dy_scale = (float)a, x_scale = (float)(-a * invstd * sum_dy_xhat / count);
        const float offset = (float)(-a * sum_dy / count);
        for (int img = 0; img < n; img++) {
            const float *in = x + ((size_t)img * c + ch) * hw;
            const float *g = dy + ((size_t)img * c + ch) * hw;
            float *out = dx + ((size_t)img * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                out[j] = dy_scale * g[j] + (x_scale * (in[j] - m) + offset);
        }
        dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)sum_dy_xhat;
        dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)sum_dy;
    }
    return GAN_OK;
}
