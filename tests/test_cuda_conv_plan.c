/* How the CUDA backend chooses convolution algorithms (src/backend/cuda_conv.c), without a GPU:
 * the module's own planning code runs against a scripted device. This program defines the
 * cuDNN calls that time or run convolutions (cudnnFind*AlgorithmEx, the _v7 heuristics, the
 * workspace queries, cudnnConvolution*), the CUDA memory and event calls, and the sub-pixel
 * kernels' launchers; being the executable, its definitions take the place of the libraries'
 * for libgan_cuda.so too (ELF interposition; the test is linked with --export-dynamic). cuDNN's
 * real descriptor calls stay (they need no device). Checked:
 *   - the fastest acceptable algorithm is taken: deterministic when asked, FMA math in fp32,
 *     tensor-op math allowed in tf32, within the workspace budget;
 *   - the sub-pixel backward-data is taken where it times faster (its inner convolution planned
 *     on its own), GAN_CUDA_SUBPIXEL=always|never override, and at the call its pieces get
 *     pointers inside the planned workspace and the inner convolution's descriptors;
 *   - the im2col backward-filter is taken where it times faster, GAN_CUDA_IM2COL=always|never
 *     override, and at the call its two kernels write inside the planned workspace and its GEMM
 *     gets gan_conv_im2col_filter_gemm's arguments on those pointers, with the caller's beta;
 *   - the choices exported and imported into a fresh backend are reused without any search;
 *   - a sub-pixel form's inner convolution gets its forward alone, and the rest when that
 *     geometry is asked for as a layer; a timed search that fails leaves the choice to the
 *     heuristics; allow-conversion (FP16) math is never taken;
 *   - a geometry first seen at a call, or planned while capturing, is not searched, and a call
 *     plans its own pass alone; a caller naming some passes (an inference-only model) gets those
 *     timed and the others later, when named;
 *   - a whole-input convolution is one GEMM with gan_conv_whole_input_gemm's arguments;
 *   - bf16: each pass's workspace holds the BF16 NHWC copies of x, w and y before cuDNN's own; at
 *     the call the two inputs are rounded into those copies with their [n, c, hw] shapes, cuDNN
 *     runs on the copies with the rest of the workspace, and the output copy is widened into the
 *     caller's buffer with the caller's beta; the conversions' time is added to cuDNN's timed
 *     figures; a geometry first seen at a call (no workspace) is refused, naming the copies;
 *   - tf32: every pass timed in NCHW and in NHWC (the scripted NHWC searches tell the descriptors'
 *     format apart), the NHWC figures with their FP32 copies' time, the faster taken either way
 *     and run so (FP32 copies with the image layer's channels padded to 4, or none), exported and
 *     reused with its layout; GAN_CUDA_NHWC=always|never; a refused NHWC search leaves NCHW;
 *   - tensors stored NHWC between layers (BF16 in bf16, FP32 in tf32): no copy of a stored x or y,
 *     the layer's weight copy read in place of w, a fused activation in place, no form of ours
 *     and no NCHW for such a plan, and its choice kept under a key of its own (stored=true);
 *   - a malformed import changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#ifndef GAN_HAVE_CUDA
int main(void)
{
    printf("skipped: this build has no CUDA backend\n");
    return TEST_SKIP_EXIT_CODE;
}
#else

#include "backend/cuda_internal.h"
#include "gan/conv_choices.h"
#include "gan_kernels.h" /* the launchers this program stands in for: their signatures checked */

/* ---- the scripted device -------------------------------------------------------------------- */

typedef struct scripted {
    int algo;
    float ms;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} scripted;

/* What each pass's timed search finds (fastest first, as cuDNN sorts them). Forward: an
 * allow-conversion one fastest (FP16 math: never acceptable), a tensor-op algorithm (tf32 only),
 * then a non-deterministic FMA one, then deterministic FMA ones. */
static const scripted FORWARD[] = {
    {7, 0.01f, 0, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION}, /* FP16: never taken */
    {2, 0.05f, 0, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH},
    {6, 0.10f, 1000, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH},
    {1, 0.20f, 4096, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH},
    {0, 0.50f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH},
};
static const scripted BACKWARD_DATA[] = {
    {0, 0.30f, 0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH},
    {1, 1.00f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH},
};
static const scripted BACKWARD_FILTER[] = {
    {3, 0.10f, 2048, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH},
    {0, 0.40f, 0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH},
};
/* The heuristics offer the plain ones, with no workspace. */
static const scripted HEURISTIC[] = {{0, 0.0f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH}};

static bool filter_search_fails; /* the backward-filter's timed search refuses */
static bool nhwc_search_fails;   /* every timed search in NHWC refuses */
static float nhwc_scale = 1.0f;  /* cuDNN's NHWC times: its NCHW ones times this */
static int nhwc_find_calls;      /* the timed searches on NHWC descriptors (find_calls counts all) */
static int find_calls, heuristic_calls, weights_calls, gather_calls, forward_calls, gemm_calls;
static float subpixel_ms = 0.4f; /* per run, as the events will say */
static float im2col_ms = 1.0f;   /* slower than ALGO_3's 0.10 unless a test says otherwise */
/* The device's clock, in ms: each scripted kernel advances it by its cost (a sub-pixel run by
 * subpixel_ms, at its weights kernel; an im2col run by im2col_ms; each BF16 conversion by
 * copy_ms), and an event records it. */
static double device_clock_ms;
static float copy_ms = 0.0f;
static int im2col_calls, channels_first_calls;
static size_t live_device_bytes;

/* The workspace an algorithm needs: its scripted figure (the heuristic's 0 for unknown ones). */
static size_t workspace_for(const scripted *list, int n, int algo)
{
    for (int i = 0; i < n; i++)
        if (list[i].algo == algo && list[i].math == CUDNN_FMA_MATH)
            return list[i].memory;
    for (int i = 0; i < n; i++)
        if (list[i].algo == algo)
            return list[i].memory;
    return 0;
}

#define FILL_PERF(list, perf, returned, scale)                                                  \
    do {                                                                                        \
        int n_ = (int)(sizeof list / sizeof list[0]);                                           \
        for (int i_ = 0; i_ < n_; i_++) {                                                       \
            memset(&(perf)[i_], 0, sizeof (perf)[i_]);                                          \
            (perf)[i_].algo = list[i_].algo;                                                    \
            (perf)[i_].status = CUDNN_STATUS_SUCCESS;                                           \
            (perf)[i_].time = list[i_].ms * (scale);                                            \
            (perf)[i_].memory = list[i_].memory;                                                \
            (perf)[i_].determinism = list[i_].determinism;                                      \
            (perf)[i_].mathType = list[i_].math;                                                \
        }                                                                                       \
        *(returned) = n_;                                                                       \
    } while (0)

/* Whether a filter descriptor is NHWC (KRSC): the layout a search or a call runs in. */
static bool is_nhwc(cudnnFilterDescriptor_t wd)
{
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    int k, c, h, w;
    return cudnnGetFilter4dDescriptor(wd, &type, &format, &k, &c, &h, &w) == CUDNN_STATUS_SUCCESS &&
           format == CUDNN_TENSOR_NHWC;
}

/* One timed search begins: counted, and refused where the test says so. */
static bool search_refused(cudnnFilterDescriptor_t wd)
{
    find_calls++;
    if (!is_nhwc(wd))
        return false;
    nhwc_find_calls++;
    return nhwc_search_fails;
}
#define SEARCH_SCALE(wd) (is_nhwc(wd) ? nhwc_scale : 1.0f)

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                     const void *x, const cudnnFilterDescriptor_t wd,
                                                     const void *w, const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t yd, void *y, const int req,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf,
                                                     void *ws, size_t ws_bytes)
{
    if (search_refused(wd))
        return CUDNN_STATUS_NOT_SUPPORTED;
    FILL_PERF(FORWARD, perf, returned, SEARCH_SCALE(wd));
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t h, const cudnnFilterDescriptor_t wd, const void *w, const cudnnTensorDescriptor_t dyd,
    const void *dy, const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t dxd, void *dx,
    const int req, int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf, void *ws, size_t ws_bytes)
{
    if (search_refused(wd))
        return CUDNN_STATUS_NOT_SUPPORTED;
    FILL_PERF(BACKWARD_DATA, perf, returned, SEARCH_SCALE(wd));
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t h, const cudnnTensorDescriptor_t xd, const void *x, const cudnnTensorDescriptor_t dyd,
    const void *dy, const cudnnConvolutionDescriptor_t cd, const cudnnFilterDescriptor_t dwd, void *dw,
    const int req, int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf, void *ws, size_t ws_bytes)
{
    if (search_refused(dwd) || filter_search_fails)
        return CUDNN_STATUS_NOT_SUPPORTED;
    FILL_PERF(BACKWARD_FILTER, perf, returned, SEARCH_SCALE(dwd));
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                     const cudnnFilterDescriptor_t wd,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t yd, const int req,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf)
{
    heuristic_calls++;
    FILL_PERF(HEURISTIC, perf, returned, 1.0f);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, const cudnnFilterDescriptor_t wd,
                                                          const cudnnTensorDescriptor_t dyd,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnTensorDescriptor_t dxd, const int req,
                                                          int *returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf)
{
    heuristic_calls++;
    FILL_PERF(HEURISTIC, perf, returned, 1.0f);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                            const cudnnTensorDescriptor_t dyd,
                                                            const cudnnConvolutionDescriptor_t cd,
                                                            const cudnnFilterDescriptor_t dwd, const int req,
                                                            int *returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf)
{
    heuristic_calls++;
    FILL_PERF(HEURISTIC, perf, returned, 1.0f);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                      const cudnnFilterDescriptor_t wd,
                                                      const cudnnConvolutionDescriptor_t cd,
                                                      const cudnnTensorDescriptor_t yd,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t *bytes)
{
    *bytes = workspace_for(FORWARD, (int)(sizeof FORWARD / sizeof FORWARD[0]), (int)algo);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, const cudnnFilterDescriptor_t wd,
                                                           const cudnnTensorDescriptor_t dyd,
                                                           const cudnnConvolutionDescriptor_t cd,
                                                           const cudnnTensorDescriptor_t dxd,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes)
{
    *bytes = workspace_for(BACKWARD_DATA, 2, (int)algo);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                             const cudnnTensorDescriptor_t dyd,
                                                             const cudnnConvolutionDescriptor_t cd,
                                                             const cudnnFilterDescriptor_t dwd,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)
{
    *bytes = workspace_for(BACKWARD_FILTER, 2, (int)algo);
    return CUDNN_STATUS_SUCCESS;
}

/* The sub-pixel call's pieces: where they write must lie inside the planned workspace. */
static const char *call_workspace;
static size_t call_workspace_bytes;
static bool inside(const void *p, size_t bytes)
{
    const char *c = p;
    return call_workspace && c >= call_workspace && c + bytes <= call_workspace + call_workspace_bytes;
}
static int forward_y_dims[4];
static bool forward_y_inside, forward_ws_inside;

/* The last cuDNN convolution call: its x, w, y (y the output of a forward, x of a backward-data,
 * w of a backward-filter), its workspace, its beta and its layout. */
static struct {
    const void *x, *w, *y;
    void *ws;
    size_t ws_bytes;
    float beta;
    bool nhwc;
} last_cudnn;

/* Every cuDNN convolution call since the log was last cleared, in order, as last_cudnn has it. */
typedef struct cudnn_call_record {
    gan_conv_pass pass;
    const void *x, *w, *y;
    void *ws;
    size_t ws_bytes;
    float beta;
    bool nhwc;
} cudnn_call_record;
static cudnn_call_record cudnn_log[8];
static int cudnn_log_count;
static void log_cudnn(gan_conv_pass pass)
{
    if (cudnn_log_count < 8)
        cudnn_log[cudnn_log_count] = (cudnn_call_record){pass,         last_cudnn.x,        last_cudnn.w,
                                                         last_cudnn.y, last_cudnn.ws,       last_cudnn.ws_bytes,
                                                         last_cudnn.beta, last_cudnn.nhwc};
    cudnn_log_count++;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                      void *ws, size_t ws_bytes, const void *beta,
                                      const cudnnTensorDescriptor_t yd, void *y)
{
    forward_calls++;
    last_cudnn.nhwc = is_nhwc(wd);
    last_cudnn.x = x, last_cudnn.w = w, last_cudnn.y = y;
    last_cudnn.ws = ws, last_cudnn.ws_bytes = ws_bytes, last_cudnn.beta = *(const float *)beta;
    cudnnDataType_t type;
    int sn, sc, sh, sw;
    cudnnGetTensor4dDescriptor(yd, &type, &forward_y_dims[0], &forward_y_dims[1], &forward_y_dims[2],
                               &forward_y_dims[3], &sn, &sc, &sh, &sw);
    size_t y_bytes = (size_t)forward_y_dims[0] * forward_y_dims[1] * forward_y_dims[2] *
                     forward_y_dims[3] * sizeof(float);
    forward_y_inside = inside(y, y_bytes);
    forward_ws_inside = ws_bytes == 0 || inside(ws, ws_bytes);
    log_cudnn(GAN_CONV_FORWARD);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cd,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes,
                                           const void *beta, const cudnnTensorDescriptor_t dxd, void *dx)
{
    last_cudnn.nhwc = is_nhwc(wd);
    last_cudnn.x = dx, last_cudnn.w = w, last_cudnn.y = dy;
    last_cudnn.ws = ws, last_cudnn.ws_bytes = ws_bytes, last_cudnn.beta = *(const float *)beta;
    log_cudnn(GAN_CONV_BACKWARD_DATA);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwd, void *dw)
{
    last_cudnn.nhwc = is_nhwc(dwd);
    last_cudnn.x = x, last_cudnn.w = dw, last_cudnn.y = dy;
    last_cudnn.ws = ws, last_cudnn.ws_bytes = ws_bytes, last_cudnn.beta = *(const float *)beta;
    log_cudnn(GAN_CONV_BACKWARD_FILTER);
    return CUDNN_STATUS_SUCCESS;
}

static bool weights_inside, gather_read_inside;

gan_status gan_cuda_subpixel_weights(cudaStream_t s, int co, int ci, const float *w, float *w2)
{
    weights_calls++;
    device_clock_ms += subpixel_ms;
    weights_inside = inside(w2, (size_t)16 * co * ci * sizeof(float));
    return GAN_OK;
}

static int gather_act = -2; /* the last gather's activation */

gan_status gan_cuda_subpixel_gather(cudaStream_t s, int n, int ci, int h_out, int w_out, const float *y2, int act,
                                    float slope, float *dx)
{
    gather_calls++;
    gather_act = act;
    gather_read_inside = inside(y2, (size_t)n * 4 * ci * (h_out + 1) * (w_out + 1) * sizeof(float));
    return GAN_OK;
}

static bool im2col_inside, channels_first_inside;
static const void *im2col_col, *channels_first_y;

gan_status gan_cuda_im2col(cudaStream_t s, const gan_conv_geom *g, const float *x, float *col)
{
    im2col_calls++;
    device_clock_ms += im2col_ms;
    im2col_col = col;
    im2col_inside = inside(col, (size_t)g->c_in * g->k_h * g->k_w * g->n * g->h_out * g->w_out * sizeof(float));
    return GAN_OK;
}

gan_status gan_cuda_channels_first(cudaStream_t s, int n, int c, int hw, const float *x, float *y)
{
    channels_first_calls++;
    channels_first_y = y;
    channels_first_inside = inside(y, (size_t)n * c * hw * sizeof(float));
    return GAN_OK;
}

/* The NHWC copies' kernels: every call recorded, in order. */
typedef enum copy_kind {
    TO_BF16,   /* f32_to_bf16_nhwc (bf16) */
    FROM_BF16, /* bf16_nhwc_to_f32 */
    TO_F32,    /* f32_to_f32_nhwc (tf32) */
    FROM_F32   /* f32_nhwc_to_f32 */
} copy_kind;
static const char *const copy_kind_names[] = {"to_bf16", "from_bf16", "to_f32", "from_f32"};
typedef struct conversion {
    copy_kind kind;
    int n, c, c_nhwc, hw;
    const void *src;
    void *dst;
    float beta;
    int act; /* the way back's activation (GAN_FUSED_NONE: none) */
    float slope;
} conversion;
static conversion conversions[8];
static int conversion_count;

gan_status gan_cuda_f32_to_bf16_nhwc(cudaStream_t s, int n, int c, int c_nhwc, int hw, const float *src,
                                     uint16_t *dst)
{
    if (conversion_count < 8)
        conversions[conversion_count] = (conversion){TO_BF16, n, c, c_nhwc, hw, src, dst, 0.0f, GAN_FUSED_NONE, 0.0f};
    conversion_count++;
    device_clock_ms += copy_ms;
    return GAN_OK;
}

gan_status gan_cuda_f32_to_f32_nhwc(cudaStream_t s, int n, int c, int c_nhwc, int hw, const float *src, float *dst)
{
    if (conversion_count < 8)
        conversions[conversion_count] = (conversion){TO_F32, n, c, c_nhwc, hw, src, dst, 0.0f, GAN_FUSED_NONE, 0.0f};
    conversion_count++;
    device_clock_ms += copy_ms;
    return GAN_OK;
}

/* The paired narrowings: each tensor recorded as the single launcher records it, and the launch
 * counted. */
static int pair_launches;
static gan_status record_pair(copy_kind kind, const gan_nhwc_copy *first, const gan_nhwc_copy *second)
{
    const gan_nhwc_copy *parts[2] = {first, second};
    for (int i = 0; i < 2; i++) {
        const gan_nhwc_copy *p = parts[i];
        if (conversion_count < 8)
            conversions[conversion_count] =
                (conversion){kind, p->n, p->c, p->c_nhwc, p->hw, p->src, p->dst, 0.0f, GAN_FUSED_NONE, 0.0f};
        conversion_count++;
        device_clock_ms += copy_ms;
    }
    pair_launches++;
    return GAN_OK;
}

gan_status gan_cuda_f32_to_bf16_nhwc_pair(cudaStream_t s, const gan_nhwc_copy *first, const gan_nhwc_copy *second)
{
    return record_pair(TO_BF16, first, second);
}

gan_status gan_cuda_f32_to_f32_nhwc_pair(cudaStream_t s, const gan_nhwc_copy *first, const gan_nhwc_copy *second)
{
    return record_pair(TO_F32, first, second);
}

/* A model's weight copies (BF16 in bf16, FP32 in tf32): each recorded as a narrowing, the
 * launch counted. */
static int list_launches;
static gan_status record_list(copy_kind kind, int count, const gan_nhwc_copy *copies)
{
    for (int i = 0; i < count; i++) {
        const gan_nhwc_copy *p = &copies[i];
        if (conversion_count < 8)
            conversions[conversion_count] =
                (conversion){kind, p->n, p->c, p->c_nhwc, p->hw, p->src, p->dst, 0.0f, GAN_FUSED_NONE, 0.0f};
        conversion_count++;
    }
    list_launches++;
    return GAN_OK;
}

gan_status gan_cuda_f32_to_bf16_nhwc_list(cudaStream_t s, int count, const gan_nhwc_copy *copies)
{
    return record_list(TO_BF16, count, copies);
}

gan_status gan_cuda_f32_to_f32_nhwc_list(cudaStream_t s, int count, const gan_nhwc_copy *copies)
{
    return record_list(TO_F32, count, copies);
}

gan_status gan_cuda_f32_nhwc_to_f32(cudaStream_t s, int n, int c, int c_nhwc, int hw, const float *src, float beta,
                                    int act, float slope, float *dst)
{
    if (conversion_count < 8)
        conversions[conversion_count] = (conversion){FROM_F32, n, c, c_nhwc, hw, src, dst, beta, act, slope};
    conversion_count++;
    device_clock_ms += copy_ms;
    return GAN_OK;
}

gan_status gan_cuda_bf16_nhwc_to_f32(cudaStream_t s, int n, int c, int c_nhwc, int hw, const uint16_t *src,
                                     float beta, int act, float slope, float *dst)
{
    if (conversion_count < 8)
        conversions[conversion_count] = (conversion){FROM_BF16, n, c, c_nhwc, hw, src, dst, beta, act, slope};
    conversion_count++;
    device_clock_ms += copy_ms;
    return GAN_OK;
}

/* The activation launches (where no kernel of ours ends a pass): the last one recorded. */
static struct {
    int calls;
    gan_activation kind;
    float slope;
    size_t count;
    const float *x;
    float *y;
} act_launch;

gan_status gan_cuda_activation_forward(cudaStream_t s, gan_activation kind, float slope, size_t count, const float *x,
                                       float *y)
{
    act_launch.calls++;
    act_launch.kind = kind, act_launch.slope = slope, act_launch.count = count, act_launch.x = x, act_launch.y = y;
    return GAN_OK;
}

/* The activation on a stored (BF16) output, in place: the last one recorded. */
static struct {
    int calls;
    gan_activation kind;
    size_t count;
    const void *x;
    void *y;
} bf16_act_launch;

gan_status gan_cuda_activation_forward_bf16(cudaStream_t s, gan_activation kind, float slope, size_t count,
                                            const uint16_t *x, uint16_t *y)
{
    bf16_act_launch.calls++;
    bf16_act_launch.kind = kind, bf16_act_launch.count = count, bf16_act_launch.x = x, bf16_act_launch.y = y;
    return GAN_OK;
}

/* Device memory: host memory here, counted so that the search is seen to free its buffers. */
cudaError_t cudaMalloc(void **p, size_t bytes)
{
    size_t *block = malloc(bytes + sizeof(size_t));
    if (!block)
        return cudaErrorMemoryAllocation;
    block[0] = bytes;
    live_device_bytes += bytes;
    *p = block + 1;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (p) {
        size_t *block = (size_t *)p - 1;
        live_device_bytes -= block[0];
        free(block);
    }
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s)
{
    memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = (cudaEvent_t)calloc(1, sizeof(double)); /* the clock when recorded */
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    free(e);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    *(double *)(void *)e = device_clock_ms;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)(*(double *)(void *)b - *(double *)(void *)a);
    return cudaSuccess;
}

/* ---- a backend around the module's convolution functions ------------------------------------ */

static gan_conv_gemm last_gemm;
static const float *last_gemm_a, *last_gemm_b;
static float last_gemm_beta;

static bool same_gemm(const gan_conv_gemm *a, const gan_conv_gemm *b)
{
    return a->trans_a == b->trans_a && a->trans_b == b->trans_b && a->m == b->m && a->n == b->n &&
           a->k == b->k && a->lda == b->lda && a->ldb == b->ldb && a->ldc == b->ldc;
}
static gan_status fake_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm_calls++;
    last_gemm = (gan_conv_gemm){trans_a, trans_b, m, n, k, lda, ldb, ldc};
    last_gemm_a = a;
    last_gemm_b = b;
    last_gemm_beta = beta;
    return GAN_OK;
}

typedef struct fake_backend {
    gan_backend be;
    gan_cuda_impl impl;
} fake_backend;

static void open_fake(fake_backend *f, gan_precision precision, bool deterministic, size_t budget)
{
    memset(f, 0, sizeof *f);
    f->impl.precision = precision;
    f->impl.deterministic = deterministic;
    f->impl.workspace_budget_bytes = budget;
    f->impl.compute_capability_major = 9;
    f->impl.compute_capability_minor = 0;
    f->impl.cudnn_version = 91000;
    snprintf(f->impl.gpu_name, sizeof f->impl.gpu_name, "Scripted GPU");
    f->be.impl = &f->impl;
    f->be.gemm = fake_gemm;
    f->impl.backend = &f->be;
}

static void close_fake(fake_backend *f) { gan_cuda_conv_plans_clear(&f->impl); }

static void describe(fake_backend *f, const gan_conv_geom *g, gan_conv_pass pass, char *out, size_t bytes)
{
    gan_cuda_conv_describe(&f->be, g, pass, out, bytes);
}

static bool says(fake_backend *f, const gan_conv_geom *g, gan_conv_pass pass, const char *words)
{
    char text[256];
    describe(f, g, pass, text, sizeof text);
    bool yes = strstr(text, words) != NULL;
    if (!yes)
        fprintf(stderr, "  %s: \"%s\" lacks \"%s\"\n", gan_conv_pass_name(pass), text, words);
    return yes;
}

/* D's 16x16 -> 8x8 layer at batch 4 (kernel 4, stride 2, pad 1: the sub-pixel form applies). */
static const gan_conv_geom K4S2 = {.n = 4, .c_in = 8, .h_in = 16, .w_in = 16, .c_out = 16, .h_out = 8,
                                   .w_out = 8, .k_h = 4, .k_w = 4, .stride_h = 2, .stride_w = 2,
                                   .pad_h = 1, .pad_w = 1};
static const gan_conv_geom WHOLE = {.n = 4, .c_in = 16, .h_in = 4, .w_in = 4, .c_out = 1, .h_out = 1,
                                    .w_out = 1, .k_h = 4, .k_w = 4, .stride_h = 1, .stride_w = 1};

/* A stride-1 layer (neither form of ours is taken: the im2col form times slower than ALGO_3). */
static const gan_conv_geom K3S1 = {.n = 4, .c_in = 8, .h_in = 8, .w_in = 8, .c_out = 16, .h_out = 8,
                                   .w_out = 8, .k_h = 3, .k_w = 3, .stride_h = 1, .stride_w = 1,
                                   .pad_h = 1, .pad_w = 1};

static const size_t BUDGET = 64u << 20;

static void test_deterministic_fp32(char **exported)
{
    fake_backend f;
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    find_calls = heuristic_calls = 0;
    subpixel_ms = 0.4f; /* faster than the deterministic ALGO_1's 1.0 ms */
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(find_calls >= 3 && heuristic_calls == 0);
    CHECK(live_device_bytes == 0); /* the search's buffers are freed */
    /* forward: not the tensor-op one (fp32), not the non-deterministic one */
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "IMPLICIT_PRECOMP_GEMM fma"));
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "measured 0.2000 ms"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel (inner IMPLICIT_PRECOMP_GEMM)"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "measured 0.4000 ms"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_FILTER, "ALGO_3 fma"));
    /* The workspace: the largest pass, here the sub-pixel scratch (w2, y2) plus its inner
     * forward's 4096 bytes. */
    size_t scratch = (gan_conv_subpixel_scratch_floats(&K4S2) * sizeof(float) + 255) / 256 * 256;
    CHECK_MSG(bytes == scratch + 4096, "workspace %zu, want %zu", bytes, scratch + 4096);

    /* The call: weights kernel, the inner forward into y2, gather; all inside the workspace. */
    char *ws = malloc(bytes);
    call_workspace = ws;
    call_workspace_bytes = bytes;
    weights_calls = gather_calls = forward_calls = 0;
    CHECK_OK(gan_cuda_conv_backward_data(&f.be, &K4S2, (const float *)0x1000, (const float *)0x2000,
                                         (float *)0x3000, ws));
    CHECK(weights_calls == 1 && forward_calls == 1 && gather_calls == 1);
    CHECK(weights_inside && gather_read_inside && forward_y_inside && forward_ws_inside);
    CHECK_MSG(forward_y_dims[0] == 4 && forward_y_dims[1] == 4 * 8 && forward_y_dims[2] == 9 &&
                  forward_y_dims[3] == 9,
              "inner y [%d, %d, %d, %d]", forward_y_dims[0], forward_y_dims[1], forward_y_dims[2],
              forward_y_dims[3]);
    /* Without a workspace the call refuses. */
    CHECK_FAILS_WITH(gan_cuda_conv_backward_data(&f.be, &K4S2, NULL, NULL, NULL, NULL), GAN_ERR_ARG,
                     "workspace");
    call_workspace = NULL;
    free(ws);

    /* The inner convolution has its forward alone; asked for as a layer, it gets the rest. */
    gan_conv_geom inner;
    CHECK_OK(gan_conv_subpixel_inner(&K4S2, &inner));
    CHECK(says(&f, &inner, GAN_CONV_FORWARD, "IMPLICIT_PRECOMP_GEMM fma"));
    CHECK(says(&f, &inner, GAN_CONV_BACKWARD_DATA, "not planned"));
    CHECK(says(&f, &inner, GAN_CONV_BACKWARD_FILTER, "not planned"));

    CHECK_OK(gan_cuda_conv_choices_export(&f.be, exported));
    CHECK(*exported && strstr(*exported, "algo=subpixel") && strstr(*exported, "gpu=\"Scripted GPU\""));
    gan_conv_choices list = {0};
    CHECK_OK(gan_conv_choices_parse(*exported, "export", &list));
    CHECK_MSG(list.count == 4, "%d choices exported: the geometry's 3 and its inner convolution's forward",
              list.count);
    gan_conv_choices_free(&list);
    close_fake(&f);
}

static void test_stored(const char *exported)
{
    fake_backend f;
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    CHECK_OK(gan_cuda_conv_choices_import(&f.be, exported, "test"));
    find_calls = heuristic_calls = 0;
    subpixel_ms = 9.0f; /* would lose a new timing: the stored choice must not be timed again */
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 0 && heuristic_calls == 0, "%d searches, %d heuristic queries", find_calls,
              heuristic_calls);
    CHECK(live_device_bytes == 0);
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "IMPLICIT_PRECOMP_GEMM fma"));
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "stored"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "stored"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_FILTER, "ALGO_3"));
    close_fake(&f);

    /* Another precision is another key: searched again. */
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    CHECK_OK(gan_cuda_conv_choices_import(&f.be, exported, "test"));
    find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(find_calls >= 3);
    /* tf32: the tensor-op forward is acceptable and fastest */
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "GEMM tensor-op"));
    close_fake(&f);

    /* A malformed text is refused and changes nothing. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    char *bad = malloc(strlen(exported) + 32);
    sprintf(bad, "%sgpu=\"x\" cc=broken\n", exported);
    CHECK_FAILS_WITH(gan_cuda_conv_choices_import(&f.be, bad, "bad.txt"), GAN_ERR_FORMAT, "bad.txt");
    CHECK(f.impl.choices.count == 0);
    free(bad);
    close_fake(&f);
}

static void test_other_modes(void)
{
    fake_backend f;
    /* Not deterministic: the fastest of all (forward WINOGRAD, backward-data ALGO_0 at
     * 0.3 ms beats the sub-pixel form's 0.4). */
    open_fake(&f, GAN_PRECISION_FP32, false, BUDGET);
    subpixel_ms = 0.4f;
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "WINOGRAD fma"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "ALGO_0 fma"));
    close_fake(&f);

    /* GAN_CUDA_SUBPIXEL overrides the timing both ways. */
    setenv("GAN_CUDA_SUBPIXEL", "always", 1);
    open_fake(&f, GAN_PRECISION_FP32, false, BUDGET);
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel"));
    close_fake(&f);
    setenv("GAN_CUDA_SUBPIXEL", "never", 1);
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "ALGO_1 fma"));
    close_fake(&f);
    unsetenv("GAN_CUDA_SUBPIXEL");

    /* A budget of 2 KiB: the 4 KiB forward and the sub-pixel scratch do not fit. */
    open_fake(&f, GAN_PRECISION_FP32, true, 2048);
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "IMPLICIT_GEMM fma"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "ALGO_1"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_FILTER, "ALGO_3"));
    CHECK_MSG(bytes == 2048, "workspace %zu", bytes);
    close_fake(&f);

    /* The inner convolution of a sub-pixel form asked for later as a layer of its own: its
     * other passes are chosen then, its forward kept. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    subpixel_ms = 0.4f;
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    gan_conv_geom inner;
    CHECK_OK(gan_conv_subpixel_inner(&K4S2, &inner));
    find_calls = 0;
    int plans = f.impl.conv_plan_count;
    gan_cuda_conv_workspace_bytes(&f.be, &inner, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 2 && f.impl.conv_plan_count == plans, "%d searches, %d plans (was %d)", find_calls,
              f.impl.conv_plan_count, plans);
    CHECK(says(&f, &inner, GAN_CONV_BACKWARD_DATA, "ALGO_1 fma"));
    CHECK(says(&f, &inner, GAN_CONV_BACKWARD_FILTER, "ALGO_3 fma"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel"));
    close_fake(&f);

    /* A timed search that fails is a search that found nothing: the heuristics choose. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    filter_search_fails = true;
    im2col_ms = 1.0f;
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL) > 0);
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "measured"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_FILTER, "im2col+gemm"));
    close_fake(&f);
    setenv("GAN_CUDA_IM2COL", "never", 1);
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL) > 0);
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_FILTER, "ALGO_0 fma ws 0 KiB, heuristic"));
    close_fake(&f);
    unsetenv("GAN_CUDA_IM2COL");
    filter_search_fails = false;

    /* First seen at a call: no search, the heuristics within no workspace, for the called pass
     * alone. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    find_calls = heuristic_calls = 0;
    CHECK_OK(gan_cuda_conv_forward(&f.be, &K4S2, (const float *)0x1000, (const float *)0x2000,
                                   (float *)0x3000, NULL));
    CHECK_MSG(find_calls == 0 && heuristic_calls == 1, "%d searches, %d heuristic queries", find_calls,
              heuristic_calls);
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "heuristic"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "not planned"));
    close_fake(&f);

    /* An inference-only caller names its pass: that one is timed, the others wait. A trained
     * model asking for the same geometry later gets the rest, and the forward stays as chosen. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    find_calls = heuristic_calls = 0;
    size_t forward_bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASS_BIT(GAN_CONV_FORWARD));
    CHECK_MSG(find_calls == 1 && heuristic_calls == 0, "%d searches, %d heuristic queries", find_calls,
              heuristic_calls);
    CHECK(forward_bytes == 4096); /* IMPLICIT_PRECOMP_GEMM's */
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "IMPLICIT_PRECOMP_GEMM fma"));
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_DATA, "not planned"));
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_FILTER, "not planned"));
    /* the backward-data alone needs none (ALGO_1): the mask's passes decide the figure */
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASS_BIT(GAN_CONV_BACKWARD_DATA)) == 0);
    CHECK(find_calls == 2);
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL) == 4096);
    CHECK(find_calls == 3); /* the backward-filter; the others kept */
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_FILTER, "ALGO_3"));
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &K3S1, 0) == 0);
    close_fake(&f);

    /* Planned while a graph is captured: nothing allocated, no search. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    f.impl.capturing = true;
    find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(find_calls == 0 && live_device_bytes == 0);
    close_fake(&f);

    /* A whole-input convolution is one GEMM per pass, no cuDNN, no workspace. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    find_calls = heuristic_calls = gemm_calls = 0;
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &WHOLE, GAN_CONV_PASSES_ALL) == 0);
    CHECK_OK(gan_cuda_conv_forward(&f.be, &WHOLE, (const float *)0x1000, (const float *)0x2000,
                                   (float *)0x3000, NULL));
    gan_conv_gemm want;
    CHECK_OK(gan_conv_whole_input_gemm(&WHOLE, GAN_CONV_FORWARD, &want));
    CHECK(gemm_calls == 1 && same_gemm(&last_gemm, &want));
    CHECK_OK(gan_cuda_conv_backward_filter(&f.be, &WHOLE, (const float *)0x1000, (const float *)0x2000,
                                           1.0f, (float *)0x3000, NULL));
    CHECK_OK(gan_conv_whole_input_gemm(&WHOLE, GAN_CONV_BACKWARD_FILTER, &want));
    CHECK(gemm_calls == 2 && same_gemm(&last_gemm, &want));
    CHECK(find_calls == 0 && heuristic_calls == 0);
    CHECK(says(&f, &WHOLE, GAN_CONV_FORWARD, "cublas gemm fp32 (whole-input kernel)"));
    close_fake(&f);
}

/* The image's first layer, 3 channels (the im2col backward-filter's case). */
static const gan_conv_geom RGB = {.n = 4, .c_in = 3, .h_in = 16, .w_in = 16, .c_out = 8, .h_out = 8,
                                  .w_out = 8, .k_h = 4, .k_w = 4, .stride_h = 2, .stride_w = 2,
                                  .pad_h = 1, .pad_w = 1};

static void test_im2col(void)
{
    fake_backend f;
    /* Faster than ALGO_3's 0.10 ms: taken, deterministic or not, with FMA math in fp32. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    im2col_ms = 0.05f;
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(live_device_bytes == 0);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "im2col+gemm fma"));
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "measured 0.0500 ms"));
    size_t scratch = (gan_conv_im2col_filter_scratch_floats(&RGB) * sizeof(float) + 255) / 256 * 256;
    CHECK_MSG(bytes >= scratch, "workspace %zu < the im2col scratch %zu", bytes, scratch);

    /* The call: both kernels write inside the workspace, then one GEMM on their outputs with
     * gan_conv_im2col_filter_gemm's arguments and the caller's beta into dw. */
    char *ws = malloc(bytes);
    call_workspace = ws;
    call_workspace_bytes = bytes;
    im2col_calls = channels_first_calls = gemm_calls = 0;
    float *dw = (float *)0x3000;
    CHECK_OK(gan_cuda_conv_backward_filter(&f.be, &RGB, (const float *)0x1000, (const float *)0x2000, 1.0f, dw,
                                           ws));
    CHECK(im2col_calls == 1 && channels_first_calls == 1 && gemm_calls == 1);
    CHECK(im2col_inside && channels_first_inside);
    gan_conv_gemm want;
    CHECK_OK(gan_conv_im2col_filter_gemm(&RGB, &want));
    CHECK(same_gemm(&last_gemm, &want));
    CHECK_MSG(last_gemm_a == (const float *)channels_first_y && last_gemm_b == (const float *)im2col_col,
              "the GEMM does not read the kernels' outputs");
    CHECK((char *)channels_first_y - (char *)im2col_col ==
          (ptrdiff_t)(gan_conv_im2col_filter_dyt_offset_floats(&RGB) * sizeof(float)));
    CHECK(last_gemm_beta == 1.0f);
    CHECK_FAILS_WITH(gan_cuda_conv_backward_filter(&f.be, &RGB, NULL, NULL, 0.0f, NULL, NULL), GAN_ERR_ARG,
                     "workspace");
    call_workspace = NULL;
    free(ws);

    /* Exported as algo=im2col, reused with no timing (it would lose one now). */
    char *exported = NULL;
    CHECK_OK(gan_cuda_conv_choices_export(&f.be, &exported));
    CHECK(exported && strstr(exported, "pass=backward-filter algo=im2col math=fma"));
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    CHECK_OK(gan_cuda_conv_choices_import(&f.be, exported, "test"));
    im2col_ms = 9.0f;
    find_calls = heuristic_calls = im2col_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 0 && heuristic_calls == 0 && im2col_calls == 0, "%d searches, %d im2col runs",
              find_calls, im2col_calls);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "im2col+gemm fma"));
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "stored"));
    close_fake(&f);
    free(exported);

    /* Slower: cuDNN's ALGO_3 stays. tf32: tensor-op math. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    im2col_ms = 0.2f;
    gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "ALGO_3 fma"));
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_TF32, false, BUDGET);
    im2col_ms = 0.05f;
    gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "im2col+gemm tensor-op"));
    close_fake(&f);

    /* GAN_CUDA_IM2COL overrides the timing both ways. */
    setenv("GAN_CUDA_IM2COL", "never", 1);
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    im2col_ms = 0.05f;
    im2col_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "ALGO_3") && im2col_calls == 0);
    close_fake(&f);
    setenv("GAN_CUDA_IM2COL", "always", 1);
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    im2col_ms = 5.0f;
    gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "im2col+gemm"));
    close_fake(&f);
    unsetenv("GAN_CUDA_IM2COL");

    /* A budget below its scratch: not considered. */
    open_fake(&f, GAN_PRECISION_FP32, true, scratch - 256);
    im2col_ms = 0.05f;
    gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "ALGO_3"));
    close_fake(&f);
    im2col_ms = 1.0f;
}


/* A tensor as the copies see it: [n, c, hw] FP32 NCHW, [n, hw, c_nhwc] NHWC. */
typedef struct nchw {
    int n, c, c_nhwc, hw;
} nchw;

/* Whether conversion i is a `kind` of shape s from `src` to `dst` (beta for the way back). */
static bool conversion_is(int i, copy_kind kind, nchw s, const void *src, const void *dst, float beta)
{
    const conversion *c = &conversions[i];
    bool yes = i < conversion_count && c->kind == kind && c->n == s.n && c->c == s.c &&
               c->c_nhwc == s.c_nhwc && c->hw == s.hw && c->src == src && c->dst == dst && c->beta == beta &&
               c->act == GAN_FUSED_NONE;
    if (!yes)
        fprintf(stderr,
                "  conversion %d of %d: %s [%d, %d/%d, %d] from %p to %p beta %g; want %s [%d, %d/%d, %d] from %p "
                "to %p beta %g\n",
                i, conversion_count, copy_kind_names[c->kind], c->n, c->c, c->c_nhwc, c->hw, c->src, c->dst,
                (double)c->beta, copy_kind_names[kind], s.n, s.c, s.c_nhwc, s.hw, src, dst, (double)beta);
    return yes;
}

/* The 3-channel image layer RGB in NHWC, in `precision`: its input channels padded to `group`
 * in the copies of x and w (zeros, written on the way in; not copied back), the workspace sized
 * for the padded copies (`to` and `from` the copy kernels, BF16 or FP32). */
static void check_padded_image_layer(gan_precision precision, int group, copy_kind to, copy_kind from)
{
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000, *dw = (float *)0x4000;
    const size_t e = precision == GAN_PRECISION_BF16 ? 2 : 4;
    const size_t rgb_x = (4 * 256 * group * e + 255) / 256 * 256, rgb_w = (8 * 16 * group * e + 255) / 256 * 256,
                 rgb_y = (4 * 64 * 8 * e + 255) / 256 * 256;
    fake_backend f;
    open_fake(&f, precision, true, BUDGET);
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &RGB, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &RGB, GAN_CONV_FORWARD, "nhwc"));
    CHECK_MSG(bytes >= rgb_x + rgb_w + rgb_y, "workspace %zu < the padded copies' %zu", bytes, rgb_x + rgb_w + rgb_y);
    char *ws = malloc(bytes);
    conversion_count = 0;
    CHECK_OK(gan_cuda_conv_forward(&f.be, &RGB, x, w, y, ws));
    CHECK(conversion_count == 3);
    CHECK(conversion_is(0, to, (nchw){4, 3, group, 256}, x, ws, 0.0f));
    CHECK(conversion_is(1, to, (nchw){8, 3, group, 16}, w, ws + rgb_x, 0.0f));
    CHECK(conversion_is(2, from, (nchw){4, 8, 8, 64}, ws + rgb_x + rgb_w, y, 0.0f));
    CHECK(last_cudnn.nhwc && last_cudnn.ws == ws + rgb_x + rgb_w + rgb_y);
    conversion_count = 0;
    CHECK_OK(gan_cuda_conv_backward_filter(&f.be, &RGB, x, y, 1.0f, dw, ws));
    CHECK(says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "ALGO_3") && says(&f, &RGB, GAN_CONV_BACKWARD_FILTER, "nhwc"));
    CHECK(conversion_is(2, from, (nchw){8, 3, group, 16}, ws + rgb_x, dw, 1.0f));
    free(ws);
    close_fake(&f);
}

/* K3S1's three passes, planned in NHWC into `bytes` of workspace (forward: the GEMM algorithm,
 * 0 bytes of its own; backward-filter: ALGO_3, 2048), with copies of `element` bytes made by
 * `to` and `from`: the workspace is [x | w | y | cuDNN's], each copy rounded up to 256 bytes; each
 * call copies its two inputs in, runs cuDNN on the copies (NHWC descriptors) with the rest of the
 * workspace, and copies its output back, a backward-filter's with the caller's beta (cuDNN's 0). */
static void check_nhwc_calls(fake_backend *f, size_t bytes, size_t element, copy_kind to, copy_kind from)
{
    /* as [n, c, hw]: x [4, 8, 8x8], w [16, 8, 3x3], y [4, 16, 8x8] */
    const nchw sx = {4, 8, 8, 64}, sw = {16, 8, 8, 9}, sy = {4, 16, 16, 64};
    const size_t ax = (4 * 8 * 64 * element + 255) / 256 * 256, aw = (16 * 8 * 9 * element + 255) / 256 * 256,
                 ay = (4 * 16 * 64 * element + 255) / 256 * 256;
    const size_t copies = ax + aw + ay;
    CHECK_MSG(bytes == copies + 2048, "workspace %zu, want the copies' %zu + ALGO_3's 2048", bytes, copies);
    char *ws = malloc(bytes);
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000, *dw = (float *)0x4000;
    /* forward: x and w in (one launch), y out with beta 0 */
    conversion_count = pair_launches = 0;
    CHECK_OK(gan_cuda_conv_forward(&f->be, &K3S1, x, w, y, ws));
    CHECK(conversion_count == 3 && pair_launches == 1);
    CHECK(conversion_is(0, to, sx, x, ws, 0.0f));
    CHECK(conversion_is(1, to, sw, w, ws + ax, 0.0f));
    CHECK(conversion_is(2, from, sy, ws + ax + aw, y, 0.0f));
    CHECK(last_cudnn.x == ws && last_cudnn.w == ws + ax && last_cudnn.y == ws + ax + aw);
    CHECK(last_cudnn.ws == ws + copies && last_cudnn.ws_bytes == 0 && last_cudnn.beta == 0.0f && last_cudnn.nhwc);

    /* backward-data: w and dy in (one launch), dx out */
    conversion_count = pair_launches = 0;
    CHECK_OK(gan_cuda_conv_backward_data(&f->be, &K3S1, y, w, (float *)x, ws));
    CHECK(conversion_count == 3 && pair_launches == 1);
    CHECK(conversion_is(0, to, sw, w, ws + ax, 0.0f));
    CHECK(conversion_is(1, to, sy, y, ws + ax + aw, 0.0f));
    CHECK(conversion_is(2, from, sx, ws, x, 0.0f));
    CHECK(last_cudnn.x == ws && last_cudnn.w == ws + ax && last_cudnn.y == ws + ax + aw && last_cudnn.nhwc);

    /* backward-filter, accumulating (beta 1): cuDNN overwrites the dw copy (beta 0), the way back
     * adds it to the caller's dw */
    conversion_count = pair_launches = 0;
    CHECK_OK(gan_cuda_conv_backward_filter(&f->be, &K3S1, x, y, 1.0f, dw, ws));
    CHECK(conversion_count == 3 && pair_launches == 1);
    CHECK(conversion_is(0, to, sx, x, ws, 0.0f));
    CHECK(conversion_is(1, to, sy, y, ws + ax + aw, 0.0f));
    CHECK(conversion_is(2, from, sw, ws + ax, dw, 1.0f));
    CHECK(last_cudnn.w == ws + ax && last_cudnn.beta == 0.0f && last_cudnn.nhwc);
    CHECK(last_cudnn.ws == ws + copies && last_cudnn.ws_bytes == 2048);

    /* both backward passes of a Conv2d (dy in common, copied once): w and dy in (one launch),
     * backward-data into the x slot, dx out; then x in over it, backward-filter into the w slot,
     * dw out with the caller's beta */
    float *dx = (float *)0x5000;
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f->be, &K3S1, x, y, 1.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, NULL, ws));
    CHECK_MSG(conversion_count == 5 && pair_launches == 1, "%d conversions, %d paired launches", conversion_count,
              pair_launches);
    CHECK(conversion_is(0, to, sw, w, ws + ax, 0.0f));
    CHECK(conversion_is(1, to, sy, y, ws + ax + aw, 0.0f));
    CHECK(conversion_is(2, from, sx, ws, dx, 0.0f));
    CHECK(conversion_is(3, to, sx, x, ws, 0.0f));
    CHECK(conversion_is(4, from, sw, ws + ax, dw, 1.0f));
    CHECK_MSG(cudnn_log_count == 2, "%d cuDNN calls", cudnn_log_count);
    const cudnn_call_record *r = cudnn_log;
    CHECK(r[0].pass == GAN_CONV_BACKWARD_DATA && r[0].x == ws && r[0].w == ws + ax && r[0].y == ws + ax + aw &&
          r[0].ws == ws + copies && r[0].ws_bytes == 0 && r[0].beta == 0.0f && r[0].nhwc);
    CHECK(r[1].pass == GAN_CONV_BACKWARD_FILTER && r[1].x == ws && r[1].w == ws + ax && r[1].y == ws + ax + aw &&
          r[1].ws == ws + copies && r[1].ws_bytes == 2048 && r[1].beta == 0.0f && r[1].nhwc);

    /* a ConvTranspose2d's (its convolution's x in common): x and dy in, backward-filter, dw out
     * (beta 0: overwritten); then w in over it, forward into the y slot, out */
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f->be, &K3S1, x, y, 0.0f, dw, GAN_CONV_FORWARD, w, dx, NULL, ws));
    CHECK_MSG(conversion_count == 5 && pair_launches == 1, "%d conversions, %d paired launches", conversion_count,
              pair_launches);
    CHECK(conversion_is(0, to, sx, x, ws, 0.0f));
    CHECK(conversion_is(1, to, sy, y, ws + ax + aw, 0.0f));
    CHECK(conversion_is(2, from, sw, ws + ax, dw, 0.0f));
    CHECK(conversion_is(3, to, sw, w, ws + ax, 0.0f));
    CHECK(conversion_is(4, from, sy, ws + ax + aw, dx, 0.0f));
    CHECK_MSG(cudnn_log_count == 2, "%d cuDNN calls", cudnn_log_count);
    CHECK(r[0].pass == GAN_CONV_BACKWARD_FILTER && r[0].x == ws && r[0].w == ws + ax && r[0].y == ws + ax + aw &&
          r[0].ws == ws + copies && r[0].ws_bytes == 2048 && r[0].nhwc);
    CHECK(r[1].pass == GAN_CONV_FORWARD && r[1].x == ws && r[1].w == ws + ax && r[1].y == ws + ax + aw &&
          r[1].ws == ws + copies && r[1].ws_bytes == 0 && r[1].beta == 0.0f && r[1].nhwc);
    CHECK_FAILS_WITH(gan_cuda_conv_grads(&f->be, &K3S1, x, y, 0.0f, dw, GAN_CONV_BACKWARD_FILTER, w, dx, NULL, ws),
                     GAN_ERR_ARG, "conv grads: the second pass must be backward-data or forward, not 2");

    /* Kept copies: a layer's forward copies its input into the layer's buffer instead of its slot
     * (conv_keep_pass), and its backward reads it there instead of copying it again. The copy is
     * the slot's size: x's for a Conv2d (forward), dy's for a ConvTranspose2d (backward-data). */
    CHECK(gan_cuda_conv_keep_bytes(&f->be, &K3S1, GAN_CONV_FORWARD) == ax);
    CHECK(gan_cuda_conv_keep_bytes(&f->be, &K3S1, GAN_CONV_BACKWARD_DATA) == ay);
    CHECK(gan_cuda_conv_keep_bytes(&f->be, &K3S1, GAN_CONV_BACKWARD_FILTER) == 0);
    char *keep = malloc(ax > ay ? ax : ay);
    /* a Conv2d's forward with its LeakyReLU: x into the kept buffer, w into its slot (one launch) */
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_keep_pass(&f->be, &K3S1, GAN_CONV_FORWARD, x, w, GAN_ACT_LRELU, 0.2f, y, keep, ws));
    CHECK(conversion_count == 3 && pair_launches == 1);
    CHECK(conversion_is(0, to, sx, x, keep, 0.0f) && conversion_is(1, to, sw, w, ws + ax, 0.0f));
    CHECK(conversions[2].kind == from && conversions[2].src == ws + ax + aw && conversions[2].dst == y &&
          conversions[2].act == GAN_ACT_LRELU && conversions[2].slope == 0.2f);
    CHECK(cudnn_log_count == 1 && r[0].pass == GAN_CONV_FORWARD && r[0].x == keep && r[0].w == ws + ax &&
          r[0].y == ws + ax + aw && r[0].nhwc);
    /* its backward: w and dy in (one launch), backward-data, dx out; the backward-filter on the
     * kept x (no copy of x), dw out: 4 conversions instead of 5 */
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f->be, &K3S1, x, y, 1.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, keep, ws));
    CHECK_MSG(conversion_count == 4 && pair_launches == 1, "%d conversions, %d paired launches", conversion_count,
              pair_launches);
    CHECK(conversion_is(0, to, sw, w, ws + ax, 0.0f) && conversion_is(1, to, sy, y, ws + ax + aw, 0.0f));
    CHECK(conversion_is(2, from, sx, ws, dx, 0.0f) && conversion_is(3, from, sw, ws + ax, dw, 1.0f));
    CHECK(cudnn_log_count == 2 && r[0].pass == GAN_CONV_BACKWARD_DATA && r[0].x == ws &&
          r[1].pass == GAN_CONV_BACKWARD_FILTER && r[1].x == keep && r[1].y == ws + ax + aw && r[1].w == ws + ax &&
          r[1].ws_bytes == 2048 && r[1].beta == 0.0f);
    /* no dx wanted (a model's first layer): the backward-filter alone on the kept x: dy in, dw out */
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f->be, &K3S1, x, y, 1.0f, dw, GAN_CONV_BACKWARD_DATA, NULL, NULL, keep, ws));
    CHECK(conversion_count == 2 && pair_launches == 0);
    CHECK(conversion_is(0, to, sy, y, ws + ax + aw, 0.0f) && conversion_is(1, from, sw, ws + ax, dw, 1.0f));
    CHECK(cudnn_log_count == 1 && r[0].pass == GAN_CONV_BACKWARD_FILTER && r[0].x == keep);
    /* a ConvTranspose2d's forward (its convolution's backward-data): dy into the kept buffer */
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_keep_pass(&f->be, &K3S1, GAN_CONV_BACKWARD_DATA, y, w, GAN_CONV_NO_ACT, 0.0f, dx, keep,
                                     ws));
    CHECK(conversion_count == 3 && pair_launches == 1);
    CHECK(conversion_is(0, to, sw, w, ws + ax, 0.0f) && conversion_is(1, to, sy, y, keep, 0.0f));
    CHECK(conversion_is(2, from, sx, ws, dx, 0.0f));
    CHECK(cudnn_log_count == 1 && r[0].pass == GAN_CONV_BACKWARD_DATA && r[0].y == keep && r[0].x == ws);
    /* its backward: x and w in (one launch), forward into the y slot, out; the backward-filter
     * from x's copy and the kept dy, dw out: 4 conversions in 1 launch of copies in */
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f->be, &K3S1, x, y, 0.0f, dw, GAN_CONV_FORWARD, w, dx, keep, ws));
    CHECK_MSG(conversion_count == 4 && pair_launches == 1, "%d conversions, %d paired launches", conversion_count,
              pair_launches);
    CHECK(conversion_is(0, to, sx, x, ws, 0.0f) && conversion_is(1, to, sw, w, ws + ax, 0.0f));
    CHECK(conversion_is(2, from, sy, ws + ax + aw, dx, 0.0f) && conversion_is(3, from, sw, ws + ax, dw, 0.0f));
    CHECK(cudnn_log_count == 2 && r[0].pass == GAN_CONV_FORWARD && r[0].x == ws && r[0].w == ws + ax &&
          r[0].y == ws + ax + aw && r[1].pass == GAN_CONV_BACKWARD_FILTER && r[1].x == ws && r[1].y == keep &&
          r[1].w == ws + ax && r[1].ws_bytes == 2048);
    CHECK_FAILS_WITH(gan_cuda_conv_keep_pass(&f->be, &K3S1, GAN_CONV_FORWARD, x, w, GAN_CONV_NO_ACT, 0.0f, y, NULL,
                                             ws),
                     GAN_ERR_ARG, "no buffer to keep the copy in");
    CHECK_FAILS_WITH(gan_cuda_conv_keep_pass(&f->be, &K3S1, GAN_CONV_BACKWARD_FILTER, x, w, GAN_CONV_NO_ACT, 0.0f, y,
                                             keep, ws),
                     GAN_ERR_ARG, "the pass must be forward or backward-data, not 2");
    CHECK_FAILS_WITH(gan_cuda_conv_keep_pass(&f->be, &K3S1, GAN_CONV_FORWARD, x, w, 7, 0.0f, y, keep, ws),
                     GAN_ERR_ARG, "unknown activation 7");
    free(keep);
    free(ws);
}

static void test_bf16(void)
{
    fake_backend f;
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    find_calls = nhwc_find_calls = 0;
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    /* bf16 searches NHWC alone */
    CHECK_MSG(find_calls == 3 && nhwc_find_calls == 3, "%d searches, %d of them NHWC", find_calls, nhwc_find_calls);
    /* forward: the tensor-op GEMM (0 bytes); backward-filter: ALGO_3 (2048): the largest pass */
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op"));
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_FILTER, "ALGO_3"));
    check_nhwc_calls(&f, bytes, 2, TO_BF16, FROM_BF16);
    close_fake(&f);

    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000, *dw = (float *)0x4000;
    char *ws;
    /* fp32: NCHW alone, no conversions, cuDNN on the caller's buffers with the whole workspace */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    find_calls = nhwc_find_calls = 0;
    bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(bytes == 4096); /* forward IMPLICIT_PRECOMP_GEMM's */
    CHECK(find_calls == 3 && nhwc_find_calls == 0);
    ws = malloc(bytes);
    conversion_count = 0;
    CHECK_OK(gan_cuda_conv_backward_filter(&f.be, &K3S1, x, y, 1.0f, dw, ws));
    CHECK(conversion_count == 0);
    CHECK(last_cudnn.x == x && last_cudnn.y == y && last_cudnn.w == dw && last_cudnn.ws == ws &&
          last_cudnn.beta == 1.0f && !last_cudnn.nhwc);
    /* both backward passes in NCHW: nothing to copy, the two ops on the caller's buffers */
    float *dx = (float *)0x5000;
    cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f.be, &K3S1, x, y, 1.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, NULL, ws));
    CHECK(conversion_count == 0 && cudnn_log_count == 2);
    CHECK(cudnn_log[0].pass == GAN_CONV_BACKWARD_FILTER && cudnn_log[0].x == x && cudnn_log[0].y == y &&
          cudnn_log[0].w == dw && cudnn_log[0].beta == 1.0f && cudnn_log[0].ws == ws && !cudnn_log[0].nhwc);
    CHECK(cudnn_log[1].pass == GAN_CONV_BACKWARD_DATA && cudnn_log[1].w == w && cudnn_log[1].y == y &&
          cudnn_log[1].x == dx && cudnn_log[1].ws == ws && !cudnn_log[1].nhwc);
    /* NCHW copies nothing: nothing to keep, and a kept copy is refused */
    CHECK(gan_cuda_conv_keep_bytes(&f.be, &K3S1, GAN_CONV_FORWARD) == 0 &&
          gan_cuda_conv_keep_bytes(&f.be, &K3S1, GAN_CONV_BACKWARD_DATA) == 0);
    CHECK_FAILS_WITH(gan_cuda_conv_grads(&f.be, &K3S1, x, y, 1.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, ws, ws),
                     GAN_ERR_ARG, "a kept copy was given where this geometry keeps none");
    CHECK_FAILS_WITH(gan_cuda_conv_keep_pass(&f.be, &K3S1, GAN_CONV_FORWARD, x, w, GAN_CONV_NO_ACT, 0.0f, y, ws, ws),
                     GAN_ERR_ARG, "this geometry keeps no copy");
    free(ws);
    close_fake(&f);

    /* First seen at a call, with no workspace: bf16 has no room for its copies and says so. */
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &K3S1, x, w, y, NULL), GAN_ERR_BACKEND, "NHWC copies");
    close_fake(&f);

    /* The 3-channel image layer, its input channels padded to 8. */
    check_padded_image_layer(GAN_PRECISION_BF16, 8, TO_BF16, FROM_BF16);

    /* The conversions are timed and added to cuDNN's figures: the sub-pixel form (0.9 ms, plus
     * its inner forward's three conversions: 1.2) beats cuDNN's deterministic ALGO_1 (1.0 ms,
     * plus its own three: 1.3), which it would not against cuDNN's bare 1.0. */
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    subpixel_ms = 0.9f;
    copy_ms = 0.1f;
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel"));
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "measured 1.2000 ms"));
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "GEMM tensor-op"));
    CHECK(says(&f, &K4S2, GAN_CONV_FORWARD, "measured 0.3500 ms")); /* 0.05 + 3 x 0.1 */
    /* Both backward passes, the backward-data the sub-pixel form's: it copies nothing in common with
     * the backward-filter, so the two ops run apart (a pair each: the backward-filter's and the
     * inner forward's). */
    bytes = gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    ws = malloc(bytes);
    gather_calls = conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f.be, &K4S2, x, y, 0.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, NULL, ws));
    CHECK_MSG(gather_calls == 1 && pair_launches == 2 && conversion_count == 6 && cudnn_log_count == 2 &&
                  cudnn_log[0].pass == GAN_CONV_BACKWARD_FILTER && cudnn_log[1].pass == GAN_CONV_FORWARD,
              "%d gathers, %d paired launches, %d conversions, %d cuDNN calls", gather_calls, pair_launches,
              conversion_count, cudnn_log_count);
    /* The sub-pixel backward-data reads the caller's dy: a ConvTranspose2d keeps nothing; a Conv2d
     * keeps x (its forward and backward-filter both cuDNN's in NHWC), and its backward-filter then
     * reads the kept x, copying dy alone */
    CHECK(gan_cuda_conv_keep_bytes(&f.be, &K4S2, GAN_CONV_BACKWARD_DATA) == 0);
    size_t keep_bytes = gan_cuda_conv_keep_bytes(&f.be, &K4S2, GAN_CONV_FORWARD);
    CHECK(keep_bytes == (size_t)(4 * 8 * 16 * 16 * 2 + 255) / 256 * 256);
    char *keep = malloc(keep_bytes);
    gather_calls = conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f.be, &K4S2, x, y, 0.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, keep, ws));
    CHECK_MSG(gather_calls == 1 && pair_launches == 1 && conversion_count == 5 && cudnn_log_count == 2 &&
                  cudnn_log[0].pass == GAN_CONV_BACKWARD_FILTER && cudnn_log[0].x == keep &&
                  conversions[0].src == y && cudnn_log[1].pass == GAN_CONV_FORWARD,
              "%d gathers, %d paired launches, %d conversions, %d cuDNN calls", gather_calls, pair_launches,
              conversion_count, cudnn_log_count);
    free(keep);
    free(ws);
    close_fake(&f);
    copy_ms = 0.0f;
    subpixel_ms = 0.4f;

    /* A whole-input convolution: one GEMM (BF16 inside cuBLAS), no copies. */
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    conversion_count = 0;
    CHECK(gan_cuda_conv_workspace_bytes(&f.be, &WHOLE, GAN_CONV_PASSES_ALL) == 0);
    CHECK_OK(gan_cuda_conv_forward(&f.be, &WHOLE, x, w, y, NULL));
    CHECK(conversion_count == 0);
    CHECK(says(&f, &WHOLE, GAN_CONV_FORWARD, "cublas gemm bf16"));
    /* its two backward passes: a GEMM each */
    gemm_calls = 0;
    CHECK_OK(gan_cuda_conv_grads(&f.be, &WHOLE, x, y, 0.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, NULL, NULL));
    CHECK(gemm_calls == 2 && conversion_count == 0);
    close_fake(&f);
}

/* tf32 times every pass in both layouts, the NHWC candidates with their FP32 copies' time, and
 * takes the faster; the choice keeps its layout; GAN_CUDA_NHWC narrows it. */
static void test_tf32_layouts(void)
{
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000;
    fake_backend f;

    /* NHWC's cuDNN 5x faster; copies 0.01 ms each. Forward: GEMM tensor-op 0.05 in NCHW against
     * 0.01 + 0.03 in NHWC; backward-filter: ALGO_3 0.10 against 0.02 + 0.03. */
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    nhwc_scale = 0.2f;
    copy_ms = 0.01f;
    find_calls = nhwc_find_calls = 0;
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 6 && nhwc_find_calls == 3, "%d searches, %d of them NHWC", find_calls, nhwc_find_calls);
    CHECK(live_device_bytes == 0);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op nhwc"));
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "measured 0.0400 ms"));
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_FILTER, "ALGO_3 fma nhwc"));
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_FILTER, "measured 0.0500 ms"));
    CHECK(says(&f, &K3S1, GAN_CONV_BACKWARD_DATA, "ALGO_1 fma nhwc"));
    check_nhwc_calls(&f, bytes, 4, TO_F32, FROM_F32);

    /* Exported with its layout; reused as it was, without a search. */
    char *exported = NULL;
    CHECK_OK(gan_cuda_conv_choices_export(&f.be, &exported));
    CHECK(exported && strstr(exported, "precision=tf32") && strstr(exported, "layout=nhwc"));
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    CHECK_OK(gan_cuda_conv_choices_import(&f.be, exported, "test"));
    nhwc_scale = 9.0f; /* would lose a new timing */
    find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(find_calls == 0);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op nhwc ws 28 KiB, stored"));
    close_fake(&f);

    /* GAN_CUDA_NHWC=never: NCHW alone, and the stored NHWC choices are not taken. */
    setenv("GAN_CUDA_NHWC", "never", 1);
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    CHECK_OK(gan_cuda_conv_choices_import(&f.be, exported, "test"));
    nhwc_scale = 0.2f;
    find_calls = nhwc_find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 3 && nhwc_find_calls == 0, "%d searches, %d of them NHWC", find_calls, nhwc_find_calls);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op nchw"));
    close_fake(&f);
    free(exported);

    /* GAN_CUDA_NHWC=always: NHWC even where it loses; a geometry first seen at a call (no
     * workspace) has no room for the copies and says so. */
    setenv("GAN_CUDA_NHWC", "always", 1);
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    nhwc_scale = 5.0f;
    find_calls = nhwc_find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 3 && nhwc_find_calls == 3, "%d searches, %d of them NHWC", find_calls, nhwc_find_calls);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "nhwc"));
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &K4S2, x, w, y, NULL), GAN_ERR_BACKEND, "NHWC copies");
    close_fake(&f);
    /* fp32 and bf16 have one layout each: the variable changes nothing there. */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    find_calls = nhwc_find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(find_calls == 3 && nhwc_find_calls == 0);
    close_fake(&f);
    unsetenv("GAN_CUDA_NHWC");

    /* The copies cost more than NHWC saves: 0.01 + 0.3 against 0.05. NCHW, on the caller's
     * buffers, no copies. */
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    nhwc_scale = 0.2f;
    copy_ms = 0.1f;
    bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op nchw"));
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "measured 0.0500 ms"));
    char *ws = malloc(bytes ? bytes : 1);
    conversion_count = 0;
    CHECK_OK(gan_cuda_conv_forward(&f.be, &K3S1, x, w, y, ws));
    CHECK(conversion_count == 0 && !last_cudnn.nhwc && last_cudnn.x == x && last_cudnn.y == y);
    free(ws);
    close_fake(&f);

    /* cuDNN refuses every NHWC search: NCHW's candidates stand. */
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    nhwc_search_fails = true;
    copy_ms = 0.0f;
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op nchw ws 0 KiB, measured"));
    close_fake(&f);
    nhwc_search_fails = false;

    /* The 3-channel image layer in NHWC (faster here: nhwc_scale 0.2, no copy time), its input
     * channels padded to 4. */
    check_padded_image_layer(GAN_PRECISION_TF32, 4, TO_F32, FROM_F32);
    nhwc_scale = 1.0f;
}

/* conv_forward_act / conv_backward_data_act: the activation goes into the kernel of ours that ends
 * the pass (the NHWC copy back, the sub-pixel gather), else into one launch on the output. */
static void test_activation_epilogue(void)
{
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000;
    fake_backend f;

    /* fp32, cuDNN's forward on the caller's buffers: then one launch over all of y, in place */
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    char *ws = malloc(bytes);
    memset(&act_launch, 0, sizeof act_launch);
    CHECK_OK(gan_cuda_conv_forward_act(&f.be, &K3S1, x, w, GAN_ACT_TANH, 0.0f, y, ws));
    CHECK(last_cudnn.y == y);
    CHECK_MSG(act_launch.calls == 1 && act_launch.kind == GAN_ACT_TANH && act_launch.count == 4 * 16 * 8 * 8 &&
                  act_launch.x == y && act_launch.y == y,
              "%d activation launches, kind %d over %zu", act_launch.calls, (int)act_launch.kind, act_launch.count);
    /* the plain pass launches none */
    memset(&act_launch, 0, sizeof act_launch);
    CHECK_OK(gan_cuda_conv_forward(&f.be, &K3S1, x, w, y, ws));
    CHECK(act_launch.calls == 0);
    /* backward-data through cuDNN: over all of dx */
    CHECK_OK(gan_cuda_conv_backward_data_act(&f.be, &K3S1, y, w, GAN_ACT_LRELU, 0.2f, (float *)x, ws));
    CHECK(act_launch.calls == 1 && act_launch.kind == GAN_ACT_LRELU && act_launch.slope == 0.2f &&
          act_launch.count == 4 * 8 * 8 * 8 && act_launch.y == (float *)x);
    CHECK_FAILS_WITH(gan_cuda_conv_forward_act(&f.be, &K3S1, x, w, (gan_activation)7, 0.0f, y, ws), GAN_ERR_ARG,
                     "unknown activation 7");
    free(ws);

    /* the sub-pixel backward-data: the gather applies it, no launch */
    subpixel_ms = 0.4f;
    bytes = gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel"));
    ws = malloc(bytes);
    call_workspace = ws;
    call_workspace_bytes = bytes;
    memset(&act_launch, 0, sizeof act_launch);
    gather_act = -2;
    CHECK_OK(gan_cuda_conv_backward_data_act(&f.be, &K4S2, y, w, GAN_ACT_TANH, 0.0f, (float *)x, ws));
    CHECK_MSG(gather_act == GAN_ACT_TANH && act_launch.calls == 0, "gather act %d, %d launches", gather_act,
              act_launch.calls);
    CHECK_OK(gan_cuda_conv_backward_data(&f.be, &K4S2, y, w, (float *)x, ws));
    CHECK(gather_act == GAN_FUSED_NONE);
    call_workspace = NULL;
    free(ws);

    /* a whole-input convolution: its GEMM, then one launch */
    memset(&act_launch, 0, sizeof act_launch);
    CHECK_OK(gan_cuda_conv_backward_data_act(&f.be, &WHOLE, y, w, GAN_ACT_RELU, 0.0f, (float *)x, NULL));
    CHECK(act_launch.calls == 1 && act_launch.kind == GAN_ACT_RELU && act_launch.count == 4 * 16 * 4 * 4);
    close_fake(&f);

    /* bf16: the copy back applies it (its activation and slope), no launch */
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    bytes = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    ws = malloc(bytes);
    memset(&act_launch, 0, sizeof act_launch);
    conversion_count = 0;
    CHECK_OK(gan_cuda_conv_forward_act(&f.be, &K3S1, x, w, GAN_ACT_LRELU, 0.2f, y, ws));
    CHECK(conversion_count == 3 && act_launch.calls == 0);
    CHECK_MSG(conversions[2].kind == FROM_BF16 && conversions[2].dst == y && conversions[2].act == GAN_ACT_LRELU &&
                  conversions[2].slope == 0.2f,
              "the copy back: kind %d, act %d", (int)conversions[2].kind, conversions[2].act);
    conversion_count = 0;
    CHECK_OK(gan_cuda_conv_backward_data_act(&f.be, &K3S1, y, w, GAN_ACT_SIGMOID, 0.0f, (float *)x, ws));
    CHECK(conversion_count == 3 && conversions[2].act == GAN_ACT_SIGMOID && act_launch.calls == 0);
    free(ws);
    close_fake(&f);
}

/* Stored tensors (bf16): a geometry whose x and y are kept BF16 NHWC between layers is its own
 * plan (the FP32 one of the same shape stays), takes the FP32 plan's stored choices without a
 * search, and its workspace holds w's copy alone; at the calls cuDNN reads and writes the caller's
 * x, y, dx, dy where they are (only w is copied in, only dw out, with the caller's beta), a fused
 * activation runs in place on the BF16 output, the backward passes run apart (no copy to share),
 * nothing is kept, and the forms of ours are never taken. Refused: stored tensors outside bf16,
 * with channels not in groups of 8, or in a whole-input GEMM. */
/* A layer's weight copy in `storage` (the backend's edge storage) for `stored`, a geometry with
 * a stored x or y and w of shape sw (aw bytes copied): made in one list launch (narrowed as `to`),
 * refused for a geometry that reads none, and read by the forward and backward-data in place of
 * w's slot, which the backward-filter still writes dw into (widened as `from`, with its beta). */
static void check_weight_copy(fake_backend *f, const gan_conv_geom *stored, gan_storage storage, copy_kind to,
                              copy_kind from, nchw sw, size_t aw)
{
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000, *dw = (float *)0x4000, *dx = (float *)0x5000;
    const cudnn_call_record *r = cudnn_log;
    gan_conv_geom all = *stored;
    all.w_storage = storage;
    char *copy = malloc(aw);
    gan_conv_weight_copy wc = {&all, w, copy};
    conversion_count = list_launches = 0;
    CHECK_OK(gan_cuda_conv_weight_copies(&f->be, 1, &wc));
    CHECK(list_launches == 1 && conversion_count == 1 && conversion_is(0, to, sw, w, copy, 0.0f));
    wc.g = stored; /* a geometry that reads no copy */
    CHECK_FAILS_WITH(gan_cuda_conv_weight_copies(&f->be, 1, &wc), GAN_ERR_ARG, "reads no weight copy");
    size_t bytes = gan_cuda_conv_workspace_bytes(&f->be, &all, GAN_CONV_PASSES_ALL);
    CHECK_MSG(bytes == aw + 2048, "workspace %zu: w's slot stays, for dw", bytes);
    char *ws = malloc(bytes);
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_forward(&f->be, &all, x, (const float *)copy, y, ws));
    CHECK(conversion_count == 0 && cudnn_log_count == 1 && r[0].x == x && r[0].w == copy && r[0].y == y);
    CHECK_OK(gan_cuda_conv_backward_data(&f->be, &all, y, (const float *)copy, dx, ws));
    CHECK(conversion_count == 0 && cudnn_log_count == 2 && r[1].w == copy && r[1].x == dx);
    CHECK_OK(gan_cuda_conv_backward_filter(&f->be, &all, x, y, 1.0f, dw, ws));
    CHECK(conversion_count == 1 && conversion_is(0, from, sw, ws, dw, 1.0f) && r[2].w == ws);
    free(ws);
    free(copy);
}

static void test_stored_tensors(void)
{
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000, *dw = (float *)0x4000, *dx = (float *)0x5000;
    gan_conv_geom stored = K3S1, x_only = K3S1;
    stored.x_storage = stored.y_storage = GAN_STORAGE_BF16_NHWC;
    x_only.y_storage = GAN_STORAGE_BF16_NHWC; /* x FP32 NCHW (the image), y stored: D's first layer */
    const nchw sx = {4, 8, 8, 64}, sw = {16, 8, 8, 9};
    const size_t ax = (4 * 8 * 64 * 2 + 255) / 256 * 256, aw = (16 * 8 * 9 * 2 + 255) / 256 * 256;
    fake_backend f;
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    find_calls = 0;
    size_t plain = gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(find_calls == 3);
    /* its own key (stored=true): searched, not the FP32-tensor plan's choices */
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &stored, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 6, "the stored geometry was not searched (%d searches)", find_calls);
    CHECK_MSG(bytes == aw + 2048 && plain > bytes, "workspace %zu (FP32 tensors: %zu), want w's copy + 2048",
              bytes, plain);
    CHECK(f.impl.conv_plan_count == 2);
    CHECK(says(&f, &stored, GAN_CONV_FORWARD, "GEMM tensor-op") && says(&f, &stored, GAN_CONV_FORWARD, "measured"));
    char *ws = malloc(bytes);
    const cudnn_call_record *r = cudnn_log;
    /* forward with a LeakyReLU: w in, cuDNN from x into y, the activation on y in place */
    conversion_count = pair_launches = cudnn_log_count = bf16_act_launch.calls = 0;
    CHECK_OK(gan_cuda_conv_forward_act(&f.be, &stored, x, w, GAN_ACT_LRELU, 0.2f, y, ws));
    CHECK_MSG(conversion_count == 1 && pair_launches == 0, "%d conversions, %d pairs", conversion_count,
              pair_launches);
    CHECK(conversion_is(0, TO_BF16, sw, w, ws, 0.0f));
    CHECK(cudnn_log_count == 1 && r[0].x == x && r[0].w == ws && r[0].y == y && r[0].ws == ws + aw && r[0].nhwc);
    CHECK(bf16_act_launch.calls == 1 && bf16_act_launch.kind == GAN_ACT_LRELU && bf16_act_launch.x == y &&
          bf16_act_launch.y == y && bf16_act_launch.count == (size_t)4 * 16 * 64);
    /* backward-data: w in, cuDNN from dy into dx */
    conversion_count = cudnn_log_count = bf16_act_launch.calls = 0;
    CHECK_OK(gan_cuda_conv_backward_data(&f.be, &stored, y, w, dx, ws));
    CHECK(conversion_count == 1 && conversion_is(0, TO_BF16, sw, w, ws, 0.0f) && bf16_act_launch.calls == 0);
    CHECK(cudnn_log_count == 1 && r[0].y == y && r[0].x == dx && r[0].w == ws);
    /* backward-filter: nothing in, dw out of the w slot with the caller's beta */
    conversion_count = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_backward_filter(&f.be, &stored, x, y, 1.0f, dw, ws));
    CHECK(conversion_count == 1 && conversion_is(0, FROM_BF16, sw, ws, dw, 1.0f));
    CHECK(cudnn_log_count == 1 && r[0].x == x && r[0].y == y && r[0].w == ws && r[0].beta == 0.0f);
    /* both backward passes: the two ops */
    conversion_count = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f.be, &stored, x, y, 0.0f, dw, GAN_CONV_BACKWARD_DATA, w, dx, NULL, ws));
    CHECK_MSG(conversion_count == 2 && cudnn_log_count == 2 && r[0].pass == GAN_CONV_BACKWARD_FILTER &&
                  r[0].x == x && r[1].pass == GAN_CONV_BACKWARD_DATA && r[1].x == dx,
              "%d conversions, %d cuDNN calls", conversion_count, cudnn_log_count);
    /* nothing to keep */
    CHECK(gan_cuda_conv_keep_bytes(&f.be, &stored, GAN_CONV_FORWARD) == 0 &&
          gan_cuda_conv_keep_bytes(&f.be, &stored, GAN_CONV_BACKWARD_DATA) == 0);
    free(ws);

    /* x FP32 NCHW, y stored: x and w in (one launch), y written in place; x's copy kept for the
     * backward-filter, which then copies nothing */
    bytes = gan_cuda_conv_workspace_bytes(&f.be, &x_only, GAN_CONV_PASSES_ALL);
    CHECK_MSG(bytes == ax + aw + 2048, "workspace %zu", bytes);
    ws = malloc(bytes);
    conversion_count = pair_launches = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_forward(&f.be, &x_only, x, w, y, ws));
    CHECK(conversion_count == 2 && pair_launches == 1 && conversion_is(0, TO_BF16, sx, x, ws, 0.0f) &&
          conversion_is(1, TO_BF16, sw, w, ws + ax, 0.0f));
    CHECK(cudnn_log_count == 1 && r[0].x == ws && r[0].w == ws + ax && r[0].y == y);
    CHECK(gan_cuda_conv_keep_bytes(&f.be, &x_only, GAN_CONV_FORWARD) == ax);
    CHECK(gan_cuda_conv_keep_bytes(&f.be, &x_only, GAN_CONV_BACKWARD_DATA) == 0);
    char *keep = malloc(ax);
    conversion_count = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_grads(&f.be, &x_only, x, y, 1.0f, dw, GAN_CONV_BACKWARD_DATA, NULL, NULL, keep, ws));
    CHECK(conversion_count == 1 && conversion_is(0, FROM_BF16, sw, ws + ax, dw, 1.0f));
    CHECK(cudnn_log_count == 1 && r[0].x == keep && r[0].y == y);
    free(keep);
    free(ws);

    /* never a form of ours: the sub-pixel and im2col forms forced, the FP32-tensor plan takes them,
     * the stored one cuDNN's */
    setenv("GAN_CUDA_SUBPIXEL", "always", 1);
    setenv("GAN_CUDA_IM2COL", "always", 1);
    gan_conv_geom k4s2 = K4S2;
    k4s2.x_storage = k4s2.y_storage = GAN_STORAGE_BF16_NHWC;
    gan_cuda_conv_workspace_bytes(&f.be, &K4S2, GAN_CONV_PASSES_ALL);
    gan_cuda_conv_workspace_bytes(&f.be, &k4s2, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K4S2, GAN_CONV_BACKWARD_DATA, "subpixel") && says(&f, &K4S2, GAN_CONV_BACKWARD_FILTER, "im2col"));
    CHECK(says(&f, &k4s2, GAN_CONV_BACKWARD_DATA, "ALGO_") && says(&f, &k4s2, GAN_CONV_BACKWARD_FILTER, "ALGO_3"));
    unsetenv("GAN_CUDA_SUBPIXEL");
    unsetenv("GAN_CUDA_IM2COL");
    /* and its choice did not replace the forms' in the export */
    char *text = NULL;
    CHECK_OK(gan_cuda_conv_choices_export(&f.be, &text));
    CHECK_MSG(text && strstr(text, "algo=subpixel") && strstr(text, "algo=im2col"), "export lost a form of ours:\n%s",
              text ? text : "(none)");
    free(text);

    /* the layer's weight copy (edge_storage): made once per forward for every layer (one launch),
     * then read by the forward and backward-data in place of w's slot, which the backward-filter
     * still writes dw into */
    CHECK(gan_cuda_conv_weight_copy_bytes(&f.be, &stored) == 0); /* no edge_storage */
    f.be.edge_storage = GAN_STORAGE_BF16_NHWC;
    CHECK(gan_cuda_conv_weight_copy_bytes(&f.be, &stored) == aw && gan_cuda_conv_weight_copy_bytes(&f.be, &x_only) == aw);
    CHECK(gan_cuda_conv_weight_copy_bytes(&f.be, &K3S1) == 0); /* FP32 tensors: no copy, its forms kept */
    CHECK(gan_cuda_conv_weight_copy_bytes(&f.be, &WHOLE) == 0);
    check_weight_copy(&f, &stored, GAN_STORAGE_BF16_NHWC, TO_BF16, FROM_BF16, sw, aw);
    f.be.edge_storage = GAN_STORAGE_F32_NCHW;

    /* refused */
    gan_conv_geom odd = K3S1, whole = WHOLE;
    odd.c_in = 12;
    odd.x_storage = GAN_STORAGE_BF16_NHWC;
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &odd, x, w, y, NULL), GAN_ERR_ARG, "groups of 8, not 12");
    whole.x_storage = GAN_STORAGE_BF16_NHWC;
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &whole, x, w, y, NULL), GAN_ERR_ARG, "whole-input kernel");
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &stored, x, w, y, NULL), GAN_ERR_ARG,
                     "x stored BF16 NHWC needs train.precision = bf16");
    gan_conv_geom w_only = K3S1;
    w_only.w_storage = GAN_STORAGE_BF16_NHWC;
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &w_only, x, w, y, NULL), GAN_ERR_ARG,
                     "the weight copy stored BF16 NHWC needs train.precision = bf16");
    close_fake(&f);
}

/* tf32 with FP32 NHWC tensors between layers: a plan with a stored x or y runs cuDNN in NHWC even
 * where NCHW times faster (the FP32-tensor plan of the same shape takes NCHW), copies only w in
 * (or reads the layer's FP32 KRSC weight copy), writes a stored output in place with the FP32
 * activation on it, and keeps its choice under a key of its own (stored=true), reused without a
 * search. */
static void test_stored_tf32(void)
{
    const float *x = (const float *)0x1000, *w = (const float *)0x2000;
    float *y = (float *)0x3000, *dw = (float *)0x4000, *dx = (float *)0x5000;
    gan_conv_geom stored = K3S1;
    stored.x_storage = stored.y_storage = GAN_STORAGE_F32_NHWC;
    const nchw sw = {16, 8, 8, 9};
    const size_t aw = (16 * 8 * 9 * 4 + 255) / 256 * 256;
    fake_backend f;
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    nhwc_scale = 2.0f; /* NHWC slower: the FP32-tensor plan takes NCHW */
    copy_ms = 0.0f;
    find_calls = nhwc_find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &K3S1, GAN_CONV_FORWARD, "GEMM tensor-op nchw"));
    find_calls = nhwc_find_calls = 0;
    size_t bytes = gan_cuda_conv_workspace_bytes(&f.be, &stored, GAN_CONV_PASSES_ALL);
    CHECK_MSG(find_calls == 3 && nhwc_find_calls == 3, "%d searches, %d of them NHWC", find_calls, nhwc_find_calls);
    CHECK(says(&f, &stored, GAN_CONV_FORWARD, "GEMM tensor-op nhwc") &&
          says(&f, &stored, GAN_CONV_BACKWARD_DATA, "nhwc") && says(&f, &stored, GAN_CONV_BACKWARD_FILTER, "nhwc"));
    CHECK_MSG(bytes == aw + 2048, "workspace %zu, want w's FP32 copy + 2048", bytes);
    CHECK(gan_cuda_conv_keep_bytes(&f.be, &stored, GAN_CONV_FORWARD) == 0);
    char *ws = malloc(bytes);
    const cudnn_call_record *r = cudnn_log;
    conversion_count = pair_launches = cudnn_log_count = act_launch.calls = bf16_act_launch.calls = 0;
    CHECK_OK(gan_cuda_conv_forward_act(&f.be, &stored, x, w, GAN_ACT_LRELU, 0.2f, y, ws));
    CHECK(conversion_count == 1 && pair_launches == 0 && conversion_is(0, TO_F32, sw, w, ws, 0.0f));
    CHECK(cudnn_log_count == 1 && r[0].x == x && r[0].w == ws && r[0].y == y && r[0].nhwc);
    CHECK(act_launch.calls == 1 && act_launch.kind == GAN_ACT_LRELU && act_launch.x == y && act_launch.y == y &&
          act_launch.count == (size_t)4 * 16 * 64 && bf16_act_launch.calls == 0);
    conversion_count = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_backward_filter(&f.be, &stored, x, y, 1.0f, dw, ws));
    CHECK(conversion_count == 1 && conversion_is(0, FROM_F32, sw, ws, dw, 1.0f));
    CHECK(cudnn_log_count == 1 && r[0].x == x && r[0].y == y && r[0].w == ws);
    conversion_count = cudnn_log_count = 0;
    CHECK_OK(gan_cuda_conv_backward_data(&f.be, &stored, y, w, dx, ws));
    CHECK(conversion_count == 1 && cudnn_log_count == 1 && r[0].y == y && r[0].x == dx);
    free(ws);

    /* the weight copy, FP32 KRSC */
    CHECK(gan_cuda_conv_weight_copy_bytes(&f.be, &stored) == 0); /* no edge_storage */
    f.be.edge_storage = GAN_STORAGE_F32_NHWC;
    CHECK(gan_cuda_conv_weight_copy_bytes(&f.be, &stored) == aw && gan_cuda_conv_weight_copy_bytes(&f.be, &K3S1) == 0);
    check_weight_copy(&f, &stored, GAN_STORAGE_F32_NHWC, TO_F32, FROM_F32, sw, aw);

    /* exported under its own key; reused without a search, beside the FP32-tensor plan's NCHW */
    char *exported = NULL;
    CHECK_OK(gan_cuda_conv_choices_export(&f.be, &exported));
    CHECK_MSG(exported && strstr(exported, "pass=forward stored=true algo=2 math=tensor-op layout=nhwc") &&
                  strstr(exported, "pass=forward algo=2 math=tensor-op layout=nchw"),
              "export:\n%s", exported ? exported : "(none)");
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    CHECK_OK(gan_cuda_conv_choices_import(&f.be, exported, "test"));
    find_calls = 0;
    gan_cuda_conv_workspace_bytes(&f.be, &stored, GAN_CONV_PASSES_ALL);
    gan_cuda_conv_workspace_bytes(&f.be, &K3S1, GAN_CONV_PASSES_ALL);
    CHECK(find_calls == 0);
    CHECK(says(&f, &stored, GAN_CONV_FORWARD, "nhwc ws 4 KiB, stored") &&
          says(&f, &K3S1, GAN_CONV_FORWARD, "nchw ws 0 KiB, stored"));
    close_fake(&f);
    free(exported);

    /* GAN_CUDA_NHWC=never narrows the FP32-tensor plans only: a stored one is NHWC itself */
    setenv("GAN_CUDA_NHWC", "never", 1);
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    gan_cuda_conv_workspace_bytes(&f.be, &stored, GAN_CONV_PASSES_ALL);
    CHECK(says(&f, &stored, GAN_CONV_FORWARD, "nhwc"));
    close_fake(&f);
    unsetenv("GAN_CUDA_NHWC");
    nhwc_scale = 1.0f;

    /* refused: FP32 NHWC outside tf32, channels not in groups of 4 */
    gan_conv_geom odd = K3S1;
    odd.c_in = 6;
    odd.x_storage = GAN_STORAGE_F32_NHWC;
    open_fake(&f, GAN_PRECISION_TF32, true, BUDGET);
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &odd, x, w, y, NULL), GAN_ERR_ARG, "groups of 4, not 6");
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_BF16, true, BUDGET);
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &stored, x, w, y, NULL), GAN_ERR_ARG,
                     "x stored FP32 NHWC needs train.precision = tf32");
    close_fake(&f);
    open_fake(&f, GAN_PRECISION_FP32, true, BUDGET);
    CHECK_FAILS_WITH(gan_cuda_conv_forward(&f.be, &stored, x, w, y, NULL), GAN_ERR_ARG,
                     "x stored FP32 NHWC needs train.precision = tf32");
    close_fake(&f);
}


int main(void)
{
    char *exported = NULL;
    test_deterministic_fp32(&exported);
    if (exported)
        test_stored(exported);
    free(exported);
    test_other_modes();
    test_im2col();
    test_bf16();
    test_tf32_layouts();
    test_activation_epilogue();
    test_stored_tensors();
    test_stored_tf32();
    return test_finish();
}
#endif
