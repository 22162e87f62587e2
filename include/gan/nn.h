/* Layers and models. A model is a sequence of layers written in the config grammar
 * (`convt(512,4,1,0) bn relu ...`, see docs/DESIGN.md); module i of the sequence is module i of the
 * equivalent PyTorch nn.Sequential, so parameter names line up on export. `flatten` and
 * `reshape(c,h,w)` are views: they change the shape seen by the next layer and take no index.
 *
 * Shapes are inferred when the model is created; a layer that cannot fit is refused with its
 * index and both shapes. Memory is requested from a gan_pool (gan_model_plan), allocated by the
 * pool's commit, and handed out by gan_model_bind: forward and backward allocate nothing. */
#ifndef GAN_NN_H
#define GAN_NN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gan/backend.h"
#include "gan/pool.h"
#include "gan/weight_init.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-sample shape; a flat vector of F features is {F, 1, 1}. */
typedef struct gan_shape {
    int c, h, w;
} gan_shape;

static inline size_t gan_shape_count(gan_shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

typedef enum gan_layer_kind {
    GAN_LAYER_CONV,
    GAN_LAYER_CONVT,
    GAN_LAYER_LINEAR,
    GAN_LAYER_BN,
    GAN_LAYER_RELU,
    GAN_LAYER_LRELU,
    GAN_LAYER_TANH,
    GAN_LAYER_SIGMOID,
    GAN_LAYER_DROPOUT,
    GAN_LAYER_FLATTEN, /* view */
    GAN_LAYER_RESHAPE  /* view */
} gan_layer_kind;

/* One parsed token of a layer sequence. */
typedef struct gan_layer_spec {
    gan_layer_kind kind;
    int out;            /* conv/convt: output channels; linear: output features */
    int kernel, stride, pad;
    bool bias;
    float slope;        /* lrelu */
    float drop_p;       /* dropout */
    gan_shape reshape;  /* reshape(c,h,w) */
} gan_layer_spec;

/* Parses "conv(64,4,2,1) lrelu(0.2) ..." into specs (malloc'ed, caller frees). Errors name the
 * token and its position. */
gan_status gan_layers_parse(const char *text, gan_layer_spec **specs, int *count);
const char *gan_layer_kind_name(gan_layer_kind kind);
/* The op-table activation of an activation layer kind (relu, lrelu, tanh, sigmoid) into *act;
 * false for every other kind. */
bool gan_layer_kind_activation(gan_layer_kind kind, gan_activation *act);

/* Batch norm's constants, PyTorch's defaults for BatchNorm1d/2d: every BN layer uses them, and
 * exports (ONNX) read them from gan_layer_info rather than repeating them. */
#define GAN_BN_EPSILON 1e-5f
#define GAN_BN_MOMENTUM 0.1f

/* A named tensor of a model: a parameter (trainable, has a gradient) or a buffer (running
 * statistics). Names follow PyTorch: `<module index>.weight`, `.bias`, `.running_mean`, ... */
typedef struct gan_param {
    char name[48];      /* "3.weight" (the export adds the prefix: "main.3.weight") */
    int module_index;
    int ndim;
    int64_t dims[4];    /* PyTorch's shape: conv [out, in, k, k], convt [in, out, k, k], linear [out, in] */
    size_t count;
    float *value;       /* backend memory */
    float *grad;        /* NULL for buffers */
    bool trainable;
} gan_param;

typedef enum gan_grad_mode {
    GAN_GRADS_NONE,       /* parameter gradients are not needed (G's step through D) */
    GAN_GRADS_OVERWRITE,  /* grads = this pass's gradient */
    GAN_GRADS_ACCUMULATE  /* grads += this pass's gradient (PyTorch's repeated backward()) */
} gan_grad_mode;

typedef struct gan_layer gan_layer;
typedef struct gan_model gan_model;

struct gan_model {
    char name[32];               /* "G" or "D": used in messages and memory reports */
    gan_backend *backend;
    int batch;
    gan_shape input_shape, output_shape;
    int layer_count;
    gan_layer **layers;          /* modules only (views are folded into shapes) */

    gan_param *params;           /* trainable parameters then buffers, in module order */
    int param_count;
    size_t trainable_count;      /* floats in all trainable parameters */
    size_t buffer_count;         /* floats in all buffers */

    /* Trainable parameters, their gradients and Adam's moments each in one contiguous
     * buffer, so that one Adam launch covers a whole network. */
    float *weights;              /* [trainable_count] */
    float *grads;                /* [trainable_count] */
    float *adam_m, *adam_v;      /* [trainable_count] */
    float *buffers;              /* [buffer_count] running statistics */

    const float *input;          /* the last forward's input (caller's memory) */
    float *grad_input;           /* [batch, input] gradient with respect to the input */
    void *workspace;             /* [workspace_bytes] shared by the convolutions */
    size_t workspace_bytes;
    /* Where the backend has a side stream (gan_backend.side_fork) and the model trains, each
     * convolution that also makes an input gradient queues its weight gradient there, beside the
     * rest of the backward, with this workspace of its own; gan_model_backward joins the side
     * before it returns (model.c). */
    bool side_stream;
    void *side_workspace;        /* [side_workspace_bytes], NULL for none */
    size_t side_workspace_bytes;
    int weight_copies;           /* convolutions reading a weight copy made at each forward (planned) */

    /* Set before gan_model_plan: the model only runs forward and takes its weights from another
     * model (gan_model_share_weights), so no weights, gradients or Adam state are planned. */
    bool inference_only;

    /* With a final sigmoid fused into the loss (the trainer's BCE from logits), forward stops
     * before it and the output is the logits; see gan_model_set_logits_output. */
    int active_layers;

    /* Dropout draws: Philox (dropout_seed, stream = module index) from element
     * *dropout_count + dropout_position; every training forward of a dropout layer advances
     * dropout_position by the elements it drew (whole Philox blocks). dropout_count (backend
     * memory, NULL for none) belongs to whoever trains the model: the trainer adds
     * dropout_position to it at the end of each iteration and sets dropout_position back to 0,
     * so every iteration passes the same arguments and a captured one replays with fresh masks.
     * A model used alone keeps dropout_count NULL and dropout_position counts on. */
    uint64_t dropout_seed;
    const uint64_t *dropout_count;
    uint64_t dropout_position;

    /* A data-parallel run (docs/DESIGN.md "Data parallel"; gan_model_set_data_parallel): this model
     * holds samples sample_offset .. sample_offset + batch - 1 of a global batch of global_batch
     * (0 and batch for one process). Dropout draws by global sample index and advances by the
     * global batch; with sync_bn the batch norms' training statistics are summed over the ranks
     * (the backend's allreduce_sum_f64), so they are the global batch's. */
    int global_batch;
    int sample_offset;
    bool sync_bn;
};

/* Builds the layer list and infers shapes; allocates no backend memory. */
gan_status gan_model_create(const char *name, const char *layers_text, gan_shape input_shape,
                            int batch, gan_backend *backend, gan_model **out);
/* Requests all of the model's backend memory from `pool`. */
gan_status gan_model_plan(gan_model *model, gan_pool *pool);
/* After gan_pool_commit: points every layer at its memory. */
gan_status gan_model_bind(gan_model *model);
/* create + plan + commit + bind with a pool of its own (tests, tools). */
gan_status gan_model_create_allocated(const char *name, const char *layers_text,
                                      gan_shape input_shape, int batch, gan_backend *backend,
                                      gan_pool *pool, gan_model **out);
void gan_model_destroy(gan_model *model);

/* Training mode: BN uses batch statistics and updates running statistics, dropout drops.
 * `input` is [batch, input_shape]; it must stay valid until backward. */
gan_status gan_model_forward(gan_model *model, const float *input, bool training);
/* The input of the next training forward on `input` from the uint8 batch `pixels` [batch, h, w, c]
 * (NHWC, 0..255; h, w, c the model's input shape), mapped into [-1, 1]. Where the model's first
 * layer keeps a copy of its input for its backward (a Conv2d on CUDA in NHWC: conv_keep_images)
 * the pixels go straight into that copy, and `input` is not written: only that forward and its
 * backward (with no input gradient) may read it. Elsewhere `input` gets them (images_to_float). */
gan_status gan_model_images_in(gan_model *model, int h, int w, int c, const uint8_t *pixels, float *input);
/* Whether gan_model_images_in writes the pixels straight into the first layer's copy. */
bool gan_model_takes_images(gan_model *model);
/* The last forward's output: [batch, output_shape] (FP32 NCHW, as the input: only the edges
 * between the model's layers may be stored otherwise). */
float *gan_model_output(gan_model *model);
/* How many of the model's edges (layer outputs) the plan stores NHWC (gan_storage; 0 on every
 * backend but CUDA in tf32 and bf16). */
int gan_model_stored_edges(const gan_model *model);
/* Decides that storage (gan_model_plan does, once train.sync_bn and the logits output are set;
 * the benchmarks call it on models they never plan). */
void gan_model_plan_storage(gan_model *model);
/* Backpropagates `grad_output` ([batch, output_shape]) through the last forward. With
 * `want_grad_input` the gradient with respect to the input lands in model->grad_input. */
gan_status gan_model_backward(gan_model *model, const float *grad_output, gan_grad_mode mode,
                              bool want_grad_input);

/* When the last layer is `sigmoid`, forward and backward skip it so the output is the logits
 * (the loss applies the sigmoid itself). Refused when the last layer is not a sigmoid. */
gan_status gan_model_set_logits_output(gan_model *model, bool logits);

gan_status gan_model_init_weights(gan_model *model, gan_weight_init scheme, uint64_t seed);
gan_status gan_model_zero_grads(gan_model *model);
gan_param *gan_model_find_param(gan_model *model, const char *name);
/* num_batches_tracked of every batch norm, in layer order, into out[max]: returns how many the
 * model has (which may exceed max: then only max are written). add_bn_counts adds delta[n] to
 * them in the same order. */
int gan_model_bn_counts(const gan_model *model, int64_t *out, int max);
void gan_model_add_bn_counts(gan_model *model, const int64_t *delta, int n);
/* num_batches_tracked of the BN module with PyTorch index `module_index` (-1 if not BN). */
int64_t gan_model_bn_batches_tracked(const gan_model *model, int module_index);
gan_status gan_model_set_bn_batches_tracked(gan_model *model, int module_index, int64_t value);
/* Before gan_model_plan: the model is the part of a global batch of `global_batch` samples that
 * starts at sample `sample_offset` (batch = global_batch / ranks, sample_offset = rank * batch);
 * `sync_bn` sums the batch norms' statistics over the ranks (the backend must have the all-reduces
 * and the split batch norm ops). */
gan_status gan_model_set_data_parallel(gan_model *model, int global_batch, int sample_offset,
                                       bool sync_bn);
/* Makes the dropout module `module_index` apply `mask` (backend memory, [batch, features],
 * values 0 or 1/(1-p)) in training forwards instead of drawing one; NULL returns to drawing.
 * PyTorch parity tests use it to replay PyTorch's own masks. */
gan_status gan_model_set_dropout_mask(gan_model *model, int module_index, const float *mask);
/* Points every parameter and buffer of `dst` at those of `src` (same layer sequence, any batch):
 * a second view of one network, e.g. G at the sample grid's batch size. */
gan_status gan_model_share_weights(gan_model *dst, const gan_model *src);
/* The same, but dst's trainable parameters point into `weights` (backend memory laid out as
 * src->weights: a copy of them, such as the trainer's EMA of G) while its buffers (running
 * statistics) stay src's: G with averaged weights and G's own batch norm statistics. */
gan_status gan_model_share_weights_at(gan_model *dst, const gan_model *src, float *weights);
/* A read-only description of one layer of a model, for code outside src/nn (ONNX export, the
 * benchmarks): what the layer is, its shapes, and where it runs. Parameters are found by name
 * with gan_model_find_param ("<index>.weight", ...). */
typedef struct gan_layer_info {
    gan_layer_spec spec;  /* kind, sizes, kernel, stride, pad, bias, slope, drop_p */
    int index;            /* PyTorch module index */
    int position;         /* 0 .. gan_model_layer_count - 1 */
    int batch;
    gan_shape in, out;    /* per sample */
    bool active;          /* runs in forward (false for a sigmoid the loss applies itself) */
    bool fused;           /* an activation that runs inside the batch norm before it (training) */
    bool in_epilogue;     /* an activation the convolution before it applies on its way out */
    float bn_epsilon, bn_momentum; /* batch norm only */
    gan_storage storage;  /* of its output (and output gradient), once planned (gan_model_stored_edges) */
} gan_layer_info;

/* Layers in order (views are folded into the shapes and not counted). */
int gan_model_layer_count(const gan_model *model);
/* Layer `position` (0 .. count - 1); GAN_ERR_ARG past the end. */
gan_status gan_model_layer_info(const gan_model *model, int position, gan_layer_info *out);

/* One line per layer: index, kind, input and output shapes, parameter count. */
void gan_model_print(const gan_model *model, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
