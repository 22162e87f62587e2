/* Private to the CUDA backend (src/backend/cuda_*.c) and its tests: the backend's state, the
 * checked-call helpers, and the descriptor builders, which tests/test_cuda_descriptors.c calls so
 * that it checks the very descriptors the backend uses. Host C; needs the CUDA, cuDNN and cuBLAS
 * headers, so only CUDA builds include it. */
#ifndef GAN_BACKEND_CUDA_INTERNAL_H
#define GAN_BACKEND_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "gan/backend.h"
#include "gan/cuda_args.h"
#include "gan/conv_choices.h"
#include "gan/cuda_backend.h"

/* ---- checked calls: the failing call's text, file and line, and the library's reason ------- */
gan_status gan_cuda_check(cudaError_t status, const char *call, const char *file, int line);
gan_status gan_cudnn_check(cudnnStatus_t status, const char *call, const char *file, int line);
gan_status gan_cublas_check(cublasStatus_t status, const char *call, const char *file, int line);
#define CUDA_TRY(call) GAN_TRY(gan_cuda_check((call), #call, __FILE__, __LINE__))
#define CUDNN_TRY(call) GAN_TRY(gan_cudnn_check((call), #call, __FILE__, __LINE__))
#define CUBLAS_TRY(call) GAN_TRY(gan_cublas_check((call), #call, __FILE__, __LINE__))

/* ---- descriptors -------------------------------------------------------------------------- */

/* The descriptors of one convolution geometry (see gan_cuda_conv_args for which call uses
 * which). Each of the three calls has its own convolution descriptor because each carries the
 * math type of the algorithm chosen for that call. */
typedef struct gan_cuda_conv_descriptors {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t forward, backward_data, backward_filter;
} gan_cuda_conv_descriptors;

/* The layouts the convolutions of a precision may run in, as a mask of (1u << gan_conv_layout):
 * fp32 NCHW (FMA kernels, on the op table's buffers); tf32 NCHW and NHWC, both timed for every
 * pass (NHWC on copies, src/backend/cuda_conv.c); bf16 NHWC (BF16 copies). */
unsigned gan_cuda_conv_layouts(gan_precision precision);
/* The layout a pass takes where nothing is timed (a heuristic or fallback choice): NHWC in bf16,
 * NCHW otherwise. */
gan_conv_layout gan_cuda_conv_default_layout(gan_precision precision);

/* Tensor cores take NHWC channels in groups of 16 bytes: 8 BF16 values, 4 FP32 ones read as TF32
 * (1: no padding, in fp32). */
int gan_cuda_conv_channel_group(gan_precision precision);

/* The geometry cuDNN computes for g: g itself, or in NHWC g with c_in rounded up to a multiple of
 * gan_cuda_conv_channel_group (the 1- and 3-channel image layers). The NHWC copies carry the extra
 * input channels as zeros (in x and in w), so y is unchanged, and the extra channels of dx and dw,
 * zeros too, are not copied back. */
gan_conv_geom gan_cuda_conv_cudnn_geom(const gan_conv_geom *g, gan_precision precision, gan_conv_layout layout);

/* Builds them for g in `precision` and `layout` (the arguments of gan_cuda_conv_args_make for
 * gan_cuda_conv_cudnn_geom); the convolution descriptors get CUDNN_FMA_MATH in fp32 and
 * CUDNN_DEFAULT_MATH (tensor cores allowed) in tf32 and bf16, until an algorithm is chosen. The
 * element type is FP32, or BF16 in bf16 (gan_cuda_conv_data_type); the layout NCHW, the op table's
 * own, or NHWC with the filter KRSC (gan_cuda_conv_format: cuDNN then runs on NHWC copies, see
 * src/backend/cuda_conv.c); the sums are FP32 in every precision.
 * Host-only: no handle and no device needed. On failure nothing is left allocated. */
gan_status gan_cuda_conv_descriptors_create(const gan_conv_geom *g, gan_precision precision,
                                            gan_conv_layout layout, gan_cuda_conv_descriptors *out);
void gan_cuda_conv_descriptors_destroy(gan_cuda_conv_descriptors *d);

/* The element type of a convolution's tensors in cuDNN: FP32, or BF16 in bf16; and the cuDNN
 * format of a layout (an NHWC filter is KRSC). */
cudnnDataType_t gan_cuda_conv_data_type(gan_precision precision);
cudnnTensorFormat_t gan_cuda_conv_format(gan_conv_layout layout);
/* The compute type of every cuBLAS GEMM (FP32 storage in every precision): pedantic FP32 in fp32,
 * TF32 tensor cores in tf32, BF16 tensor cores (operands rounded to BF16, FP32 sums) in bf16. */
cublasComputeType_t gan_cuda_gemm_compute_type(gan_precision precision);

/* The library enums for our argument enums. */
cublasOperation_t gan_cuda_cublas_op(gan_cublas_op op);
cudnnConvolutionMode_t gan_cuda_cudnn_conv_mode(gan_cudnn_conv_mode mode);

/* ---- the backend's state ------------------------------------------------------------------ */

/* How a pass's algorithm was chosen (src/backend/cuda_conv.c). */
typedef enum gan_cuda_chosen_by {
    GAN_CUDA_CHOSEN_HEURISTIC,
    GAN_CUDA_CHOSEN_MEASURED,
    GAN_CUDA_CHOSEN_STORED,
    GAN_CUDA_CHOSEN_FALLBACK
} gan_cuda_chosen_by;

/* The algorithm of one pass: cuDNN's enum value for the pass, its math type and layout, its
 * workspace and the milliseconds a search measured (0 when none did). */
typedef struct gan_cuda_pass_plan {
    bool planned;                 /* chosen (a sub-pixel form's inner plan has its forward only) */
    int algo;
    cudnnMathType_t math;
    gan_conv_layout layout;       /* of cuDNN's tensors (NCHW for the forms of ours) */
    size_t bytes;
    float ms;
    gan_cuda_chosen_by chosen_by;
} gan_cuda_pass_plan;

/* One convolution geometry's descriptors and the algorithm chosen for each of its passes
 * (indexed by gan_conv_pass), chosen once: when the model plans its workspace. */
typedef struct gan_cuda_conv_plan {
    gan_conv_geom geom;
    /* indexed by gan_conv_layout: built for the layouts of gan_cuda_conv_layouts (NULLs for the
     * others) */
    gan_cuda_conv_descriptors desc[2];
    gan_cuda_pass_plan pass[3];
    /* The backward-data's algo is GAN_CONV_ALGO_SUBPIXEL: the plan (index into conv_plans) of its
     * inner convolution, whose forward it runs; -1 otherwise. */
    int subpixel_inner;
} gan_cuda_conv_plan;

/* What ops queued on one stream use (gan/backend.h side_fork): each stream its own handles and
 * scratch, so that work on one shares nothing with work on the other. */
typedef struct gan_cuda_lane {
    cudaStream_t stream;
    cudnnHandle_t cudnn;    /* set to `stream` */
    cublasHandle_t cublas;  /* set to `stream`, with cublas_workspace */
    void *cublas_workspace; /* [gan_cuda_impl.cublas_workspace_bytes], given to cublasSetWorkspace */
    /* [GAN_CUDA_BN_SCRATCH_DOUBLES]: the chunks' sums of a batch norm between its launches
     * (kernels/gan_kernels.h, gan_cuda_bn_chunks). One buffer serves every batch norm queued on
     * the stream: they run one after another. */
    double *bn_scratch;
} gan_cuda_lane;

typedef struct gan_cuda_impl {
    gan_backend *backend;         /* the op table in front of this (its gemm runs the im2col form) */
    int device;
    int compute_capability_major; /* 8 and above have TF32 */
    int compute_capability_minor;
    char gpu_name[GAN_CONV_CHOICE_GPU_CHARS]; /* cudaDeviceProp.name, '"' and controls as '_' */
    long cudnn_version;           /* cudnnGetVersion() */
    /* The lane every op is queued on now: lanes[0]'s (main), or lanes[1]'s (side) between
     * side_fork and side_return (on_side). Uploads, downloads, the staging buffers' events and
     * captures are main's only. lanes[1] is all NULL where GAN_CUDA_SIDE_STREAM=never. */
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *cublas_workspace;
    double *bn_scratch;
    gan_cuda_lane lanes[2];
    size_t cublas_workspace_bytes; /* each lane's */
    cudaEvent_t fork_event, join_event;
    bool on_side;       /* between side_fork and side_return */
    bool side_unjoined; /* work queued on side since the last side_join */
    gan_precision precision;      /* the backend's options, fixed at creation */
    bool deterministic;
    size_t workspace_budget_bytes; /* the most one convolution may use */
    gan_cuda_conv_plan *conv_plans;
    int conv_plan_count, conv_plan_capacity;
    gan_conv_choices choices;     /* imported and measured algorithm choices (conv_choices.h) */
    size_t allocated_bytes;       /* device memory taken through alloc, for reports */
    /* Uploads go through two pinned host buffers in turn: the caller's bytes are copied into
     * one, the device copy from it is queued, and the call returns while it runs (the buffer is
     * reused only once its event says the copy is done). */
    void *staging[2];
    size_t staging_bytes[2];
    cudaEvent_t staging_done[2];
    int staging_next;
    bool capturing;               /* between capture_begin and capture_end */
    /* A data-parallel run (options.dist active): the NCCL communicator (ncclComm_t), made at the
     * first all-reduce (cuda_dist.c); NULL until then. */
    void *nccl_comm;
} gan_cuda_impl;

/* The batch norms' scratch: 64 chunks of 512 channels (more channels take fewer chunks), 512 KiB. */
#define GAN_CUDA_BN_SCRATCH_DOUBLES ((size_t)1 << 16)

static inline gan_cuda_impl *gan_cuda_impl_of(gan_backend *be) { return (gan_cuda_impl *)be->impl; }

/* The module's entry points (libgan_cuda.so), looked up by name by src/backend/load_cuda.c, which
 * implements gan/cuda_backend.h's functions with them. */
gan_status gan_cuda_module_backend_create(const gan_backend_options *options, gan_backend **out);
gan_status gan_cuda_module_get_versions(gan_cuda_versions *out);

/* cuda_dist.c: the all-reduces of a data-parallel run (NCCL), the communicator's end, and
 * whether this build has NCCL. */
gan_status gan_cuda_allreduce_sum(gan_backend *be, float *data, size_t count, float scale);
gan_status gan_cuda_allreduce_sum_f64(gan_backend *be, double *data, size_t count);
void gan_cuda_dist_close(gan_cuda_impl *impl);
bool gan_cuda_has_nccl(void);

/* cuda_conv.c: the op-table functions, and the cache of plans. */
size_t gan_cuda_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g, unsigned passes);
gan_status gan_cuda_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x,
                                 const float *w, float *y, void *workspace);
gan_status gan_cuda_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                       const float *w, float *dx, void *workspace);
/* The same passes with an activation applied on the way out (the op table's conv_forward_act,
 * conv_backward_data_act): by the kernel of ours that ends the pass where there is one (an NHWC
 * copy back, the sub-pixel gather), else by one more launch. */
gan_status gan_cuda_conv_forward_act(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                     gan_activation act, float slope, float *y, void *workspace);
gan_status gan_cuda_conv_backward_data_act(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                           const float *w, gan_activation act, float slope, float *dx,
                                           void *workspace);
gan_status gan_cuda_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                         const float *dy, float beta, float *dw, void *workspace);
gan_status gan_cuda_conv_grads(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy, float beta,
                               float *dw, gan_conv_pass other, const float *w, float *out, const void *kept,
                               void *workspace);
size_t gan_cuda_conv_keep_bytes(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass);
gan_status gan_cuda_conv_keep_pass(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, const float *in,
                                   const float *w, int act, float slope, float *out, void *keep, void *workspace);
gan_status gan_cuda_conv_keep_images(gan_backend *be, const gan_conv_geom *g, const uint8_t *pixels, void *keep);
size_t gan_cuda_conv_weight_copy_bytes(gan_backend *be, const gan_conv_geom *g);
gan_status gan_cuda_conv_weight_copies(gan_backend *be, int count, const gan_conv_weight_copy *copies);
/* Forgets every plan and choice (when the backend is destroyed). */
void gan_cuda_conv_plans_clear(gan_cuda_impl *impl);
gan_status gan_cuda_conv_choices_export(gan_backend *be, char **text);
gan_status gan_cuda_conv_choices_import(gan_backend *be, const char *text, const char *source);
void gan_cuda_conv_describe(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, char *out,
                            size_t bytes);

#endif
