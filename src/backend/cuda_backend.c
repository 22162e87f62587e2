/* The CUDA backend: the op table of gan/backend.h on one device and one stream.
 *   GEMM: cuBLAS (row-major mapped onto column-major, see gan_cuda_gemm_args_make).
 *   Convolutions: cuDNN, src/backend/cuda_conv.c.
 *   Batch norm (with the ReLU/LeakyReLU after it fused) and everything else: our kernels
 *   (kernels/, launched through kernels/gan_kernels.h).
 * Every op is queued on the backend's stream and returns without waiting; only download and
 * synchronize wait (the trainer calls them at its log interval). Device memory is taken by alloc,
 * which the pool calls once at start-up, and by the backend itself at creation (the cuBLAS
 * workspace); nothing is allocated on the device inside an iteration.
 *
 * Options (gan_backend_options, fixed at creation): fp32 runs the GEMMs in pedantic FP32 and
 * cuDNN with CUDNN_FMA_MATH; tf32 runs both on TF32 tensor cores; bf16 runs the GEMMs on BF16
 * tensor cores (CUBLAS_COMPUTE_32F_FAST_16BF: FP32 storage, operands rounded to BF16, FP32 sums)
 * and cuDNN on BF16 copies of each convolution's operands (src/backend/cuda_conv.c); it needs an
 * Ampere or later GPU. Everything else (batch norm, activations, losses, Adam, the weights) is
 * FP32 in every precision. deterministic keeps to cuDNN's deterministic algorithms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"
#include "gan_kernels.h"

/* ---- checked calls --------------------------------------------------------------------------- */

gan_status gan_cuda_check(cudaError_t status, const char *call, const char *file, int line)
{
    if (status == cudaSuccess)
        return GAN_OK;
    cudaGetLastError(); /* clear the (non-sticky) error so the next check does not see it */
    return gan_error(GAN_ERR_BACKEND, "%s:%d: %s: CUDA error %s: %s", file, line, call,
                     cudaGetErrorName(status), cudaGetErrorString(status));
}

gan_status gan_cudnn_check(cudnnStatus_t status, const char *call, const char *file, int line)
{
    if (status == CUDNN_STATUS_SUCCESS)
        return GAN_OK;
    return gan_error(GAN_ERR_BACKEND, "%s:%d: %s: cuDNN error: %s", file, line, call,
                     cudnnGetErrorString(status));
}

gan_status gan_cublas_check(cublasStatus_t status, const char *call, const char *file, int line)
{
    if (status == CUBLAS_STATUS_SUCCESS)
        return GAN_OK;
    return gan_error(GAN_ERR_BACKEND, "%s:%d: %s: cuBLAS error %s: %s", file, line, call,
                     cublasGetStatusName(status), cublasGetStatusString(status));
}

/* ---- memory -------------------------------------------------------------------------------- */

static gan_status cuda_alloc(gan_backend *be, size_t bytes, void **out)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    *out = NULL;
    cudaError_t status = cudaMalloc(out, bytes ? bytes : 1);
    if (status != cudaSuccess) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_bytes, &total_bytes);
        cudaGetLastError();
        return gan_error(GAN_ERR_NOMEM,
                         "cannot allocate %zu bytes of GPU memory (%s); the device has %zu of %zu "
                         "bytes free: try a smaller train.batch_size",
                         bytes, cudaGetErrorString(status), free_bytes, total_bytes);
    }
    impl->allocated_bytes += bytes;
    return GAN_OK;
}

static void cuda_free(gan_backend *be, void *ptr)
{
    if (ptr)
        cudaFree(ptr);
}

/* The calls a capture does not allow (they would fail inside the driver with a less clear
 * message, or wait for work that is only being recorded). */
static gan_status refuse_while_capturing(const gan_cuda_impl *impl, const char *what)
{
    if (impl->capturing)
        return gan_error(GAN_ERR_ARG, "%s while a graph is being captured", what);
    if (impl->on_side)
        return gan_error(GAN_ERR_ARG, "%s while ops go to the side stream (between side_fork and side_return)", what);
    return GAN_OK;
}

/* The most one upload stages through the pinned buffers (a batch of DCGAN-64 at 128 images is
 * 1.5 MiB); larger uploads (weights from a checkpoint) go straight from the caller's memory. */
enum { STAGING_MAX_BYTES = 64 << 20 };

/* Pinned staging buffer i, at least `bytes` large, free to be overwritten. */
static gan_status staging_buffer(gan_cuda_impl *impl, int i, size_t bytes)
{
    CUDA_TRY(cudaEventSynchronize(impl->staging_done[i])); /* its last copy has finished */
    if (impl->staging_bytes[i] >= bytes)
        return GAN_OK;
    if (impl->staging[i])
        CUDA_TRY(cudaFreeHost(impl->staging[i]));
    impl->staging[i] = NULL;
    impl->staging_bytes[i] = 0;
    CUDA_TRY(cudaHostAlloc(&impl->staging[i], bytes, cudaHostAllocDefault));
    impl->staging_bytes[i] = bytes;
    return GAN_OK;
}

/* The caller may reuse host_src as soon as this returns. Small uploads (the per-step batch) are
 * copied into the next pinned staging buffer and the device copy from it queued without waiting,
 * so the upload overlaps whatever the stream is still running (the previous step); large ones
 * are copied from the caller's memory directly, and waited for when that memory is pinned
 * (a truly asynchronous copy the caller could overwrite). */
static gan_status cuda_upload(gan_backend *be, void *dst, const void *host_src, size_t bytes)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (bytes == 0)
        return GAN_OK;
    GAN_TRY(refuse_while_capturing(impl, "upload"));
    if (bytes <= STAGING_MAX_BYTES) {
        int i = impl->staging_next;
        GAN_TRY(staging_buffer(impl, i, bytes));
        memcpy(impl->staging[i], host_src, bytes);
        CUDA_TRY(cudaMemcpyAsync(dst, impl->staging[i], bytes, cudaMemcpyHostToDevice, impl->stream));
        CUDA_TRY(cudaEventRecord(impl->staging_done[i], impl->stream));
        impl->staging_next = 1 - i;
        return GAN_OK;
    }
    CUDA_TRY(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, impl->stream));
    struct cudaPointerAttributes attributes;
    if (cudaPointerGetAttributes(&attributes, host_src) != cudaSuccess) {
        cudaGetLastError();
        attributes.type = cudaMemoryTypeHost; /* unknown: be safe */
    }
    if (attributes.type == cudaMemoryTypeHost)
        CUDA_TRY(cudaStreamSynchronize(impl->stream));
    return GAN_OK;
}

static gan_status cuda_download(gan_backend *be, void *host_dst, const void *src, size_t bytes)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    GAN_TRY(refuse_while_capturing(impl, "download"));
    CUDA_TRY(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, impl->stream));
    CUDA_TRY(cudaStreamSynchronize(impl->stream));
    return GAN_OK;
}

static gan_status cuda_copy(gan_backend *be, void *dst, const void *src, size_t bytes)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl->stream));
    return GAN_OK;
}

static gan_status cuda_fill(gan_backend *be, float *dst, float value, size_t count)
{
    return gan_cuda_fill(gan_cuda_impl_of(be)->stream, dst, value, count);
}

/* Errors of queued kernels surface here. Both streams: work left on the side (not joined) too. */
static gan_status cuda_synchronize(gan_backend *be)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    GAN_TRY(refuse_while_capturing(impl, "synchronize"));
    for (int i = 0; i < 2; i++)
        if (impl->lanes[i].stream)
            CUDA_TRY(cudaStreamSynchronize(impl->lanes[i].stream));
    return GAN_OK;
}

/* ---- the side stream (gan/backend.h side_fork) ---------------------------------------------- */

/* Which stream the ops go to from now on: `stream`, `cudnn` and `cublas` are that stream's. */
static void go_to(gan_cuda_impl *impl, bool side)
{
    const gan_cuda_lane *lane = &impl->lanes[side];
    impl->on_side = side;
    impl->stream = lane->stream;
    impl->cudnn = lane->cudnn;
    impl->cublas = lane->cublas;
    impl->cublas_workspace = lane->cublas_workspace;
    impl->bn_scratch = lane->bn_scratch;
}

/* An event on main where everything queued so far ends; side waits for it. Inside a capture this
 * brings side into the capture (the graph's fork). */
static gan_status cuda_side_fork(gan_backend *be)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (impl->on_side)
        return gan_error(GAN_ERR_ARG, "side_fork: ops already go to the side stream");
    CUDA_TRY(cudaEventRecord(impl->fork_event, impl->lanes[0].stream));
    CUDA_TRY(cudaStreamWaitEvent(impl->lanes[1].stream, impl->fork_event, 0));
    go_to(impl, true);
    impl->side_unjoined = true;
    return GAN_OK;
}

static gan_status cuda_side_return(gan_backend *be)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (!impl->on_side)
        return gan_error(GAN_ERR_ARG, "side_return without a side_fork");
    go_to(impl, false);
    return GAN_OK;
}

/* main waits for everything queued on side (the graph's join, inside a capture). */
static gan_status cuda_side_join(gan_backend *be)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (impl->on_side)
        return gan_error(GAN_ERR_ARG, "side_join while ops go to the side stream (side_return first)");
    if (!impl->side_unjoined)
        return GAN_OK;
    CUDA_TRY(cudaEventRecord(impl->join_event, impl->lanes[1].stream));
    CUDA_TRY(cudaStreamWaitEvent(impl->lanes[0].stream, impl->join_event, 0));
    impl->side_unjoined = false;
    return GAN_OK;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

/* Row-major C = alpha op(A) op(B) + beta C as column-major C^T = alpha op(B)^T op(A)^T + beta C^T:
 * cuBLAS gets B as its first operand and A as its second, with m and n exchanged; see
 * gan_cuda_gemm_args_make for the derivation. */
static gan_status cuda_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                            float *c, int ldc)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_gemm_args args;
    GAN_TRY(gan_cuda_gemm_args_make(trans_a, trans_b, m, n, k, lda, ldb, ldc, &args));
    if (args.m == 0 || args.n == 0)
        return GAN_OK;
    const float *first = args.swap_operands ? b : a;
    const float *second = args.swap_operands ? a : b;
    CUBLAS_TRY(cublasGemmEx(impl->cublas, gan_cuda_cublas_op(args.transa),
                            gan_cuda_cublas_op(args.transb), args.m, args.n, args.k, &alpha, first,
                            CUDA_R_32F, args.lda, second, CUDA_R_32F, args.ldb, &beta, c, CUDA_R_32F,
                            args.ldc, gan_cuda_gemm_compute_type(impl->precision),
                            CUBLAS_GEMM_DEFAULT));
    return GAN_OK;
}

/* ---- bias, batch norm ----------------------------------------------------------------------- */

static gan_status cuda_bias_forward(gan_backend *be, int n, int c, int hw, const float *bias, float *y)
{
    return gan_cuda_bias_forward(gan_cuda_impl_of(be)->stream, n, c, hw, bias, y);
}

static gan_status cuda_bias_backward(gan_backend *be, int n, int c, int hw, const float *dy,
                                     float beta, float *db)
{
    return gan_cuda_bias_backward(gan_cuda_impl_of(be)->stream, n, c, hw, dy, beta, db);
}

/* The scratch arguments of the batch-norm launchers: the backend's buffer and its size. */
#define BN_SCRATCH(be) gan_cuda_impl_of(be)->bn_scratch, GAN_CUDA_BN_SCRATCH_DOUBLES

static gan_status cuda_bn_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                        const float *gamma, const float *beta, float momentum,
                                        float eps, float *running_mean, float *running_var,
                                        float *save_mean, float *save_invstd, float *y)
{
    return gan_cuda_bn_forward_train(gan_cuda_impl_of(be)->stream, n, c, hw, x, gamma, beta, momentum,
                                     eps, running_mean, running_var, save_mean, save_invstd, y,
                                     GAN_FUSED_NONE, 0.0f, NULL, BN_SCRATCH(be));
}

static gan_status cuda_bn_act_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                            const float *gamma, const float *beta, float momentum,
                                            float eps, float *running_mean, float *running_var,
                                            float *save_mean, float *save_invstd, float *y,
                                            gan_activation act, float slope, float *y_act)
{
    return gan_cuda_bn_forward_train(gan_cuda_impl_of(be)->stream, n, c, hw, x, gamma, beta, momentum,
                                     eps, running_mean, running_var, save_mean, save_invstd, y,
                                     (int)act, slope, y_act, BN_SCRATCH(be));
}

static gan_status cuda_bn_forward_eval(gan_backend *be, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *beta,
                                       const float *running_mean, const float *running_var,
                                       float eps, float *y)
{
    return gan_cuda_bn_forward_eval(gan_cuda_impl_of(be)->stream, n, c, hw, x, gamma, beta,
                                    running_mean, running_var, eps, y);
}

static gan_status cuda_bn_backward(gan_backend *be, int n, int c, int hw, const float *x,
                                   const float *dy, const float *gamma, const float *save_mean,
                                   const float *save_invstd, float *dx, float param_beta,
                                   float *dgamma, float *dbeta)
{
    return gan_cuda_bn_backward(gan_cuda_impl_of(be)->stream, n, c, hw, x, NULL, dy, GAN_FUSED_NONE,
                                0.0f, gamma, save_mean, save_invstd, dx, param_beta, dgamma, dbeta, BN_SCRATCH(be));
}

static gan_status cuda_bn_act_backward(gan_backend *be, int n, int c, int hw, const float *x,
                                       const float *y_act, const float *dy_act, gan_activation act,
                                       float slope, const float *gamma, const float *save_mean,
                                       const float *save_invstd, float *dx, float param_beta,
                                       float *dgamma, float *dbeta)
{
    return gan_cuda_bn_backward(gan_cuda_impl_of(be)->stream, n, c, hw, x, y_act, dy_act, (int)act,
                                slope, gamma, save_mean, save_invstd, dx, param_beta, dgamma, dbeta,
                                BN_SCRATCH(be));
}

/* ---- batch norm and activations over stored tensors (NHWC edges) ---------------------------- */

_Static_assert(GAN_CONV_NO_ACT == GAN_FUSED_NONE, "the op table's no activation is the kernels' GAN_FUSED_NONE");

static gan_status cuda_bn_stored_forward_train(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                               const float *gamma, const float *beta, float momentum, float eps,
                                               float *running_mean, float *running_var, float *save_mean,
                                               float *save_invstd, gan_storage out, void *y, int act, float slope,
                                               void *y_act)
{
    return gan_cuda_bn_nhwc_forward_train(gan_cuda_impl_of(be)->stream, n, c, hw, (int)in, x, gamma, beta, momentum,
                                          eps, running_mean, running_var, save_mean, save_invstd, (int)out, y, act,
                                          slope, y_act, BN_SCRATCH(be));
}

static gan_status cuda_bn_stored_forward_eval(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                              const float *gamma, const float *beta, const float *running_mean,
                                              const float *running_var, float eps, gan_storage out, void *y)
{
    return gan_cuda_bn_nhwc_forward_eval(gan_cuda_impl_of(be)->stream, n, c, hw, (int)in, x, gamma, beta,
                                         running_mean, running_var, eps, (int)out, y);
}

static gan_status cuda_bn_stored_backward(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                          gan_storage out, const void *y_act, const void *dy, int act, float slope,
                                          const float *gamma, const float *save_mean, const float *save_invstd,
                                          void *dx, float param_beta, float *dgamma, float *dbeta)
{
    return gan_cuda_bn_nhwc_backward(gan_cuda_impl_of(be)->stream, n, c, hw, (int)in, x, (int)out, y_act, dy, act,
                                     slope, gamma, save_mean, save_invstd, dx, param_beta, dgamma, dbeta,
                                     BN_SCRATCH(be));
}

/* The storage of the tensors a model keeps between its layers (gan_backend.edge_storage): NHWC,
 * cuDNN's tensor-core layout, in bf16 (BF16) and tf32 (FP32, unless GAN_CUDA_NHWC=never keeps tf32
 * in NCHW); none in fp32, whose cuDNN passes run on FP32 NCHW. GAN_CUDA_STORAGE=never: none (the
 * speed check's comparison). */
static gan_storage edge_storage_for(gan_precision precision)
{
    const char *storage = getenv("GAN_CUDA_STORAGE"), *nhwc = getenv("GAN_CUDA_NHWC");
    if (storage && !strcmp(storage, "never"))
        return GAN_STORAGE_F32_NCHW;
    if (precision == GAN_PRECISION_BF16)
        return GAN_STORAGE_BF16_NHWC;
    if (precision == GAN_PRECISION_TF32 && !(nhwc && !strcmp(nhwc, "never")))
        return GAN_STORAGE_F32_NHWC;
    return GAN_STORAGE_F32_NCHW;
}

static gan_status cuda_activation_bf16_forward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                               const void *x, void *y)
{
    return gan_cuda_activation_forward_bf16(gan_cuda_impl_of(be)->stream, kind, slope, count, x, y);
}

static gan_status cuda_activation_bf16_backward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                                const void *x, const void *y, const void *dy, void *dx)
{
    return gan_cuda_activation_backward_bf16(gan_cuda_impl_of(be)->stream, kind, slope, count, x, y, dy, dx);
}

static void cuda_bn_describe(gan_backend *be, int n, int c, int hw, char *out, size_t bytes)
{
    (void)be;
    gan_cuda_bn_describe(n, c, hw, GAN_CUDA_BN_SCRATCH_DOUBLES, out, bytes);
}

/* ---- batch norm split around the all-reduces of train.sync_bn ---------------------------------- */

static int fused_kind(const float *y_act, gan_activation act) { return y_act ? (int)act : GAN_FUSED_NONE; }

static gan_status cuda_bn_sums(gan_backend *be, int n, int c, int hw, const float *x, double *sums)
{
    return gan_cuda_bn_sums(gan_cuda_impl_of(be)->stream, n, c, hw, x, BN_SCRATCH(be), sums);
}

static gan_status cuda_bn_centered_squares(gan_backend *be, int n, int c, int hw, const float *x,
                                           const double *sums, double count, double *squares)
{
    return gan_cuda_bn_centered_squares(gan_cuda_impl_of(be)->stream, n, c, hw, x, sums, count, BN_SCRATCH(be),
                                        squares);
}

static gan_status cuda_bn_forward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                            const float *gamma, const float *beta, float momentum, float eps,
                                            const double *sums, const double *squares, double count,
                                            float *running_mean, float *running_var, float *save_mean,
                                            float *save_invstd, float *y, gan_activation act, float slope,
                                            float *y_act)
{
    return gan_cuda_bn_forward_from_sums(gan_cuda_impl_of(be)->stream, n, c, hw, x, gamma, beta, momentum, eps,
                                         sums, squares, count, running_mean, running_var, save_mean,
                                         save_invstd, y, fused_kind(y_act, act), slope, y_act);
}

static gan_status cuda_bn_backward_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                        const float *y_act, const float *dy, gan_activation act, float slope,
                                        const float *save_mean, const float *save_invstd, float param_beta,
                                        float *dgamma, float *dbeta, double *sums)
{
    return gan_cuda_bn_backward_sums(gan_cuda_impl_of(be)->stream, n, c, hw, x, y_act, dy, fused_kind(y_act, act),
                                     slope, save_mean, save_invstd, param_beta, dgamma, dbeta, BN_SCRATCH(be), sums);
}

static gan_status cuda_bn_backward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                             const float *y_act, const float *dy, gan_activation act,
                                             float slope, const float *gamma, const float *save_mean,
                                             const float *save_invstd, const double *sums, double count,
                                             float *dx)
{
    return gan_cuda_bn_backward_from_sums(gan_cuda_impl_of(be)->stream, n, c, hw, x, y_act, dy,
                                          fused_kind(y_act, act), slope, gamma, save_mean, save_invstd, sums,
                                          count, dx);
}

/* ---- the kernels ---------------------------------------------------------------------------- */

static gan_status cuda_activation_forward(gan_backend *be, gan_activation kind, float slope,
                                          size_t count, const float *x, float *y)
{
    return gan_cuda_activation_forward(gan_cuda_impl_of(be)->stream, kind, slope, count, x, y);
}

static gan_status cuda_activation_backward(gan_backend *be, gan_activation kind, float slope,
                                           size_t count, const float *x, const float *y,
                                           const float *dy, float *dx)
{
    return gan_cuda_activation_backward(gan_cuda_impl_of(be)->stream, kind, slope, count, x, y,
                                        dy, dx);
}

static gan_status cuda_dropout_forward(gan_backend *be, size_t count, float p, uint64_t seed,
                                       uint64_t stream, gan_count first, const float *x,
                                       float *mask, float *y)
{
    return gan_cuda_dropout_forward(gan_cuda_impl_of(be)->stream, count, p, seed, stream, first,
                                    x, mask, y);
}

static gan_status cuda_multiply(gan_backend *be, size_t count, const float *a, const float *b,
                                float *y)
{
    return gan_cuda_multiply(gan_cuda_impl_of(be)->stream, count, a, b, y);
}

/* loss and prob_mean stay in device memory: no host synchronisation here. */
static gan_status cuda_bce_logits(gan_backend *be, int n, const float *logits, float target,
                                  float grad_scale, float *loss, float *prob_mean, float *dlogits)
{
    return gan_cuda_bce_logits(gan_cuda_impl_of(be)->stream, n, logits, target, grad_scale, loss,
                               prob_mean, dlogits);
}

static gan_status cuda_adam_step(gan_backend *be, size_t count, float *param, const float *grad,
                                 float *m, float *v, gan_adam_hyper hyper, gan_count step)
{
    return gan_cuda_adam_step(gan_cuda_impl_of(be)->stream, count, param, grad, m, v, hyper, step);
}

static gan_status cuda_ema_update(gan_backend *be, size_t count, double decay, const float *param, float *ema)
{
    return gan_cuda_ema_update(gan_cuda_impl_of(be)->stream, count, decay, param, ema);
}

static gan_status cuda_rng_normal(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                                  gan_count first, float mean, float std, float *out)
{
    return gan_cuda_rng_normal(gan_cuda_impl_of(be)->stream, count, seed, stream, first, mean, std,
                               out);
}

static gan_status cuda_rng_uniform(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                                   gan_count first, float low, float high, float *out)
{
    return gan_cuda_rng_uniform(gan_cuda_impl_of(be)->stream, count, seed, stream, first, low, high,
                                out);
}

static gan_status cuda_advance_counts(gan_backend *be, gan_count_advance advance)
{
    return gan_cuda_advance_counts(gan_cuda_impl_of(be)->stream, advance);
}

static gan_status cuda_images_to_float(gan_backend *be, int n, int h, int w, int c,
                                       const uint8_t *nhwc, float *nchw)
{
    return gan_cuda_images_to_float(gan_cuda_impl_of(be)->stream, n, h, w, c, nhwc, nchw);
}

/* ---- evaluation ops (kernels/eval.cuh) -------------------------------------------------------- */

static gan_status cuda_max_pool_forward(gan_backend *be, const gan_pool2d_geom *g, const float *x, float *y)
{
    return gan_cuda_max_pool_forward(gan_cuda_impl_of(be)->stream, g, x, y);
}

static gan_status cuda_avg_pool_forward(gan_backend *be, const gan_pool2d_geom *g, bool count_include_pad,
                                        const float *x, float *y)
{
    return gan_cuda_avg_pool_forward(gan_cuda_impl_of(be)->stream, g, count_include_pad, x, y);
}

static gan_status cuda_global_avg_pool(gan_backend *be, int n, int c, int hw, const float *x, float *y)
{
    return gan_cuda_global_avg_pool(gan_cuda_impl_of(be)->stream, n, c, hw, x, y);
}

static gan_status cuda_copy_channels(gan_backend *be, int n, int c, int hw, const float *x, int y_channels,
                                     int offset, float *y)
{
    return gan_cuda_copy_channels(gan_cuda_impl_of(be)->stream, n, c, hw, x, y_channels, offset, y);
}

static gan_status cuda_resize_bilinear(gan_backend *be, int n, int c, int h_in, int w_in, int h_out, int w_out,
                                       const float *x, float *y)
{
    return gan_cuda_resize_bilinear(gan_cuda_impl_of(be)->stream, n, c, h_in, w_in, h_out, w_out, x, y);
}

static gan_status cuda_bias_act_forward(gan_backend *be, int n, int c, int hw, const float *bias,
                                        gan_activation act, float slope, float *y)
{
    return gan_cuda_bias_act_forward(gan_cuda_impl_of(be)->stream, n, c, hw, bias, act, slope, y);
}

/* ---- graphs ----------------------------------------------------------------------------------- */

struct gan_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

/* Thread-local capture: another host thread's CUDA calls (the data loader's are none) cannot
 * break it, and this thread may not make unsafe calls (cudaMalloc, synchronising copies) until
 * capture_end. */
static gan_status cuda_capture_begin(gan_backend *be)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    GAN_TRY(refuse_while_capturing(impl, "capture_begin"));
    GAN_TRY(cuda_side_join(be)); /* the graph starts after everything queued on either stream */
    CUDA_TRY(cudaStreamBeginCapture(impl->stream, cudaStreamCaptureModeThreadLocal));
    impl->capturing = true;
    return GAN_OK;
}

static gan_status cuda_capture_end(gan_backend *be, gan_graph **out)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    *out = NULL;
    /* the capture ends whatever went wrong, so that the stream is usable again */
    bool was_on_side = impl->on_side;
    go_to(impl, false);
    gan_status joined = cuda_side_join(be); /* a capture ends with every stream joined back */
    impl->capturing = false;
    gan_graph *g = calloc(1, sizeof *g);
    cudaGraph_t orphan = NULL;
    cudaError_t ended = cudaStreamEndCapture(impl->stream, g ? &g->graph : &orphan);
    if (!g) {
        if (orphan)
            cudaGraphDestroy(orphan);
        return gan_error(GAN_ERR_NOMEM, "out of memory for a graph");
    }
    gan_status status = was_on_side ? gan_error(GAN_ERR_ARG, "capture_end while ops went to the side stream "
                                                             "(no side_return after a side_fork)")
                        : joined != GAN_OK ? joined
                                           : gan_cuda_check(ended, "cudaStreamEndCapture", __FILE__, __LINE__);
    if (ended != cudaSuccess)
        cudaGetLastError(); /* said above, or outweighed by what is */
    if (status == GAN_OK)
        status = gan_cuda_check(cudaGraphInstantiate(&g->exec, g->graph, 0), "cudaGraphInstantiate",
                                __FILE__, __LINE__);
    if (status != GAN_OK) {
        if (g->graph)
            cudaGraphDestroy(g->graph);
        free(g);
        return status;
    }
    *out = g;
    return GAN_OK;
}

static gan_status cuda_graph_launch(gan_backend *be, gan_graph *graph)
{
    GAN_TRY(refuse_while_capturing(gan_cuda_impl_of(be), "a graph launch"));
    CUDA_TRY(cudaGraphLaunch(graph->exec, gan_cuda_impl_of(be)->stream));
    return GAN_OK;
}

/* Each node is one launch of a replay (a kernel of ours, cuDNN's or cuBLAS's; a copy; a memset):
 * the count says how much of a replay's time is launch latency. */
static void cuda_graph_describe(gan_backend *be, gan_graph *graph, char *out, size_t bytes)
{
    (void)be;
    size_t count = 0, kernels = 0, copies = 0, memsets = 0, other = 0;
    cudaGraphNode_t *nodes = NULL;
    if (cudaGraphGetNodes(graph->graph, NULL, &count) != cudaSuccess ||
        !(nodes = malloc((count ? count : 1) * sizeof *nodes)) ||
        cudaGraphGetNodes(graph->graph, nodes, &count) != cudaSuccess) {
        cudaGetLastError();
        free(nodes);
        snprintf(out, bytes, "its nodes could not be listed");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        enum cudaGraphNodeType type;
        if (cudaGraphNodeGetType(nodes[i], &type) != cudaSuccess) {
            cudaGetLastError();
            other++;
            continue;
        }
        *(type == cudaGraphNodeTypeKernel   ? &kernels
          : type == cudaGraphNodeTypeMemcpy ? &copies
          : type == cudaGraphNodeTypeMemset ? &memsets
                                            : &other) += 1;
    }
    free(nodes);
    snprintf(out, bytes, "%zu nodes per replay: %zu kernels, %zu copies, %zu memsets, %zu other", count, kernels,
             copies, memsets, other);
}

static void cuda_graph_destroy(gan_backend *be, gan_graph *graph)
{
    if (!graph)
        return;
    cudaGraphExecDestroy(graph->exec);
    cudaGraphDestroy(graph->graph);
    cudaGetLastError();
    free(graph);
}

/* ---- creation, modes ------------------------------------------------------------------------ */

static void cuda_destroy(gan_backend *be)
{
    if (!be)
        return;
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (impl) {
        go_to(impl, false);
        for (int i = 0; i < 2; i++)
            if (impl->lanes[i].stream)
                cudaStreamSynchronize(impl->lanes[i].stream);
        gan_cuda_dist_close(impl);
        gan_cuda_conv_plans_clear(impl);
        for (int i = 0; i < 2; i++) {
            if (impl->staging[i])
                cudaFreeHost(impl->staging[i]);
            if (impl->staging_done[i])
                cudaEventDestroy(impl->staging_done[i]);
        }
        for (int i = 0; i < 2; i++) {
            gan_cuda_lane *lane = &impl->lanes[i];
            if (lane->cublas)
                cublasDestroy(lane->cublas);
            if (lane->cudnn)
                cudnnDestroy(lane->cudnn);
            if (lane->cublas_workspace)
                cudaFree(lane->cublas_workspace);
            if (lane->stream)
                cudaStreamDestroy(lane->stream);
            if (lane->bn_scratch)
                cudaFree(lane->bn_scratch);
        }
        if (impl->fork_event)
            cudaEventDestroy(impl->fork_event);
        if (impl->join_event)
            cudaEventDestroy(impl->join_event);
        cudaGetLastError();
        free(impl);
    }
    free(be);
}

static gan_status apply_cublas_math(gan_cuda_impl *impl)
{
    /* The GEMMs name their compute type (gan_cuda_gemm_compute_type); the handle's mode says the
     * same, for any cuBLAS call that takes it from there. Pedantic: FP32 products and sums only
     * (no TF32, no reduced-precision reductions). */
    cublasMath_t math = impl->precision == GAN_PRECISION_FP32   ? CUBLAS_PEDANTIC_MATH
                        : impl->precision == GAN_PRECISION_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                : CUBLAS_DEFAULT_MATH;
    for (int i = 0; i < 2; i++)
        if (impl->lanes[i].cublas)
            CUBLAS_TRY(cublasSetMathMode(impl->lanes[i].cublas, math));
    return GAN_OK;
}

/* The device must be able to run our kernels: a build without this GPU's architecture fails
 * here with a clear message rather than at the first op. */
static gan_status probe_kernels(gan_cuda_impl *impl)
{
    GAN_TRY(gan_cuda_fill(impl->stream, (float *)impl->cublas_workspace, 0.0f, 1));
    cudaError_t status = cudaStreamSynchronize(impl->stream);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return gan_error(GAN_ERR_UNSUPPORTED,
                         "the CUDA kernels do not run on this GPU (compute capability %d.x): %s; "
                         "rebuild with -DCMAKE_CUDA_ARCHITECTURES=native",
                         impl->compute_capability_major, cudaGetErrorString(status));
    }
    return GAN_OK;
}

static gan_status cuda_open(gan_backend *be, gan_cuda_impl *impl, bool with_side)
{
    int driver = 0, count = 0;
    cudaDriverGetVersion(&driver);
    cudaGetLastError();
    if (driver == 0)
        return gan_error(GAN_ERR_UNSUPPORTED, "no NVIDIA driver on this machine (the CUDA backend "
                                              "needs one and a GPU)");
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return gan_error(GAN_ERR_UNSUPPORTED, "no usable CUDA driver or device: %s",
                         cudaGetErrorString(status));
    }
    if (count == 0)
        return gan_error(GAN_ERR_UNSUPPORTED, "no CUDA device (cudaGetDeviceCount found none)");
    if (impl->device >= count)
        return gan_error(GAN_ERR_UNSUPPORTED, "no CUDA device %d: this machine has %d (0..%d)",
                         impl->device, count, count - 1);
    CUDA_TRY(cudaSetDevice(impl->device));
    struct cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, impl->device));
    impl->compute_capability_major = prop.major;
    impl->compute_capability_minor = prop.minor;
    if (impl->precision == GAN_PRECISION_BF16 && prop.major < 8)
        return gan_error(GAN_ERR_UNSUPPORTED,
                         "train.precision = bf16 needs BF16 tensor cores (compute capability 8.0 or "
                         "later), and CUDA device %d (%s) is %d.%d: use fp32 or tf32",
                         impl->device, prop.name, prop.major, prop.minor);
    /* The name keys stored algorithm choices (conv_choices.h): no quote or control character. */
    snprintf(impl->gpu_name, sizeof impl->gpu_name, "%s", prop.name[0] ? prop.name : "unnamed");
    for (char *c = impl->gpu_name; *c; c++)
        if (*c == '"' || (unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '_';
    impl->cudnn_version = (long)cudnnGetVersion();
    /* cuBLAS's own workspace, given once so that it never allocates behind our back: the sizes
     * cuBLAS's documentation recommends (32 MiB on Hopper and later, 4 MiB before), one per
     * stream (a workspace used by two streams at once would be a race) */
    impl->cublas_workspace_bytes = impl->compute_capability_major >= 9 ? (32u << 20) : (4u << 20);
    for (int i = 0; i < (with_side ? 2 : 1); i++) {
        gan_cuda_lane *lane = &impl->lanes[i];
        CUDA_TRY(cudaStreamCreateWithFlags(&lane->stream, cudaStreamNonBlocking));
        CUDNN_TRY(cudnnCreate(&lane->cudnn));
        CUDNN_TRY(cudnnSetStream(lane->cudnn, lane->stream));
        CUBLAS_TRY(cublasCreate(&lane->cublas));
        CUBLAS_TRY(cublasSetStream(lane->cublas, lane->stream));
        GAN_TRY(cuda_alloc(be, impl->cublas_workspace_bytes, &lane->cublas_workspace));
        CUBLAS_TRY(cublasSetWorkspace(lane->cublas, lane->cublas_workspace, impl->cublas_workspace_bytes));
        GAN_TRY(cuda_alloc(be, GAN_CUDA_BN_SCRATCH_DOUBLES * sizeof(double), (void **)&lane->bn_scratch));
    }
    go_to(impl, false);
    if (with_side) {
        CUDA_TRY(cudaEventCreateWithFlags(&impl->fork_event, cudaEventDisableTiming));
        CUDA_TRY(cudaEventCreateWithFlags(&impl->join_event, cudaEventDisableTiming));
    }
    GAN_TRY(apply_cublas_math(impl));
    for (int i = 0; i < 2; i++)
        CUDA_TRY(cudaEventCreateWithFlags(&impl->staging_done[i], cudaEventDisableTiming));
    GAN_TRY(probe_kernels(impl));
    return GAN_OK;
}

gan_status gan_cuda_module_backend_create(const gan_backend_options *options, gan_backend **out)
{
    *out = NULL;
    gan_backend_options opts = options ? *options : gan_backend_options_default();
    if (opts.precision != GAN_PRECISION_FP32 && opts.precision != GAN_PRECISION_TF32 &&
        opts.precision != GAN_PRECISION_BF16)
        return gan_error(GAN_ERR_ARG, "unknown precision %d", (int)opts.precision);
    if (opts.device_index < 0)
        return gan_error(GAN_ERR_ARG, "no CUDA device %d", opts.device_index);
    if (!opts.workspace_bytes)
        opts.workspace_bytes = GAN_CUDA_DEFAULT_WORKSPACE_BYTES;
    bool data_parallel = opts.dist && opts.dist->active;
    if (data_parallel && !gan_cuda_has_nccl())
        return gan_error(GAN_ERR_UNSUPPORTED, "a data-parallel run on CUDA needs NCCL, and this CUDA backend was "
                                              "built without it (nccl.h and libnccl were not found: set NCCL_ROOT)");
    gan_backend *be = calloc(1, sizeof *be);
    gan_cuda_impl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        return gan_error(GAN_ERR_NOMEM, "out of memory for the CUDA backend");
    }
    impl->device = opts.device_index;
    impl->precision = opts.precision;
    impl->deterministic = opts.deterministic;
    impl->workspace_budget_bytes = opts.workspace_bytes;
    impl->backend = be;
    /* the weight gradients beside the input gradients (gan/backend.h side_fork); never: one stream */
    const char *side = getenv("GAN_CUDA_SIDE_STREAM");
    bool with_side = !(side && !strcmp(side, "never"));
    /* the real batch straight into the first convolution's input copy (conv_keep_images); never:
     * through images_to_float, as on the CPU */
    const char *images = getenv("GAN_CUDA_KEEP_IMAGES");
    bool keep_images = !(images && !strcmp(images, "never"));
    *be = (gan_backend){
        .name = "cuda",
        .kind = GAN_BACKEND_CUDA,
        .options = opts,
        .impl = impl,
        .edge_storage = edge_storage_for(opts.precision),
        .alloc = cuda_alloc,
        .free = cuda_free,
        .upload = cuda_upload,
        .download = cuda_download,
        .copy = cuda_copy,
        .fill = cuda_fill,
        .synchronize = cuda_synchronize,
        .gemm = cuda_gemm,
        .conv_workspace_bytes = gan_cuda_conv_workspace_bytes,
        .conv_forward = gan_cuda_conv_forward,
        .conv_backward_data = gan_cuda_conv_backward_data,
        .conv_forward_act = gan_cuda_conv_forward_act,
        .conv_backward_data_act = gan_cuda_conv_backward_data_act,
        .conv_backward_filter = gan_cuda_conv_backward_filter,
        .conv_grads = gan_cuda_conv_grads,
        .conv_keep_bytes = gan_cuda_conv_keep_bytes,
        .conv_keep_pass = gan_cuda_conv_keep_pass,
        .conv_keep_images = keep_images ? gan_cuda_conv_keep_images : NULL,
        .conv_weight_copy_bytes = gan_cuda_conv_weight_copy_bytes,
        .conv_weight_copies = gan_cuda_conv_weight_copies,
        .bias_forward = cuda_bias_forward,
        .bias_backward = cuda_bias_backward,
        .bn_forward_train = cuda_bn_forward_train,
        .bn_forward_eval = cuda_bn_forward_eval,
        .bn_backward = cuda_bn_backward,
        .bn_act_forward_train = cuda_bn_act_forward_train,
        .bn_act_backward = cuda_bn_act_backward,
        .allreduce_sum = data_parallel ? gan_cuda_allreduce_sum : NULL,
        .allreduce_sum_f64 = data_parallel ? gan_cuda_allreduce_sum_f64 : NULL,
        .bn_sums = cuda_bn_sums,
        .bn_centered_squares = cuda_bn_centered_squares,
        .bn_forward_from_sums = cuda_bn_forward_from_sums,
        .bn_backward_sums = cuda_bn_backward_sums,
        .bn_backward_from_sums = cuda_bn_backward_from_sums,
        .activation_forward = cuda_activation_forward,
        .activation_backward = cuda_activation_backward,
        .bn_stored_forward_train = cuda_bn_stored_forward_train,
        .bn_stored_forward_eval = cuda_bn_stored_forward_eval,
        .bn_stored_backward = cuda_bn_stored_backward,
        .activation_bf16_forward = cuda_activation_bf16_forward,
        .activation_bf16_backward = cuda_activation_bf16_backward,
        .dropout_forward = cuda_dropout_forward,
        .multiply = cuda_multiply,
        .bce_logits = cuda_bce_logits,
        .adam_step = cuda_adam_step,
        .ema_update = cuda_ema_update,
        .rng_normal = cuda_rng_normal,
        .rng_uniform = cuda_rng_uniform,
        .advance_counts = cuda_advance_counts,
        .images_to_float = cuda_images_to_float,
        .max_pool_forward = cuda_max_pool_forward,
        .avg_pool_forward = cuda_avg_pool_forward,
        .global_avg_pool = cuda_global_avg_pool,
        .copy_channels = cuda_copy_channels,
        .resize_bilinear = cuda_resize_bilinear,
        .bias_act_forward = cuda_bias_act_forward,
        .capture_begin = cuda_capture_begin,
        .capture_end = cuda_capture_end,
        .graph_launch = cuda_graph_launch,
        .graph_describe = cuda_graph_describe,
        .graph_destroy = cuda_graph_destroy,
        .side_fork = with_side ? cuda_side_fork : NULL,
        .side_return = with_side ? cuda_side_return : NULL,
        .side_join = with_side ? cuda_side_join : NULL,
        .conv_choices_export = gan_cuda_conv_choices_export,
        .conv_choices_import = gan_cuda_conv_choices_import,
        .conv_describe = gan_cuda_conv_describe,
        .bn_describe = cuda_bn_describe,
        .destroy = cuda_destroy,
    };
    gan_status status = cuda_open(be, impl, with_side);
    if (status != GAN_OK) {
        /* Keep the reason: tearing down may overwrite the message. */
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", gan_error_message());
        cuda_destroy(be);
        return gan_error(status, "%s", reason);
    }
    *out = be;
    return GAN_OK;
}

gan_status gan_cuda_module_get_versions(gan_cuda_versions *out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_cuda_get_versions: no output pointer");
    memset(out, 0, sizeof *out);
    out->built_with_cuda = true;
    out->cudnn_header_version = CUDNN_VERSION;
    cudaRuntimeGetVersion(&out->runtime_version);
    cudaDriverGetVersion(&out->driver_version);
    cudaGetLastError();
    out->cudnn_version = cudnnGetVersion();
    int major = 0, minor = 0, patch = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
        out->cublas_version = major * 10000 + minor * 100 + patch;

    if (out->driver_version == 0) {
        snprintf(out->note, sizeof out->note, "no NVIDIA driver: the CUDA backend cannot run here");
        return GAN_OK;
    }
    cudaError_t status = cudaGetDeviceCount(&out->device_count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        out->device_count = 0;
        snprintf(out->note, sizeof out->note, "no CUDA device: cudaGetDeviceCount: %s",
                 cudaGetErrorString(status));
        return GAN_OK;
    }
    if (out->device_count == 0) {
        snprintf(out->note, sizeof out->note, "no CUDA device");
        return GAN_OK;
    }
    struct cudaDeviceProp prop;
    status = cudaGetDeviceProperties(&prop, 0);
    if (status != cudaSuccess) {
        cudaGetLastError();
        snprintf(out->note, sizeof out->note, "device 0 unreadable: %s", cudaGetErrorString(status));
        return GAN_OK;
    }
    snprintf(out->device_name, sizeof out->device_name, "%s", prop.name);
    out->compute_capability_major = prop.major;
    out->compute_capability_minor = prop.minor;
    out->device_memory_bytes = prop.totalGlobalMem;
    return GAN_OK;
}
