/* The CPU backend's ops, one group per file; cpu_backend.c puts them in the op table. All memory
 * is host memory. Loops above PARALLEL_MIN_COUNT elements use OpenMP with a static schedule, and
 * every reduction has a fixed order, so results repeat exactly for a given thread count. */
#ifndef GAN_CPU_INTERNAL_H
#define GAN_CPU_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "gan/backend.h"

enum { CPU_PARALLEL_MIN_COUNT = 1 << 18 }; /* below this a parallel region costs more than it saves */

/* gan_lrelu_forward and gan_lrelu_backward, value for value, as a select of bits between two
 * values computed for every element: written as `x > 0 ? x : x * slope` the multiply sits in a
 * branch, which the compiler may not turn into a vector select (a multiply or a `>` on a NaN can
 * raise a floating-point exception, and with -ftrapping-math only the branch may do so), so the
 * loop stays scalar with a branch per element, mispredicted at every other sign change (10x
 * slower on real data). */
static inline float cpu_select_float(bool condition, float if_true, float if_false)
{
    uint32_t a, b, mask = 0u - (uint32_t)condition;
    memcpy(&a, &if_true, sizeof a);
    memcpy(&b, &if_false, sizeof b);
    uint32_t bits = (a & mask) | (b & ~mask);
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

static inline float cpu_lrelu_forward(float x, float slope)
{
    return cpu_select_float(x > 0.0f, x, x * slope);
}

/* From the input x, or from the output y when slope >= 0 (y > 0 exactly where x > 0), as
 * PyTorch's in-place LeakyReLU does. */
static inline float cpu_lrelu_backward(float x, float dy, float slope)
{
    return cpu_select_float(x > 0.0f, dy, dy * slope);
}

/* plane[count] = act(plane + b): bias_act_forward's per-plane loop, also the epilogue of
 * conv_bias_act_forward (the same per-element math, so the fused op gives the same bits). */
static inline void cpu_bias_act_plane(float *plane, size_t count, float b, gan_activation act, float slope)
{
    switch (act) {
    case GAN_ACT_RELU:
        for (size_t j = 0; j < count; j++)
            plane[j] = gan_relu_forward(plane[j] + b);
        break;
    case GAN_ACT_LRELU:
        for (size_t j = 0; j < count; j++)
            plane[j] = cpu_lrelu_forward(plane[j] + b, slope);
        break;
    case GAN_ACT_TANH:
        for (size_t j = 0; j < count; j++)
            plane[j] = gan_tanh_forward(plane[j] + b);
        break;
    case GAN_ACT_SIGMOID:
        for (size_t j = 0; j < count; j++)
            plane[j] = gan_sigmoid_forward(plane[j] + b);
        break;
    }
}

/* plane[count] = act(plane), in place: activation_forward's per-element math (the same functions,
 * so the result has the same bits), the epilogue of conv_forward_act and conv_backward_data_act.
 * No bias is added: x + 0.0f would turn -0 into +0. */
static inline void cpu_act_plane(float *plane, size_t count, gan_activation act, float slope)
{
    switch (act) {
    case GAN_ACT_RELU:
        for (size_t j = 0; j < count; j++)
            plane[j] = gan_relu_forward(plane[j]);
        break;
    case GAN_ACT_LRELU:
        for (size_t j = 0; j < count; j++)
            plane[j] = cpu_lrelu_forward(plane[j], slope);
        break;
    case GAN_ACT_TANH:
        for (size_t j = 0; j < count; j++)
            plane[j] = gan_tanh_forward(plane[j]);
        break;
    case GAN_ACT_SIGMOID:
        for (size_t j = 0; j < count; j++)
            plane[j] = gan_sigmoid_forward(plane[j]);
        break;
    }
}

/* be->impl of the CPU backend: settings fixed when it is created. */
typedef struct cpu_backend_state {
    /* A convolution puts as many images into one GEMM as fit in this many bytes of workspace per
     * thread (at least one image). conv_workspace_bytes and the convolutions read the same
     * value, so it may change only before any workspace is planned; the tests lower it to run
     * the chunked path on small geometries. */
    size_t conv_workspace_budget_bytes;
    /* OpenMP threads of the convolutions, omp_get_max_threads() when the backend was created:
     * the workspace is planned for this many. */
    int threads;
} cpu_backend_state;

#define CPU_CONV_WORKSPACE_BUDGET_BYTES ((size_t)2 << 20)
/* A convolution's chunk holds no more images than make its GEMM this many columns wide. */
enum { CPU_CONV_GEMM_COLUMNS = 256 };

/* cpu_conv.c */
gan_status cpu_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
size_t cpu_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g, unsigned passes);
void cpu_conv_describe(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, char *out,
                       size_t bytes);
gan_status cpu_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                            const float *w, float *y, void *workspace);
gan_status cpu_conv_bias_act_forward(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                     const float *bias, gan_activation act, float slope, int y_channels,
                                     int offset, float *y, void *workspace);
gan_status cpu_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                  const float *w, float *dx, void *workspace);
gan_status cpu_conv_forward_act(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                gan_activation act, float slope, float *y, void *workspace);
gan_status cpu_conv_backward_data_act(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                      const float *w, gan_activation act, float slope, float *dx,
                                      void *workspace);
gan_status cpu_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                    const float *dy, float beta, float *dw, void *workspace);
gan_status cpu_conv_grads(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy, float beta,
                          float *dw, gan_conv_pass other, const float *w, float *out, const void *kept,
                          void *workspace);
gan_status cpu_bias_forward(gan_backend *be, int n, int c, int hw, const float *bias, float *y);
gan_status cpu_bias_backward(gan_backend *be, int n, int c, int hw, const float *dy, float beta,
                             float *db);

/* cpu_norm.c */
gan_status cpu_bn_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                const float *gamma, const float *beta, float momentum, float eps,
                                float *running_mean, float *running_var, float *save_mean,
                                float *save_invstd, float *y);
gan_status cpu_bn_forward_eval(gan_backend *be, int n, int c, int hw, const float *x,
                               const float *gamma, const float *beta, const float *running_mean,
                               const float *running_var, float eps, float *y);
gan_status cpu_bn_backward(gan_backend *be, int n, int c, int hw, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd,
                           float *dx, float param_beta, float *dgamma, float *dbeta);
gan_status cpu_bn_act_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *beta, float momentum,
                                    float eps, float *running_mean, float *running_var,
                                    float *save_mean, float *save_invstd, float *y,
                                    gan_activation act, float slope, float *y_act);
gan_status cpu_bn_act_backward(gan_backend *be, int n, int c, int hw, const float *x,
                               const float *y_act, const float *dy_act, gan_activation act,
                               float slope, const float *gamma, const float *save_mean,
                               const float *save_invstd, float *dx, float param_beta,
                               float *dgamma, float *dbeta);

/* cpu_norm.c: batch norm split around the all-reduces of train.sync_bn */
gan_status cpu_bn_sums(gan_backend *be, int n, int c, int hw, const float *x, double *sums);
gan_status cpu_bn_centered_squares(gan_backend *be, int n, int c, int hw, const float *x,
                                   const double *sums, double count, double *squares);
gan_status cpu_bn_forward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *beta, float momentum, float eps,
                                    const double *sums, const double *squares, double count,
                                    float *running_mean, float *running_var, float *save_mean,
                                    float *save_invstd, float *y, gan_activation act, float slope,
                                    float *y_act);
gan_status cpu_bn_backward_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                const float *y_act, const float *dy, gan_activation act, float slope,
                                const float *save_mean, const float *save_invstd, float param_beta,
                                float *dgamma, float *dbeta, double *sums);
gan_status cpu_bn_backward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                     const float *y_act, const float *dy, gan_activation act,
                                     float slope, const float *gamma, const float *save_mean,
                                     const float *save_invstd, const double *sums, double count,
                                     float *dx);

/* cpu_dist.c: the all-reduces of a data-parallel run */
gan_status cpu_allreduce_sum(gan_backend *be, float *data, size_t count, float scale);
gan_status cpu_allreduce_sum_f64(gan_backend *be, double *data, size_t count);

/* cpu_elementwise.c */
gan_status cpu_fill(gan_backend *be, float *dst, float value, size_t count);
gan_status cpu_activation_forward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                  const float *x, float *y);
gan_status cpu_activation_backward(gan_backend *be, gan_activation kind, float slope,
                                   size_t count, const float *x, const float *y, const float *dy,
                                   float *dx);
gan_status cpu_dropout_forward(gan_backend *be, size_t count, float p, uint64_t seed,
                               uint64_t stream, gan_count first, const float *x, float *mask,
                               float *y);
gan_status cpu_multiply(gan_backend *be, size_t count, const float *a, const float *b, float *y);
gan_status cpu_bce_logits(gan_backend *be, int n, const float *logits, float target,
                          float grad_scale, float *loss, float *prob_mean, float *dlogits);
gan_status cpu_adam_step(gan_backend *be, size_t count, float *param, const float *grad, float *m,
                         float *v, gan_adam_hyper hyper, gan_count step);
gan_status cpu_ema_update(gan_backend *be, size_t count, double decay, const float *param, float *ema);
gan_status cpu_rng_normal(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                          gan_count first, float mean, float std, float *out);
gan_status cpu_rng_uniform(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                           gan_count first, float low, float high, float *out);
gan_status cpu_advance_counts(gan_backend *be, gan_count_advance advance);

/* *base + offset (base in host memory, NULL meaning 0). */
static inline uint64_t cpu_count_value(gan_count c) { return (c.base ? *c.base : 0) + c.offset; }
gan_status cpu_images_to_float(gan_backend *be, int n, int h, int w, int c, const uint8_t *nhwc,
                               float *nchw);

/* cpu_eval.c: the evaluation ops (gan/backend.h), inference only */
gan_status cpu_max_pool_forward(gan_backend *be, const gan_pool2d_geom *g, const float *x, float *y);
gan_status cpu_avg_pool_forward(gan_backend *be, const gan_pool2d_geom *g, bool count_include_pad,
                                const float *x, float *y);
gan_status cpu_global_avg_pool(gan_backend *be, int n, int c, int hw, const float *x, float *y);
gan_status cpu_copy_channels(gan_backend *be, int n, int c, int hw, const float *x, int y_channels,
                             int offset, float *y);
gan_status cpu_resize_bilinear(gan_backend *be, int n, int c, int h_in, int w_in, int h_out, int w_out,
                               const float *x, float *y);
gan_status cpu_bias_act_forward(gan_backend *be, int n, int c, int hw, const float *bias,
                                gan_activation act, float slope, float *y);

#endif
