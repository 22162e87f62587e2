/* The CUDA backend: the op table of gan/backend.h on one device and one stream.
 *   GEMM: cuBLAS (row-major mapped onto column-major, see gan_cuda_gemm_args_make).
 *   Convolutions: cuDNN, src/backend/cuda_conv.c.
 *   Batch norm: cuDNN's legacy batch-norm API, CUDNN_BATCHNORM_SPATIAL for both BatchNorm2d and
 *     BatchNorm1d (as [n, c, 1, 1]); conventions in gan/cuda_args.h.
 *   Everything else: our kernels (kernels/, launched through kernels/gan_kernels.h).
 * Every op is queued on the backend's stream and returns without waiting; only download and
 * synchronize wait (the trainer calls them at its log interval). Device memory is taken by alloc,
 * which the pool calls once at start-up, and by the backend itself at creation (the cuBLAS
 * workspace); nothing is allocated on the device inside an iteration.
 *
 * Options (gan_backend_options, fixed at creation): fp32 sets CUBLAS_PEDANTIC_MATH and
 * CUDNN_FMA_MATH; tf32 sets CUBLAS_TF32_TENSOR_OP_MATH and lets cuDNN choose any math type;
 * deterministic keeps to cuDNN's deterministic algorithms (src/backend/cuda_conv.c). */
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

/* The caller may reuse host_src as soon as this returns. From pageable memory (what the data
 * loader and every other caller hand us) cudaMemcpyAsync returns once the bytes are staged, so
 * no wait is needed and the stream keeps running: the per-iteration batch upload does not stall
 * the GPU. From pinned memory the copy is truly asynchronous, so then we wait for it. */
static gan_status cuda_upload(gan_backend *be, void *dst, const void *host_src, size_t bytes)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (bytes == 0)
        return GAN_OK;
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

/* Errors of queued kernels surface here. */
static gan_status cuda_synchronize(gan_backend *be)
{
    CUDA_TRY(cudaStreamSynchronize(gan_cuda_impl_of(be)->stream));
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
    CUBLAS_TRY(cublasSgemm(impl->cublas, gan_cuda_cublas_op(args.transa),
                           gan_cuda_cublas_op(args.transb), args.m, args.n, args.k, &alpha, first,
                           args.lda, second, args.ldb, &beta, c, args.ldc));
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

/* The descriptors of a batch-norm shape, made the first time the shape is seen. */
static gan_status bn_plan_get(gan_cuda_impl *impl, const gan_cuda_bn_args *args, int n, int c,
                              int hw, gan_cuda_bn_plan **out)
{
    for (int i = 0; i < impl->bn_plan_count; i++) {
        gan_cuda_bn_plan *p = &impl->bn_plans[i];
        if (p->n == n && p->c == c && p->hw == hw) {
            *out = p;
            return GAN_OK;
        }
    }
    if (impl->bn_plan_count == impl->bn_plan_capacity) {
        int capacity = impl->bn_plan_capacity ? 2 * impl->bn_plan_capacity : 16;
        gan_cuda_bn_plan *grown = realloc(impl->bn_plans, (size_t)capacity * sizeof *grown);
        if (!grown)
            return gan_error(GAN_ERR_NOMEM, "out of memory for batch-norm descriptors");
        impl->bn_plans = grown;
        impl->bn_plan_capacity = capacity;
    }
    gan_cuda_bn_plan *p = &impl->bn_plans[impl->bn_plan_count];
    p->n = n;
    p->c = c;
    p->hw = hw;
    GAN_TRY(gan_cuda_bn_descriptors_create(args, &p->desc));
    impl->bn_plan_count++;
    *out = p;
    return GAN_OK;
}

static const float ONE = 1.0f, ZERO = 0.0f;

static gan_status cuda_bn_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                        const float *gamma, const float *beta, float momentum,
                                        float eps, float *running_mean, float *running_var,
                                        float *save_mean, float *save_invstd, float *y)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_bn_args args;
    gan_cuda_bn_plan *plan;
    GAN_TRY(gan_cuda_bn_args_make(n, c, hw, momentum, eps, true, &args));
    GAN_TRY(bn_plan_get(impl, &args, n, c, hw, &plan));
    /* cuDNN: running = (1 - factor) running + factor * stat with the unbiased variance;
     * resultSaveInvVariance = 1 / sqrt(biased var + eps) = the op table's save_invstd. */
    CUDNN_TRY(cudnnBatchNormalizationForwardTraining(
        impl->cudnn, gan_cuda_cudnn_bn_mode(args.mode), &ONE, &ZERO, plan->desc.x, x,
        plan->desc.x, y, plan->desc.param, gamma, beta, args.exponential_average_factor,
        running_mean, running_var, args.epsilon, save_mean, save_invstd));
    impl->last_bn_epsilon = args.epsilon;
    return GAN_OK;
}

static gan_status cuda_bn_forward_eval(gan_backend *be, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *beta,
                                       const float *running_mean, const float *running_var,
                                       float eps, float *y)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_bn_args args;
    gan_cuda_bn_plan *plan;
    GAN_TRY(gan_cuda_bn_args_make(n, c, hw, 0.0f, eps, false, &args));
    GAN_TRY(bn_plan_get(impl, &args, n, c, hw, &plan));
    CUDNN_TRY(cudnnBatchNormalizationForwardInference(
        impl->cudnn, gan_cuda_cudnn_bn_mode(args.mode), &ONE, &ZERO, plan->desc.x, x,
        plan->desc.x, y, plan->desc.param, gamma, beta, running_mean, running_var, args.epsilon));
    return GAN_OK;
}

/* cuDNN reads the saved mean and inverse std; epsilon must still be passed and be the forward's,
 * which the op table does not carry: the last training forward's is used (every layer uses
 * PyTorch's 1e-5). */
static gan_status cuda_bn_backward(gan_backend *be, int n, int c, int hw, const float *x,
                                   const float *dy, const float *gamma, const float *save_mean,
                                   const float *save_invstd, float *dx, float param_beta,
                                   float *dgamma, float *dbeta)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_bn_args args;
    gan_cuda_bn_plan *plan;
    GAN_TRY(gan_cuda_bn_args_make(n, c, hw, 0.0f, (float)impl->last_bn_epsilon, true, &args));
    GAN_TRY(bn_plan_get(impl, &args, n, c, hw, &plan));
    /* dx overwritten (betaDataDiff 0); dgamma, dbeta = param_beta * old + gradient. */
    CUDNN_TRY(cudnnBatchNormalizationBackward(
        impl->cudnn, gan_cuda_cudnn_bn_mode(args.mode), &ONE, &ZERO, &ONE, &param_beta,
        plan->desc.x, x, plan->desc.x, dy, plan->desc.x, dx, plan->desc.param, gamma, dgamma,
        dbeta, args.epsilon, save_mean, save_invstd));
    return GAN_OK;
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
                                       uint64_t stream, uint64_t offset, const float *x,
                                       float *mask, float *y)
{
    return gan_cuda_dropout_forward(gan_cuda_impl_of(be)->stream, count, p, seed, stream, offset,
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
                                 float *m, float *v, gan_adam_scalars scalars)
{
    return gan_cuda_adam_step(gan_cuda_impl_of(be)->stream, count, param, grad, m, v, scalars);
}

static gan_status cuda_rng_normal(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                                  uint64_t offset, float mean, float std, float *out)
{
    return gan_cuda_rng_normal(gan_cuda_impl_of(be)->stream, count, seed, stream, offset, mean,
                               std, out);
}

static gan_status cuda_rng_uniform(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                                   uint64_t offset, float low, float high, float *out)
{
    return gan_cuda_rng_uniform(gan_cuda_impl_of(be)->stream, count, seed, stream, offset, low,
                                high, out);
}

static gan_status cuda_images_to_float(gan_backend *be, int n, int h, int w, int c,
                                       const uint8_t *nhwc, float *nchw)
{
    return gan_cuda_images_to_float(gan_cuda_impl_of(be)->stream, n, h, w, c, nhwc, nchw);
}

/* ---- creation, modes ------------------------------------------------------------------------ */

static void cuda_destroy(gan_backend *be)
{
    if (!be)
        return;
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (impl) {
        if (impl->stream)
            cudaStreamSynchronize(impl->stream);
        gan_cuda_conv_plans_clear(impl);
        for (int i = 0; i < impl->bn_plan_count; i++)
            gan_cuda_bn_descriptors_destroy(&impl->bn_plans[i].desc);
        free(impl->bn_plans);
        if (impl->cublas)
            cublasDestroy(impl->cublas);
        if (impl->cudnn)
            cudnnDestroy(impl->cudnn);
        if (impl->cublas_workspace)
            cudaFree(impl->cublas_workspace);
        if (impl->stream)
            cudaStreamDestroy(impl->stream);
        cudaGetLastError();
        free(impl);
    }
    free(be);
}

static gan_status apply_cublas_math(gan_cuda_impl *impl)
{
    /* Pedantic: FP32 products and sums only (no TF32, no reduced-precision reductions). */
    cublasMath_t math = impl->precision == GAN_PRECISION_FP32 ? CUBLAS_PEDANTIC_MATH
                                                              : CUBLAS_TF32_TENSOR_OP_MATH;
    CUBLAS_TRY(cublasSetMathMode(impl->cublas, math));
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

static gan_status cuda_open(gan_backend *be, gan_cuda_impl *impl)
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
    CUDA_TRY(cudaDeviceGetAttribute(&impl->compute_capability_major,
                                    cudaDevAttrComputeCapabilityMajor, impl->device));
    CUDA_TRY(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
    CUDNN_TRY(cudnnCreate(&impl->cudnn));
    CUDNN_TRY(cudnnSetStream(impl->cudnn, impl->stream));
    CUBLAS_TRY(cublasCreate(&impl->cublas));
    CUBLAS_TRY(cublasSetStream(impl->cublas, impl->stream));
    /* cuBLAS's own workspace, given once so that it never allocates behind our back: the sizes
     * cuBLAS's documentation recommends (32 MiB on Hopper and later, 4 MiB before). */
    impl->cublas_workspace_bytes = impl->compute_capability_major >= 9 ? (32u << 20) : (4u << 20);
    GAN_TRY(cuda_alloc(be, impl->cublas_workspace_bytes, &impl->cublas_workspace));
    CUBLAS_TRY(cublasSetWorkspace(impl->cublas, impl->cublas_workspace, impl->cublas_workspace_bytes));
    GAN_TRY(apply_cublas_math(impl));
    GAN_TRY(probe_kernels(impl));
    return GAN_OK;
}

gan_status gan_cuda_backend_create(const gan_backend_options *options, gan_backend **out)
{
    *out = NULL;
    gan_backend_options opts = options ? *options : gan_backend_options_default();
    if (opts.precision != GAN_PRECISION_FP32 && opts.precision != GAN_PRECISION_TF32)
        return gan_error(GAN_ERR_ARG, "unknown precision %d", (int)opts.precision);
    if (opts.device_index < 0)
        return gan_error(GAN_ERR_ARG, "no CUDA device %d", opts.device_index);
    if (!opts.workspace_bytes)
        opts.workspace_bytes = GAN_CUDA_DEFAULT_WORKSPACE_BYTES;
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
    impl->last_bn_epsilon = 1e-5;
    *be = (gan_backend){
        .name = "cuda",
        .kind = GAN_BACKEND_CUDA,
        .options = opts,
        .impl = impl,
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
        .conv_backward_filter = gan_cuda_conv_backward_filter,
        .bias_forward = cuda_bias_forward,
        .bias_backward = cuda_bias_backward,
        .bn_forward_train = cuda_bn_forward_train,
        .bn_forward_eval = cuda_bn_forward_eval,
        .bn_backward = cuda_bn_backward,
        .activation_forward = cuda_activation_forward,
        .activation_backward = cuda_activation_backward,
        .dropout_forward = cuda_dropout_forward,
        .multiply = cuda_multiply,
        .bce_logits = cuda_bce_logits,
        .adam_step = cuda_adam_step,
        .rng_normal = cuda_rng_normal,
        .rng_uniform = cuda_rng_uniform,
        .images_to_float = cuda_images_to_float,
        .destroy = cuda_destroy,
    };
    gan_status status = cuda_open(be, impl);
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

gan_status gan_cuda_get_versions(gan_cuda_versions *out)
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
