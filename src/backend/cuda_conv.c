/* Convolutions on cuDNN (legacy API): forward, backward-data, backward-filter. A transposed
 * convolution needs nothing here: its layer calls backward-data for its forward and forward for
 * its backward-data (src/nn/convt.c).
 *
 * A convolution whose kernel covers its whole input (G's first layer, D's last) is not given to
 * cuDNN: each of its passes is one cuBLAS GEMM through the op table's gemm, with the arguments
 * gan_conv_whole_input_gemm maps (as on the CPU), and no workspace.
 *
 * Algorithms are chosen once per geometry and pass, when the model plans its workspace
 * (conv_workspace_bytes, before the pool is allocated), in this order:
 *   1. stored: a choice given by conv_choices_import (gan/conv_choices.h) for this GPU, cuDNN,
 *      precision, determinism, geometry and pass, if its workspace still fits the budget;
 *   2. measured: cudnnFind*AlgorithmEx times every algorithm on scratch buffers allocated for the
 *      search (x, w, y and a workspace of the budget) and freed after it; the fastest one that
 *      is acceptable (below) is taken and remembered for conv_choices_export;
 *   3. heuristic: cuDNN's _v7 queries (no trial runs, no device memory), first acceptable one,
 *      then the algorithms every cuDNN has with FP32 math (implicit GEMM; backward ALGO_1).
 *      A geometry first seen at a convolution call (not planned) is chosen so, within no
 *      workspace, since the call's workspace size is unknown and nothing may be allocated there.
 * The backward-data of a kernel 4, stride 2, pad 1 convolution has one more candidate, measured
 * beside cuDNN's: the sub-pixel form of ours (gan/cuda_args.h: two copy kernels around a stride-1
 * forward convolution with its own plan), taken when it times faster; deterministic whenever its
 * inner forward is, which is chosen under the same rules. Every backward-filter has one more too:
 * the im2col form of ours (gan/cuda_args.h: two copy kernels and one cuBLAS GEMM through the op
 * table, deterministic), made for the 3-channel layers where cuDNN's algorithms are slow.
 * A timed search or a form of ours that fails is treated as one that lost (the heuristics
 * choose).
 * Acceptable: fits the workspace budget (the backend's workspace_bytes option); deterministic
 * (CUDNN_DETERMINISTIC) when the backend is; in fp32 runs FMA kernels (no TF32), in tf32 and bf16
 * any math type cuDNN offers but allow-conversion (which may round the data to FP16). Timing noise
 * can make two searches choose differently: the stored choices are what keeps a deterministic run
 * reproducible across resumes and reruns.
 *
 * Layouts (cudnn_run): the op table's buffers are FP32 NCHW. fp32 runs cuDNN on them. bf16 runs it
 * on BF16 NHWC copies (cuDNN's PSEUDO_BFLOAT16 configuration: BF16 tensors, FP32 sums; NHWC, the
 * layout tensor cores want). tf32 times each pass both ways, on the buffers themselves (NCHW) and
 * on FP32 NHWC copies, and takes the faster. In NHWC each cuDNN call copies its inputs into the
 * copies at the front of its workspace (rounding them in bf16) and its output back afterwards; a
 * pass's workspace counts the copies. A trained layer's forward may put its input's copy in a
 * buffer of the layer's instead, for its backward-filter to read again (kept copies, below).
 * cuDNN then computes gan_cuda_conv_cudnn_geom: the 1- and 3-channel image layers' input
 * channels padded with zeros to a whole group of 16 bytes (8 BF16 or 4 FP32 values), what tensor
 * cores take. cudnnFind times cuDNN alone: the copies around it are timed once per pass and added
 * to its NHWC candidates (add_copies_time), since the sub-pixel form's time includes its inner
 * forward's copies, the im2col form's its own copy kernels, and NCHW has none.
 * GAN_CUDA_NHWC=never|always restricts tf32 to one layout (for checks).
 *
 * Stored tensors (tf32, bf16): a model may keep the tensor between two layers in NHWC, cuDNN's
 * own operand (BF16 in bf16, FP32 in tf32; gan_conv_geom.x_storage, y_storage; src/nn/model.c).
 * Such an x (dx) or y (dy) is not copied: cuDNN reads it, or writes it, where it is (its slot of
 * the workspace is 0 bytes), and a fused activation on such an output runs in place (one launch).
 * Only cuDNN's NHWC passes take them: the forms of ours and the whole-input GEMMs read and write
 * FP32 NCHW, so a plan with a stored tensor runs cuDNN in NHWC alone (no form of ours, and in tf32
 * no NCHW), and a model keeps the edges of its whole-input layers FP32 NCHW. Storage is part of a
 * plan (two plans of one shape may differ in it), and whether a plan has any is part of a stored
 * choice's key (gan_conv_choice.stored): each keeps a choice of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"
#include "gan_kernels.h"

_Static_assert((int)GAN_CONV_MATH_DEFAULT == (int)CUDNN_DEFAULT_MATH &&
                   (int)GAN_CONV_MATH_TENSOR_OP == (int)CUDNN_TENSOR_OP_MATH &&
                   (int)GAN_CONV_MATH_TENSOR_OP_ALLOW_CONVERSION ==
                       (int)CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
                   (int)GAN_CONV_MATH_FMA == (int)CUDNN_FMA_MATH,
               "gan_conv_math must carry cudnnMathType_t's values");

/* One candidate algorithm of a pass, from a heuristic query or a timed search (the three
 * passes' perf structs have these fields under the same names). */
typedef struct candidate {
    gan_conv_layout layout; /* of the descriptors it was found for */
    int algo;
    cudnnStatus_t status;
    float ms;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} candidate;

/* Every algorithm of a pass in each layout a precision times (two in tf32). */
enum { MAX_CANDIDATES = 16 };
_Static_assert(2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT <= MAX_CANDIDATES &&
                   2 * CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT <= MAX_CANDIDATES &&
                   2 * CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT <= MAX_CANDIDATES,
               "room for two layouts' candidates");

/* Whether a plan of geometry a serves a call of b: the same shape and the same storage. */
static bool same_plan_geom(const gan_conv_geom *a, const gan_conv_geom *b)
{
    return gan_conv_geom_equal(a, b) && a->x_storage == b->x_storage && a->y_storage == b->y_storage &&
           a->w_storage == b->w_storage;
}

/* Whether a tensor is stored in NHWC (BF16 or FP32: its own copy), not FP32 NCHW. */
static bool stored(gan_storage s) { return s != GAN_STORAGE_F32_NCHW; }

/* Whether g keeps x, y or w's copy in NHWC (a plan of it takes cuDNN's NHWC passes only). */
static bool stores_any(const gan_conv_geom *g)
{
    return stored(g->x_storage) || stored(g->y_storage) || stored(g->w_storage);
}

static int algo_count(gan_conv_pass pass)
{
    switch (pass) {
    case GAN_CONV_FORWARD: return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    case GAN_CONV_BACKWARD_DATA: return CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    case GAN_CONV_BACKWARD_FILTER: return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
    }
    return 0;
}

static cudnnConvolutionDescriptor_t pass_descriptor(gan_cuda_conv_plan *plan, gan_conv_pass pass,
                                                    gan_conv_layout layout)
{
    switch (pass) {
    case GAN_CONV_FORWARD: return plan->desc[layout].forward;
    case GAN_CONV_BACKWARD_DATA: return plan->desc[layout].backward_data;
    case GAN_CONV_BACKWARD_FILTER: return plan->desc[layout].backward_filter;
    }
    return NULL;
}

/* The workspace cuDNN says `algo` of `pass` needs in `layout` with the descriptor's current math
 * type. */
static cudnnStatus_t workspace_of(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                                  gan_conv_layout layout, int algo, size_t *bytes)
{
    const gan_cuda_conv_descriptors *d = &plan->desc[layout];
    switch (pass) {
    case GAN_CONV_FORWARD:
        return cudnnGetConvolutionForwardWorkspaceSize(impl->cudnn, d->x, d->w, d->forward, d->y,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    case GAN_CONV_BACKWARD_DATA:
        return cudnnGetConvolutionBackwardDataWorkspaceSize(impl->cudnn, d->w, d->y,
                                                            d->backward_data, d->x,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
    case GAN_CONV_BACKWARD_FILTER:
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(
            impl->cudnn, d->x, d->y, d->backward_filter, d->w,
            (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
    }
    return CUDNN_STATUS_BAD_PARAM;
}

/* Whether a candidate may be used. Before Ampere there is no TF32, and cuDNN documents
 * CUDNN_DEFAULT_MATH and CUDNN_FMA_MATH as the same there. */
static bool acceptable(const gan_cuda_impl *impl, const candidate *c, size_t budget)
{
    if (c->status != CUDNN_STATUS_SUCCESS || c->memory > budget)
        return false;
    if (impl->deterministic && c->determinism != CUDNN_DETERMINISTIC)
        return false;
    /* Allow-conversion lets cuDNN round FP32 data to FP16: neither precision means that. */
    if (c->math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return false;
    if (impl->precision != GAN_PRECISION_FP32)
        return true;
    return c->math == CUDNN_FMA_MATH ||
           (c->math == CUDNN_DEFAULT_MATH && impl->compute_capability_major < 8);
}

/* The math type the descriptor gets with the chosen algorithm: fp32 always FMA. */
static cudnnMathType_t math_for(const gan_cuda_impl *impl, cudnnMathType_t chosen)
{
    return impl->precision == GAN_PRECISION_FP32 ? CUDNN_FMA_MATH : chosen;
}

/* The math type a search or query starts from: fp32 FMA only, tf32 and bf16 whatever cuDNN
 * prefers. */
static cudnnMathType_t search_math(const gan_cuda_impl *impl)
{
    return impl->precision == GAN_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

static size_t copies_bytes(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_layout layout);
static unsigned timed_layouts(const gan_cuda_impl *impl, const gan_conv_geom *g);
static gan_conv_layout untimed_layout(const gan_cuda_impl *impl, const gan_conv_geom *g);

/* Takes candidate c for `pass` if the descriptor accepts its math type and its real workspace
 * (the figures of heuristics are estimates; in NHWC the copies come on top) fits the budget. */
static gan_status try_take(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                           const candidate *c, size_t budget, gan_cuda_chosen_by by, bool *taken)
{
    *taken = false;
    cudnnMathType_t math = math_for(impl, c->math);
    CUDNN_TRY(cudnnSetConvolutionMathType(pass_descriptor(plan, pass, c->layout), math));
    size_t bytes = 0;
    if (workspace_of(impl, plan, pass, c->layout, c->algo, &bytes) != CUDNN_STATUS_SUCCESS)
        return GAN_OK;
    bytes += copies_bytes(impl, &plan->geom, c->layout);
    if (bytes > budget)
        return GAN_OK;
    plan->pass[pass] = (gan_cuda_pass_plan){
        .planned = true, .algo = c->algo, .math = math, .layout = c->layout, .bytes = bytes, .ms = c->ms,
        .chosen_by = by,
    };
    *taken = true;
    return GAN_OK;
}

static gan_status take_first_acceptable(gan_cuda_impl *impl, gan_cuda_conv_plan *plan,
                                        gan_conv_pass pass, const candidate *c, int n,
                                        size_t budget, gan_cuda_chosen_by by, bool *taken)
{
    *taken = false;
    for (int i = 0; i < n && !*taken; i++)
        if (acceptable(impl, &c[i], budget))
            GAN_TRY(try_take(impl, plan, pass, &c[i], budget, by, taken));
    return GAN_OK;
}

#define COPY_CANDIDATES(perf, returned, layout, out)                                              \
    for (int i_ = 0; i_ < (returned); i_++)                                                      \
        (out)[i_] = (candidate){(layout), (int)(perf)[i_].algo, (perf)[i_].status, (perf)[i_].time, \
                                (perf)[i_].memory, (perf)[i_].determinism, (perf)[i_].mathType}

/* cuDNN's heuristic order for `pass` (the _v7 queries), in the layout taken without timing. */
static gan_status heuristic_candidates(gan_cuda_impl *impl, gan_cuda_conv_plan *plan,
                                       gan_conv_pass pass, candidate *out, int *n)
{
    gan_conv_layout layout = untimed_layout(impl, &plan->geom);
    const gan_cuda_conv_descriptors *d = &plan->desc[layout];
    *n = 0;
    CUDNN_TRY(cudnnSetConvolutionMathType(pass_descriptor(plan, pass, layout), search_math(impl)));
    if (pass == GAN_CONV_FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(impl->cudnn, d->x, d->w, d->forward, d->y,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, n, perf));
        COPY_CANDIDATES(perf, *n, layout, out);
    } else if (pass == GAN_CONV_BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(
            impl->cudnn, d->w, d->y, d->backward_data, d->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
            n, perf));
        COPY_CANDIDATES(perf, *n, layout, out);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            impl->cudnn, d->x, d->y, d->backward_filter, d->w,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, n, perf));
        COPY_CANDIDATES(perf, *n, layout, out);
    }
    for (int i = 0; i < *n; i++)
        out[i].ms = 0.0f; /* not measured */
    return GAN_OK;
}

/* The buffers a timed search runs on: allocated for the search of one geometry, freed after. */
typedef struct search_scratch {
    void *x, *w, *y, *workspace;
    size_t workspace_bytes;
} search_scratch;

static void scratch_free(search_scratch *s)
{
    cudaFree(s->x);
    cudaFree(s->w);
    cudaFree(s->y);
    cudaFree(s->workspace);
    cudaGetLastError();
    memset(s, 0, sizeof *s);
}

/* false (and nothing held) when the device lacks the memory: the search is skipped. */
static bool scratch_alloc(gan_cuda_impl *impl, const gan_conv_geom *layer, size_t budget, search_scratch *s)
{
    memset(s, 0, sizeof *s);
    /* FP32 sizes of what cuDNN computes in NHWC (its x and w have the padded channels, if any):
     * room for the FP32 buffers of the forms of ours and for cuDNN's tensors in either layout */
    gan_conv_geom cudnn = gan_cuda_conv_cudnn_geom(layer, impl->precision, GAN_CONV_LAYOUT_NHWC);
    const gan_conv_geom *g = &cudnn;
    size_t x = (size_t)g->n * g->c_in * g->h_in * g->w_in * sizeof(float);
    size_t w = (size_t)g->c_out * g->c_in * g->k_h * g->k_w * sizeof(float);
    size_t y = (size_t)g->n * g->c_out * g->h_out * g->w_out * sizeof(float);
    bool ok = cudaMalloc(&s->x, x) == cudaSuccess && cudaMalloc(&s->w, w) == cudaSuccess &&
              cudaMalloc(&s->y, y) == cudaSuccess &&
              (budget == 0 || cudaMalloc(&s->workspace, budget) == cudaSuccess);
    /* Defined contents: some algorithms' speed depends on the data (none of cuDNN's documented
     * ones do, but zeros keep a NaN pattern from ever mattering), set on the backend's stream,
     * which the search runs on (it does not wait for the legacy default stream). */
    ok = ok && cudaMemsetAsync(s->x, 0, x, impl->stream) == cudaSuccess &&
         cudaMemsetAsync(s->w, 0, w, impl->stream) == cudaSuccess &&
         cudaMemsetAsync(s->y, 0, y, impl->stream) == cudaSuccess;
    if (!ok) {
        scratch_free(s);
        return false;
    }
    s->workspace_bytes = budget;
    return true;
}

/* Every algorithm of `pass` in `layout` timed by cudnnFind*AlgorithmEx, fastest first (cuDNN alone:
 * in NHWC without the copies around it). */
static gan_status measured_candidates(gan_cuda_impl *impl, gan_cuda_conv_plan *plan,
                                      gan_conv_pass pass, gan_conv_layout layout, const search_scratch *s,
                                      candidate *out, int *n)
{
    const gan_cuda_conv_descriptors *d = &plan->desc[layout];
    *n = 0;
    CUDNN_TRY(cudnnSetConvolutionMathType(pass_descriptor(plan, pass, layout), search_math(impl)));
    if (pass == GAN_CONV_FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        CUDNN_TRY(cudnnFindConvolutionForwardAlgorithmEx(
            impl->cudnn, d->x, s->x, d->w, s->w, d->forward, d->y, s->y,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, n, perf, s->workspace, s->workspace_bytes));
        cudaGetLastError(); /* what the trials left: not ours to report at our next launch */
        COPY_CANDIDATES(perf, *n, layout, out);
    } else if (pass == GAN_CONV_BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        CUDNN_TRY(cudnnFindConvolutionBackwardDataAlgorithmEx(
            impl->cudnn, d->w, s->w, d->y, s->y, d->backward_data, d->x, s->x,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, n, perf, s->workspace, s->workspace_bytes));
        cudaGetLastError(); /* what the trials left: not ours to report at our next launch */
        COPY_CANDIDATES(perf, *n, layout, out);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        CUDNN_TRY(cudnnFindConvolutionBackwardFilterAlgorithmEx(
            impl->cudnn, d->x, s->x, d->y, s->y, d->backward_filter, d->w, s->w,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, n, perf, s->workspace, s->workspace_bytes));
        cudaGetLastError(); /* what the trials left: not ours to report at our next launch */
        COPY_CANDIDATES(perf, *n, layout, out);
    }
    return GAN_OK;
}

/* The key of `pass` of g on this backend. */
static gan_conv_choice choice_key(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_pass pass)
{
    gan_conv_choice c;
    memset(&c, 0, sizeof c);
    snprintf(c.gpu, sizeof c.gpu, "%s", impl->gpu_name);
    c.cc_major = impl->compute_capability_major;
    c.cc_minor = impl->compute_capability_minor;
    c.cudnn_version = impl->cudnn_version;
    c.precision = impl->precision;
    c.deterministic = impl->deterministic;
    c.geom = *g;
    c.pass = pass;
    c.stored = stores_any(g);
    return c;
}

/* A stored choice for `pass`, if there is one and it is still valid here. */
static gan_status take_stored(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                              size_t budget, bool *taken)
{
    *taken = false;
    gan_conv_choice key = choice_key(impl, &plan->geom, pass);
    int at = gan_conv_choices_find(&impl->choices, &key);
    if (at < 0)
        return GAN_OK;
    const gan_conv_choice *stored = &impl->choices.items[at];
    if (stored->algo < 0 || stored->algo >= algo_count(pass))
        return GAN_OK; /* not a cuDNN algorithm of this pass (or one of ours not built here) */
    if (!(timed_layouts(impl, &plan->geom) & 1u << stored->layout))
        return GAN_OK; /* a layout this backend does not run now */
    candidate c = {
        .layout = stored->layout, .algo = stored->algo, .status = CUDNN_STATUS_SUCCESS, .ms = (float)stored->ms,
        .memory = 0, .determinism = impl->deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC,
        .math = (cudnnMathType_t)stored->math,
    };
    if (!acceptable(impl, &c, budget))
        return GAN_OK;
    return try_take(impl, plan, pass, &c, budget, GAN_CUDA_CHOSEN_STORED, taken);
}

/* Remembers a measured choice for conv_choices_export. */
static gan_status remember(gan_cuda_impl *impl, const gan_cuda_conv_plan *plan, gan_conv_pass pass)
{
    const gan_cuda_pass_plan *p = &plan->pass[pass];
    gan_conv_choice c = choice_key(impl, &plan->geom, pass);
    c.algo = p->algo;
    c.math = (gan_conv_math)p->math;
    c.layout = p->layout;
    c.workspace_bytes = p->bytes;
    c.ms = p->ms;
    return gan_conv_choices_put(&impl->choices, &c);
}

/* The algorithms every cuDNN has deterministically (FP32 math in fp32, cuDNN's default in tf32 and
 * bf16, which BF16 tensors need), in the layout taken without timing. */
static gan_status take_fallback(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                                size_t budget, bool *taken)
{
    static const int forward[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM};
    static const int backward_data[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
    static const int backward_filter[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
    const int *algos = pass == GAN_CONV_FORWARD         ? forward
                       : pass == GAN_CONV_BACKWARD_DATA ? backward_data
                                                        : backward_filter;
    int n = pass == GAN_CONV_FORWARD ? 2 : 1;
    *taken = false;
    for (int i = 0; i < n && !*taken; i++) {
        candidate c = {untimed_layout(impl, &plan->geom), algos[i], CUDNN_STATUS_SUCCESS, 0.0f, 0,
                       CUDNN_DETERMINISTIC, search_math(impl)};
        GAN_TRY(try_take(impl, plan, pass, &c, budget, GAN_CUDA_CHOSEN_FALLBACK, taken));
    }
    return GAN_OK;
}

static const char *options_text(const gan_cuda_impl *impl)
{
    if (impl->precision == GAN_PRECISION_FP32)
        return impl->deterministic ? "deterministic fp32 " : "fp32 ";
    return impl->deterministic ? "deterministic " : "";
}

static gan_status no_algorithm(gan_conv_pass pass, const gan_conv_geom *g, const gan_cuda_impl *impl,
                               size_t budget)
{
    char copies[160] = "";
    size_t bytes = copies_bytes(impl, g, untimed_layout(impl, g));
    if (bytes > 0)
        snprintf(copies, sizeof copies, "; in %s the NHWC copies of x, w and y alone take %zu bytes of it%s",
                 gan_precision_name(impl->precision), bytes,
                 budget == 0 ? " (a geometry first seen at a call, not planned, gets none)" : "");
    return gan_error(GAN_ERR_BACKEND,
                     "cuDNN offers no %s%s algorithm for convolution x [%d, %d, %d, %d] -> y [%d, "
                     "%d, %d, %d], kernel %dx%d, stride %dx%d, pad %dx%d within a workspace of %zu "
                     "bytes (precision %s, deterministic %s)%s",
                     options_text(impl), gan_conv_pass_name(pass), g->n, g->c_in, g->h_in, g->w_in,
                     g->n, g->c_out, g->h_out, g->w_out, g->k_h, g->k_w, g->stride_h, g->stride_w,
                     g->pad_h, g->pad_w, budget, gan_precision_name(impl->precision),
                     impl->deterministic ? "true" : "false", copies);
}


static gan_status plan_get(gan_cuda_impl *impl, const gan_conv_geom *g, size_t budget, bool search,
                           unsigned passes, gan_cuda_conv_plan **out);

/* ---- the sub-pixel backward-data ---------------------------------------------------------- */

static const float ONE = 1.0f, ZERO = 0.0f;

static size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

/* ---- cuDNN's calls, and the NHWC copies -------------------------------------------------- */

/* A tensor of g as the copies see it: [n, c, hw] FP32 NCHW (the image flattened) on our side,
 * [n, hw, c_nhwc] NHWC on cuDNN's (c_nhwc >= c: the padded input channels of
 * gan_cuda_conv_cudnn_geom):
 *   x [n, c_in, h_in w_in], w [c_out, c_in, k_h k_w] (KRSC: c_out as n), y [n, c_out, h_out w_out]. */
typedef struct nc_hw {
    int n, c, c_nhwc, hw;
} nc_hw;
static int c_in_nhwc(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    return gan_cuda_conv_cudnn_geom(g, impl->precision, GAN_CONV_LAYOUT_NHWC).c_in;
}
static nc_hw x_shape(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    return (nc_hw){g->n, g->c_in, c_in_nhwc(impl, g), g->h_in * g->w_in};
}
static nc_hw w_shape(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    return (nc_hw){g->c_out, g->c_in, c_in_nhwc(impl, g), g->k_h * g->k_w};
}
static nc_hw y_shape(const gan_conv_geom *g) { return (nc_hw){g->n, g->c_out, g->c_out, g->h_out * g->w_out}; }
/* elements of the NHWC copy */
static size_t copy_count(nc_hw s) { return (size_t)s.n * (size_t)s.c_nhwc * (size_t)s.hw; }

/* In NHWC, cuDNN reads and writes NHWC tensors (the descriptors say so) while every buffer of the
 * op table is FP32 NCHW: each call copies its two inputs into NHWC copies at the front of its
 * workspace (in bf16 rounded to BF16 on the way: one pass either way), runs on those, and copies
 * its output back into the FP32 NCHW one. x and w have the padded input channels of
 * gan_cuda_conv_cudnn_geom (zeros in the copies, not copied back). The workspace of a pass is
 * [x | w | y | cuDNN's workspace], each copy aligned to 256 bytes, its elements BF16 in bf16 and
 * FP32 in tf32; no copies (0 bytes) in NCHW. */
typedef struct nhwc_copies {
    void *x, *w, *y; /* x [n, h_in, w_in, c_in], w [c_out, k_h, k_w, c_in], y [n, h_out, w_out, c_out] */
    void *rest;      /* cuDNN's own workspace */
    size_t bytes;    /* of the three copies */
} nhwc_copies;

/* Bytes of one element of a copy: BF16 in bf16, FP32 otherwise. */
static size_t copy_element_bytes(const gan_cuda_impl *impl)
{
    return impl->precision == GAN_PRECISION_BF16 ? sizeof(uint16_t) : sizeof(float);
}

/* The slots' bytes: x's and y's are 0 where the tensor is stored (it is its own copy). */
static size_t x_slot_bytes(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    return stored(g->x_storage) ? 0 : align256(copy_count(x_shape(impl, g)) * copy_element_bytes(impl));
}
static size_t y_slot_bytes(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    return stored(g->y_storage) ? 0 : align256(copy_count(y_shape(g)) * copy_element_bytes(impl));
}

static size_t copies_bytes(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_layout layout)
{
    if (layout != GAN_CONV_LAYOUT_NHWC)
        return 0;
    return x_slot_bytes(impl, g) + align256(copy_count(w_shape(impl, g)) * copy_element_bytes(impl)) +
           y_slot_bytes(impl, g);
}

/* The slots in `workspace`; a stored tensor's is NULL (bind_stored points it at the tensor). */
static nhwc_copies copies_at(const gan_cuda_impl *impl, const gan_conv_geom *g, void *workspace)
{
    char *at = workspace;
    nhwc_copies c;
    c.x = stored(g->x_storage) ? NULL : at;
    c.w = at + x_slot_bytes(impl, g);
    c.y = stored(g->y_storage) ? NULL
                               : (char *)c.w + align256(copy_count(w_shape(impl, g)) * copy_element_bytes(impl));
    c.bytes = copies_bytes(impl, g, GAN_CONV_LAYOUT_NHWC);
    c.rest = at + c.bytes;
    return c;
}

/* The slots of the stored tensors of `pass` pointed at the tensors themselves (cudnn_run's a, b and
 * out: forward x = a, y = out; backward-data dy = b, dx = out; backward-filter x = a, dy = b). */
static void bind_stored(nhwc_copies *c, const gan_conv_geom *g, gan_conv_pass pass, const float *a, const float *b,
                        float *out)
{
    void *x = pass == GAN_CONV_BACKWARD_DATA ? (void *)out : (void *)a;
    void *y = pass == GAN_CONV_FORWARD ? (void *)out : (void *)b;
    if (stored(g->x_storage))
        c->x = x;
    if (stored(g->y_storage))
        c->y = y;
    /* the layer's weight copy (forward b, backward-data a); a backward-filter writes dw into its slot */
    if (stored(g->w_storage) && pass != GAN_CONV_BACKWARD_FILTER)
        c->w = (void *)(pass == GAN_CONV_FORWARD ? b : a);
}

/* One tensor of copies_in: src (FP32 NCHW) of shape s into its NHWC copy dst. */
static gan_nhwc_copy nhwc_copy_of(nc_hw s, const float *src, void *dst)
{
    return (gan_nhwc_copy){.n = s.n, .c = s.c, .c_nhwc = s.c_nhwc, .hw = s.hw, .src = src, .dst = dst};
}

/* The copies `pass` makes of its two inputs (cudnn_run's a and b): which tensor into which slot. */
static void copies_of_pass(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_pass pass, const float *a,
                           const float *b, const nhwc_copies *c, gan_nhwc_copy out[2])
{
    switch (pass) {
    case GAN_CONV_FORWARD: /* x, w */
        out[0] = nhwc_copy_of(x_shape(impl, g), a, c->x);
        out[1] = nhwc_copy_of(w_shape(impl, g), b, c->w);
        break;
    case GAN_CONV_BACKWARD_DATA: /* w, dy */
        out[0] = nhwc_copy_of(w_shape(impl, g), a, c->w);
        out[1] = nhwc_copy_of(y_shape(g), b, c->y);
        break;
    case GAN_CONV_BACKWARD_FILTER: /* x, dy */
        out[0] = nhwc_copy_of(x_shape(impl, g), a, c->x);
        out[1] = nhwc_copy_of(y_shape(g), b, c->y);
        break;
    }
}

/* Two tensors into their copies, in one launch: rounded to BF16 in bf16, moved as FP32 in tf32. */
static gan_status copy_pair_in(const gan_cuda_impl *impl, const gan_nhwc_copy copies[2])
{
    if (impl->precision == GAN_PRECISION_BF16)
        return gan_cuda_f32_to_bf16_nhwc_pair(impl->stream, &copies[0], &copies[1]);
    return gan_cuda_f32_to_f32_nhwc_pair(impl->stream, &copies[0], &copies[1]);
}

/* The two inputs of `pass` into their copies, in one launch. */
static gan_status copies_in(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_pass pass, const float *a,
                            const float *b, const nhwc_copies *c)
{
    gan_nhwc_copy copies[2];
    copies_of_pass(impl, g, pass, a, b, c, copies);
    return copy_pair_in(impl, copies);
}

/* One tensor into its copy (one launch), as copies_in does. */
static gan_status copy_in(const gan_cuda_impl *impl, const gan_nhwc_copy *copy)
{
    if (impl->precision == GAN_PRECISION_BF16)
        return gan_cuda_f32_to_bf16_nhwc(impl->stream, copy->n, copy->c, copy->c_nhwc, copy->hw, copy->src,
                                         copy->dst);
    return gan_cuda_f32_to_f32_nhwc(impl->stream, copy->n, copy->c, copy->c_nhwc, copy->hw, copy->src, copy->dst);
}

/* ---- kept copies: a layer's forward input, copied once for its backward-filter too ---------- *
 * A Conv2d's forward and its backward-filter both read x; a ConvTranspose2d's forward (its
 * convolution's backward-data) and its backward-filter both read that convolution's dy. Where the
 * two passes run cuDNN in NHWC they copy that input alike, so the layer keeps the forward's copy
 * (conv_keep_pass: made in a buffer of the layer's instead of the workspace slot) and its
 * backward reads it (conv_grads' `kept`) instead of copying the input again. A kept copy is
 * cuDNN's x of g (the forward keeps it) or its y (the backward-data keeps it). */
typedef struct kept_copy {
    void *at;  /* NULL: none */
    bool of_y; /* cuDNN's y, else its x */
    bool make; /* made by this call (the layer's forward), else read */
} kept_copy;
static const kept_copy NO_KEPT = {NULL, false, false};

/* The shape of the input of `pass` (the layer's forward) that a kept copy holds. */
static nc_hw kept_shape(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_pass pass)
{
    return pass == GAN_CONV_FORWARD ? x_shape(impl, g) : y_shape(g);
}

/* Whether `plan` copies the input of `pass` (forward or backward-data) as its backward-filter
 * does: both planned on cuDNN in NHWC (the forms of ours are planned in NCHW). */
static bool plan_keeps(const gan_cuda_conv_plan *plan, gan_conv_pass pass)
{
    const gan_cuda_pass_plan *p = &plan->pass[pass], *f = &plan->pass[GAN_CONV_BACKWARD_FILTER];
    /* a stored input is its own copy: nothing to keep */
    gan_storage in = pass == GAN_CONV_FORWARD ? plan->geom.x_storage : plan->geom.y_storage;
    return (pass == GAN_CONV_FORWARD || pass == GAN_CONV_BACKWARD_DATA) && p->planned && f->planned &&
           p->layout == GAN_CONV_LAYOUT_NHWC && f->layout == GAN_CONV_LAYOUT_NHWC && !stored(in);
}

/* The copies a pass reads, with a kept copy in place of its slot. */
static nhwc_copies with_kept(nhwc_copies c, kept_copy k)
{
    if (k.at) {
        if (k.of_y)
            c.y = k.at;
        else
            c.x = k.at;
    }
    return c;
}

/* The inputs of `pass` into the copies of `c` (with_kept's): both in one launch, or the one
 * that is not a kept copy already made. */
static gan_status inputs_in(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_pass pass, const float *a,
                            const float *b, const nhwc_copies *c, kept_copy k)
{
    gan_nhwc_copy copies[2], wanted[2];
    copies_of_pass(impl, g, pass, a, b, c, copies);
    int n = 0;
    for (int i = 0; i < 2; i++)
        /* not a kept copy already made, nor a stored tensor (bound to itself: bind_stored) */
        if (!(k.at && !k.make && copies[i].dst == k.at) && copies[i].dst != (const void *)copies[i].src)
            wanted[n++] = copies[i];
    if (n == 2)
        return copy_pair_in(impl, wanted);
    return n == 1 ? copy_in(impl, &wanted[0]) : GAN_OK;
}

/* The copy `pass` writes (y, dx or dw). */
static void *copy_written(const nhwc_copies *c, gan_conv_pass pass)
{
    return pass == GAN_CONV_FORWARD ? c->y : pass == GAN_CONV_BACKWARD_DATA ? c->x : c->w;
}

/* Copies what `pass` wrote back into `out` (FP32 NCHW; widened from BF16 in bf16), a
 * backward-filter's with its beta, the activation `act` (GAN_FUSED_NONE: none) applied on the way. */
static gan_status copy_out(const gan_cuda_impl *impl, const gan_conv_geom *g, gan_conv_pass pass,
                           const nhwc_copies *c, float beta, int act, float slope, float *out)
{
    if (copy_written(c, pass) == (void *)out) { /* a stored output, written where it is */
        if (act == GAN_FUSED_NONE)
            return GAN_OK;
        size_t count = pass == GAN_CONV_FORWARD ? copy_count(y_shape(g)) : copy_count(x_shape(impl, g));
        if (impl->precision == GAN_PRECISION_BF16)
            return gan_cuda_activation_forward_bf16(impl->stream, (gan_activation)act, slope, count,
                                                    (const uint16_t *)out, (uint16_t *)out);
        return gan_cuda_activation_forward(impl->stream, (gan_activation)act, slope, count, out, out);
    }
    nc_hw s = pass == GAN_CONV_FORWARD         ? y_shape(g)
              : pass == GAN_CONV_BACKWARD_DATA ? x_shape(impl, g)
                                               : w_shape(impl, g);
    float b = pass == GAN_CONV_BACKWARD_FILTER ? beta : 0.0f;
    if (impl->precision == GAN_PRECISION_BF16)
        return gan_cuda_bf16_nhwc_to_f32(impl->stream, s.n, s.c, s.c_nhwc, s.hw, copy_written(c, pass), b, act, slope,
                                         out);
    return gan_cuda_f32_nhwc_to_f32(impl->stream, s.n, s.c, s.c_nhwc, s.hw, copy_written(c, pass), b, act, slope,
                                    out);
}

/* out = act(out) for the output of `pass` of g, one launch (nothing for GAN_FUSED_NONE): where
 * no kernel of ours ends the pass. */
static gan_status act_in_place(const gan_cuda_impl *impl, gan_conv_pass pass, const gan_conv_geom *g, int act,
                               float slope, float *out)
{
    if (act == GAN_FUSED_NONE)
        return GAN_OK;
    size_t count = pass == GAN_CONV_FORWARD         ? (size_t)g->n * g->c_out * g->h_out * g->w_out
                   : pass == GAN_CONV_BACKWARD_DATA ? (size_t)g->n * g->c_in * g->h_in * g->w_in
                                                    : (size_t)g->c_out * g->c_in * g->k_h * g->k_w;
    return gan_cuda_activation_forward(impl->stream, (gan_activation)act, slope, count, out, out);
}

/* cuDNN's call of `pass` with the plan's algorithm and math type, on the descriptors of the
 * pass's layout: x, w, y its inputs (the pass writes `written` in place of the third, with
 * cuDNN's beta `beta`), `rest` cuDNN's own workspace. */
static gan_status cudnn_call(gan_cuda_impl *impl, const gan_cuda_conv_plan *plan, gan_conv_pass pass, const void *x,
                             const void *w, const void *y, void *written, float beta, void *rest, size_t rest_bytes)
{
    const gan_cuda_pass_plan *p = &plan->pass[pass];
    const gan_cuda_conv_descriptors *d = &plan->desc[p->layout];
    switch (pass) {
    case GAN_CONV_FORWARD:
        CUDNN_TRY(cudnnConvolutionForward(impl->cudnn, &ONE, d->x, x, d->w, w, d->forward,
                                          (cudnnConvolutionFwdAlgo_t)p->algo, rest, rest_bytes,
                                          &ZERO, d->y, written));
        break;
    case GAN_CONV_BACKWARD_DATA:
        CUDNN_TRY(cudnnConvolutionBackwardData(impl->cudnn, &ONE, d->w, w, d->y, y, d->backward_data,
                                               (cudnnConvolutionBwdDataAlgo_t)p->algo, rest,
                                               rest_bytes, &ZERO, d->x, written));
        break;
    case GAN_CONV_BACKWARD_FILTER:
        CUDNN_TRY(cudnnConvolutionBackwardFilter(impl->cudnn, &ONE, d->x, x, d->y, y,
                                                 d->backward_filter,
                                                 (cudnnConvolutionBwdFilterAlgo_t)p->algo, rest,
                                                 rest_bytes, &beta, d->w, written));
        break;
    }
    return GAN_OK;
}

/* Pass `pass` of `plan` on cuDNN, with the plan's algorithm, math type and layout. Inputs in cuDNN's
 * order, output last:
 *   forward:         a = x,  b = w   -> out = y
 *   backward-data:   a = w,  b = dy  -> out = dx
 *   backward-filter: a = x,  b = dy  -> out = dw, added to beta times dw (beta 0: overwritten)
 * `workspace` holds the pass's bytes (the plan's, NHWC copies included). `act` (GAN_FUSED_NONE:
 * none) is applied to out: by the copy back in NHWC, else by one more launch. `kept` (NHWC only;
 * NO_KEPT for none): a kept copy of x or dy, made here in place of its slot, or read. */
static gan_status cudnn_run_kept(gan_cuda_impl *impl, const gan_cuda_conv_plan *plan, gan_conv_pass pass,
                                 const float *a, const float *b, float beta, int act, float slope, float *out,
                                 void *workspace, kept_copy kept)
{
    const gan_cuda_pass_plan *p = &plan->pass[pass];
    const gan_conv_geom *g = &plan->geom;
    /* cuDNN's x, w, y: the two inputs it reads (the third is `written`) */
    const void *x = NULL, *w = NULL, *y = NULL;
    switch (pass) {
    case GAN_CONV_FORWARD: x = a, w = b; break;
    case GAN_CONV_BACKWARD_DATA: w = a, y = b; break;
    case GAN_CONV_BACKWARD_FILTER: x = a, y = b; break;
    }
    if (p->layout != GAN_CONV_LAYOUT_NHWC) {
        GAN_TRY(cudnn_call(impl, plan, pass, x, w, y, out, beta, workspace, p->bytes));
        return act_in_place(impl, pass, g, act, slope, out);
    }
    nhwc_copies c = with_kept(copies_at(impl, g, workspace), kept);
    bind_stored(&c, g, pass, a, b, out);
    GAN_TRY(inputs_in(impl, g, pass, a, b, &c, kept));
    /* cuDNN overwrites its copy (beta 0): beta applies when the output is copied back */
    GAN_TRY(cudnn_call(impl, plan, pass, c.x, c.w, c.y, copy_written(&c, pass), 0.0f, c.rest, p->bytes - c.bytes));
    return copy_out(impl, g, pass, &c, beta, act, slope, out);
}

static gan_status cudnn_run(gan_cuda_impl *impl, const gan_cuda_conv_plan *plan, gan_conv_pass pass,
                            const float *a, const float *b, float beta, int act, float slope, float *out,
                            void *workspace)
{
    return cudnn_run_kept(impl, plan, pass, a, b, beta, act, slope, out, workspace, NO_KEPT);
}

/* Its scratch (w2, y2) before the inner convolution's workspace. */
static size_t subpixel_scratch_bytes(const gan_conv_geom *g)
{
    return align256(gan_conv_subpixel_scratch_floats(g) * sizeof(float));
}

/* dx = act(conv^T(dy, w)) for g as weights kernel, the inner plan's forward, gather (which
 * applies `act`, GAN_FUSED_NONE for none). */
static gan_status subpixel_run(gan_cuda_impl *impl, const gan_conv_geom *g,
                               const gan_cuda_conv_plan *inner, const float *dy, const float *w, int act,
                               float slope, float *dx, void *workspace)
{
    float *w2 = workspace;
    float *y2 = w2 + gan_conv_subpixel_y2_offset_floats(g);
    void *inner_workspace = (char *)workspace + subpixel_scratch_bytes(g);
    GAN_TRY(gan_cuda_subpixel_weights(impl->stream, g->c_out, g->c_in, w, w2));
    GAN_TRY(cudnn_run(impl, inner, GAN_CONV_FORWARD, dy, w2, 0.0f, GAN_FUSED_NONE, 0.0f, y2, inner_workspace));
    return gan_cuda_subpixel_gather(impl->stream, g->n, g->c_in, g->h_out, g->w_out, y2, act, slope, dx);
}

/* The forms of ours, timed beside cuDNN's algorithms, and the NHWC copies around cuDNN's (which
 * cudnnFind does not time: added to its figures, so that cuDNN in either layout and the forms of
 * ours, whose times include their own copies, are compared on the same footing). */
typedef enum own_form { OWN_SUBPIXEL, OWN_IM2COL, OWN_NHWC_COPIES } own_form;

static gan_status im2col_run(gan_cuda_impl *impl, const gan_conv_geom *g, const float *x,
                             const float *dy, float beta, float *dw, void *workspace);

/* One run of a form on the search's buffers (`inner`: the sub-pixel form's inner plan; `pass`:
 * the pass whose NHWC copies are made). */
static gan_status own_run(gan_cuda_impl *impl, own_form form, const gan_conv_geom *g,
                          const gan_cuda_conv_plan *inner, gan_conv_pass pass, const search_scratch *s)
{
    if (form == OWN_SUBPIXEL)
        return subpixel_run(impl, g, inner, s->y, s->w, GAN_FUSED_NONE, 0.0f, s->x, s->workspace);
    if (form == OWN_IM2COL)
        return im2col_run(impl, g, s->x, s->y, 0.0f, s->w, s->workspace);
    nhwc_copies c = copies_at(impl, g, s->workspace);
    const float *a = pass == GAN_CONV_BACKWARD_DATA ? s->w : s->x;
    const float *b = pass == GAN_CONV_FORWARD ? s->w : s->y;
    float *out = pass == GAN_CONV_FORWARD ? s->y : pass == GAN_CONV_BACKWARD_DATA ? s->x : s->w;
    GAN_TRY(copies_in(impl, g, pass, a, b, &c));
    return copy_out(impl, g, pass, &c, 0.0f, GAN_FUSED_NONE, 0.0f, out);
}

/* Milliseconds per run of a form on the search's buffers: one run to warm up, then the mean of
 * five between two events. */
static gan_status own_time(gan_cuda_impl *impl, own_form form, const gan_conv_geom *g,
                           const gan_cuda_conv_plan *inner, gan_conv_pass pass, const search_scratch *s,
                           float *ms)
{
    cudaEvent_t start = NULL, stop = NULL;
    gan_status status = GAN_OK;
    cudaGetLastError(); /* an earlier call's error would be blamed on this form's first launch */
    GAN_CHECK(gan_cuda_check(cudaEventCreate(&start), "cudaEventCreate", __FILE__, __LINE__));
    GAN_CHECK(gan_cuda_check(cudaEventCreate(&stop), "cudaEventCreate", __FILE__, __LINE__));
    GAN_CHECK(own_run(impl, form, g, inner, pass, s));
    GAN_CHECK(gan_cuda_check(cudaEventRecord(start, impl->stream), "cudaEventRecord", __FILE__, __LINE__));
    for (int i = 0; i < 5; i++)
        GAN_CHECK(own_run(impl, form, g, inner, pass, s));
    GAN_CHECK(gan_cuda_check(cudaEventRecord(stop, impl->stream), "cudaEventRecord", __FILE__, __LINE__));
    GAN_CHECK(gan_cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize", __FILE__, __LINE__));
    GAN_CHECK(gan_cuda_check(cudaEventElapsedTime(ms, start, stop), "cudaEventElapsedTime", __FILE__,
                             __LINE__));
    *ms /= 5.0f;
cleanup:
    if (start)
        cudaEventDestroy(start);
    if (stop)
        cudaEventDestroy(stop);
    return status;
}

/* GAN_CUDA_SUBPIXEL / GAN_CUDA_IM2COL = never|always override the timing of a form (for checks
 * on a GPU: gpu-check runs gan selftest with always, so each form is compared with the CPU where
 * cuDNN would win). */
static void own_forced(const char *variable, bool *never, bool *always)
{
    const char *force = getenv(variable);
    *never = force && !strcmp(force, "never");
    *always = force && !strcmp(force, "always");
}

/* The layouts a pass of g is timed in (gan_cuda_conv_layouts), narrowed in tf32 by
 * GAN_CUDA_NHWC=never|always, as the forms of ours are (gpu-check runs gan selftest in tf32 with
 * always, so that the NHWC copies are compared with the CPU where NCHW would win); NHWC alone
 * where g has a stored tensor, which is NHWC itself. */
static unsigned timed_layouts(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    unsigned layouts = gan_cuda_conv_layouts(impl->precision);
    const unsigned nchw = 1u << GAN_CONV_LAYOUT_NCHW, nhwc = 1u << GAN_CONV_LAYOUT_NHWC;
    if (stores_any(g))
        return nhwc;
    bool never, always;
    own_forced("GAN_CUDA_NHWC", &never, &always);
    if (layouts == (nchw | nhwc) && (never || always))
        return never ? nchw : nhwc;
    return layouts;
}

/* The layout of a pass of g chosen without timing (cuDNN's heuristics, the fallback): the
 * precision's default, unless GAN_CUDA_NHWC or a stored tensor has ruled it out. */
static gan_conv_layout untimed_layout(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    gan_conv_layout layout = gan_cuda_conv_default_layout(impl->precision);
    if (timed_layouts(impl, g) & 1u << layout)
        return layout;
    return layout == GAN_CONV_LAYOUT_NCHW ? GAN_CONV_LAYOUT_NHWC : GAN_CONV_LAYOUT_NCHW;
}

/* The sub-pixel form for g's backward-data within `budget`: its inner plan (made now, searched
 * when `search`) and the workspace it needs; false when it does not apply or does not fit. */
static gan_status subpixel_prepare(gan_cuda_impl *impl, const gan_conv_geom *g, size_t budget,
                                   bool search, int *inner_index, size_t *bytes, bool *usable)
{
    *usable = false;
    if (!gan_conv_subpixel_applies(g) || subpixel_scratch_bytes(g) > budget)
        return GAN_OK;
    gan_conv_geom inner_geom;
    GAN_TRY(gan_conv_subpixel_inner(g, &inner_geom));
    gan_cuda_conv_plan *inner;
    /* Its forward alone: the form runs nothing else of the inner convolution. */
    if (plan_get(impl, &inner_geom, budget - subpixel_scratch_bytes(g), search, GAN_CONV_PASS_BIT(GAN_CONV_FORWARD),
                 &inner) != GAN_OK) {
        gan_error_clear();
        return GAN_OK;
    }
    *inner_index = (int)(inner - impl->conv_plans);
    *bytes = subpixel_scratch_bytes(g) + inner->pass[GAN_CONV_FORWARD].bytes;
    *usable = *bytes <= budget;
    return GAN_OK;
}

/* The sub-pixel form as the backward-data of `plan`, if it applies, fits, and (`measured`) runs
 * faster than what `plan` has; `stored_ms` >= 0: a stored choice, taken without timing. */
static gan_status consider_subpixel(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, size_t budget,
                                    const search_scratch *scratch, bool have_cudnn, float stored_ms,
                                    bool *taken)
{
    *taken = false;
    bool never, always;
    own_forced("GAN_CUDA_SUBPIXEL", &never, &always);
    if (never || stores_any(&plan->geom))
        return GAN_OK;
    int inner_index = -1;
    size_t bytes = 0;
    bool usable = false;
    GAN_TRY(subpixel_prepare(impl, &plan->geom, budget, scratch != NULL, &inner_index, &bytes, &usable));
    if (!usable)
        return GAN_OK;
    float ms = stored_ms;
    gan_cuda_chosen_by by = GAN_CUDA_CHOSEN_STORED;
    if (stored_ms < 0.0f) {
        if (!scratch || scratch->workspace_bytes < bytes)
            return GAN_OK;
        GAN_TRY(own_time(impl, OWN_SUBPIXEL, &plan->geom, &impl->conv_plans[inner_index], GAN_CONV_BACKWARD_DATA,
                         scratch, &ms));
        if (have_cudnn && ms >= plan->pass[GAN_CONV_BACKWARD_DATA].ms && !always)
            return GAN_OK;
        by = GAN_CUDA_CHOSEN_MEASURED;
    }
    plan->pass[GAN_CONV_BACKWARD_DATA] = (gan_cuda_pass_plan){
        .planned = true, .algo = GAN_CONV_ALGO_SUBPIXEL,
        .math = impl->conv_plans[inner_index].pass[GAN_CONV_FORWARD].math, .layout = GAN_CONV_LAYOUT_NCHW,
        .bytes = bytes, .ms = ms, .chosen_by = by,
    };
    plan->subpixel_inner = inner_index;
    *taken = true;
    return GAN_OK;
}

/* ---- the im2col backward-filter ------------------------------------------------------------ */

/* Its scratch: col, then dyt (gan_conv_im2col_filter_*). */
static size_t im2col_bytes(const gan_conv_geom *g)
{
    return align256(gan_conv_im2col_filter_scratch_floats(g) * sizeof(float));
}

/* dw = beta dw + dyt col^T: im2col of x, dy channels first, the op table's GEMM (cuBLAS, with the
 * backend's math mode: pedantic FP32 in fp32, TF32 tensor cores in tf32). */
static gan_status im2col_run(gan_cuda_impl *impl, const gan_conv_geom *g, const float *x,
                             const float *dy, float beta, float *dw, void *workspace)
{
    float *col = workspace;
    float *dyt = col + gan_conv_im2col_filter_dyt_offset_floats(g);
    gan_conv_gemm m;
    GAN_TRY(gan_conv_im2col_filter_gemm(g, &m));
    GAN_TRY(gan_cuda_im2col(impl->stream, g, x, col));
    GAN_TRY(gan_cuda_channels_first(impl->stream, g->n, g->c_out, g->h_out * g->w_out, dy, dyt));
    gan_backend *be = impl->backend;
    return be->gemm(be, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, dyt, m.lda, col, m.ldb, beta, dw,
                    m.ldc);
}

/* The im2col form as the backward-filter of `plan`, if it applies, fits, and (`measured`) runs
 * faster than what `plan` has; `stored_ms` >= 0: a stored choice, taken without timing. */
static gan_status consider_im2col(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, size_t budget,
                                  const search_scratch *scratch, bool have_cudnn, float stored_ms,
                                  bool *taken)
{
    *taken = false;
    bool never, always;
    own_forced("GAN_CUDA_IM2COL", &never, &always);
    const gan_conv_geom *g = &plan->geom;
    if (never || stores_any(g) || !gan_conv_im2col_filter_applies(g) || im2col_bytes(g) > budget)
        return GAN_OK;
    float ms = stored_ms;
    gan_cuda_chosen_by by = GAN_CUDA_CHOSEN_STORED;
    if (stored_ms < 0.0f) {
        if (!scratch || scratch->workspace_bytes < im2col_bytes(g))
            return GAN_OK;
        GAN_TRY(own_time(impl, OWN_IM2COL, g, NULL, GAN_CONV_BACKWARD_FILTER, scratch, &ms));
        if (have_cudnn && ms >= plan->pass[GAN_CONV_BACKWARD_FILTER].ms && !always)
            return GAN_OK;
        by = GAN_CUDA_CHOSEN_MEASURED;
    }
    plan->pass[GAN_CONV_BACKWARD_FILTER] = (gan_cuda_pass_plan){
        .planned = true, .algo = GAN_CONV_ALGO_IM2COL,
        .math = impl->precision == GAN_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH,
        .layout = GAN_CONV_LAYOUT_NCHW, .bytes = im2col_bytes(g), .ms = ms, .chosen_by = by,
    };
    *taken = true;
    return GAN_OK;
}

/* A stored choice of a form of ours for `pass`, taken where it still applies and fits. */
static gan_status take_stored_own(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                                  size_t budget, const search_scratch *scratch, bool *taken)
{
    *taken = false;
    gan_conv_choice key = choice_key(impl, &plan->geom, pass);
    int at = gan_conv_choices_find(&impl->choices, &key);
    if (at < 0)
        return GAN_OK;
    const gan_conv_choice *stored = &impl->choices.items[at];
    if (pass == GAN_CONV_BACKWARD_DATA && stored->algo == GAN_CONV_ALGO_SUBPIXEL)
        return consider_subpixel(impl, plan, budget, scratch, false, (float)stored->ms, taken);
    if (pass == GAN_CONV_BACKWARD_FILTER && stored->algo == GAN_CONV_ALGO_IM2COL)
        return consider_im2col(impl, plan, budget, scratch, false, (float)stored->ms, taken);
    return GAN_OK;
}

/* NHWC: adds the time of the pass's copies (two inputs in, the output back: what cudnn_run does
 * around cuDNN) to each measured candidate, so that the other layout and the forms of ours, whose
 * times include their own copies, meet cuDNN's on the same footing and the reported figure is the
 * pass's. Left as measured where the copies do not fit the search's workspace or the timing fails
 * (then this layout is favoured, as before the copies were timed). */
static void add_copies_time(gan_cuda_impl *impl, const gan_cuda_conv_plan *plan, gan_conv_pass pass,
                            gan_conv_layout layout, const search_scratch *scratch, candidate *c, int n)
{
    const gan_conv_geom *g = &plan->geom;
    float ms = 0.0f;
    /* (a plan with stored tensors runs in one layout, NHWC: the copies would add the same time to
     * every candidate, so its figures are cuDNN's alone) */
    if (layout != GAN_CONV_LAYOUT_NHWC || stores_any(g) || copies_bytes(impl, g, layout) > scratch->workspace_bytes)
        return;
    if (own_time(impl, OWN_NHWC_COPIES, g, NULL, pass, scratch, &ms) != GAN_OK) {
        gan_error_clear();
        cudaGetLastError();
        return;
    }
    for (int i = 0; i < n; i++)
        c[i].ms += ms;
}

/* Every algorithm of `pass` in every timed layout (copies counted), fastest first: one layout's
 * search failing leaves the other's candidates, and *n is 0 when every search failed. */
static void measured_all(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                         const search_scratch *scratch, candidate *c, int *n)
{
    *n = 0;
    unsigned layouts = timed_layouts(impl, &plan->geom);
    for (int l = GAN_CONV_LAYOUT_NCHW; l <= GAN_CONV_LAYOUT_NHWC; l++) {
        int found = 0;
        if (!(layouts & 1u << l))
            continue;
        if (measured_candidates(impl, plan, pass, (gan_conv_layout)l, scratch, c + *n, &found) != GAN_OK) {
            gan_error_clear();
            cudaGetLastError();
            continue;
        }
        add_copies_time(impl, plan, pass, (gan_conv_layout)l, scratch, c + *n, found);
        *n += found;
    }
    /* Stable insertion sort by time, the ones that ran first (cuDNN puts failures last, their
     * time meaningless); equal times keep cuDNN's order, NCHW's before NHWC's. */
    for (int i = 1; i < *n; i++) {
        candidate key = c[i];
        bool key_ran = key.status == CUDNN_STATUS_SUCCESS;
        int j = i - 1;
        while (j >= 0 && ((c[j].status != CUDNN_STATUS_SUCCESS && key_ran) ||
                          (c[j].status == CUDNN_STATUS_SUCCESS && key_ran && c[j].ms > key.ms))) {
            c[j + 1] = c[j];
            j--;
        }
        c[j + 1] = key;
    }
}

/* Chooses `pass` of the plan: stored, measured (when `scratch` is given), heuristic, fallback. */
static gan_status choose(gan_cuda_impl *impl, gan_cuda_conv_plan *plan, gan_conv_pass pass,
                         size_t budget, const search_scratch *scratch)
{
    bool taken = false;
    candidate c[MAX_CANDIDATES];
    int n = 0;
    GAN_TRY(take_stored(impl, plan, pass, budget, &taken));
    if (!taken)
        GAN_TRY(take_stored_own(impl, plan, pass, budget, scratch, &taken));
    if (!taken && scratch) {
        /* The timed search and the forms of ours are optional: where one fails (cuDNN refusing
         * a trial, a launch failing), the pass is chosen without it, as if it had lost. */
        measured_all(impl, plan, pass, scratch, c, &n);
        gan_status measured = take_first_acceptable(impl, plan, pass, c, n, budget, GAN_CUDA_CHOSEN_MEASURED,
                                                    &taken);
        if (measured != GAN_OK) {
            gan_error_clear();
            cudaGetLastError();
            taken = false;
        }
        bool own = false;
        gan_status own_status = GAN_OK;
        if (pass == GAN_CONV_BACKWARD_DATA)
            own_status = consider_subpixel(impl, plan, budget, scratch, taken, -1.0f, &own);
        if (pass == GAN_CONV_BACKWARD_FILTER)
            own_status = consider_im2col(impl, plan, budget, scratch, taken, -1.0f, &own);
        if (own_status != GAN_OK) {
            gan_error_clear();
            cudaGetLastError();
            own = false;
        }
        taken = taken || own;
        if (taken)
            GAN_TRY(remember(impl, plan, pass));
    }
    if (!taken) {
        GAN_TRY(heuristic_candidates(impl, plan, pass, c, &n));
        GAN_TRY(take_first_acceptable(impl, plan, pass, c, n, budget, GAN_CUDA_CHOSEN_HEURISTIC, &taken));
    }
    if (!taken)
        GAN_TRY(take_fallback(impl, plan, pass, budget, &taken));
    if (!taken)
        return no_algorithm(pass, &plan->geom, impl, budget);
    return GAN_OK;
}

/* Whether every pass of g in `passes` has a stored choice in a layout timed now (then no search
 * buffers are needed). */
static bool all_stored(const gan_cuda_impl *impl, const gan_conv_geom *g, unsigned passes)
{
    for (int p = 0; p < 3; p++) {
        gan_conv_choice key = choice_key(impl, g, (gan_conv_pass)p);
        int at = gan_conv_choices_find(&impl->choices, &key);
        if ((passes & GAN_CONV_PASS_BIT(p)) &&
            (at < 0 || !(timed_layouts(impl, g) & 1u << impl->choices.items[at].layout)))
            return false;
    }
    return true;
}

/* The NHWC storage of this backend's precision (BF16 in bf16, FP32 in tf32); FP32 NCHW in fp32,
 * which has none. */
static gan_storage nhwc_storage(const gan_cuda_impl *impl)
{
    return impl->precision == GAN_PRECISION_BF16   ? GAN_STORAGE_BF16_NHWC
           : impl->precision == GAN_PRECISION_TF32 ? GAN_STORAGE_F32_NHWC
                                                   : GAN_STORAGE_F32_NCHW;
}

/* Stored tensors are NHWC as cuDNN reads them in this precision: BF16 in bf16, FP32 in tf32, none
 * in fp32; channels in whole groups of 16 bytes (8 BF16 or 4 FP32 values: no padding to add). */
static gan_status check_storage(const gan_cuda_impl *impl, const gan_conv_geom *g)
{
    const gan_storage s[3] = {g->x_storage, g->y_storage, g->w_storage};
    const int channels[3] = {g->c_in, g->c_out, g->c_in};
    const char *const names[3] = {"x", "y", "the weight copy"};
    for (int i = 0; i < 3; i++) {
        if (s[i] != GAN_STORAGE_F32_NCHW && s[i] != GAN_STORAGE_BF16_NHWC && s[i] != GAN_STORAGE_F32_NHWC)
            return gan_error(GAN_ERR_ARG, "convolution: unknown storage %d of %s", (int)s[i], names[i]);
        if (s[i] == GAN_STORAGE_F32_NCHW)
            continue;
        const char *what = s[i] == GAN_STORAGE_BF16_NHWC ? "BF16 NHWC" : "FP32 NHWC";
        if (s[i] != nhwc_storage(impl))
            return gan_error(GAN_ERR_ARG, "convolution: %s stored %s needs train.precision = %s (this backend runs "
                                          "%s)", names[i], what, s[i] == GAN_STORAGE_BF16_NHWC ? "bf16" : "tf32",
                             gan_precision_name(impl->precision));
        int group = gan_storage_channel_group(s[i]);
        if (i < 2 && channels[i] % group)
            return gan_error(GAN_ERR_ARG, "convolution: %s stored %s needs its channels in groups of %d, not %d",
                             names[i], what, group, channels[i]);
    }
    return GAN_OK;
}

static void plan_descriptors_destroy(gan_cuda_conv_plan *plan)
{
    for (int l = GAN_CONV_LAYOUT_NCHW; l <= GAN_CONV_LAYOUT_NHWC; l++)
        gan_cuda_conv_descriptors_destroy(&plan->desc[l]);
}

/* The plan's descriptors in every layout its precision may run (the others stay NULL). */
static gan_status plan_descriptors_create(const gan_cuda_impl *impl, const gan_conv_geom *g,
                                          gan_cuda_conv_plan *plan)
{
    unsigned layouts = gan_cuda_conv_layouts(impl->precision);
    for (int l = GAN_CONV_LAYOUT_NCHW; l <= GAN_CONV_LAYOUT_NHWC; l++) {
        gan_status status = layouts & 1u << l ? gan_cuda_conv_descriptors_create(g, impl->precision,
                                                                                (gan_conv_layout)l, &plan->desc[l])
                                              : GAN_OK;
        if (status != GAN_OK) {
            plan_descriptors_destroy(plan);
            return status;
        }
    }
    return GAN_OK;
}

/* The plan of geometry g with every pass in `passes` chosen: made now, with `budget`, where it
 * does not exist yet, and completed where it lacks one of them (a sub-pixel form's inner plan has
 * its forward alone until that geometry is asked for as a layer of its own); `search` allows the
 * timed search (planning time only: it allocates). The plan is built in a local copy: choosing
 * may plan other geometries (a sub-pixel inner convolution) and move the array. */
static gan_status plan_get(gan_cuda_impl *impl, const gan_conv_geom *g, size_t budget, bool search,
                           unsigned passes, gan_cuda_conv_plan **out)
{
    int index = -1;
    for (int i = 0; i < impl->conv_plan_count && index < 0; i++)
        if (same_plan_geom(&impl->conv_plans[i].geom, g))
            index = i;
    gan_cuda_conv_plan plan;
    unsigned missing = passes;
    if (index >= 0) {
        plan = impl->conv_plans[index];
        for (int p = 0; p < 3; p++)
            if (plan.pass[p].planned)
                missing &= ~GAN_CONV_PASS_BIT(p);
        if (!missing) {
            *out = &impl->conv_plans[index];
            return GAN_OK;
        }
    } else {
        GAN_TRY(check_storage(impl, g));
        memset(&plan, 0, sizeof plan);
        plan.geom = *g;
        plan.subpixel_inner = -1;
        GAN_TRY(plan_descriptors_create(impl, g, &plan));
    }
    search_scratch scratch;
    bool searching = search && !impl->capturing && !all_stored(impl, g, missing) &&
                     scratch_alloc(impl, g, budget, &scratch);
    gan_status status = GAN_OK;
    for (int p = 0; p < 3; p++)
        if (missing & GAN_CONV_PASS_BIT(p))
            GAN_CHECK(choose(impl, &plan, (gan_conv_pass)p, budget, searching ? &scratch : NULL));
    if (searching) {
        /* The search ran on the stream: finish it before its buffers go. */
        status = gan_cuda_check(cudaStreamSynchronize(impl->stream), "cudaStreamSynchronize",
                                __FILE__, __LINE__);
        scratch_free(&scratch);
        searching = false;
        if (status != GAN_OK)
            goto cleanup;
    }
    if (index >= 0) {
        impl->conv_plans[index] = plan;
        *out = &impl->conv_plans[index];
        return GAN_OK;
    }
    /* Grown only now: choosing may have added plans (a sub-pixel form's inner convolution). */
    if (impl->conv_plan_count == impl->conv_plan_capacity) {
        int capacity = impl->conv_plan_capacity ? 2 * impl->conv_plan_capacity : 16;
        gan_cuda_conv_plan *grown = realloc(impl->conv_plans, (size_t)capacity * sizeof *grown);
        if (!grown) {
            status = gan_error(GAN_ERR_NOMEM, "out of memory for convolution plans");
            goto cleanup;
        }
        impl->conv_plans = grown;
        impl->conv_plan_capacity = capacity;
    }
    impl->conv_plans[impl->conv_plan_count] = plan;
    *out = &impl->conv_plans[impl->conv_plan_count++];
    return GAN_OK;
cleanup:
    if (searching) {
        cudaStreamSynchronize(impl->stream);
        scratch_free(&scratch);
    }
    if (index < 0)
        plan_descriptors_destroy(&plan);
    return status;
}

void gan_cuda_conv_plans_clear(gan_cuda_impl *impl)
{
    for (int i = 0; i < impl->conv_plan_count; i++)
        plan_descriptors_destroy(&impl->conv_plans[i]);
    free(impl->conv_plans);
    impl->conv_plans = NULL;
    impl->conv_plan_count = impl->conv_plan_capacity = 0;
    gan_conv_choices_free(&impl->choices);
}

/* The op table's conv_workspace_bytes cannot return an error: when no plan can be made, it
 * returns 0 and leaves the geometry unplanned, so the convolution call itself plans again
 * (within 0 bytes) and reports the reason. Only the passes in `passes` are chosen (timed): the
 * others stay unplanned until another caller names them or a call needs them. */
size_t gan_cuda_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g, unsigned passes)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    passes &= GAN_CONV_PASSES_ALL;
    if (gan_conv_is_whole_input(g) || !passes)
        return 0;
    gan_cuda_conv_plan *plan;
    if (plan_get(impl, g, impl->workspace_budget_bytes, true, passes, &plan) != GAN_OK)
        return 0;
    size_t most = 0;
    for (int p = 0; p < 3; p++)
        if ((passes & GAN_CONV_PASS_BIT(p)) && plan->pass[p].bytes > most)
            most = plan->pass[p].bytes;
    return most;
}

/* The plan of g with `pass` chosen. A pass not planned (a geometry first seen at a call, or a pass
 * its planner did not name) gets algorithms that need no workspace: the caller's workspace size
 * is unknown. */
static gan_status plan_for_call(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass,
                                gan_cuda_conv_plan **plan)
{
    return plan_get(gan_cuda_impl_of(be), g, 0, false, GAN_CONV_PASS_BIT(pass), plan);
}

/* The plan of g with its backward-filter and `pass` both chosen (a call that runs both, or keeps
 * the copy the backward-filter reads again); NULL for a whole-input convolution (no plan). The
 * later pointer is the one to use: planning a pass may move the plans. */
static gan_status plan_with_filter(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass,
                                   gan_cuda_conv_plan **plan)
{
    *plan = NULL;
    if (gan_conv_is_whole_input(g))
        return GAN_OK;
    GAN_TRY(plan_for_call(be, g, GAN_CONV_BACKWARD_FILTER, plan));
    return plan_for_call(be, g, pass, plan);
}

static gan_status check_workspace(gan_conv_pass pass, size_t bytes, const void *workspace)
{
    if (bytes > 0 && !workspace)
        return gan_error(GAN_ERR_ARG, "convolution %s needs a workspace of %zu bytes and got none",
                         gan_conv_pass_name(pass), bytes);
    return GAN_OK;
}

/* Pass `pass` of a whole-input convolution as one GEMM: c = beta c + op(a) op(b), then `act`. */
static gan_status whole_input_pass(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass,
                                   const float *a, const float *b, float beta, int act, float slope, float *c)
{
    if (stores_any(g))
        return gan_error(GAN_ERR_ARG, "convolution %s: a whole-input kernel runs as a GEMM on FP32 NCHW "
                                      "tensors, not NHWC ones", gan_conv_pass_name(pass));
    gan_conv_gemm m;
    GAN_TRY(gan_conv_whole_input_gemm(g, pass, &m));
    GAN_TRY(be->gemm(be, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, a, m.lda, b, m.ldb, beta, c, m.ldc));
    return act_in_place(gan_cuda_impl_of(be), pass, g, act, slope, c);
}

/* y = act(conv(x, w)), act GAN_FUSED_NONE for none. */
static gan_status conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w, int act,
                               float slope, float *y, void *workspace)
{
    if (gan_conv_is_whole_input(g))
        return whole_input_pass(be, g, GAN_CONV_FORWARD, x, w, 0.0f, act, slope, y);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_for_call(be, g, GAN_CONV_FORWARD, &plan));
    const gan_cuda_pass_plan *p = &plan->pass[GAN_CONV_FORWARD];
    GAN_TRY(check_workspace(GAN_CONV_FORWARD, p->bytes, workspace));
    return cudnn_run(impl, plan, GAN_CONV_FORWARD, x, w, 0.0f, act, slope, y, workspace);
}

/* dx = act(conv^T(dy, w)), act GAN_FUSED_NONE for none. */
static gan_status conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy, const float *w,
                                     int act, float slope, float *dx, void *workspace)
{
    if (gan_conv_is_whole_input(g))
        return whole_input_pass(be, g, GAN_CONV_BACKWARD_DATA, dy, w, 0.0f, act, slope, dx);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_for_call(be, g, GAN_CONV_BACKWARD_DATA, &plan));
    const gan_cuda_pass_plan *p = &plan->pass[GAN_CONV_BACKWARD_DATA];
    GAN_TRY(check_workspace(GAN_CONV_BACKWARD_DATA, p->bytes, workspace));
    if (p->algo == GAN_CONV_ALGO_SUBPIXEL)
        return subpixel_run(impl, g, &impl->conv_plans[plan->subpixel_inner], dy, w, act, slope, dx, workspace);
    return cudnn_run(impl, plan, GAN_CONV_BACKWARD_DATA, w, dy, 0.0f, act, slope, dx, workspace);
}

static gan_status check_act(gan_activation act, const char *op)
{
    if (!gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "%s: unknown activation %d", op, (int)act);
    return GAN_OK;
}

gan_status gan_cuda_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                                 const float *w, float *y, void *workspace)
{
    return conv_forward(be, g, x, w, GAN_FUSED_NONE, 0.0f, y, workspace);
}

gan_status gan_cuda_conv_forward_act(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                     gan_activation act, float slope, float *y, void *workspace)
{
    GAN_TRY(check_act(act, "conv forward + activation"));
    return conv_forward(be, g, x, w, (int)act, slope, y, workspace);
}

gan_status gan_cuda_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                       const float *w, float *dx, void *workspace)
{
    return conv_backward_data(be, g, dy, w, GAN_FUSED_NONE, 0.0f, dx, workspace);
}

gan_status gan_cuda_conv_backward_data_act(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                           const float *w, gan_activation act, float slope, float *dx,
                                           void *workspace)
{
    GAN_TRY(check_act(act, "conv backward-data + activation"));
    return conv_backward_data(be, g, dy, w, (int)act, slope, dx, workspace);
}

gan_status gan_cuda_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                         const float *dy, float beta, float *dw, void *workspace)
{
    if (gan_conv_is_whole_input(g))
        return whole_input_pass(be, g, GAN_CONV_BACKWARD_FILTER, dy, x, beta, GAN_FUSED_NONE, 0.0f, dw);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_for_call(be, g, GAN_CONV_BACKWARD_FILTER, &plan));
    const gan_cuda_pass_plan *p = &plan->pass[GAN_CONV_BACKWARD_FILTER];
    GAN_TRY(check_workspace(GAN_CONV_BACKWARD_FILTER, p->bytes, workspace));
    if (p->algo == GAN_CONV_ALGO_IM2COL)
        return im2col_run(impl, g, x, dy, beta, dw, workspace);
    return cudnn_run(impl, plan, GAN_CONV_BACKWARD_FILTER, x, dy, beta, GAN_FUSED_NONE, 0.0f, dw, workspace);
}

/* The pass that made a kept copy for a layer whose backward's second pass is `other`: a Conv2d's
 * forward (x kept) when it is backward-data, a ConvTranspose2d's backward-data (dy kept) when it
 * is forward. */
static gan_conv_pass keeping_pass(gan_conv_pass other)
{
    return other == GAN_CONV_BACKWARD_DATA ? GAN_CONV_FORWARD : GAN_CONV_BACKWARD_DATA;
}

/* A layer's two backward passes (the op table's conv_grads). Where both run cuDNN in NHWC, the
 * input they have in common is copied once (the workspace has one slot per tensor: [x | w | y]):
 *   backward-data (dy in common): w, dy in (one launch); dx out of the x slot; then x in (or the
 *     kept copy of x read); dw out of the w slot;
 *   forward (x in common), with dy kept: x, w in (one launch); y out of the y slot; dw out of the
 *     w slot from x and the kept dy;
 *   forward, nothing kept: x, dy in (one launch); dw out of the w slot; w in; y out of the y slot.
 * The same copies of the same values as the two ops make, so the same bits, with one copy fewer
 * (two with a kept copy). Otherwise (either pass in NCHW or a form of ours, a whole-input GEMM, or
 * no `out`: the backward-filter alone) the ops, the backward-filter on the kept copy where there
 * is one. */
gan_status gan_cuda_conv_grads(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy, float beta,
                               float *dw, gan_conv_pass other, const float *w, float *out, const void *kept,
                               void *workspace)
{
    if (other != GAN_CONV_BACKWARD_DATA && other != GAN_CONV_FORWARD)
        return gan_error(GAN_ERR_ARG, "conv grads: the second pass must be backward-data or forward, not %d",
                         (int)other);
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_with_filter(be, g, other, &plan));
    if (kept && (!plan || !plan_keeps(plan, keeping_pass(other))))
        return gan_error(GAN_ERR_ARG, "conv grads: a kept copy was given where this geometry keeps none "
                                      "(conv_keep_bytes is 0)");
    kept_copy k = {(void *)kept, other == GAN_CONV_FORWARD, false};
    const gan_cuda_pass_plan *f = plan ? &plan->pass[GAN_CONV_BACKWARD_FILTER] : NULL;
    const gan_cuda_pass_plan *o = plan ? &plan->pass[other] : NULL;
    /* the forms of ours are planned in NCHW: they read the caller's buffers; stored tensors are not
     * copied, so there is no copy to share */
    if (!plan || !out || f->layout != GAN_CONV_LAYOUT_NHWC || o->layout != GAN_CONV_LAYOUT_NHWC || stores_any(g)) {
        if (kept) {
            GAN_TRY(check_workspace(GAN_CONV_BACKWARD_FILTER, f->bytes, workspace));
            GAN_TRY(cudnn_run_kept(impl, plan, GAN_CONV_BACKWARD_FILTER, x, dy, beta, GAN_FUSED_NONE, 0.0f, dw,
                                   workspace, k));
        } else {
            GAN_TRY(gan_cuda_conv_backward_filter(be, g, x, dy, beta, dw, workspace));
        }
        if (!out)
            return GAN_OK;
        if (other == GAN_CONV_BACKWARD_DATA)
            return gan_cuda_conv_backward_data(be, g, dy, w, out, workspace);
        return gan_cuda_conv_forward(be, g, x, w, out, workspace);
    }
    GAN_TRY(check_workspace(GAN_CONV_BACKWARD_FILTER, f->bytes, workspace));
    GAN_TRY(check_workspace(other, o->bytes, workspace));
    nhwc_copies c = copies_at(impl, g, workspace);
    const size_t filter_rest = f->bytes - c.bytes, other_rest = o->bytes - c.bytes;
    if (other == GAN_CONV_BACKWARD_DATA) {
        GAN_TRY(copies_in(impl, g, GAN_CONV_BACKWARD_DATA, w, dy, &c));
        GAN_TRY(cudnn_call(impl, plan, GAN_CONV_BACKWARD_DATA, NULL, c.w, c.y, c.x, 0.0f, c.rest, other_rest));
        GAN_TRY(copy_out(impl, g, GAN_CONV_BACKWARD_DATA, &c, 0.0f, GAN_FUSED_NONE, 0.0f, out));
        const void *x_copy = kept;
        if (!kept) {
            gan_nhwc_copy copy = nhwc_copy_of(x_shape(impl, g), x, c.x);
            GAN_TRY(copy_in(impl, &copy));
            x_copy = c.x;
        }
        GAN_TRY(cudnn_call(impl, plan, GAN_CONV_BACKWARD_FILTER, x_copy, NULL, c.y, c.w, 0.0f, c.rest, filter_rest));
        return copy_out(impl, g, GAN_CONV_BACKWARD_FILTER, &c, beta, GAN_FUSED_NONE, 0.0f, dw);
    }
    if (kept) {
        GAN_TRY(copies_in(impl, g, GAN_CONV_FORWARD, x, w, &c));
        GAN_TRY(cudnn_call(impl, plan, GAN_CONV_FORWARD, c.x, c.w, NULL, c.y, 0.0f, c.rest, other_rest));
        GAN_TRY(copy_out(impl, g, GAN_CONV_FORWARD, &c, 0.0f, GAN_FUSED_NONE, 0.0f, out));
        GAN_TRY(cudnn_call(impl, plan, GAN_CONV_BACKWARD_FILTER, c.x, NULL, kept, c.w, 0.0f, c.rest, filter_rest));
        return copy_out(impl, g, GAN_CONV_BACKWARD_FILTER, &c, beta, GAN_FUSED_NONE, 0.0f, dw);
    }
    GAN_TRY(copies_in(impl, g, GAN_CONV_BACKWARD_FILTER, x, dy, &c));
    GAN_TRY(cudnn_call(impl, plan, GAN_CONV_BACKWARD_FILTER, c.x, NULL, c.y, c.w, 0.0f, c.rest, filter_rest));
    GAN_TRY(copy_out(impl, g, GAN_CONV_BACKWARD_FILTER, &c, beta, GAN_FUSED_NONE, 0.0f, dw));
    gan_nhwc_copy w_copy = nhwc_copy_of(w_shape(impl, g), w, c.w);
    GAN_TRY(copy_in(impl, &w_copy));
    GAN_TRY(cudnn_call(impl, plan, GAN_CONV_FORWARD, c.x, c.w, NULL, c.y, 0.0f, c.rest, other_rest));
    return copy_out(impl, g, GAN_CONV_FORWARD, &c, 0.0f, GAN_FUSED_NONE, 0.0f, out);
}

/* The op table's conv_keep_bytes: the copy of the input of `pass` where the plan (both passes
 * chosen now, within the budget, if they are not yet) keeps it, else 0. */
size_t gan_cuda_conv_keep_bytes(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if ((pass != GAN_CONV_FORWARD && pass != GAN_CONV_BACKWARD_DATA) || gan_conv_is_whole_input(g))
        return 0;
    gan_cuda_conv_plan *plan;
    unsigned passes = GAN_CONV_PASS_BIT(pass) | GAN_CONV_PASS_BIT(GAN_CONV_BACKWARD_FILTER);
    if (plan_get(impl, g, impl->workspace_budget_bytes, true, passes, &plan) != GAN_OK || !plan_keeps(plan, pass))
        return 0;
    return align256(copy_count(kept_shape(impl, g, pass)) * copy_element_bytes(impl));
}

_Static_assert(GAN_CONV_NO_ACT == GAN_FUSED_NONE, "conv_keep_pass's no activation is the kernels' GAN_FUSED_NONE");

/* The op table's conv_keep_pass: the layer's forward (Conv2d: forward, ConvTranspose2d:
 * backward-data), its input's copy made into `keep`. */
gan_status gan_cuda_conv_keep_pass(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, const float *in,
                                   const float *w, int act, float slope, float *out, void *keep, void *workspace)
{
    if (pass != GAN_CONV_FORWARD && pass != GAN_CONV_BACKWARD_DATA)
        return gan_error(GAN_ERR_ARG, "conv keep pass: the pass must be forward or backward-data, not %d", (int)pass);
    if (act != GAN_CONV_NO_ACT)
        GAN_TRY(check_act((gan_activation)act, "conv keep pass"));
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_with_filter(be, g, pass, &plan));
    if (!plan || !plan_keeps(plan, pass) || !keep)
        return gan_error(GAN_ERR_ARG, "conv keep pass (%s): %s", gan_conv_pass_name(pass),
                         keep ? "this geometry keeps no copy (conv_keep_bytes is 0)" : "no buffer to keep the copy in");
    const gan_cuda_pass_plan *p = &plan->pass[pass];
    GAN_TRY(check_workspace(pass, p->bytes, workspace));
    /* no `in`: keep holds its copy already (conv_keep_images), read as a kept copy is */
    kept_copy k = {keep, pass == GAN_CONV_BACKWARD_DATA, in != NULL};
    if (pass == GAN_CONV_FORWARD)
        return cudnn_run_kept(impl, plan, pass, in, w, 0.0f, act, slope, out, workspace, k);
    return cudnn_run_kept(impl, plan, pass, w, in, 0.0f, act, slope, out, workspace, k);
}

/* The op table's conv_keep_images: the uint8 batch into the copy conv_keep_pass makes of g's forward
 * input (x's copy: NHWC, its channels padded as the passes pad them, BF16 in bf16 and FP32
 * otherwise), what copy_in would make of images_to_float's output, in one launch. */
gan_status gan_cuda_conv_keep_images(gan_backend *be, const gan_conv_geom *g, const uint8_t *pixels, void *keep)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_cuda_conv_plan *plan;
    GAN_TRY(plan_with_filter(be, g, GAN_CONV_FORWARD, &plan));
    bool keeps = plan && plan_keeps(plan, GAN_CONV_FORWARD);
    if (!keeps || !keep || !pixels)
        return gan_error(GAN_ERR_ARG, "conv keep images: %s",
                         !keeps ? "this geometry keeps no copy of its forward's input (conv_keep_bytes is 0)"
                         : keep ? "no images"
                                : "no buffer to keep the copy in");
    nc_hw x = x_shape(impl, g);
    if (impl->precision == GAN_PRECISION_BF16)
        return gan_cuda_images_to_bf16_nhwc(impl->stream, x.n, g->h_in, g->w_in, x.c, x.c_nhwc, pixels, keep);
    return gan_cuda_images_to_f32_nhwc(impl->stream, x.n, g->h_in, g->w_in, x.c, x.c_nhwc, pixels, keep);
}

/* ---- weight copies, once per model forward --------------------------------------------------- */

/* The op table's conv_weight_copy_bytes: w's KRSC copy in the edge storage (BF16 in bf16, FP32 in
 * tf32; input channels padded as the NHWC passes pad them) where g's x or y is stored (its passes
 * are cuDNN's NHWC ones already, so the copy changes no choice); 0 elsewhere (a geometry with
 * FP32 NCHW tensors keeps its forms of ours and, in tf32, its choice of layout). */
size_t gan_cuda_conv_weight_copy_bytes(gan_backend *be, const gan_conv_geom *g)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (be->edge_storage == GAN_STORAGE_F32_NCHW || be->edge_storage != nhwc_storage(impl) ||
        gan_conv_is_whole_input(g) || (!stored(g->x_storage) && !stored(g->y_storage)))
        return 0;
    return align256(copy_count(w_shape(impl, g)) * gan_storage_element_bytes(be->edge_storage));
}

/* The op table's conv_weight_copies: every copy in one launch (eight per launch). */
gan_status gan_cuda_conv_weight_copies(gan_backend *be, int count, const gan_conv_weight_copy *copies)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    enum { MOST = 64 };
    gan_nhwc_copy list[MOST];
    if (count < 0 || count > MOST)
        return gan_error(GAN_ERR_ARG, "conv weight copies: %d at once (at most %d)", count, MOST);
    for (int i = 0; i < count; i++) {
        const gan_conv_geom *g = copies[i].g;
        if (g->w_storage != be->edge_storage || !copies[i].copy || gan_cuda_conv_weight_copy_bytes(be, g) == 0)
            return gan_error(GAN_ERR_ARG, "conv weight copies: convolution %d reads no weight copy here", i);
        list[i] = nhwc_copy_of(w_shape(impl, g), copies[i].w, copies[i].copy);
    }
    if (be->edge_storage == GAN_STORAGE_BF16_NHWC)
        return gan_cuda_f32_to_bf16_nhwc_list(impl->stream, count, list);
    return gan_cuda_f32_to_f32_nhwc_list(impl->stream, count, list);
}

/* ---- the choices, in and out ----------------------------------------------------------- */

gan_status gan_cuda_conv_choices_export(gan_backend *be, char **text)
{
    return gan_conv_choices_format(&gan_cuda_impl_of(be)->choices, text);
}

/* Parsed whole before any is kept: a malformed text changes nothing. */
gan_status gan_cuda_conv_choices_import(gan_backend *be, const char *text, const char *source)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    gan_conv_choices parsed = {0};
    gan_status status = gan_conv_choices_parse(text, source, &parsed);
    for (int i = 0; status == GAN_OK && i < parsed.count; i++)
        status = gan_conv_choices_put(&impl->choices, &parsed.items[i]);
    gan_conv_choices_free(&parsed);
    return status;
}

static const char *algo_name(gan_conv_pass pass, int algo)
{
    static const char *const forward[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                          "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char *const backward_data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD",
                                                "WINOGRAD_NONFUSED"};
    static const char *const backward_filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD",
                                                  "WINOGRAD_NONFUSED", "FFT_TILING"};
    if (algo == GAN_CONV_ALGO_SUBPIXEL)
        return "subpixel";
    if (algo == GAN_CONV_ALGO_IM2COL)
        return "im2col+gemm";
    if (pass == GAN_CONV_FORWARD && algo >= 0 && algo < 8)
        return forward[algo];
    if (pass == GAN_CONV_BACKWARD_DATA && algo >= 0 && algo < 6)
        return backward_data[algo];
    if (pass == GAN_CONV_BACKWARD_FILTER && algo >= 0 && algo < 7)
        return backward_filter[algo];
    return "?";
}

void gan_cuda_conv_describe(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, char *out,
                            size_t bytes)
{
    static const char *const by[] = {"heuristic", "measured", "stored", "fallback"};
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (gan_conv_is_whole_input(g)) {
        snprintf(out, bytes, "cublas gemm %s (whole-input kernel)", gan_precision_name(impl->precision));
        return;
    }
    for (int i = 0; i < impl->conv_plan_count; i++)
        if (same_plan_geom(&impl->conv_plans[i].geom, g)) {
            const gan_cuda_conv_plan *plan = &impl->conv_plans[i];
            const gan_cuda_pass_plan *p = &plan->pass[pass];
            if (!p->planned) {
                snprintf(out, bytes, "not planned");
                return;
            }
            /* cuDNN's layout where it may differ (tf32 times both; bf16 is NHWC) */
            bool layouts = gan_cuda_conv_layouts(impl->precision) != 1u << GAN_CONV_LAYOUT_NCHW;
            char inner[64] = "";
            if (p->algo == GAN_CONV_ALGO_SUBPIXEL && plan->subpixel_inner >= 0) {
                const gan_cuda_pass_plan *f = &impl->conv_plans[plan->subpixel_inner].pass[GAN_CONV_FORWARD];
                snprintf(inner, sizeof inner, " (inner %s%s%s)", algo_name(GAN_CONV_FORWARD, f->algo),
                         layouts ? " " : "", layouts ? gan_conv_layout_name(f->layout) : "");
            }
            bool cudnn = p->algo != GAN_CONV_ALGO_SUBPIXEL && p->algo != GAN_CONV_ALGO_IM2COL;
            snprintf(out, bytes, "%s%s %s%s%s ws %zu KiB, %s %.4f ms", algo_name(pass, p->algo), inner,
                     gan_conv_math_name((gan_conv_math)p->math), layouts && cudnn ? " " : "",
                     layouts && cudnn ? gan_conv_layout_name(p->layout) : "", p->bytes >> 10, by[p->chosen_by],
                     (double)p->ms);
            return;
        }
    snprintf(out, bytes, "not planned");
}
