/* Batch norm on the CPU, one channel per loop iteration (so channels run in parallel and each
 * channel's sums have one fixed order, in double). x, y: [n, c, hw]. */
#include <math.h>

#include "backend/cpu_internal.h"

/* A channel's sums run in LANES partial sums, value j of a plane into lane j % LANES, added up in
 * lane order at the end: the same order every time, and independent adds the compiler turns into
 * vector instructions (a single running double sum waits for each add to finish). */
enum { LANES = 8 };

static double lanes_total(const double lanes[LANES])
{
    double total = 0.0;
    for (int l = 0; l < LANES; l++)
        total += lanes[l];
    return total;
}

/* sum of x over the channel's planes */
static double channel_sum(const float *x, int n, int c, int hw, int ch)
{
    double lanes[LANES] = {0};
    for (int img = 0; img < n; img++) {
        const float *plane = x + ((size_t)img * c + ch) * hw;
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++)
                lanes[l] += plane[j + l];
        for (; j < hw; j++)
            lanes[j % LANES] += plane[j];
    }
    return lanes_total(lanes);
}

/* sum of (x - mean)^2 over the channel's planes */
static double channel_squares(const float *x, int n, int c, int hw, int ch, double mean)
{
    double lanes[LANES] = {0};
    for (int img = 0; img < n; img++) {
        const float *plane = x + ((size_t)img * c + ch) * hw;
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++) {
                double d = plane[j + l] - mean;
                lanes[l] += d * d;
            }
        for (; j < hw; j++) {
            double d = plane[j] - mean;
            lanes[j % LANES] += d * d;
        }
    }
    return lanes_total(lanes);
}

/* sum of dy and of dy xhat, xhat = (x - mean) invstd in float, over the channel's planes */
static void channel_grad_sums(const float *x, const float *dy, int n, int c, int hw, int ch,
                              float mean, float invstd, double *sum_dy, double *sum_dy_xhat)
{
    double lanes_dy[LANES] = {0}, lanes_dy_xhat[LANES] = {0};
    for (int img = 0; img < n; img++) {
        const float *in = x + ((size_t)img * c + ch) * hw;
        const float *g = dy + ((size_t)img * c + ch) * hw;
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++) {
                lanes_dy[l] += g[j + l];
                lanes_dy_xhat[l] += (double)g[j + l] * ((in[j + l] - mean) * invstd);
            }
        for (; j < hw; j++) {
            lanes_dy[j % LANES] += g[j];
            lanes_dy_xhat[j % LANES] += (double)g[j] * ((in[j] - mean) * invstd);
        }
    }
    *sum_dy = lanes_total(lanes_dy);
    *sum_dy_xhat = lanes_total(lanes_dy_xhat);
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
        const double var = channel_squares(x, n, c, hw, ch, mean) / count; /* biased: what normalises the batch */
        const float invstd = (float)(1.0 / sqrt(var + eps));
        const float m = (float)mean, g = gamma[ch], b = beta[ch];
        for (int img = 0; img < n; img++) {
            const float *in = x + ((size_t)img * c + ch) * hw;
            float *out = y + ((size_t)img * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                out[j] = (in[j] - m) * invstd * g + b;
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
        /* dx = gamma invstd / N (N dy - sum dy - xhat sum(dy xhat)) */
        const double scale = (double)gamma[ch] * invstd / count;
        for (int img = 0; img < n; img++) {
            const float *in = x + ((size_t)img * c + ch) * hw;
            const float *g = dy + ((size_t)img * c + ch) * hw;
            float *out = dx + ((size_t)img * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                double xhat = (in[j] - m) * invstd;
                out[j] = (float)(scale * (count * g[j] - sum_dy - xhat * sum_dy_xhat));
            }
        }
        dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)sum_dy_xhat;
        dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)sum_dy;
    }
    return GAN_OK;
}
