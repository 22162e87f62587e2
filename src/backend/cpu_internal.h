/* The CPU backend's ops, one group per file; cpu_backend.c puts them in the op table. All memory
 * is host memory. Loops above PARALLEL_MIN_COUNT elements use OpenMP with a static schedule, and
 * every reduction has a fixed order, so results repeat exactly for a given thread count. */
#ifndef GAN_CPU_INTERNAL_H
#define GAN_CPU_INTERNAL_H

#include "gan/backend.h"

enum { CPU_PARALLEL_MIN_COUNT = 1 << 18 }; /* below this a parallel region costs more than it saves */

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

/* cpu_conv.c */
gan_status cpu_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
size_t cpu_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g);
gan_status cpu_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                            const float *w, float *y, void *workspace);
gan_status cpu_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                  const float *w, float *dx, void *workspace);
gan_status cpu_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                    const float *dy, float beta, float *dw, void *workspace);
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

/* cpu_elementwise.c */
gan_status cpu_fill(gan_backend *be, float *dst, float value, size_t count);
gan_status cpu_activation_forward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                  const float *x, float *y);
gan_status cpu_activation_backward(gan_backend *be, gan_activation kind, float slope,
                                   size_t count, const float *x, const float *y, const float *dy,
                                   float *dx);
gan_status cpu_dropout_forward(gan_backend *be, size_t count, float p, uint64_t seed,
                               uint64_t stream, uint64_t offset, const float *x, float *mask,
                               float *y);
gan_status cpu_multiply(gan_backend *be, size_t count, const float *a, const float *b, float *y);
gan_status cpu_bce_logits(gan_backend *be, int n, const float *logits, float target,
                          float grad_scale, float *loss, float *prob_mean, float *dlogits);
gan_status cpu_adam_step(gan_backend *be, size_t count, float *param, const float *grad, float *m,
                         float *v, gan_adam_scalars scalars);
gan_status cpu_rng_normal(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                          uint64_t offset, float mean, float std, float *out);
gan_status cpu_rng_uniform(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                           uint64_t offset, float low, float high, float *out);
gan_status cpu_images_to_float(gan_backend *be, int n, int h, int w, int c, const uint8_t *nhwc,
                               float *nchw);

#endif
