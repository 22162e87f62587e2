/* Convolutions on cuDNN (legacy API): forward, backward-data, backward-filter. A transposed
 * convolution needs nothing here: its layer calls backward-data for its forward and forward for
 * its backward-data (src/nn/convt.c).
 *
 * A convolution whose kernel covers its whole input (G's first layer, D's last) is not given to
 * cuDNN: each of its passes is one cuBLAS GEMM through the op table's gemm, with the arguments
 * gan_conv_whole_input_gemm maps (as on the CPU), and no workspace.
 *
 * Algorithms are chosen once per geometry, the first time the geometry is seen, which is when the
 * model plans its workspace (conv_workspace_bytes, before the pool is allocated). The choice uses
 * cuDNN's heuristics (the _v7 queries: no trial runs, no device memory needed), taking the first
 * algorithm, in cuDNN's order of preference, that
 *   - fits in the workspace budget (the backend's workspace_bytes option),
 *   - is deterministic (CUDNN_DETERMINISTIC) when the backend is, and
 *   - in fp32: runs FMA kernels (no TF32); in tf32 any math type cuDNN prefers is taken.
 * If the heuristics offer nothing acceptable, the algorithms every cuDNN supports
 * deterministically with FP32 math are tried (implicit GEMM; backward ALGO_1). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"

static bool geom_equal(const gan_conv_geom *a, const gan_conv_geom *b)
{
    return a->n == b->n && a->c_in == b->c_in && a->h_in == b->h_in && a->w_in == b->w_in &&
           a->c_out == b->c_out && a->h_out == b->h_out && a->w_out == b->w_out &&
           a->k_h == b->k_h && a->k_w == b->k_w && a->stride_h == b->stride_h &&
           a->stride_w == b->stride_w && a->pad_h == b->pad_h && a->pad_w == b->pad_w;
}

/* Whether a heuristic's candidate may be used. Before Ampere there is no TF32, and cuDNN
 * documents CUDNN_DEFAULT_MATH and CUDNN_FMA_MATH as the same there. */
static bool acceptable(const gan_cuda_impl *impl, cudnnStatus_t status, size_t memory,
                       cudnnDeterminism_t determinism, cudnnMathType_t math, size_t budget)
{
    if (status != CUDNN_STATUS_SUCCESS || memory > budget)
        return false;
    if (impl->deterministic && determinism != CUDNN_DETERMINISTIC)
        return false;
    if (impl->precision == GAN_PRECISION_TF32)
        return true;
    return math == CUDNN_FMA_MATH || (math == CUDNN_DEFAULT_MATH && impl->compute_capability_major < 8);
}

/* The math type the call's descriptor gets with the chosen algorithm. */
static cudnnMathType_t math_for(const gan_cuda_impl *impl, cudnnMathType_t chosen)
{
    return impl->precision == GAN_PRECISION_FP32 ? CUDNN_FMA_MATH : chosen;
}

static const char *options_text(const gan_cuda_impl *impl)
{
    if (impl->precision == GAN_PRECISION_FP32)
        return impl->deterministic ? "deterministic fp32 " : "fp32 ";
    return impl->deterministic ? "deterministic " : "";
}

static gan_status no_algorithm(const char *pass, const gan_conv_geom *g, const gan_cuda_impl *impl,
                               size_t budget)
{
    return gan_error(GAN_ERR_BACKEND,
                     "cuDNN offers no %s%s algorithm for convolution x [%d, %d, %d, %d] -> y [%d, "
                     "%d, %d, %d], kernel %dx%d, stride %dx%d, pad %dx%d within a workspace of %zu "
                     "bytes (precision %s, deterministic %s)",
                     options_text(impl), pass, g->n, g->c_in, g->h_in, g->w_in, g->n, g->c_out,
                     g->h_out, g->w_out, g->k_h, g->k_w, g->stride_h, g->stride_w, g->pad_h, g->pad_w,
                     budget, gan_precision_name(impl->precision), impl->deterministic ? "true" : "false");
}

static gan_status choose_forward(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, size_t budget)
{
    gan_cuda_conv_descriptors *d = &plan->desc;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(impl->cudnn, d->x, d->w, d->forward, d->y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                     perf));
    for (int i = 0; i < returned; i++) {
        if (!acceptable(impl, perf[i].status, perf[i].memory, perf[i].determinism,
                        perf[i].mathType, budget))
            continue;
        CUDNN_TRY(cudnnSetConvolutionMathType(d->forward, math_for(impl, perf[i].mathType)));
        /* The heuristics' memory figure is an estimate: ask for the real size. */
        size_t bytes = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(impl->cudnn, d->x, d->w, d->forward, d->y,
                                                    perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS ||
            bytes > budget)
            continue;
        plan->forward_algo = perf[i].algo;
        plan->forward_bytes = bytes;
        return GAN_OK;
    }
    static const cudnnConvolutionFwdAlgo_t fallback[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM};
    CUDNN_TRY(cudnnSetConvolutionMathType(d->forward, CUDNN_FMA_MATH));
    for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++) {
        size_t bytes = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(impl->cudnn, d->x, d->w, d->forward, d->y,
                                                    fallback[i], &bytes) == CUDNN_STATUS_SUCCESS &&
            bytes <= budget) {
            plan->forward_algo = fallback[i];
            plan->forward_bytes = bytes;
            return GAN_OK;
        }
    }
    return no_algorithm("forward", &plan->geom, impl, budget);
}

static gan_status choose_backward_data(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, size_t budget)
{
    gan_cuda_conv_descriptors *d = &plan->desc;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int returned = 0;
    CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(impl->cudnn, d->w, d->y, d->backward_data,
                                                          d->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          &returned, perf));
    for (int i = 0; i < returned; i++) {
        if (!acceptable(impl, perf[i].status, perf[i].memory, perf[i].determinism,
                        perf[i].mathType, budget))
            continue;
        CUDNN_TRY(cudnnSetConvolutionMathType(d->backward_data, math_for(impl, perf[i].mathType)));
        size_t bytes = 0;
        if (cudnnGetConvolutionBackwardDataWorkspaceSize(impl->cudnn, d->w, d->y, d->backward_data,
                                                         d->x, perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS ||
            bytes > budget)
            continue;
        plan->backward_data_algo = perf[i].algo;
        plan->backward_data_bytes = bytes;
        return GAN_OK;
    }
    CUDNN_TRY(cudnnSetConvolutionMathType(d->backward_data, CUDNN_FMA_MATH));
    size_t bytes = 0;
    if (cudnnGetConvolutionBackwardDataWorkspaceSize(impl->cudnn, d->w, d->y, d->backward_data, d->x,
                                                     CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &bytes) ==
            CUDNN_STATUS_SUCCESS &&
        bytes <= budget) {
        plan->backward_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
        plan->backward_data_bytes = bytes;
        return GAN_OK;
    }
    return no_algorithm("backward-data", &plan->geom, impl, budget);
}

static gan_status choose_backward_filter(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, size_t budget)
{
    gan_cuda_conv_descriptors *d = &plan->desc;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int returned = 0;
    CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        impl->cudnn, d->x, d->y, d->backward_filter, d->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        &returned, perf));
    for (int i = 0; i < returned; i++) {
        if (!acceptable(impl, perf[i].status, perf[i].memory, perf[i].determinism,
                        perf[i].mathType, budget))
            continue;
        CUDNN_TRY(cudnnSetConvolutionMathType(d->backward_filter, math_for(impl, perf[i].mathType)));
        size_t bytes = 0;
        if (cudnnGetConvolutionBackwardFilterWorkspaceSize(impl->cudnn, d->x, d->y,
                                                           d->backward_filter, d->w, perf[i].algo,
                                                           &bytes) != CUDNN_STATUS_SUCCESS ||
            bytes > budget)
            continue;
        plan->backward_filter_algo = perf[i].algo;
        plan->backward_filter_bytes = bytes;
        return GAN_OK;
    }
    CUDNN_TRY(cudnnSetConvolutionMathType(d->backward_filter, CUDNN_FMA_MATH));
    size_t bytes = 0;
    if (cudnnGetConvolutionBackwardFilterWorkspaceSize(impl->cudnn, d->x, d->y, d->backward_filter,
                                                       d->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                       &bytes) == CUDNN_STATUS_SUCCESS &&
        bytes <= budget) {
        plan->backward_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
        plan->backward_filter_bytes = bytes;
        return GAN_OK;
    }
    return no_algorithm("backward-filter", &plan->geom, impl, budget);
}

/* The plan of geometry g, made now with `budget` if it does not exist yet. */
static gan_status plan_get(gan_cuda_impl *impl, const gan_conv_geom *g, size_t budget,
                           gan_cuda_conv_plan **out)
{
    for (int i = 0; i < impl->conv_plan_count; i++)
        if (geom_equal(&impl->conv_plans[i].geom, g)) {
            *out = &impl->conv_plans[i];
            return GAN_OK;
        }
    gan_cuda_conv_args args;
    GAN_TRY(gan_cuda_conv_args_make(g, &args));
    if (impl->conv_plan_count == impl->conv_plan_capacity) {
        int capacity = impl->conv_plan_capacity ? 2 * impl->conv_plan_capacity : 16;
        gan_cuda_conv_plan *grown = realloc(impl->conv_plans, (size_t)capacity * sizeof *grown);
        if (!grown)
            return gan_error(GAN_ERR_NOMEM, "out of memory for convolution plans");
        impl->conv_plans = grown;
        impl->conv_plan_capacity = capacity;
    }
    gan_cuda_conv_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.geom = *g;
    GAN_TRY(gan_cuda_conv_descriptors_create(&args, impl->precision, &plan.desc));
    gan_status status = GAN_OK;
    GAN_CHECK(choose_forward(impl, &plan, budget));
    GAN_CHECK(choose_backward_data(impl, &plan, budget));
    GAN_CHECK(choose_backward_filter(impl, &plan, budget));
    impl->conv_plans[impl->conv_plan_count] = plan;
    *out = &impl->conv_plans[impl->conv_plan_count++];
    return GAN_OK;
cleanup:
    gan_cuda_conv_descriptors_destroy(&plan.desc);
    return status;
}

void gan_cuda_conv_plans_clear(gan_cuda_impl *impl)
{
    for (int i = 0; i < impl->conv_plan_count; i++)
        gan_cuda_conv_descriptors_destroy(&impl->conv_plans[i].desc);
    free(impl->conv_plans);
    impl->conv_plans = NULL;
    impl->conv_plan_count = impl->conv_plan_capacity = 0;
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* The op table's conv_workspace_bytes cannot return an error: when no plan can be made, it
 * returns 0 and leaves the geometry unplanned, so the convolution call itself plans again
 * (within 0 bytes) and reports the reason. */
size_t gan_cuda_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (gan_conv_is_whole_input(g))
        return 0;
    gan_cuda_conv_plan *plan;
    if (plan_get(impl, g, impl->workspace_budget_bytes, &plan) != GAN_OK)
        return 0;
    return max3(plan->forward_bytes, plan->backward_data_bytes, plan->backward_filter_bytes);
}

/* A geometry first seen at a call (not planned) gets algorithms that need no workspace: the
 * caller's workspace size is unknown. */
static gan_status plan_for_call(gan_backend *be, const gan_conv_geom *g, gan_cuda_conv_plan **plan)
{
    return plan_get(gan_cuda_impl_of(be), g, 0, plan);
}

static gan_status check_workspace(const char *pass, size_t bytes, const void *workspace)
{
    if (bytes > 0 && !workspace)
        return gan_error(GAN_ERR_ARG, "convolution %s needs a workspace of %zu bytes and got none",
                         pass, bytes);
    return GAN_OK;
}

static const float ONE = 1.0f, ZERO = 0.0f;

/* Pass `pass` of a whole-input convolution as one GEMM: c = beta c + op(a) op(b). */
static gan_status whole_input_pass(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass,
                                   const float *a, const float *b, float beta, float *c)
{
    gan_conv_gemm m;
    GAN_TRY(gan_conv_whole_input_gemm(g, pass, &m));
    return be->gemm(be, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, a, m.lda, b, m.ldb, beta, c,
                    m.ldc);
}

gan_status gan_cuda_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                                 const float *w, float *y, void *workspace)
{
    if (gan_conv_is_whole_input(g))
        return whole_input_pass(be, g, GAN_CONV_FORWARD, x, w, 0.0f, y);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_for_call(be, g, &plan));
    GAN_TRY(check_workspace("forward", plan->forward_bytes, workspace));
    const gan_cuda_conv_descriptors *d = &plan->desc;
    CUDNN_TRY(cudnnConvolutionForward(impl->cudnn, &ONE, d->x, x, d->w, w, d->forward,
                                      plan->forward_algo, workspace, plan->forward_bytes, &ZERO,
                                      d->y, y));
    return GAN_OK;
}

gan_status gan_cuda_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                       const float *w, float *dx, void *workspace)
{
    if (gan_conv_is_whole_input(g))
        return whole_input_pass(be, g, GAN_CONV_BACKWARD_DATA, dy, w, 0.0f, dx);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_for_call(be, g, &plan));
    GAN_TRY(check_workspace("backward-data", plan->backward_data_bytes, workspace));
    const gan_cuda_conv_descriptors *d = &plan->desc;
    CUDNN_TRY(cudnnConvolutionBackwardData(impl->cudnn, &ONE, d->w, w, d->y, dy, d->backward_data,
                                           plan->backward_data_algo, workspace,
                                           plan->backward_data_bytes, &ZERO, d->x, dx));
    return GAN_OK;
}

gan_status gan_cuda_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                         const float *dy, float beta, float *dw, void *workspace)
{
    if (gan_conv_is_whole_input(g))
        return whole_input_pass(be, g, GAN_CONV_BACKWARD_FILTER, dy, x, beta, dw);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_for_call(be, g, &plan));
    GAN_TRY(check_workspace("backward-filter", plan->backward_filter_bytes, workspace));
    const gan_cuda_conv_descriptors *d = &plan->desc;
    CUDNN_TRY(cudnnConvolutionBackwardFilter(impl->cudnn, &ONE, d->x, x, d->y, dy,
                                             d->backward_filter, plan->backward_filter_algo,
                                             workspace, plan->backward_filter_bytes, &beta, d->w,
                                             dw));
    return GAN_OK;
}
