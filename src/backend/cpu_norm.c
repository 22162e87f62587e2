/* Batch norm on the CPU, one channel per loop iteration (so channels run in parallel and each
 * channel's sums have one fixed order, in double). x, y: [n, c, hw]. The fused backward takes
 * the ReLU or LeakyReLU after the batch norm into its passes: it reads the activation's output
 * and output gradient instead of a gradient written in between (a write and two reads of the
 * whole tensor fewer). */
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

/* The activation fused after a batch norm in backward: none (FUSED_NONE), ReLU or LeakyReLU.
 * Inlined with `act` a constant, so each kind gets its own loops. */
enum { FUSED_NONE = -1 };

/* The gradient at the activation's input from its output y and output gradient dy (LeakyReLU:
 * y > 0 exactly where its input is, for slope >= 0). */
static inline __attribute__((always_inline)) float act_backward(float y, float dy, const int act,
                                                                float slope)
{
    if (act == GAN_ACT_RELU)
        return gan_relu_backward(y, dy);
    if (act == GAN_ACT_LRELU)
        return cpu_lrelu_backward(y, dy, slope);
    return dy;
}

/* sum of g and of g xhat, xhat = (x - mean) invstd, over the channel's planes, where g is the
 * gradient at the batch norm's output: dy itself, or through the fused activation from its
 * output y and output gradient dy */
static inline __attribute__((always_inline)) void
channel_grad_sums(const float *x, const float *y, const float *dy, int n, int c, int hw, int ch,
                  float mean, float invstd, double *sum_dy, double *sum_dy_xhat, const int act,
                  float slope)
{
    double total_dy = 0.0, total_dy_xhat = 0.0;
    for (int img = 0; img < n; img++) {
        const size_t plane = ((size_t)img * c + ch) * hw;
        const float *in = x + plane, *g = dy + plane, *out = act == FUSED_NONE ? NULL : y + plane;
        float lanes_dy[LANES] = {0}, lanes_dy_xhat[LANES] = {0};
        int j = 0;
        for (; j + LANES <= hw; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float gj = act == FUSED_NONE ? g[j + l] : act_backward(out[j + l], g[j + l], act, slope);
                lanes_dy[l] += gj;
                lanes_dy_xhat[l] += gj * ((in[j + l] - mean) * invstd);
            }
        for (; j < hw; j++) {
            float gj = act == FUSED_NONE ? g[j] : act_backward(out[j], g[j], act, slope);
            lanes_dy[j % LANES] += gj;
            lanes_dy_xhat[j % LANES] += gj * ((in[j] - mean) * invstd);
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

/* Channel ch of a training-mode batch norm from its statistics over `count` values (the batch's,
 * or the global batch's summed over ranks): mean, and the biased variance that normalises it. */
static void bn_finish_channel(int ch, int n, int c, int hw, double count, double mean, double var,
                              const float *x, const float *gamma, const float *beta, float momentum,
                              float eps, float *running_mean, float *running_var, float *save_mean,
                              float *save_invstd, float *y)
{
    const float m = (float)mean;
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

/* Channel ch of a training-mode batch norm, x into y. */
static void bn_forward_train_channel(int ch, int n, int c, int hw, const float *x,
                                     const float *gamma, const float *beta, float momentum,
                                     float eps, float *running_mean, float *running_var,
                                     float *save_mean, float *save_invstd, float *y)
{
    const double count = (double)n * hw;
    const double mean = channel_sum(x, n, c, hw, ch) / count;
    const double var = channel_squares(x, n, c, hw, ch, (float)mean) / count; /* biased */
    bn_finish_channel(ch, n, c, hw, count, mean, var, x, gamma, beta, momentum, eps, running_mean, running_var,
                      save_mean, save_invstd, y);
}

#define BN_PARALLEL_FOR _Pragma("omp parallel for schedule(static) if ((size_t)n * c * hw >= CPU_PARALLEL_MIN_COUNT)")

static gan_status check_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma,
                                         const float *beta, const float *running_mean,
                                         const float *running_var, const float *save_mean,
                                         const float *save_invstd, const float *y, const char *op)
{
    GAN_TRY(check_bn(n, c, hw, x, y, op));
    if (!gamma || !beta || !running_mean || !running_var || !save_mean || !save_invstd)
        return gan_error(GAN_ERR_ARG, "cpu %s: NULL parameter or statistics", op);
    if (n * hw < 2)
        return gan_error(GAN_ERR_ARG, "cpu %s: one value per channel has no variance", op);
    return GAN_OK;
}

gan_status cpu_bn_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                const float *gamma, const float *beta, float momentum, float eps,
                                float *running_mean, float *running_var, float *save_mean,
                                float *save_invstd, float *y)
{
    GAN_TRY(check_bn_forward_train(n, c, hw, x, gamma, beta, running_mean, running_var, save_mean,
                                   save_invstd, y, "bn forward (training)"));
    BN_PARALLEL_FOR
    for (int ch = 0; ch < c; ch++)
        bn_forward_train_channel(ch, n, c, hw, x, gamma, beta, momentum, eps, running_mean,
                                 running_var, save_mean, save_invstd, y);
    return GAN_OK;
}

gan_status cpu_bn_act_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *beta, float momentum,
                                    float eps, float *running_mean, float *running_var,
                                    float *save_mean, float *save_invstd, float *y,
                                    gan_activation act, float slope, float *y_act)
{
    GAN_TRY(check_bn_forward_train(n, c, hw, x, gamma, beta, running_mean, running_var, save_mean,
                                   save_invstd, y, "bn+activation forward (training)"));
    if (!y_act)
        return gan_error(GAN_ERR_ARG, "cpu bn+activation forward (training): NULL pointer");
    if (act != GAN_ACT_RELU && !(act == GAN_ACT_LRELU && slope >= 0.0f))
        return gan_error(GAN_ERR_ARG, "cpu bn+activation forward: activation %d (slope %g) is not "
                                      "ReLU or LeakyReLU with slope >= 0", (int)act, (double)slope);
    /* The activation as its own pass over the whole tensor: per plane (16 to 1024 values) it
     * ran slower than one long pass (measured), the data being in cache either way. */
    GAN_TRY(cpu_bn_forward_train(be, n, c, hw, x, gamma, beta, momentum, eps, running_mean,
                                 running_var, save_mean, save_invstd, y));
    GAN_TRY(cpu_activation_forward(be, act, slope, (size_t)n * c * hw, y, y_act));
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

/* Channel ch's dx from its gradient sums over `count` values (sum g, sum g xhat: the batch's, or
 * the global batch's summed over ranks), g being dy itself (act FUSED_NONE) or dy through the fused
 * activation from its output y:
 * dx = gamma invstd / N (N g - sum g - xhat sum(g xhat)) = a g + k (x - mean) + b, the
 * coefficients per channel in double. Inlined into each caller's loop with `act` a constant. */
static inline __attribute__((always_inline)) void
bn_dx_channel(int ch, int n, int c, int hw, const float *x, const float *y, const float *dy,
              const float *gamma, float m, float invstd, double sum_dy, double sum_dy_xhat, double count,
              float *dx, const int act, float slope)
{
    const double a = (double)gamma[ch] * invstd;
    const float g_scale = (float)a, x_scale = (float)(-a * invstd * sum_dy_xhat / count);
    const float offset = (float)(-a * sum_dy / count);
    for (int img = 0; img < n; img++) {
        const size_t plane = ((size_t)img * c + ch) * hw;
        const float *restrict in = x + plane, *restrict g = dy + plane;
        const float *restrict out_act = act == FUSED_NONE ? NULL : y + plane;
        float *restrict out = dx + plane;
        for (int j = 0; j < hw; j++) {
            float gj = act == FUSED_NONE ? g[j] : act_backward(out_act[j], g[j], act, slope);
            out[j] = g_scale * gj + (x_scale * (in[j] - m) + offset);
        }
    }
}

/* Channel ch of batch norm's backward from the gradient at its output: dy itself (act
 * FUSED_NONE), or through the fused activation from its output y and output gradient dy. Called
 * inside each caller's own parallel loop with `act` a constant: OpenMP outlines a parallel region
 * before inlining, so a region in here would get one body for every `act`, choosing per element. */
static inline __attribute__((always_inline)) void
bn_backward_channel(int ch, int n, int c, int hw, const float *x, const float *y, const float *dy,
                    const float *gamma, const float *save_mean, const float *save_invstd,
                    float *dx, float param_beta, float *dgamma, float *dbeta, const int act,
                    float slope)
{
    const double count = (double)n * hw;
    const float m = save_mean[ch], invstd = save_invstd[ch];
    double sum_dy, sum_dy_xhat;
    channel_grad_sums(x, y, dy, n, c, hw, ch, m, invstd, &sum_dy, &sum_dy_xhat, act, slope);
    bn_dx_channel(ch, n, c, hw, x, y, dy, gamma, m, invstd, sum_dy, sum_dy_xhat, count, dx, act, slope);
    dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)sum_dy_xhat;
    dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)sum_dy;
}

gan_status cpu_bn_backward(gan_backend *be, int n, int c, int hw, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd,
                           float *dx, float param_beta, float *dgamma, float *dbeta)
{
    GAN_TRY(check_bn(n, c, hw, x, dx, "bn backward"));
    if (!dy || !gamma || !save_mean || !save_invstd || !dgamma || !dbeta)
        return gan_error(GAN_ERR_ARG, "cpu bn backward: NULL pointer");
    BN_PARALLEL_FOR
    for (int ch = 0; ch < c; ch++)
        bn_backward_channel(ch, n, c, hw, x, NULL, dy, gamma, save_mean, save_invstd, dx,
                            param_beta, dgamma, dbeta, FUSED_NONE, 0.0f);
    return GAN_OK;
}

gan_status cpu_bn_act_backward(gan_backend *be, int n, int c, int hw, const float *x,
                               const float *y_act, const float *dy_act, gan_activation act,
                               float slope, const float *gamma, const float *save_mean,
                               const float *save_invstd, float *dx, float param_beta,
                               float *dgamma, float *dbeta)
{
    GAN_TRY(check_bn(n, c, hw, x, dx, "bn+activation backward"));
    if (!y_act || !dy_act || !gamma || !save_mean || !save_invstd || !dgamma || !dbeta)
        return gan_error(GAN_ERR_ARG, "cpu bn+activation backward: NULL pointer");
    if (act == GAN_ACT_RELU) {
        BN_PARALLEL_FOR
        for (int ch = 0; ch < c; ch++)
            bn_backward_channel(ch, n, c, hw, x, y_act, dy_act, gamma, save_mean, save_invstd, dx,
                                param_beta, dgamma, dbeta, GAN_ACT_RELU, 0.0f);
    } else if (act == GAN_ACT_LRELU && slope >= 0.0f) {
        BN_PARALLEL_FOR
        for (int ch = 0; ch < c; ch++)
            bn_backward_channel(ch, n, c, hw, x, y_act, dy_act, gamma, save_mean, save_invstd, dx,
                                param_beta, dgamma, dbeta, GAN_ACT_LRELU, slope);
    } else
        return gan_error(GAN_ERR_ARG, "cpu bn+activation backward: activation %d (slope %g) is not "
                                      "ReLU or LeakyReLU with slope >= 0", (int)act, (double)slope);
    return GAN_OK;
}

/* ---- batch norm with its statistics summed over ranks (train.sync_bn) ------------------------ *
 * The same sums, in the same order, as the ops above, split where an all-reduce adds the ranks':
 * with one rank every value is bit for bit bn_forward_train's and bn_backward's. */

static gan_status check_fused(gan_activation act, float slope, const float *y_act, const char *op)
{
    if (y_act && act != GAN_ACT_RELU && !(act == GAN_ACT_LRELU && slope >= 0.0f))
        return gan_error(GAN_ERR_ARG, "cpu %s: activation %d (slope %g) is not ReLU or LeakyReLU with "
                                      "slope >= 0", op, (int)act, (double)slope);
    return GAN_OK;
}

gan_status cpu_bn_sums(gan_backend *be, int n, int c, int hw, const float *x, double *sums)
{
    GAN_TRY(check_bn(n, c, hw, x, sums, "bn sums"));
    BN_PARALLEL_FOR
    for (int ch = 0; ch < c; ch++)
        sums[ch] = channel_sum(x, n, c, hw, ch);
    return GAN_OK;
}

gan_status cpu_bn_centered_squares(gan_backend *be, int n, int c, int hw, const float *x,
                                   const double *sums, double count, double *squares)
{
    GAN_TRY(check_bn(n, c, hw, x, squares, "bn centered squares"));
    if (!sums || !(count >= 2.0))
        return gan_error(GAN_ERR_ARG, "cpu bn centered squares: no sums, or %g values per channel", count);
    BN_PARALLEL_FOR
    for (int ch = 0; ch < c; ch++)
        squares[ch] = channel_squares(x, n, c, hw, ch, (float)(sums[ch] / count));
    return GAN_OK;
}

gan_status cpu_bn_forward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *beta, float momentum, float eps,
                                    const double *sums, const double *squares, double count,
                                    float *running_mean, float *running_var, float *save_mean,
                                    float *save_invstd, float *y, gan_activation act, float slope,
                                    float *y_act)
{
    GAN_TRY(check_bn_forward_train(n, c, hw, x, gamma, beta, running_mean, running_var, save_mean,
                                   save_invstd, y, "bn forward from sums"));
    GAN_TRY(check_fused(act, slope, y_act, "bn forward from sums"));
    if (!sums || !squares || !(count >= 2.0))
        return gan_error(GAN_ERR_ARG, "cpu bn forward from sums: no sums, or %g values per channel", count);
    BN_PARALLEL_FOR
    for (int ch = 0; ch < c; ch++)
        bn_finish_channel(ch, n, c, hw, count, sums[ch] / count, squares[ch] / count, x, gamma, beta, momentum,
                          eps, running_mean, running_var, save_mean, save_invstd, y);
    if (y_act)
        GAN_TRY(cpu_activation_forward(be, act, slope, (size_t)n * c * hw, y, y_act));
    return GAN_OK;
}

gan_status cpu_bn_backward_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                const float *y_act, const float *dy, gan_activation act, float slope,
                                const float *save_mean, const float *save_invstd, float param_beta,
                                float *dgamma, float *dbeta, double *sums)
{
    GAN_TRY(check_bn(n, c, hw, x, dy, "bn backward sums"));
    GAN_TRY(check_fused(act, slope, y_act, "bn backward sums"));
    if (!save_mean || !save_invstd || !dgamma || !dbeta || !sums)
        return gan_error(GAN_ERR_ARG, "cpu bn backward sums: NULL pointer");
    /* `act` a constant in each loop, as in cpu_bn_act_backward */
#define BACKWARD_SUMS_LOOP(ACT, SLOPE)                                                                   \
    BN_PARALLEL_FOR                                                                                      \
    for (int ch = 0; ch < c; ch++) {                                                                     \
        double sum_dy, sum_dy_xhat;                                                                      \
        channel_grad_sums(x, y_act, dy, n, c, hw, ch, save_mean[ch], save_invstd[ch], &sum_dy,           \
                          &sum_dy_xhat, ACT, SLOPE);                                                     \
        sums[ch] = sum_dy;                                                                               \
        sums[c + ch] = sum_dy_xhat;                                                                      \
        dgamma[ch] = (param_beta != 0.0f ? param_beta * dgamma[ch] : 0.0f) + (float)sum_dy_xhat;         \
        dbeta[ch] = (param_beta != 0.0f ? param_beta * dbeta[ch] : 0.0f) + (float)sum_dy;                \
    }
    if (!y_act) {
        BACKWARD_SUMS_LOOP(FUSED_NONE, 0.0f)
    } else if (act == GAN_ACT_RELU) {
        BACKWARD_SUMS_LOOP(GAN_ACT_RELU, 0.0f)
    } else {
        BACKWARD_SUMS_LOOP(GAN_ACT_LRELU, slope)
    }
#undef BACKWARD_SUMS_LOOP
    return GAN_OK;
}

gan_status cpu_bn_backward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                     const float *y_act, const float *dy, gan_activation act,
                                     float slope, const float *gamma, const float *save_mean,
                                     const float *save_invstd, const double *sums, double count,
                                     float *dx)
{
    GAN_TRY(check_bn(n, c, hw, x, dx, "bn backward from sums"));
    GAN_TRY(check_fused(act, slope, y_act, "bn backward from sums"));
    if (!dy || !gamma || !save_mean || !save_invstd || !sums || !(count >= 1.0))
        return gan_error(GAN_ERR_ARG, "cpu bn backward from sums: NULL pointer or %g values per channel", count);
#define DX_LOOP(ACT, SLOPE)                                                                              \
    BN_PARALLEL_FOR                                                                                      \
    for (int ch = 0; ch < c; ch++)                                                                       \
        bn_dx_channel(ch, n, c, hw, x, y_act, dy, gamma, save_mean[ch], save_invstd[ch], sums[ch],       \
                      sums[c + ch], count, dx, ACT, SLOPE);
    if (!y_act) {
        DX_LOOP(FUSED_NONE, 0.0f)
    } else if (act == GAN_ACT_RELU) {
        DX_LOOP(GAN_ACT_RELU, 0.0f)
    } else {
        DX_LOOP(GAN_ACT_LRELU, slope)
    }
#undef DX_LOOP
    return GAN_OK;
}
