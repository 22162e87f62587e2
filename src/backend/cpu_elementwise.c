/* Elementwise ops on the CPU: each element through the shared per-element math
 * (gan/elementwise_math.h), the same functions the CUDA kernels call. */
#include <math.h>

#include "backend/cpu_internal.h"

#define PARALLEL_IF(count) if ((count) >= CPU_PARALLEL_MIN_COUNT)

gan_status cpu_fill(gan_backend *be, float *dst, float value, size_t count)
{
    if (count && !dst)
        return gan_error(GAN_ERR_ARG, "cpu fill: NULL pointer");
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
    for (size_t i = 0; i < count; i++)
        dst[i] = value;
    return GAN_OK;
}

gan_status cpu_activation_forward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                  const float *x, float *y)
{
    if (count && (!x || !y))
        return gan_error(GAN_ERR_ARG, "cpu activation forward: NULL pointer");
    switch (kind) {
    case GAN_ACT_RELU:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            y[i] = gan_relu_forward(x[i]);
        return GAN_OK;
    case GAN_ACT_LRELU:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            y[i] = cpu_lrelu_forward(x[i], slope);
        return GAN_OK;
    case GAN_ACT_TANH:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            y[i] = gan_tanh_forward(x[i]);
        return GAN_OK;
    case GAN_ACT_SIGMOID:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            y[i] = gan_sigmoid_forward(x[i]);
        return GAN_OK;
    }
    return gan_error(GAN_ERR_ARG, "cpu activation forward: unknown activation %d", (int)kind);
}

gan_status cpu_activation_backward(gan_backend *be, gan_activation kind, float slope,
                                   size_t count, const float *x, const float *y, const float *dy,
                                   float *dx)
{
    bool needs_x = kind == GAN_ACT_LRELU;
    if (count && (!dy || !dx || (needs_x ? !x : !y)))
        return gan_error(GAN_ERR_ARG, "cpu activation backward: NULL pointer");
    switch (kind) {
    case GAN_ACT_RELU:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            dx[i] = gan_relu_backward(y[i], dy[i]);
        return GAN_OK;
    case GAN_ACT_LRELU:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            dx[i] = cpu_lrelu_backward(x[i], dy[i], slope);
        return GAN_OK;
    case GAN_ACT_TANH:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            dx[i] = gan_tanh_backward(y[i], dy[i]);
        return GAN_OK;
    case GAN_ACT_SIGMOID:
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
        for (size_t i = 0; i < count; i++)
            dx[i] = gan_sigmoid_backward(y[i], dy[i]);
        return GAN_OK;
    }
    return gan_error(GAN_ERR_ARG, "cpu activation backward: unknown activation %d", (int)kind);
}

gan_status cpu_dropout_forward(gan_backend *be, size_t count, float p, uint64_t seed,
                               uint64_t stream, gan_count first, const float *x, float *mask,
                               float *y)
{
    if (count && (!x || !mask || !y))
        return gan_error(GAN_ERR_ARG, "cpu dropout: NULL pointer");
    if (!(p >= 0.0f && p < 1.0f))
        return gan_error(GAN_ERR_ARG, "cpu dropout: p = %g is outside [0, 1)", (double)p);
    const uint64_t element = cpu_count_value(first);
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
    for (size_t i = 0; i < count; i++) {
        mask[i] = gan_dropout_keep_scale(gan_philox_uniform_at(seed, stream, element + i), p);
        y[i] = x[i] * mask[i];
    }
    return GAN_OK;
}

gan_status cpu_multiply(gan_backend *be, size_t count, const float *a, const float *b, float *y)
{
    if (count && (!a || !b || !y))
        return gan_error(GAN_ERR_ARG, "cpu multiply: NULL pointer");
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
    for (size_t i = 0; i < count; i++)
        y[i] = a[i] * b[i];
    return GAN_OK;
}

gan_status cpu_bce_logits(gan_backend *be, int n, const float *logits, float target,
                          float grad_scale, float *loss, float *prob_mean, float *dlogits)
{
    if (n < 1 || !logits || !loss)
        return gan_error(GAN_ERR_ARG, "cpu bce: bad arguments (n %d)", n);
    double loss_sum = 0.0, prob_sum = 0.0;
    const float scale = grad_scale / (float)n;
    for (int i = 0; i < n; i++) {
        loss_sum += gan_bce_logits_loss(logits[i], target);
        prob_sum += gan_sigmoid_forward(logits[i]);
        if (dlogits)
            dlogits[i] = gan_bce_logits_grad(logits[i], target, scale);
    }
    *loss = (float)(loss_sum / n);
    if (prob_mean)
        *prob_mean = (float)(prob_sum / n);
    return GAN_OK;
}

gan_status cpu_adam_step(gan_backend *be, size_t count, float *param, const float *grad, float *m,
                         float *v, gan_adam_hyper hyper, gan_count step)
{
    if (count && (!param || !grad || !m || !v))
        return gan_error(GAN_ERR_ARG, "cpu adam: NULL pointer");
    const gan_adam_scalars scalars = gan_adam_scalars_at(hyper, cpu_count_value(step));
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
    for (size_t i = 0; i < count; i++)
        gan_adam_update(&param[i], grad[i], &m[i], &v[i], scalars);
    return GAN_OK;
}

gan_status cpu_ema_update(gan_backend *be, size_t count, double decay, const float *param, float *ema)
{
    if (count && (!param || !ema))
        return gan_error(GAN_ERR_ARG, "cpu ema_update: NULL pointer");
    if (!(decay >= 0.0 && decay < 1.0))
        return gan_error(GAN_ERR_ARG, "cpu ema_update: decay %g outside [0, 1)", decay);
    const gan_ema_scalars scalars = gan_ema_scalars_of(decay);
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
    for (size_t i = 0; i < count; i++)
        ema[i] = gan_ema_update(ema[i], param[i], scalars);
    return GAN_OK;
}

/* A fill of `count` values from Philox element `first`: every block the fill touches is computed
 * once, its words going to the values whose elements lie in it (the first and last block may be
 * partly outside the fill). `normal` chooses Box-Muller normals over uniforms. */
static void philox_fill(size_t count, uint64_t seed, uint64_t stream, uint64_t first, bool normal,
                        float shift, float scale, float *out)
{
    if (count == 0)
        return;
    const uint64_t first_block = first / 4, last_block = (first + count - 1) / 4;
    const size_t blocks = (size_t)(last_block - first_block + 1);
#pragma omp parallel for schedule(static) PARALLEL_IF(count)
    for (size_t b = 0; b < blocks; b++) {
        gan_philox4 r = gan_philox_block(seed, stream, first_block + b);
        float z[4];
        if (normal) {
            gan_box_muller(r.v[0], r.v[1], &z[0], &z[1]);
            gan_box_muller(r.v[2], r.v[3], &z[2], &z[3]);
        } else {
            for (int lane = 0; lane < 4; lane++)
                z[lane] = gan_uniform01(r.v[lane]);
        }
        for (uint64_t lane = 0; lane < 4; lane++) {
            uint64_t element = (first_block + b) * 4 + lane;
            if (element >= first && element - first < count)
                out[element - first] = shift + scale * z[lane];
        }
    }
}

gan_status cpu_rng_normal(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                          gan_count first, float mean, float std, float *out)
{
    if (count && !out)
        return gan_error(GAN_ERR_ARG, "cpu rng normal: NULL pointer");
    philox_fill(count, seed, stream, cpu_count_value(first), true, mean, std, out);
    return GAN_OK;
}

gan_status cpu_rng_uniform(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                           gan_count first, float low, float high, float *out)
{
    if (count && !out)
        return gan_error(GAN_ERR_ARG, "cpu rng uniform: NULL pointer");
    philox_fill(count, seed, stream, cpu_count_value(first), false, low, high - low, out);
    return GAN_OK;
}

gan_status cpu_advance_counts(gan_backend *be, gan_count_advance advance)
{
    if (advance.n < 0 || advance.n > GAN_MAX_ADVANCED_COUNTS)
        return gan_error(GAN_ERR_ARG, "cpu advance_counts: %d counts", advance.n);
    for (int i = 0; i < advance.n; i++) {
        if (!advance.count[i])
            return gan_error(GAN_ERR_ARG, "cpu advance_counts: count %d is NULL", i);
        *advance.count[i] += advance.add[i];
    }
    return GAN_OK;
}

gan_status cpu_images_to_float(gan_backend *be, int n, int h, int w, int c, const uint8_t *nhwc,
                               float *nchw)
{
    if (n < 0 || h < 1 || w < 1 || c < 1 || !nhwc || !nchw)
        return gan_error(GAN_ERR_ARG, "cpu images_to_float: bad arguments");
    const size_t plane = (size_t)h * w;
#pragma omp parallel for schedule(static) PARALLEL_IF((size_t)n * plane * c)
    for (int img = 0; img < n; img++)
        for (size_t p = 0; p < plane; p++)
            for (int ch = 0; ch < c; ch++)
                nchw[((size_t)img * c + ch) * plane + p] = gan_pixel_to_unit(nhwc[((size_t)img * plane + p) * c + ch]);
    return GAN_OK;
}
