/* The backend op table: every piece of math the layers need, as function pointers, so that layers
 * never know which backend runs them. All pointers passed to these functions are backend memory
 * (host memory for cpu, device memory for cuda) unless a parameter name says `host_`.
 * Layout is NCHW everywhere; GEMMs are row-major (the CUDA backend maps them onto column-major
 * cuBLAS, see src/backend/cuda_backend.c). Ops that produce a parameter gradient take `beta`:
 * out = beta * out + gradient, so the trainer can accumulate the real and fake passes of D as
 * PyTorch's two backward() calls do. */
#ifndef GAN_BACKEND_H
#define GAN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/dist.h"
#include "gan/error.h"
#include "gan/elementwise_math.h"
#include "gan/precision.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A 2-d convolution as cuDNN and PyTorch define it (cross-correlation): input x [n, c_in, h_in,
 * w_in], weight [c_out, c_in, k_h, k_w], output y [n, c_out, h_out, w_out] with
 * h_out = (h_in + 2 pad_h - k_h) / stride_h + 1. A transposed convolution uses the same geometry
 * with its input as this y and its output as this x. */
/* How a tensor between two layers is stored. FP32 NCHW is every op's and every backend's; NHWC
 * ([n, h, w, c]: what the tensor cores read) is the CUDA backend's between layers that all have
 * ops for it (src/nn/model.c: the model's edges; gan_backend.edge_storage): BF16 NHWC (half the
 * bytes) in bf16, FP32 NHWC in tf32. Only the ops that say so take them. */
typedef enum gan_storage {
    GAN_STORAGE_F32_NCHW = 0,
    GAN_STORAGE_BF16_NHWC = 1,
    GAN_STORAGE_F32_NHWC = 2
} gan_storage;

/* Bytes of one element in storage s. */
static inline size_t gan_storage_element_bytes(gan_storage s)
{
    return s == GAN_STORAGE_BF16_NHWC ? 2 : 4;
}

/* The channels of one 16-byte group in storage s (8 BF16 or 4 FP32 values): a tensor stored NHWC
 * has its channels in whole groups, cuDNN's NHWC operands without padding. */
static inline int gan_storage_channel_group(gan_storage s)
{
    return 16 / (int)gan_storage_element_bytes(s);
}

typedef struct gan_conv_geom {
    int n;
    int c_in, h_in, w_in;
    int c_out, h_out, w_out;
    int k_h, k_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
    /* How x (and dx) and y (and dy) are stored: FP32 NCHW (0, the default) unless a model's edge
     * says otherwise (CUDA only, in its precision's NHWC storage: BF16 in bf16, FP32 in tf32;
     * every other backend and form refuses NHWC). Not part of the shape: gan_conv_geom_equal
     * ignores them. w_storage NHWC: the forward and backward-data read w from the layer's KRSC
     * copy in that storage (conv_weight_copies), given as w; the weight gradient stays FP32 NCHW. */
    gan_storage x_storage, y_storage, w_storage;
} gan_conv_geom;

/* Whether a and b are the same shape (their storage aside). */
static inline bool gan_conv_geom_equal(const gan_conv_geom *a, const gan_conv_geom *b)
{
    return a->n == b->n && a->c_in == b->c_in && a->h_in == b->h_in && a->w_in == b->w_in &&
           a->c_out == b->c_out && a->h_out == b->h_out && a->w_out == b->w_out &&
           a->k_h == b->k_h && a->k_w == b->k_w && a->stride_h == b->stride_h &&
           a->stride_w == b->stride_w && a->pad_h == b->pad_h && a->pad_w == b->pad_w;
}

/* One convolution's weight copy (conv_weight_copies): g's FP32 weights w into `copy`. */
typedef struct gan_conv_weight_copy {
    const gan_conv_geom *g;
    const float *w;
    void *copy;
} gan_conv_weight_copy;

/* The three calls of a convolution geometry. */
typedef enum gan_conv_pass {
    GAN_CONV_FORWARD,
    GAN_CONV_BACKWARD_DATA,
    GAN_CONV_BACKWARD_FILTER
} gan_conv_pass;

/* Passes as bits of a mask (conv_workspace_bytes: the passes a caller will run). */
#define GAN_CONV_PASS_BIT(pass) (1u << (unsigned)(pass))
#define GAN_CONV_PASSES_ALL                                                                         \
    (GAN_CONV_PASS_BIT(GAN_CONV_FORWARD) | GAN_CONV_PASS_BIT(GAN_CONV_BACKWARD_DATA) |               \
     GAN_CONV_PASS_BIT(GAN_CONV_BACKWARD_FILTER))

/* A 2-d pooling window as PyTorch's max_pool2d / avg_pool2d define it (no dilation, ceil_mode
 * False): x [n, c, h_in, w_in] -> y [n, c, h_out, w_out] with
 * h_out = (h_in + 2 pad_h - k_h) / stride_h + 1, padding at most half the window (pad <= k / 2,
 * PyTorch's own limit). Padded positions never win a maximum. */
typedef struct gan_pool2d_geom {
    int n, c;
    int h_in, w_in, h_out, w_out;
    int k_h, k_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
} gan_pool2d_geom;

typedef enum gan_activation {
    GAN_ACT_RELU,
    GAN_ACT_LRELU,
    GAN_ACT_TANH,
    GAN_ACT_SIGMOID
} gan_activation;

/* conv_keep_pass's `act` for no activation. */
enum { GAN_CONV_NO_ACT = -1 };

/* Whether `act` is one of gan_activation's values (the ops that take one refuse any other). */
static inline bool gan_activation_known(int act)
{
    return act == GAN_ACT_RELU || act == GAN_ACT_LRELU || act == GAN_ACT_TANH || act == GAN_ACT_SIGMOID;
}

/* What a backend is, for code that must treat one differently (the benchmarks' peak, reports):
 * ask `kind`, never compare `name`. */
typedef enum gan_backend_kind { GAN_BACKEND_CPU, GAN_BACKEND_CUDA } gan_backend_kind;

/* How a backend computes, fixed when it is opened (gan_backend_open) and never changed after: the
 * algorithms and their workspaces are chosen from these when the models are planned.
 *   precision      fp32 (default) or tf32 (train.precision; the CPU backend refuses tf32);
 *   deterministic  true (default): the same inputs give the same bits, run after run (cuDNN's
 *                  deterministic algorithms only); false: any algorithm (the CPU backend is
 *                  deterministic either way);
 *   workspace_bytes  the most scratch memory one convolution may use; 0: the backend's default;
 *   device_index   the GPU, as CUDA_VISIBLE_DEVICES presents them (`--device cuda:N`);
 *   dist           the process group of a data-parallel run (gan/dist.h), NULL for one process:
 *                  with an active group the backend offers the all-reduces below (the CPU's over
 *                  MPI, the CUDA backend's over an NCCL communicator it makes at open, its unique
 *                  id broadcast from rank 0); the group must outlive the backend.
 * fp32 + deterministic is the parity mode every test checks against PyTorch. */
typedef struct gan_backend_options {
    gan_precision precision;
    bool deterministic;
    size_t workspace_bytes;
    int device_index;
    const gan_dist *dist;
} gan_backend_options;

/* fp32, deterministic, the default workspace, device 0. */
gan_backend_options gan_backend_options_default(void);

/* A position or count that may live in backend memory: an op uses *base + offset (base NULL:
 * offset alone). The counts a training step advances (Philox positions, Adam's step) are read
 * this way, on the backend, so that a captured iteration (capture_begin below) replays with the
 * values the previous replay left: the host passes the same (base, offset) every iteration and
 * advance_counts moves the base. */
typedef struct gan_count {
    const uint64_t *base; /* backend memory, or NULL */
    uint64_t offset;
} gan_count;

static inline gan_count gan_count_of(uint64_t value)
{
    gan_count c = {NULL, value};
    return c;
}

/* counts[i] += add[i] for i < n, on the backend (one launch). */
enum { GAN_MAX_ADVANCED_COUNTS = 8 };
typedef struct gan_count_advance {
    uint64_t *count[GAN_MAX_ADVANCED_COUNTS]; /* backend memory */
    uint64_t add[GAN_MAX_ADVANCED_COUNTS];
    int n;
} gan_count_advance;

/* A captured sequence of ops (backend-private). */
typedef struct gan_graph gan_graph;

typedef struct gan_backend gan_backend;

struct gan_backend {
    const char *name;            /* "cpu" or "cuda": for messages only */
    gan_backend_kind kind;
    gan_backend_options options; /* in effect (workspace_bytes resolved to the backend's) */
    void *impl;                  /* backend-private state */
    /* The storage a model may keep the tensors between its layers in (gan_storage; src/nn/model.c
     * decides which edges): the CUDA backend's NHWC, BF16 in bf16 and FP32 in tf32
     * (GAN_CUDA_STORAGE=never turns it off, and so does GAN_CUDA_NHWC=never in tf32). That backend
     * then has the stored batch norm and activation ops, takes such x and y in its convolutions
     * (gan_conv_geom.x_storage, y_storage) and makes weight copies once per forward
     * (conv_weight_copies). GAN_STORAGE_F32_NCHW (none) everywhere else. */
    gan_storage edge_storage;

    /* ---- memory: used by the pool at start-up and by I/O, never inside the loop ----------- */
    gan_status (*alloc)(gan_backend *be, size_t bytes, void **out);
    void (*free)(gan_backend *be, void *ptr);
    gan_status (*upload)(gan_backend *be, void *dst, const void *host_src, size_t bytes);
    gan_status (*download)(gan_backend *be, void *host_dst, const void *src, size_t bytes);
    gan_status (*copy)(gan_backend *be, void *dst, const void *src, size_t bytes);
    gan_status (*fill)(gan_backend *be, float *dst, float value, size_t count);
    /* Waits for all queued work (a no-op on cpu). */
    gan_status (*synchronize)(gan_backend *be);

    /* ---- dense math ---------------------------------------------------------------------- */
    /* Row-major C[m, n] = alpha * op(A) op(B) + beta * C, op(A) is [m, k], op(B) is [k, n]. */
    gan_status (*gemm)(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k,
                       float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc);

    /* Scratch memory a convolution call may use, planned once per geometry: the most any pass in
     * `passes` (GAN_CONV_PASS_BIT of each, or GAN_CONV_PASSES_ALL) needs. A caller that runs only
     * some passes (an inference-only model, the FID network) names them, so that a backend that
     * chooses algorithms by trial (CUDA) times no others; a pass not named may still be called,
     * and is then chosen at the call, within no workspace. */
    size_t (*conv_workspace_bytes)(gan_backend *be, const gan_conv_geom *g, unsigned passes);
    /* y = conv(x, w) */
    gan_status (*conv_forward)(gan_backend *be, const gan_conv_geom *g, const float *x,
                               const float *w, float *y, void *workspace);
    /* dx = conv^T(dy, w): the gradient of conv_forward with respect to x (overwrites dx). */
    gan_status (*conv_backward_data)(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                     const float *w, float *dx, void *workspace);
    /* dw = beta * dw + dL/dw */
    gan_status (*conv_backward_filter)(gan_backend *be, const gan_conv_geom *g, const float *x,
                                       const float *dy, float beta, float *dw, void *workspace);
    /* Optional (NULL where a backend has none: the layers then run the two ops apart): forward,
     * and backward-data (a transposed convolution's forward), with the activation `act` (ReLU,
     * LeakyReLU, tanh or sigmoid) applied to the output on its way out: out = act(conv), bit for
     * bit what the pass followed by activation_forward gives, in one op (the CPU applies it in
     * cache; CUDA in the kernel of ours that ends the pass where there is one: an NHWC copy back,
     * the sub-pixel gather). The workspace is the plain pass's. The model runs a Conv2d or
     * ConvTranspose2d followed by an activation through them (src/nn/model.c). */
    gan_status (*conv_forward_act)(gan_backend *be, const gan_conv_geom *g, const float *x,
                                   const float *w, gan_activation act, float slope, float *y,
                                   void *workspace);
    gan_status (*conv_backward_data_act)(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                         const float *w, gan_activation act, float slope, float *dx,
                                         void *workspace);
    /* Optional (NULL where a backend has none: the layers then make the two calls): a layer's two
     * backward passes in one op, where both are wanted. They read one tensor in common, which a
     * backend that copies its inputs (CUDA in NHWC) then copies once: dw = beta * dw + dL/dw
     * (conv_backward_filter(x, dy)) and, by `other`:
     *   GAN_CONV_BACKWARD_DATA: out = conv^T(dy, w), a Conv2d's dx (dy in common);
     *   GAN_CONV_FORWARD:       out = conv(x, w), a ConvTranspose2d's dx (x in common: its
     *                           convolution's x is the layer's dy).
     * Bit for bit the two ops, with the same workspace. `kept`: NULL, or the copy a layer's
     * conv_keep_pass left (below) of the backward-filter's other input (a Conv2d's x, a
     * ConvTranspose2d's dy), read in place of copying that input again; `x` or `dy` must still
     * hold the values the copy was made from. `out` NULL: the backward-filter alone (a layer
     * whose input gradient is not wanted), on `kept` where given; `w` is then not read. */
    gan_status (*conv_grads)(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy, float beta,
                             float *dw, gan_conv_pass other, const float *w, float *out, const void *kept,
                             void *workspace);
    /* Optional (NULL where a backend copies no inputs: the layers then keep nothing). A layer's
     * forward pass, `pass` (GAN_CONV_FORWARD: a Conv2d's; GAN_CONV_BACKWARD_DATA: a
     * ConvTranspose2d's), copies its input `in` (x, or dy) where the backend runs the pass on
     * copies (CUDA in NHWC); the backward-filter reads that input too. conv_keep_bytes: the bytes
     * of that copy where both passes of g make it alike, else 0 (nothing to keep). conv_keep_pass:
     * the pass, with `act` (a gan_activation, or GAN_CONV_NO_ACT) as conv_forward_act and
     * conv_backward_data_act apply it, its copy of `in` made into `keep` (conv_keep_bytes of it)
     * and left there for conv_grads; the same bits as the plain pass. `in` NULL: `keep` holds
     * the copy already (conv_keep_images made it), and the pass reads it. */
    size_t (*conv_keep_bytes)(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass);
    /* Optional (NULL where conv_keep_bytes is): the uint8 batch `pixels` [g->n, g->h_in, g->w_in,
     * g->c_in] (NHWC, 0..255) converted straight into the copy conv_keep_pass makes of g's forward
     * input (the conv_keep_bytes(g, GAN_CONV_FORWARD) bytes at `keep`, which must not be 0), as
     * images_to_float would map it into [-1, 1]: the same bits as images_to_float followed by
     * conv_keep_pass's copy, in one pass. A model's first Conv2d then runs on the real batch
     * without its FP32 NCHW form (conv_keep_pass with `in` NULL). */
    gan_status (*conv_keep_images)(gan_backend *be, const gan_conv_geom *g, const uint8_t *pixels, void *keep);
    /* Optional (CUDA with edge_storage; NULL elsewhere): a layer's weights in the layout its passes
     * read (KRSC, in the edge storage's type), copied once per model forward for all its
     * convolutions in one launch (conv_weight_copies, each copy conv_weight_copy_bytes of its g, 0
     * where there is none) and
     * read by the forward and backward-data of g with w_storage NHWC, the copy given as w,
     * instead of copying w at each pass. The copy must be made after the weights last changed
     * (src/nn/model.c makes them at the start of every forward; the backward that follows reads
     * them: the weights only change after it). */
    size_t (*conv_weight_copy_bytes)(gan_backend *be, const gan_conv_geom *g);
    gan_status (*conv_weight_copies)(gan_backend *be, int count, const gan_conv_weight_copy *copies);
    gan_status (*conv_keep_pass)(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, const float *in,
                                 const float *w, int act, float slope, float *out, void *keep, void *workspace);
    /* y[n, c, hw] += bias[c] */
    gan_status (*bias_forward)(gan_backend *be, int n, int c, int hw, const float *bias, float *y);
    /* db = beta * db + sum over n, hw of dy */
    gan_status (*bias_backward)(gan_backend *be, int n, int c, int hw, const float *dy, float beta,
                                float *db);

    /* ---- batch norm over [n, c, hw] per channel c (hw = 1 for BatchNorm1d) ---------------- *
     * Training: y = gamma (x - mean) * invstd + beta with the biased batch variance; saves mean
     * and invstd for backward; running = (1 - momentum) running + momentum * batch stat, with
     * the unbiased variance, as PyTorch does. */
    gan_status (*bn_forward_train)(gan_backend *be, int n, int c, int hw, const float *x,
                                   const float *gamma, const float *beta, float momentum, float eps,
                                   float *running_mean, float *running_var, float *save_mean,
                                   float *save_invstd, float *y);
    gan_status (*bn_forward_eval)(gan_backend *be, int n, int c, int hw, const float *x,
                                  const float *gamma, const float *beta, const float *running_mean,
                                  const float *running_var, float eps, float *y);
    /* dx (overwritten); dgamma, dbeta = param_beta * old + gradient. */
    gan_status (*bn_backward)(gan_backend *be, int n, int c, int hw, const float *x,
                              const float *dy, const float *gamma, const float *save_mean,
                              const float *save_invstd, float *dx, float param_beta, float *dgamma,
                              float *dbeta);
    /* Optional, NULL where a backend has none (the layers then run the ops apart): batch norm
     * with the ReLU or LeakyReLU (slope >= 0) after it. bn_act_forward_train is bn_forward_train
     * into y then activation_forward into y_act; bn_act_backward is bn_backward of the gradient
     * activation_backward gives from y_act and dy_act (LeakyReLU from its output: positive
     * exactly where its input is), in the same passes, without writing that gradient. The same
     * values as the ops apart. */
    gan_status (*bn_act_forward_train)(gan_backend *be, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *beta, float momentum,
                                       float eps, float *running_mean, float *running_var,
                                       float *save_mean, float *save_invstd, float *y,
                                       gan_activation act, float slope, float *y_act);
    gan_status (*bn_act_backward)(gan_backend *be, int n, int c, int hw, const float *x,
                                  const float *y_act, const float *dy_act, gan_activation act,
                                  float slope, const float *gamma, const float *save_mean,
                                  const float *save_invstd, float *dx, float param_beta,
                                  float *dgamma, float *dbeta);
    /* Optional, NULL where a backend keeps every tensor FP32 NCHW (no edge_storage): batch norm
     * with the ReLU or LeakyReLU after it (`act`, slope >= 0) or none (GAN_CONV_NO_ACT), over
     * tensors in the given storages (gan_storage): x and dx in `in`, y, y_act and dy in `out`. The
     * arguments and results of bn_act_forward_train (y_act unused without act), bn_forward_eval
     * and bn_act_backward (y_act NULL without act) otherwise, BF16 values rounded to nearest even
     * on the way out. The batch norm layer runs through them next to an NHWC edge. */
    gan_status (*bn_stored_forward_train)(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                          const float *gamma, const float *beta, float momentum, float eps,
                                          float *running_mean, float *running_var, float *save_mean,
                                          float *save_invstd, gan_storage out, void *y, int act, float slope,
                                          void *y_act);
    gan_status (*bn_stored_forward_eval)(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                         const float *gamma, const float *beta, const float *running_mean,
                                         const float *running_var, float eps, gan_storage out, void *y);
    gan_status (*bn_stored_backward)(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                     gan_storage out, const void *y_act, const void *dy, int act, float slope,
                                     const float *gamma, const float *save_mean, const float *save_invstd,
                                     void *dx, float param_beta, float *dgamma, float *dbeta);

    /* ---- data parallel (docs/DESIGN.md "Data parallel"): a run on one process calls none of these.
     * The all-reduces are present when the backend was opened with an active process group
     * (options.dist), NULL otherwise: data[count] = scale * (the sum of data[count] over the
     * ranks), in place, queued like any op (on CUDA: ncclAllReduce on the backend's stream, so a
     * captured iteration replays it); the same bits on every rank. ------------------------------ */
    gan_status (*allreduce_sum)(gan_backend *be, float *data, size_t count, float scale);
    /* data[count] = the sum over the ranks, in place, in double (batch norm's statistics). */
    gan_status (*allreduce_sum_f64)(gan_backend *be, double *data, size_t count);
    /* Optional (NULL where a backend has none: train.sync_bn is then refused on several ranks):
     * batch norm with its statistics summed over the ranks (train.sync_bn): the training forward
     * and backward split where the sums are, so that an allreduce_sum_f64 can run in between.
     * `count` is the values per channel over all ranks (the global batch times hw); `act`,
     * `slope` and `y_act` as in bn_act_forward_train, with y_act NULL for no activation. With the
     * all-reduces skipped (one rank) every value is bit for bit what bn_forward_train /
     * bn_act_forward_train and bn_backward / bn_act_backward give.
     *   bn_sums:             sums[c] = sum of x per channel (double)
     *   bn_centered_squares: squares[c] = sum of (x - mean)^2, mean = (float)(sums / count)
     *   bn_forward_from_sums: y (and y_act), save_mean, save_invstd and the running statistics
     *                        from the summed statistics */
    gan_status (*bn_sums)(gan_backend *be, int n, int c, int hw, const float *x, double *sums);
    gan_status (*bn_centered_squares)(gan_backend *be, int n, int c, int hw, const float *x,
                                      const double *sums, double count, double *squares);
    gan_status (*bn_forward_from_sums)(gan_backend *be, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *beta, float momentum,
                                       float eps, const double *sums, const double *squares,
                                       double count, float *running_mean, float *running_var,
                                       float *save_mean, float *save_invstd, float *y,
                                       gan_activation act, float slope, float *y_act);
    /*   bn_backward_sums:      this rank's sums[2c] = (sum g, sum g xhat) per channel, with g the
     *                          gradient at the batch norm's output (through the activation when
     *                          y_act is given); dgamma, dbeta = param_beta * old + this rank's
     *                          sums (the gradient all-reduce adds the ranks' later)
     *   bn_backward_from_sums: dx from the summed sums */
    gan_status (*bn_backward_sums)(gan_backend *be, int n, int c, int hw, const float *x,
                                   const float *y_act, const float *dy, gan_activation act,
                                   float slope, const float *save_mean, const float *save_invstd,
                                   float param_beta, float *dgamma, float *dbeta, double *sums);
    gan_status (*bn_backward_from_sums)(gan_backend *be, int n, int c, int hw, const float *x,
                                        const float *y_act, const float *dy, gan_activation act,
                                        float slope, const float *gamma, const float *save_mean,
                                        const float *save_invstd, const double *sums, double count,
                                        float *dx);

    /* ---- activations, dropout ------------------------------------------------------------ */
    gan_status (*activation_forward)(gan_backend *be, gan_activation kind, float slope,
                                     size_t count, const float *x, float *y);
    /* Needs x for lrelu, y for relu, tanh and sigmoid (the other may be NULL). */
    gan_status (*activation_backward)(gan_backend *be, gan_activation kind, float slope,
                                      size_t count, const float *x, const float *y,
                                      const float *dy, float *dx);
    /* Optional (with the stored batch norm above): the two on BF16 tensors (elementwise, so in any
     * layout), each value widened, the float function applied and rounded to nearest even. */
    gan_status (*activation_bf16_forward)(gan_backend *be, gan_activation kind, float slope, size_t count,
                                          const void *x, void *y);
    gan_status (*activation_bf16_backward)(gan_backend *be, gan_activation kind, float slope, size_t count,
                                           const void *x, const void *y, const void *dy, void *dx);
    /* mask[i] = keep-scale (0 or 1/(1-p)) from the uniform of Philox element first + i of
     * (seed, stream); y = x * mask. The mask is what backward multiplies by. */
    gan_status (*dropout_forward)(gan_backend *be, size_t count, float p, uint64_t seed,
                                  uint64_t stream, gan_count first, const float *x, float *mask,
                                  float *y);
    /* y = a * b elementwise (dropout backward: dx = dy * mask). */
    gan_status (*multiply)(gan_backend *be, size_t count, const float *a, const float *b, float *y);

    /* ---- loss ---------------------------------------------------------------------------- *
     * Mean binary cross-entropy of n logits against one target value; writes the mean loss to
     * loss[0] (backend memory), the mean of sigmoid(logits) to prob_mean[0] (may be NULL), and
     * dlogits = grad_scale * (sigmoid(x) - target) / n (may be NULL). */
    gan_status (*bce_logits)(gan_backend *be, int n, const float *logits, float target,
                             float grad_scale, float *loss, float *prob_mean, float *dlogits);

    /* ---- optimizer: one Adam step over `count` parameters laid out contiguously ---------- *
     * Update number `step` (1, 2, ...: read on the backend), its scalars from
     * gan_adam_scalars_at(hyper, step). */
    gan_status (*adam_step)(gan_backend *be, size_t count, float *param, const float *grad,
                            float *m, float *v, gan_adam_hyper hyper, gan_count step);
    /* The exponential moving average of `count` parameters laid out contiguously (G's weights: one
     * launch per step): ema[i] = decay ema[i] + (1 - decay) param[i], as gan_ema_update computes
     * it (bit for bit PyTorch's decay * ema + (1 - decay) * param on the CPU). */
    gan_status (*ema_update)(gan_backend *be, size_t count, double decay, const float *param,
                             float *ema);

    /* ---- random fills: value i is Philox element first + i of (seed, stream) -------------- */
    gan_status (*rng_normal)(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                             gan_count first, float mean, float std, float *out);
    gan_status (*rng_uniform)(gan_backend *be, size_t count, uint64_t seed, uint64_t stream,
                              gan_count first, float low, float high, float *out);
    /* The counts a step reads through gan_count, advanced on the backend. */
    gan_status (*advance_counts)(gan_backend *be, gan_count_advance advance);

    /* ---- data: uint8 NHWC batch -> float NCHW in [-1, 1] ------------------------------------ */
    gan_status (*images_to_float)(gan_backend *be, int n, int h, int w, int c,
                                  const uint8_t *nhwc, float *nchw);

    /* ---- evaluation: the FID Inception's inference ops (src/eval/inception.c) ------------ *
     * Forward only: nothing trains through them, so they have no backward. */
    /* y = max over each window of x (NaN wins, as in PyTorch). */
    gan_status (*max_pool_forward)(gan_backend *be, const gan_pool2d_geom *g, const float *x,
                                   float *y);
    /* y = the mean of each window of x, the window's values summed in row order in float and
     * divided once: by k_h k_w where count_include_pad, else by the count of the window's
     * positions inside x (TensorFlow's average pool, which pytorch-fid's FID blocks use). */
    gan_status (*avg_pool_forward)(gan_backend *be, const gan_pool2d_geom *g,
                                   bool count_include_pad, const float *x, float *y);
    /* y[n, c] = the mean of x[n, c, hw] (summed in order in float, divided once by hw). */
    gan_status (*global_avg_pool)(gan_backend *be, int n, int c, int hw, const float *x,
                                  float *y);
    /* y[i, offset + j, p] = x[i, j, p] for x [n, c, hw] and y [n, y_channels, hw]: one branch
     * of a concatenation along channels (torch.cat(..., 1)). */
    gan_status (*copy_channels)(gan_backend *be, int n, int c, int hw, const float *x,
                                int y_channels, int offset, float *y);
    /* y [n, c, h_out, w_out] = x [n, c, h_in, w_in] resized as
     * F.interpolate(x, (h_out, w_out), mode='bilinear', align_corners=False) computes it
     * (gan_bilinear_taps in gan/elementwise_math.h). */
    gan_status (*resize_bilinear)(gan_backend *be, int n, int c, int h_in, int w_in, int h_out,
                                  int w_out, const float *x, float *y);
    /* y[n, c, hw] = act(y + bias[c]) in place: the epilogue of a convolution whose batch norm
     * is folded into its weights and bias. */
    gan_status (*bias_act_forward)(gan_backend *be, int n, int c, int hw, const float *bias,
                                   gan_activation act, float slope, float *y);
    /* Optional, NULL where a backend has none (the caller then runs conv_forward,
     * bias_act_forward and copy_channels): y = act(conv(x, w) + bias) written into channels
     * offset .. offset + c_out - 1 of y [n, y_channels, h_out, w_out] -- a convolution with its
     * batch norm folded in, straight into its place in a concatenation, the bias and activation
     * applied while the output is in cache. The same values as the ops apart; the workspace is
     * conv_workspace_bytes(g, GAN_CONV_PASS_BIT(GAN_CONV_FORWARD))'s. */
    gan_status (*conv_bias_act_forward)(gan_backend *be, const gan_conv_geom *g, const float *x,
                                        const float *w, const float *bias, gan_activation act,
                                        float slope, int y_channels, int offset, float *y,
                                        void *workspace);

    /* ---- graphs: optional, NULL where a backend has none (the CPU's) ---------------------- *
     * capture_begin: the ops queued from now on are recorded, not run, until capture_end hands
     * them back as a graph; graph_launch runs a graph's ops again, on the same buffers and with
     * the same arguments (which is why per-step values must come through gan_count).
     * Allocation, upload, download and synchronize are not allowed while capturing. */
    gan_status (*capture_begin)(gan_backend *be);
    gan_status (*capture_end)(gan_backend *be, gan_graph **graph);
    gan_status (*graph_launch)(gan_backend *be, gan_graph *graph);
    void (*graph_destroy)(gan_backend *be, gan_graph *graph);
    /* A graph in a few words for reports (gan bench train): its nodes by kind. Optional. */
    void (*graph_describe)(gan_backend *be, gan_graph *graph, char *out, size_t bytes);

    /* ---- a side stream: optional, NULL where a backend runs every op in order (the CPU's) --- *
     * side_fork: the ops called from now on run on a second stream, after everything queued so
     * far, beside what is queued later on the first; side_return: the ops called from now on go
     * to the first stream again (without waiting for the side); side_join: the first stream waits
     * for everything queued on the side so far (nothing to do where nothing was). Between a fork and the join, the caller must not
     * let the two streams share memory that either writes: a side op gets its own workspace, and
     * what it reads or writes is left alone on the first stream until the join (the backend's own
     * scratch, cuBLAS's workspace and the batch norms', is per stream). Inside a capture the fork
     * and the join are the graph's edges; capture_end joins. Upload, download, synchronize (which
     * waits for both streams), captures and the all-reduces are refused between side_fork and
     * side_return. A model puts its weight-gradient passes there (src/nn/conv_layer.c), and the
     * trainer G's forward beside D on the real batch (src/train/trainer.c). */
    gan_status (*side_fork)(gan_backend *be);
    gan_status (*side_return)(gan_backend *be);
    gan_status (*side_join)(gan_backend *be);

    /* ---- convolution algorithm choices: optional, NULL where a backend has none (the CPU's)
     * (gan/conv_choices.h). export: the text of every choice made so far, malloc'd into *text;
     * import: choices to reuse for the geometries planned from now on (`source` names the text
     * in errors). Both are host-only and never called inside a captured region. */
    gan_status (*conv_choices_export)(gan_backend *be, char **text);
    gan_status (*conv_choices_import)(gan_backend *be, const char *text, const char *source);
    /* How `pass` of g runs, in a few words for reports (gan bench ops): the algorithm, its math
     * and how it was chosen. Optional. */
    void (*conv_describe)(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, char *out,
                          size_t bytes);
    /* How a training batch norm over [n, c, hw] runs, in a few words for reports (gan bench ops):
     * on CUDA, the chunks per channel and the launches. Optional. */
    void (*bn_describe)(gan_backend *be, int n, int c, int hw, char *out, size_t bytes);

    void (*destroy)(gan_backend *be);
};

/* Philox elements a fill of `count` values advances its stream's position by: whole blocks, so
 * that positions stay block-aligned (and the elements past the fill in its last block unused). */
static inline uint64_t gan_philox_advance(size_t count) { return ((uint64_t)count + 3u) / 4u * 4u; }

/* NULL when `g` is a window the pooling ops run, else what is wrong with it (for messages). */
static inline const char *gan_pool2d_geom_problem(const gan_pool2d_geom *g)
{
    if (!g)
        return "NULL geometry";
    if (g->n < 1 || g->c < 1 || g->h_in < 1 || g->w_in < 1 || g->h_out < 1 || g->w_out < 1 ||
        g->k_h < 1 || g->k_w < 1 || g->stride_h < 1 || g->stride_w < 1 || g->pad_h < 0 ||
        g->pad_w < 0)
        return "impossible window (sizes, window and stride must be >= 1, padding >= 0)";
    if (2 * g->pad_h > g->k_h || 2 * g->pad_w > g->k_w)
        return "padding larger than half the window";
    if ((long long)g->h_in + 2LL * g->pad_h < g->k_h || (long long)g->w_in + 2LL * g->pad_w < g->k_w ||
        ((long long)g->h_in + 2LL * g->pad_h - g->k_h) / g->stride_h + 1 != g->h_out ||
        ((long long)g->w_in + 2LL * g->pad_w - g->k_w) / g->stride_w + 1 != g->w_out)
        return "output size does not follow from the input, window, stride and padding";
    return NULL;
}

/* The CPU backend: host memory, BLAS, OpenMP. `options` may be NULL (the defaults); a precision
 * other than fp32 is refused with GAN_ERR_UNSUPPORTED. */
gan_status gan_cpu_backend_create(const gan_backend_options *options, gan_backend **out);

#ifdef __cplusplus
}
#endif
#endif
