/* gan bench ops: every op of the backend op table at every layer shape of the configs.
 *
 * For each config (default dcgan_celeba64, dcgan_fmnist32) and batch (default 64, 128), G and D
 * are built from the config's layer sequences (shapes only) and, layer by layer, the ops that
 * layer runs in training are called through the op table of the chosen backend, on buffers of
 * its shapes filled with random numbers:
 *   conv, convt, linear: forward, backward-data, backward-filter (a convt's forward is its
 *     convolution's backward-data and its backward-data a forward convolution, src/nn/convt.c);
 *     a conv or convt whose forward training runs with the activation after it applied on the
 *     way out (D's first layer, G's last, where the backend has conv_forward_act and
 *     conv_backward_data_act) also that fused forward; the two backward passes as one op
 *     (conv_grads); where the backend keeps the forward's input copy for the backward-filter
 *     (conv_keep_bytes > 0), the forward that keeps it (with the activation, if fused) and the
 *     backwards on it (both passes; the backward-filter alone where no dx is wanted); at D's
 *     first layer, where the backend converts the uint8 batch straight into that copy
 *     (conv_keep_images), the conversion and the forward on its copy, once per iteration in place
 *     of one of the kept forwards;
 *   bn: training forward (batch statistics, running statistics updated) and backward, and where
 *     training fuses the ReLU/LeakyReLU after it (the backend has bn_act_*), both fused ops;
 *   relu, lrelu, tanh, sigmoid (D's last layer: fused into the loss in training), dropout:
 *     forward and backward;
 * where training keeps a layer's input or output NHWC between layers (CUDA: BF16 in bf16, FP32 in
 * tf32; gan_model_plan_storage), its rows run the ops on that storage (the shape marked "bf16" or
 * "nhwc": the stored batch norm, the BF16 activations, convolutions with stored x and y), and
 * where its passes read a weight copy made once per forward, they read one too, and each model
 * gets a "conv weight copies" row (all its copies in one op: once per forward);
 * then BCE from logits at the batch size and one Adam step over each network's parameters.
 * The iteration's total counts each op as often as training runs it (the x/it column): a fused
 * or kept form in place of the plain ops, which get 0.
 *
 * Timing: W warm-up calls, then R samples; a sample repeats the call enough times to last at
 * least --min-ms (one call for anything slow, many for tiny ops on a GPU), with the backend
 * synchronised before each clock read. Printed: best and median time per call; GFLOP/s for the
 * convolution-like ops (2 N C_out H_out W_out C_in kH kW per pass, 2 N in out for linear) or
 * GB/s for the memory-bound ones (each tensor read or written once: the least traffic the op
 * needs); and the best time's rate as a share of the peak measured in the same run: the gemm
 * peak for GFLOP/s (sgemm on cpu, cuBLAS through the backend's gemm on cuda), the backend's copy
 * bandwidth for GB/s (see bench_util.h).
 *
 * usage: gan bench ops [section.key=value ...] [--device auto|cpu|cuda|cuda:N] [--batch 64,128]
 *                      [--configs dcgan_celeba64,dcgan_fmnist32] [--runs R] [--warmup W]
 *                      [--min-ms M] [--ops conv,bn,act,bce,adam,ema]
 * The overrides apply to every config; train.precision and train.deterministic set the backend's
 * options (one backend serves every config, so they must agree). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "cli/args.h"
#include "gan/conv_choices.h"

enum { MAX_LIST = 16, MAX_BUFFERS = 16 };

enum { MAX_OVERRIDES = 64 };

typedef struct ops_options {
    const char *device;
    const char *overrides[MAX_OVERRIDES];
    int override_count;
    int batches[MAX_LIST], batch_count;
    char configs_text[1024];
    const char *configs[MAX_LIST];
    int config_count;
    int runs, warmup;
    double min_ms;
    char ops_text[256];
    bool want_conv, want_bn, want_act, want_bce, want_adam, want_ema;
} ops_options;

typedef struct peaks {
    double gemm_gflops, copy_gbps;
} peaks;

/* One training iteration's time as the sum of its ops (best time x how often the iteration runs
 * the op), by kind: what the ops alone would cost, to set against `gan bench train`. */
typedef struct iteration_ms {
    double conv, bn, act, loss, adam, ema; /* ema: only with train.ema_decay > 0 */
} iteration_ms;

/* How often one iteration (k = 1, src/train/trainer.c) runs a pass of layer l of model m:
 * D runs forward three times (real, fake, fake again for G), its weight gradients twice and its
 * input gradients three times, except at its first layer (only for G's step); G runs each pass
 * once, no input gradient at its first layer; D's final sigmoid is fused into the loss. */
/* PASS_BACKWARD_BOTH: the backward-data and backward-filter of one backward call (where the
 * layer has both to make, and a backend with conv_grads runs them as one op): D's real and fake
 * backwards of its D step, G's one backward, each except the first layer's (no dx wanted). */
typedef enum pass_kind { PASS_FORWARD, PASS_BACKWARD_DATA, PASS_BACKWARD_FILTER, PASS_BACKWARD_BOTH } pass_kind;

static int passes_per_iteration(const gan_model *m, const gan_layer_info *l, pass_kind pass)
{
    bool is_d = m->name[0] == 'D', first = l->position == 0;
    if (is_d && l->position == gan_model_layer_count(m) - 1 && l->spec.kind == GAN_LAYER_SIGMOID)
        return 0;
    switch (pass) {
    case PASS_FORWARD: return is_d ? 3 : 1;
    case PASS_BACKWARD_FILTER: return is_d ? 2 : 1;
    case PASS_BACKWARD_DATA: return is_d ? (first ? 1 : 3) : (first ? 0 : 1);
    case PASS_BACKWARD_BOTH: return first ? 0 : is_d ? 2 : 1;
    }
    return 0;
}

/* ---- buffers: backend memory for one layer's ops, freed together -------------------------- */
typedef struct buffers {
    gan_backend *be;
    void *ptr[MAX_BUFFERS];
    int count;
    uint64_t stream;
    gan_status status; /* the first failure: later requests do nothing; read it once at the end */
} buffers;

/* count floats of N(mean, std) (std 0: all `mean`) */
static void buffer_floats(buffers *b, size_t count, float mean, float std, float **out)
{
    if (b->status != GAN_OK)
        return;
    if (b->count == MAX_BUFFERS) {
        b->status = gan_error(GAN_ERR_ARG, "bench ops: too many buffers");
        return;
    }
    size_t n = count ? count : 1;
    b->status = b->be->alloc(b->be, n * sizeof(float), &b->ptr[b->count]);
    if (b->status != GAN_OK)
        return;
    float *p = b->ptr[b->count++];
    *out = p;
    b->status = std == 0.0f ? b->be->fill(b->be, p, mean, n)
                            : b->be->rng_normal(b->be, n, 12345, ++b->stream, gan_count_of(0), mean, std, p);
}

static void buffer_bytes(buffers *b, size_t bytes, void **out)
{
    if (b->status != GAN_OK)
        return;
    if (b->count == MAX_BUFFERS) {
        b->status = gan_error(GAN_ERR_ARG, "bench ops: too many buffers");
        return;
    }
    b->status = b->be->alloc(b->be, bytes ? bytes : 64, &b->ptr[b->count]);
    if (b->status == GAN_OK)
        *out = b->ptr[b->count++];
}

static void buffers_free(buffers *b)
{
    for (int i = 0; i < b->count; i++)
        b->be->free(b->be, b->ptr[i]);
    b->count = 0;
}

/* ---- one op call, as data, so one timing loop serves every op ------------------------------ */
typedef enum op_kind {
    OP_CONV_FORWARD,
    OP_CONV_BACKWARD_DATA,
    OP_CONV_BACKWARD_FILTER,
    OP_CONV_FORWARD_ACT,
    OP_CONV_BACKWARD_DATA_ACT,
    OP_CONV_GRADS,
    OP_CONV_KEEP_PASS,
    OP_CONV_KEEP_IMAGES,
    OP_CONV_WEIGHT_COPIES,
    OP_GEMM,
    OP_BN_FORWARD_TRAIN,
    OP_BN_BACKWARD,
    OP_BN_ACT_FORWARD_TRAIN,
    OP_BN_ACT_BACKWARD,
    OP_BN_STORED_FORWARD_TRAIN,
    OP_BN_STORED_BACKWARD,
    OP_ACT_FORWARD,
    OP_ACT_BACKWARD,
    OP_ACT_BF16_FORWARD,
    OP_ACT_BF16_BACKWARD,
    OP_DROPOUT_FORWARD,
    OP_MULTIPLY,
    OP_BCE,
    OP_ADAM,
    OP_EMA
} op_kind;

typedef struct op_call {
    op_kind kind;
    gan_conv_geom geom;
    bool trans_a, trans_b;
    int m, n, k, lda, ldb, ldc; /* gemm; bn: n, c = m, hw = k */
    gan_activation act;
    float slope, p;
    size_t count;
    const float *a, *b, *c, *d, *e, *f; /* inputs, in the op's argument order */
    float *out, *out2, *out3, *out4, *out5, *out6;
    void *workspace;
    gan_adam_hyper adam;
    gan_conv_pass other; /* conv grads: the pass beside the backward-filter; keep pass: the pass */
    void *keep;          /* keep pass: where the input's copy goes; conv grads: the kept copy (or NULL) */
    int keep_act;        /* keep pass: a gan_activation or GAN_CONV_NO_ACT */
    gan_storage in_storage, out_storage; /* stored batch norm: x and dx, y, y_act and dy */
    int stored_act;                      /* stored batch norm: a gan_activation or GAN_CONV_NO_ACT */
    const gan_conv_weight_copy *copies;  /* weight copies: `count` of them */
    const void *pixels;                  /* images kept: the uint8 batch */
} op_call;

static gan_status op_run(gan_backend *be, const op_call *o)
{
    switch (o->kind) {
    case OP_CONV_FORWARD: return be->conv_forward(be, &o->geom, o->a, o->b, o->out, o->workspace);
    case OP_CONV_BACKWARD_DATA: return be->conv_backward_data(be, &o->geom, o->a, o->b, o->out, o->workspace);
    case OP_CONV_BACKWARD_FILTER:
        return be->conv_backward_filter(be, &o->geom, o->a, o->b, 0.0f, o->out, o->workspace);
    case OP_CONV_FORWARD_ACT:
        return be->conv_forward_act(be, &o->geom, o->a, o->b, o->act, o->slope, o->out, o->workspace);
    case OP_CONV_BACKWARD_DATA_ACT:
        return be->conv_backward_data_act(be, &o->geom, o->a, o->b, o->act, o->slope, o->out, o->workspace);
    case OP_CONV_GRADS:
        /* x, dy, w -> dw and (other) dx or y (out2 NULL: dw alone), on the kept copy if any */
        return be->conv_grads(be, &o->geom, o->a, o->b, 0.0f, o->out, o->other, o->c, o->out2, o->keep,
                              o->workspace);
    case OP_CONV_KEEP_PASS:
        /* in, w -> out (the pass `other`), in's copy into keep */
        return be->conv_keep_pass(be, &o->geom, o->other, o->a, o->b, o->keep_act, o->slope, o->out, o->keep,
                                  o->workspace);
    case OP_CONV_KEEP_IMAGES: return be->conv_keep_images(be, &o->geom, o->pixels, o->keep);
    case OP_CONV_WEIGHT_COPIES: return be->conv_weight_copies(be, (int)o->count, o->copies);
    case OP_GEMM:
        return be->gemm(be, o->trans_a, o->trans_b, o->m, o->n, o->k, 1.0f, o->a, o->lda, o->b, o->ldb, 0.0f,
                        o->out, o->ldc);
    case OP_BN_FORWARD_TRAIN:
        /* x, gamma, beta -> running mean, running var, save mean, save invstd, y */
        return be->bn_forward_train(be, o->n, o->m, o->k, o->a, o->b, o->c, 0.1f, 1e-5f, o->out, o->out2, o->out3,
                                    o->out4, o->out5);
    case OP_BN_BACKWARD:
        /* x, dy, gamma, save mean, save invstd -> dx, dgamma, dbeta */
        return be->bn_backward(be, o->n, o->m, o->k, o->a, o->b, o->c, o->d, o->e, o->out, 0.0f, o->out2, o->out3);
    case OP_BN_ACT_FORWARD_TRAIN:
        /* as OP_BN_FORWARD_TRAIN, and act(y) -> out6 */
        return be->bn_act_forward_train(be, o->n, o->m, o->k, o->a, o->b, o->c, 0.1f, 1e-5f, o->out, o->out2,
                                        o->out3, o->out4, o->out5, o->act, o->slope, o->out6);
    case OP_BN_ACT_BACKWARD:
        /* x, act(y), dy at act(y), gamma, save mean, save invstd -> dx, dgamma, dbeta */
        return be->bn_act_backward(be, o->n, o->m, o->k, o->a, o->b, o->c, o->act, o->slope, o->d, o->e, o->f,
                                   o->out, 0.0f, o->out2, o->out3);
    case OP_BN_STORED_FORWARD_TRAIN:
        /* as OP_BN_ACT_FORWARD_TRAIN (act(y) -> out6 where stored_act is one), in their storages */
        return be->bn_stored_forward_train(be, o->n, o->m, o->k, o->in_storage, o->a, o->b, o->c, 0.1f, 1e-5f, o->out,
                                           o->out2, o->out3, o->out4, o->out_storage, o->out5, o->stored_act,
                                           o->slope, o->out6);
    case OP_BN_STORED_BACKWARD:
        /* as OP_BN_ACT_BACKWARD (act(y) NULL without an activation), in their storages */
        return be->bn_stored_backward(be, o->n, o->m, o->k, o->in_storage, o->a, o->out_storage, o->b, o->c,
                                      o->stored_act, o->slope, o->d, o->e, o->f, o->out, 0.0f, o->out2, o->out3);
    case OP_ACT_BF16_FORWARD: return be->activation_bf16_forward(be, o->act, o->slope, o->count, o->a, o->out);
    case OP_ACT_BF16_BACKWARD:
        return be->activation_bf16_backward(be, o->act, o->slope, o->count, o->a, o->b, o->c, o->out);
    case OP_ACT_FORWARD: return be->activation_forward(be, o->act, o->slope, o->count, o->a, o->out);
    case OP_ACT_BACKWARD: return be->activation_backward(be, o->act, o->slope, o->count, o->a, o->b, o->c, o->out);
    case OP_DROPOUT_FORWARD:
        return be->dropout_forward(be, o->count, o->p, 7, 1, gan_count_of(0), o->a, o->out, o->out2);
    case OP_MULTIPLY: return be->multiply(be, o->count, o->a, o->b, o->out);
    case OP_BCE: return be->bce_logits(be, o->n, o->a, 1.0f, 1.0f, o->out, o->out2, o->out3);
    case OP_ADAM: return be->adam_step(be, o->count, o->out, o->a, o->out2, o->out3, o->adam, gan_count_of(1));
    case OP_EMA: return be->ema_update(be, o->count, 0.999, o->a, o->out);
    }
    return gan_error(GAN_ERR_ARG, "bench ops: unknown op");
}

/* Best and median seconds per call. */
static gan_status time_op(gan_backend *be, const op_call *o, const ops_options *opt, double *best, double *median)
{
    for (int i = 0; i < opt->warmup; i++)
        GAN_TRY(op_run(be, o));
    GAN_TRY(be->synchronize(be));
    double t0 = gan_now_s();
    GAN_TRY(op_run(be, o));
    GAN_TRY(be->synchronize(be));
    double once = gan_now_s() - t0;
    double want = opt->min_ms * 1e-3;
    int reps = once >= want ? 1 : (int)ceil(want / (once > 1e-7 ? once : 1e-7));
    reps = reps > 10000 ? 10000 : reps;
    double samples[64];
    int runs = opt->runs > 64 ? 64 : opt->runs;
    for (int r = 0; r < runs; r++) {
        GAN_TRY(be->synchronize(be));
        t0 = gan_now_s();
        for (int i = 0; i < reps; i++)
            GAN_TRY(op_run(be, o));
        GAN_TRY(be->synchronize(be));
        samples[r] = (gan_now_s() - t0) / reps;
    }
    *best = bench_min(samples, runs);
    *median = bench_median(samples, runs);
    return GAN_OK;
}

/* Times the op and prints its row: `flops` > 0 gives GFLOP/s, else `bytes` gives GB/s. */
static gan_status report_op(gan_backend *be, const op_call *o, const ops_options *opt, const peaks *pk,
                            const char *name, const char *layer, const char *shape, double flops, double bytes,
                            double *iteration_total_ms, int per_iteration)
{
    double best = 0, median = 0;
    GAN_TRY(time_op(be, o, opt, &best, &median));
    *iteration_total_ms += best * 1e3 * per_iteration;
    char rate[32], pct[32];
    if (flops > 0) {
        double gflops = flops / best * 1e-9;
        snprintf(rate, sizeof rate, "%9.1f %8s", gflops, "-");
        snprintf(pct, sizeof pct, "%6.1f%%", 100.0 * gflops / pk->gemm_gflops);
    } else {
        double gbps = bytes / best * 1e-9;
        snprintf(rate, sizeof rate, "%9s %8.1f", "-", gbps);
        snprintf(pct, sizeof pct, "%6.1f%%", 100.0 * gbps / pk->copy_gbps);
    }
    /* The convolutions' algorithm, as the backend chose it (the CUDA backend: by measurement). */
    char algorithm[160] = "";
    if (be->conv_describe && (o->kind == OP_CONV_FORWARD || o->kind == OP_CONV_BACKWARD_DATA ||
                              o->kind == OP_CONV_BACKWARD_FILTER || o->kind == OP_CONV_FORWARD_ACT ||
                              o->kind == OP_CONV_BACKWARD_DATA_ACT || o->kind == OP_CONV_KEEP_PASS)) {
        gan_conv_pass pass = o->kind == OP_CONV_KEEP_PASS                                   ? o->other
                             : o->kind == OP_CONV_FORWARD || o->kind == OP_CONV_FORWARD_ACT ? GAN_CONV_FORWARD
                             : o->kind == OP_CONV_BACKWARD_DATA || o->kind == OP_CONV_BACKWARD_DATA_ACT
                                 ? GAN_CONV_BACKWARD_DATA
                                 : GAN_CONV_BACKWARD_FILTER;
        be->conv_describe(be, &o->geom, pass, algorithm, sizeof algorithm);
    }
    if (be->conv_describe && o->kind == OP_CONV_GRADS && !o->out2) /* the backward-filter alone */
        be->conv_describe(be, &o->geom, GAN_CONV_BACKWARD_FILTER, algorithm, sizeof algorithm);
    else if (be->conv_describe && o->kind == OP_CONV_GRADS) { /* both passes' */
        char filter[80], other[80];
        be->conv_describe(be, &o->geom, GAN_CONV_BACKWARD_FILTER, filter, sizeof filter);
        be->conv_describe(be, &o->geom, o->other, other, sizeof other);
        snprintf(algorithm, sizeof algorithm, "%s; %s", filter, other);
    }
    /* The batch norms' split over blocks (the CUDA backend: chunks per channel). */
    if (be->bn_describe && (o->kind == OP_BN_FORWARD_TRAIN || o->kind == OP_BN_BACKWARD ||
                            o->kind == OP_BN_ACT_FORWARD_TRAIN || o->kind == OP_BN_ACT_BACKWARD))
        be->bn_describe(be, o->n, o->m, o->k, algorithm, sizeof algorithm);
    printf("%-18s %-6s %-44s %10.4f %10.4f %s %s %4d  %s\n", name, layer, shape, best * 1e3, median * 1e3,
           rate, pct, per_iteration, algorithm);
    fflush(stdout);
    return GAN_OK;
}

static void shape_text(char *out, size_t bytes, int n, gan_shape s)
{
    if (s.h == 1 && s.w == 1)
        snprintf(out, bytes, "[%d,%d]", n, s.c);
    else
        snprintf(out, bytes, "[%d,%d,%d,%d]", n, s.c, s.h, s.w);
}

/* ---- the ops of one layer ------------------------------------------------------------------- */

/* The storage of layer l's input in m (the layer before it's output; the model's input FP32). */
static gan_storage input_storage(const gan_model *m, const gan_layer_info *l)
{
    gan_layer_info before;
    if (l->position == 0 || gan_model_layer_info(m, l->position - 1, &before) != GAN_OK) {
        gan_error_clear();
        return GAN_STORAGE_F32_NCHW;
    }
    return before.storage;
}

/* " bf16" (" nhwc") after a row's shape where a tensor of its ops is stored BF16 (FP32) NHWC
 * between layers. */
static const char *stored_mark(gan_storage in, gan_storage out)
{
    if (in == GAN_STORAGE_BF16_NHWC || out == GAN_STORAGE_BF16_NHWC)
        return " bf16";
    return in == GAN_STORAGE_F32_NHWC || out == GAN_STORAGE_F32_NHWC ? " nhwc" : "";
}

/* Layer l's convolution as training runs it: with the storage of the edges training keeps NHWC
 * (gan_model_plan_storage), x and y, or for a transposed layer its output and input; and
 * where the backend makes the weight copy its passes read (*copy_bytes > 0), w_storage set. */
static gan_conv_geom training_conv_geom(gan_backend *be, const gan_model *m, const gan_layer_info *l,
                                        size_t *copy_bytes)
{
    gan_conv_geom g = bench_layer_conv_geom(l);
    gan_storage in = input_storage(m, l), out = l->storage;
    g.x_storage = l->spec.kind == GAN_LAYER_CONVT ? out : in;
    g.y_storage = l->spec.kind == GAN_LAYER_CONVT ? in : out;
    *copy_bytes = be->conv_weight_copy_bytes && be->conv_weight_copies ? be->conv_weight_copy_bytes(be, &g) : 0;
    if (*copy_bytes)
        g.w_storage = be->edge_storage;
    return g;
}

/* The layer after l in m, if there is one. */
static bool layer_after(const gan_model *m, const gan_layer_info *l, gan_layer_info *next)
{
    if (l->position + 1 >= gan_model_layer_count(m) || gan_model_layer_info(m, l->position + 1, next) != GAN_OK) {
        gan_error_clear();
        return false;
    }
    return true;
}

/* The activation layer right after layer l of m when training runs it inside l (`fused`: inside
 * a batch norm; else in a convolution's epilogue), and it runs in forward (not D's last sigmoid,
 * which the loss applies itself): the op table's activation, its slope and its name. */
static bool fused_activation_after(const gan_model *m, const gan_layer_info *l, bool fused, gan_activation *act,
                                   float *slope, const char **name)
{
    gan_layer_info next;
    if (!layer_after(m, l, &next) || !gan_layer_kind_activation(next.spec.kind, act) ||
        !(fused ? next.fused : next.in_epilogue))
        return false;
    *slope = next.spec.slope;
    *name = gan_layer_kind_name(next.spec.kind);
    return next.active && passes_per_iteration(m, &next, PASS_FORWARD) > 0;
}

static gan_status bench_conv_layer(gan_backend *be, const gan_model *m, const gan_layer_info *l, const ops_options *opt,
                                   const peaks *pk, iteration_ms *it)
{
    /* (the buffers below are large enough for either storage) */
    size_t copy_bytes;
    gan_conv_geom g = training_conv_geom(be, m, l, &copy_bytes);
    gan_storage in = input_storage(m, l), out = l->storage;
    size_t x_count = (size_t)g.n * g.c_in * g.h_in * g.w_in, y_count = (size_t)g.n * g.c_out * g.h_out * g.w_out;
    size_t w_count = (size_t)g.c_out * g.c_in * g.k_h * g.k_w;
    buffers b = {.be = be};
    float *x = NULL, *y = NULL, *w = NULL, *dx = NULL, *dw = NULL;
    void *ws = NULL;
    buffer_floats(&b, x_count, 0.0f, 1.0f, &x);
    buffer_floats(&b, y_count, 0.0f, 1.0f, &y);
    buffer_floats(&b, w_count, 0.0f, 0.02f, &w);
    buffer_floats(&b, x_count, 0.0f, 0.0f, &dx);
    buffer_floats(&b, w_count, 0.0f, 0.0f, &dw);
    float *y2 = NULL; /* a transposed convolution's dx beside the dy it is computed from (conv grads) */
    if (l->spec.kind == GAN_LAYER_CONVT)
        buffer_floats(&b, y_count, 0.0f, 0.0f, &y2);
    /* Where training's passes read a weight copy made once per forward (the model's weight copies
     * row), these do too: the copy made here once, w then the copy. */
    void *w_copy = NULL;
    if (copy_bytes)
        buffer_bytes(&b, copy_bytes, &w_copy);
    buffer_bytes(&b, be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL), &ws);
    bool convt = l->spec.kind == GAN_LAYER_CONVT;
    /* Where the backend keeps the layer's forward input's copy for its backward-filter
     * (conv_keep_pass), training runs its forwards so and its backward-filters on that copy. */
    gan_conv_pass keeping = convt ? GAN_CONV_BACKWARD_DATA : GAN_CONV_FORWARD;
    size_t keep_bytes = be->conv_keep_bytes ? be->conv_keep_bytes(be, &g, keeping) : 0;
    void *keep = NULL;
    if (keep_bytes)
        buffer_bytes(&b, keep_bytes, &keep);
    /* D's first Conv2d on the real batch, where the backend converts the uint8 batch straight into
     * the copy the layer keeps (conv_keep_images): that conversion, and the forward on its copy,
     * once per D step in place of one of the kept forwards (zeros for pixels) */
    bool images = keep && !convt && m->name[0] == 'D' && l->position == 0 && be->conv_keep_images;
    size_t pixel_bytes = (size_t)g.n * g.c_in * g.h_in * g.w_in;
    float *pixels = NULL;
    if (images)
        buffer_floats(&b, (pixel_bytes + sizeof(float) - 1) / sizeof(float), 0.0f, 0.0f, &pixels);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    if (w_copy) {
        gan_conv_weight_copy wc = {&g, w, w_copy};
        GAN_CHECK(be->conv_weight_copies(be, 1, &wc));
        w = w_copy;
    }
    char layer[16], shape[96], in_text[40], out_text[40];
    snprintf(layer, sizeof layer, "%s.%d", m->name, l->index);
    shape_text(in_text, sizeof in_text, l->batch, l->in);
    shape_text(out_text, sizeof out_text, l->batch, l->out);
    snprintf(shape, sizeof shape, "%s->%s k%ds%dp%d%s", in_text, out_text, l->spec.kernel, l->spec.stride,
             l->spec.pad, stored_mark(in, out));
    double flops = bench_layer_pass_flops(l);
    /* conv: forward y = conv(x); backward-data dx from dy (= y's buffer); backward-filter dw.
     * convt: forward = backward-data of its convolution, backward-data = that forward. */
    op_call forward = {.kind = OP_CONV_FORWARD, .geom = g, .a = x, .b = w, .out = y, .workspace = ws};
    op_call backward_data = {.kind = OP_CONV_BACKWARD_DATA, .geom = g, .a = y, .b = w, .out = dx, .workspace = ws};
    op_call backward_filter = {.kind = OP_CONV_BACKWARD_FILTER, .geom = g, .a = x, .b = y, .out = dw, .workspace = ws};
    const char *kind = convt ? "convt" : "conv";
    char name[32];
    /* Where training applies the next layer's activation in this layer's forward, the forward
     * counts in the iteration's total as the fused op, and the plain pass does not. */
    gan_activation act;
    float slope;
    const char *act_name;
    bool epilogue = fused_activation_after(m, l, false, &act, &slope, &act_name);
    int forwards = passes_per_iteration(m, l, PASS_FORWARD);
    /* Where the backend runs a layer's two backward passes as one op (conv_grads), the backwards
     * that make both count there, and the plain passes only where made alone. */
    int both = be->conv_grads ? passes_per_iteration(m, l, PASS_BACKWARD_BOTH) : 0;
    int filters_alone = passes_per_iteration(m, l, PASS_BACKWARD_FILTER) - both;
    snprintf(name, sizeof name, "%s fwd", kind);
    GAN_CHECK(report_op(be, convt ? &backward_data : &forward, opt, pk, name, layer, shape, flops, 0,
                        &it->conv, epilogue || keep ? 0 : forwards));
    snprintf(name, sizeof name, "%s bwd-data", kind);
    GAN_CHECK(report_op(be, convt ? &forward : &backward_data, opt, pk, name, layer, shape, flops, 0,
                        &it->conv, passes_per_iteration(m, l, PASS_BACKWARD_DATA) - both));
    snprintf(name, sizeof name, "%s bwd-filter", kind);
    GAN_CHECK(report_op(be, &backward_filter, opt, pk, name, layer, shape, flops, 0, &it->conv,
                        keep ? 0 : filters_alone));
    /* conv: dy in common (y's buffer), dx out; convt: its convolution's x in common (the layer's
     * dy), the forward into y2 */
    op_call grads = {.kind = OP_CONV_GRADS, .geom = g, .a = x, .b = y, .c = w, .out = dw,
                     .other = convt ? GAN_CONV_FORWARD : GAN_CONV_BACKWARD_DATA, .out2 = convt ? y2 : dx,
                     .workspace = ws};
    if (be->conv_grads) {
        snprintf(name, sizeof name, "%s grads", kind);
        GAN_CHECK(report_op(be, &grads, opt, pk, name, layer, shape, 2.0 * flops, 0, &it->conv, keep ? 0 : both));
    }
    if (epilogue) {
        op_call fused = {.kind = convt ? OP_CONV_BACKWARD_DATA_ACT : OP_CONV_FORWARD_ACT, .geom = g,
                         .act = act, .slope = slope, .a = convt ? y : x, .b = w, .out = convt ? dx : y,
                         .workspace = ws};
        snprintf(name, sizeof name, "%s fwd+%s", kind, act_name);
        GAN_CHECK(report_op(be, &fused, opt, pk, name, layer, shape, flops, 0, &it->conv, keep ? 0 : forwards));
    }
    if (keep) {
        /* the training forward (with the activation it applies, if any), its input's copy kept;
         * then the backwards on that copy: both passes, or the backward-filter alone where no dx
         * is wanted (the first layer) */
        op_call keep_pass = {.kind = OP_CONV_KEEP_PASS, .geom = g, .other = keeping, .a = convt ? y : x, .b = w,
                             .out = convt ? dx : y, .keep = keep, .keep_act = epilogue ? (int)act : GAN_CONV_NO_ACT,
                             .slope = epilogue ? slope : 0.0f, .workspace = ws};
        snprintf(name, sizeof name, "%s fwd%s%s kept", kind, epilogue ? "+" : "", epilogue ? act_name : "");
        GAN_CHECK(report_op(be, &keep_pass, opt, pk, name, layer, shape, flops, 0, &it->conv,
                            forwards - (images ? 1 : 0)));
        if (images) {
            /* the uint8 batch read once, the copy written once */
            op_call convert = {.kind = OP_CONV_KEEP_IMAGES, .geom = g, .pixels = pixels, .keep = keep};
            GAN_CHECK(report_op(be, &convert, opt, pk, "images kept", layer, shape, 0,
                                (double)pixel_bytes + (double)keep_bytes, &it->conv, 1));
            op_call on_images = keep_pass;
            on_images.a = NULL; /* the copy conv_keep_images made */
            snprintf(name, sizeof name, "%s fwd%s%s images", kind, epilogue ? "+" : "", epilogue ? act_name : "");
            GAN_CHECK(report_op(be, &on_images, opt, pk, name, layer, shape, flops, 0, &it->conv, 1));
        }
        grads.keep = keep;
        snprintf(name, sizeof name, "%s grads kept", kind);
        GAN_CHECK(report_op(be, &grads, opt, pk, name, layer, shape, 2.0 * flops, 0, &it->conv, both));
        grads.out2 = NULL;
        snprintf(name, sizeof name, "%s bwd-filter kept", kind);
        GAN_CHECK(report_op(be, &grads, opt, pk, name, layer, shape, flops, 0, &it->conv, filters_alone));
    }
cleanup:
    buffers_free(&b);
    return status;
}

/* linear: y[N, out] = x[N, in] W^T; dW = dy^T x; dx = dy W (as src/nn/linear.c calls gemm) */
static gan_status bench_linear_layer(gan_backend *be, const gan_model *m, const gan_layer_info *l,
                                     const ops_options *opt, const peaks *pk, iteration_ms *it)
{
    int n = l->batch, in = l->in.c, out = l->out.c;
    buffers b = {.be = be};
    float *x = NULL, *y = NULL, *w = NULL, *dx = NULL, *dw = NULL;
    buffer_floats(&b, (size_t)n * in, 0.0f, 1.0f, &x);
    buffer_floats(&b, (size_t)n * out, 0.0f, 1.0f, &y);
    buffer_floats(&b, (size_t)out * in, 0.0f, 0.02f, &w);
    buffer_floats(&b, (size_t)n * in, 0.0f, 0.0f, &dx);
    buffer_floats(&b, (size_t)out * in, 0.0f, 0.0f, &dw);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    char layer[16], shape[96];
    snprintf(layer, sizeof layer, "%s.%d", m->name, l->index);
    snprintf(shape, sizeof shape, "[%d,%d]->[%d,%d]", n, in, n, out);
    double flops = bench_layer_pass_flops(l);
    op_call forward = {.kind = OP_GEMM, .trans_b = true, .m = n, .n = out, .k = in, .a = x, .lda = in, .b = w,
                       .ldb = in, .out = y, .ldc = out};
    op_call backward_data = {.kind = OP_GEMM, .m = n, .n = in, .k = out, .a = y, .lda = out, .b = w, .ldb = in,
                             .out = dx, .ldc = in};
    op_call backward_filter = {.kind = OP_GEMM, .trans_a = true, .m = out, .n = in, .k = n, .a = y, .lda = out,
                               .b = x, .ldb = in, .out = dw, .ldc = in};
    GAN_CHECK(report_op(be, &forward, opt, pk, "linear fwd", layer, shape, flops, 0, &it->conv,
                        passes_per_iteration(m, l, PASS_FORWARD)));
    GAN_CHECK(report_op(be, &backward_data, opt, pk, "linear bwd-data", layer, shape, flops, 0, &it->conv,
                        passes_per_iteration(m, l, PASS_BACKWARD_DATA)));
    GAN_CHECK(report_op(be, &backward_filter, opt, pk, "linear bwd-filter", layer, shape, flops, 0, &it->conv,
                        passes_per_iteration(m, l, PASS_BACKWARD_FILTER)));
cleanup:
    buffers_free(&b);
    return status;
}

static gan_status bench_bn_layer(gan_backend *be, const gan_model *m, const gan_layer_info *l, const ops_options *opt,
                                 const peaks *pk, iteration_ms *it)
{
    int n = l->batch, c = l->in.c, hw = l->in.h * l->in.w;
    size_t count = (size_t)n * c * hw;
    buffers b = {.be = be};
    float *x = NULL, *y = NULL, *dy = NULL, *dx = NULL, *gamma = NULL, *beta = NULL;
    float *running_mean = NULL, *running_var = NULL, *save_mean = NULL, *save_invstd = NULL;
    float *dgamma = NULL, *dbeta = NULL, *y_act = NULL;
    buffer_floats(&b, count, 0.0f, 1.0f, &x);
    buffer_floats(&b, count, 0.0f, 0.0f, &y);
    buffer_floats(&b, count, 0.0f, 1.0f, &dy);
    buffer_floats(&b, count, 0.0f, 0.0f, &dx);
    buffer_floats(&b, (size_t)c, 1.0f, 0.02f, &gamma);
    buffer_floats(&b, (size_t)c, 0.0f, 0.0f, &beta);
    buffer_floats(&b, (size_t)c, 0.0f, 0.0f, &running_mean);
    buffer_floats(&b, (size_t)c, 1.0f, 0.0f, &running_var);
    buffer_floats(&b, (size_t)c, 0.0f, 0.0f, &save_mean);
    buffer_floats(&b, (size_t)c, 1.0f, 0.0f, &save_invstd);
    buffer_floats(&b, (size_t)c, 0.0f, 0.0f, &dgamma);
    buffer_floats(&b, (size_t)c, 0.0f, 0.0f, &dbeta);
    buffer_floats(&b, count, 0.0f, 0.0f, &y_act);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    char layer[16], shape[96], name[32];
    snprintf(layer, sizeof layer, "%s.%d", m->name, l->index);
    gan_storage in = input_storage(m, l), out = l->storage;
    bool stored = in != GAN_STORAGE_F32_NCHW || out != GAN_STORAGE_F32_NCHW;
    shape_text(shape, sizeof shape, n, l->in);
    strncat(shape, stored_mark(in, out), sizeof shape - strlen(shape) - 1);
    /* Where training runs the next layer's activation inside this batch norm, the fused ops count
     * in the iteration's total, and the plain ones (and the activation's own rows) do not. */
    gan_activation act;
    float slope;
    const char *act_name;
    bool fused = fused_activation_after(m, l, true, &act, &slope, &act_name);
    int calls = fused ? 0 : passes_per_iteration(m, l, PASS_FORWARD);
    op_call forward = {.kind = OP_BN_FORWARD_TRAIN, .n = n, .m = c, .k = hw, .a = x, .b = gamma, .c = beta,
                       .out = running_mean, .out2 = running_var, .out3 = save_mean, .out4 = save_invstd, .out5 = y};
    op_call backward = {.kind = OP_BN_BACKWARD, .n = n, .m = c, .k = hw, .a = x, .b = dy, .c = gamma, .d = save_mean,
                        .e = save_invstd, .out = dx, .out2 = dgamma, .out3 = dbeta};
    double bytes = (double)count * sizeof(float);
    if (stored) {
        /* next to a stored edge training runs the stored batch norm (with its activation or none),
         * in the rows' places: bytes as each tensor is stored (x and dx in, y, act(y), dy out) */
        op_call stored_forward = {.kind = OP_BN_STORED_FORWARD_TRAIN, .n = n, .m = c, .k = hw, .a = x, .b = gamma,
                                  .c = beta, .out = running_mean, .out2 = running_var, .out3 = save_mean,
                                  .out4 = save_invstd, .out5 = y, .in_storage = in, .out_storage = out,
                                  .stored_act = fused ? (int)act : GAN_CONV_NO_ACT, .slope = fused ? slope : 0.0f,
                                  .out6 = fused ? y_act : NULL};
        op_call stored_backward = {.kind = OP_BN_STORED_BACKWARD, .n = n, .m = c, .k = hw, .a = x,
                                   .b = fused ? y_act : NULL, .c = dy, .d = gamma, .e = save_mean, .f = save_invstd,
                                   .out = dx, .out2 = dgamma, .out3 = dbeta, .in_storage = in, .out_storage = out,
                                  .stored_act = fused ? (int)act : GAN_CONV_NO_ACT, .slope = fused ? slope : 0.0f};
        double in_bytes = (double)count * gan_storage_element_bytes(in), out_bytes = (double)count * gan_storage_element_bytes(out);
        int forwards = passes_per_iteration(m, l, PASS_FORWARD);
        snprintf(name, sizeof name, "bn%s%s fwd-train", fused ? "+" : "", fused ? act_name : "");
        /* reads x, writes y (and act(y)) */
        GAN_CHECK(report_op(be, &stored_forward, opt, pk, name, layer, shape, 0,
                            in_bytes + (fused ? 2 : 1) * out_bytes, &it->bn, forwards));
        snprintf(name, sizeof name, "bn%s%s bwd", fused ? "+" : "", fused ? act_name : "");
        /* reads x, dy (and act(y)), writes dx */
        GAN_CHECK(report_op(be, &stored_backward, opt, pk, name, layer, shape, 0,
                            2 * in_bytes + (fused ? 2 : 1) * out_bytes, &it->bn, forwards));
        goto cleanup;
    }
    /* reads x, writes y */
    GAN_CHECK(report_op(be, &forward, opt, pk, "bn fwd-train", layer, shape, 0, 2 * bytes, &it->bn, calls));
    /* reads x and dy, writes dx */
    GAN_CHECK(report_op(be, &backward, opt, pk, "bn bwd", layer, shape, 0, 3 * bytes, &it->bn, calls));
    if (fused) {
        op_call fused_forward = forward, fused_backward = {
            .kind = OP_BN_ACT_BACKWARD, .n = n, .m = c, .k = hw, .act = act, .slope = slope, .a = x, .b = y_act,
            .c = dy, .d = gamma, .e = save_mean, .f = save_invstd, .out = dx, .out2 = dgamma, .out3 = dbeta};
        fused_forward.kind = OP_BN_ACT_FORWARD_TRAIN;
        fused_forward.act = act;
        fused_forward.slope = slope;
        fused_forward.out6 = y_act;
        int forwards = passes_per_iteration(m, l, PASS_FORWARD);
        /* reads x, writes y and act(y) */
        snprintf(name, sizeof name, "bn+%s fwd-train", act_name);
        GAN_CHECK(report_op(be, &fused_forward, opt, pk, name, layer, shape, 0, 3 * bytes, &it->bn, forwards));
        /* reads x, act(y) and its gradient, writes dx */
        snprintf(name, sizeof name, "bn+%s bwd", act_name);
        GAN_CHECK(report_op(be, &fused_backward, opt, pk, name, layer, shape, 0, 4 * bytes, &it->bn, forwards));
    }
cleanup:
    buffers_free(&b);
    return status;
}

static gan_status bench_elementwise_layer(gan_backend *be, const gan_model *m, const gan_layer_info *l,
                                          const ops_options *opt, const peaks *pk, iteration_ms *it)
{
    size_t count = (size_t)l->batch * gan_shape_count(l->in);
    buffers b = {.be = be};
    float *x = NULL, *y = NULL, *dy = NULL, *dx = NULL, *mask = NULL;
    buffer_floats(&b, count, 0.0f, 1.0f, &x);
    buffer_floats(&b, count, 0.0f, 0.0f, &y);
    buffer_floats(&b, count, 0.0f, 1.0f, &dy);
    buffer_floats(&b, count, 0.0f, 0.0f, &dx);
    buffer_floats(&b, count, 1.0f, 0.0f, &mask);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    char layer[16], shape[96], name[32];
    snprintf(layer, sizeof layer, "%s.%d", m->name, l->index);
    shape_text(shape, sizeof shape, l->batch, l->in);
    /* BF16 values (its input too: model.c); FP32 NHWC ones are FP32 elementwise */
    bool stored = l->storage == GAN_STORAGE_BF16_NHWC;
    strncat(shape, stored_mark(l->storage, l->storage), sizeof shape - strlen(shape) - 1);
    double bytes = (double)count * gan_storage_element_bytes(l->storage);
    const char *kind = gan_layer_kind_name(l->spec.kind);
    if (l->spec.kind == GAN_LAYER_DROPOUT) {
        op_call forward = {.kind = OP_DROPOUT_FORWARD, .count = count, .p = l->spec.drop_p, .a = x, .out = mask,
                           .out2 = y};
        op_call backward = {.kind = OP_MULTIPLY, .count = count, .a = dy, .b = mask, .out = dx};
        /* reads x, writes the mask and y */
        GAN_CHECK(report_op(be, &forward, opt, pk, "dropout fwd", layer, shape, 0, 3 * bytes, &it->act,
                            passes_per_iteration(m, l, PASS_FORWARD)));
        GAN_CHECK(report_op(be, &backward, opt, pk, "dropout bwd", layer, shape, 0, 3 * bytes, &it->act,
                            passes_per_iteration(m, l, PASS_FORWARD)));
    } else {
        gan_activation act = GAN_ACT_SIGMOID; /* this branch: relu, lrelu, tanh, sigmoid */
        gan_layer_kind_activation(l->spec.kind, &act);
        op_call forward = {.kind = stored ? OP_ACT_BF16_FORWARD : OP_ACT_FORWARD, .act = act, .slope = l->spec.slope,
                           .count = count, .a = x, .out = y};
        op_call backward = {.kind = stored ? OP_ACT_BF16_BACKWARD : OP_ACT_BACKWARD, .act = act,
                            .slope = l->spec.slope, .count = count, .a = x, .b = y, .c = dy, .out = dx};
        /* Training runs an activation fused into the batch norm before it (forward and backward)
         * or in the convolution before it (forward: its backward runs here) as part of that
         * layer's op: counted there. */
        int calls = passes_per_iteration(m, l, PASS_FORWARD);
        snprintf(name, sizeof name, "%s fwd", kind);
        /* reads x, writes y */
        GAN_CHECK(report_op(be, &forward, opt, pk, name, layer, shape, 0, 2 * bytes, &it->act,
                            l->fused || l->in_epilogue ? 0 : calls));
        snprintf(name, sizeof name, "%s bwd", kind);
        /* reads x (lrelu) or y (the others) and dy, writes dx */
        GAN_CHECK(report_op(be, &backward, opt, pk, name, layer, shape, 0, 3 * bytes, &it->act,
                            l->fused ? 0 : calls));
    }
cleanup:
    buffers_free(&b);
    return status;
}

/* The model's weight copies at the start of each forward (conv_weight_copies: every convolution
 * whose passes read one, one op), where the backend makes them. */
static gan_status bench_weight_copies(gan_backend *be, const gan_model *m, const ops_options *opt, const peaks *pk,
                                      iteration_ms *it)
{
    enum { MOST = 32 };
    gan_conv_geom geoms[MOST];
    gan_conv_weight_copy copies[MOST];
    buffers b = {.be = be};
    int n = 0, forwards = 0;
    size_t weights = 0;
    gan_layer_info l;
    for (int i = 0; i < gan_model_layer_count(m) && n < MOST && b.count + 2 <= MAX_BUFFERS &&
                    (b.status = gan_model_layer_info(m, i, &l)) == GAN_OK;
         i++) {
        if (l.spec.kind != GAN_LAYER_CONV && l.spec.kind != GAN_LAYER_CONVT)
            continue;
        size_t bytes;
        geoms[n] = training_conv_geom(be, m, &l, &bytes);
        if (!bytes)
            continue;
        forwards = passes_per_iteration(m, &l, PASS_FORWARD);
        size_t count = (size_t)geoms[n].c_out * geoms[n].c_in * geoms[n].k_h * geoms[n].k_w;
        float *w = NULL;
        void *copy = NULL;
        buffer_floats(&b, count, 0.0f, 0.02f, &w);
        buffer_bytes(&b, bytes, &copy);
        copies[n] = (gan_conv_weight_copy){&geoms[n], w, copy};
        weights += count;
        n++;
    }
    gan_status status = b.status;
    if (status == GAN_OK && n) {
        char layer[16], shape[96];
        snprintf(layer, sizeof layer, "%s", m->name);
        snprintf(shape, sizeof shape, "%d convolutions, %zu weights", n, weights);
        op_call o = {.kind = OP_CONV_WEIGHT_COPIES, .count = (size_t)n, .copies = copies};
        /* reads the FP32 weights, writes their BF16 copies; once per forward */
        status = report_op(be, &o, opt, pk, "conv weight copies", layer, shape, 0, (double)weights * 6, &it->conv,
                           forwards);
    }
    buffers_free(&b);
    return status;
}

static gan_status bench_model(gan_backend *be, const gan_model *m, const ops_options *opt, const peaks *pk,
                              iteration_ms *it)
{
    if (opt->want_conv && be->conv_weight_copy_bytes && be->conv_weight_copies)
        GAN_TRY(bench_weight_copies(be, m, opt, pk, it));
    for (int i = 0; i < gan_model_layer_count(m); i++) {
        gan_layer_info layer;
        GAN_TRY(gan_model_layer_info(m, i, &layer));
        const gan_layer_info *l = &layer;
        switch (l->spec.kind) {
        case GAN_LAYER_CONV:
        case GAN_LAYER_CONVT:
            if (opt->want_conv)
                GAN_TRY(bench_conv_layer(be, m, l, opt, pk, it));
            break;
        case GAN_LAYER_LINEAR:
            if (opt->want_conv)
                GAN_TRY(bench_linear_layer(be, m, l, opt, pk, it));
            break;
        case GAN_LAYER_BN:
            if (opt->want_bn)
                GAN_TRY(bench_bn_layer(be, m, l, opt, pk, it));
            break;
        case GAN_LAYER_RELU:
        case GAN_LAYER_LRELU:
        case GAN_LAYER_TANH:
        case GAN_LAYER_SIGMOID:
        case GAN_LAYER_DROPOUT:
            if (opt->want_act)
                GAN_TRY(bench_elementwise_layer(be, m, l, opt, pk, it));
            break;
        default:
            break;
        }
    }
    return GAN_OK;
}

static gan_status bench_bce(gan_backend *be, int n, const ops_options *opt, const peaks *pk, iteration_ms *it)
{
    buffers b = {.be = be};
    float *logits = NULL, *loss = NULL, *prob = NULL, *dlogits = NULL;
    buffer_floats(&b, (size_t)n, 0.0f, 2.0f, &logits);
    buffer_floats(&b, 1, 0.0f, 0.0f, &loss);
    buffer_floats(&b, 1, 0.0f, 0.0f, &prob);
    buffer_floats(&b, (size_t)n, 0.0f, 0.0f, &dlogits);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    char shape[32];
    snprintf(shape, sizeof shape, "[%d] logits", n);
    op_call call = {.kind = OP_BCE, .n = n, .a = logits, .out = loss, .out2 = prob, .out3 = dlogits};
    /* reads the logits, writes their gradient */
    GAN_CHECK(report_op(be, &call, opt, pk, "bce+sigmoid", "D", shape, 0, 2.0 * n * sizeof(float),
                        &it->loss, 3));
cleanup:
    buffers_free(&b);
    return status;
}

static gan_status bench_adam(gan_backend *be, const gan_model *m, const ops_options *opt, const peaks *pk,
                             iteration_ms *it)
{
    size_t count = m->trainable_count;
    buffers b = {.be = be};
    float *param = NULL, *grad = NULL, *mom = NULL, *vel = NULL;
    buffer_floats(&b, count, 0.0f, 0.02f, &param);
    buffer_floats(&b, count, 0.0f, 0.01f, &grad);
    buffer_floats(&b, count, 0.0f, 0.0f, &mom);
    buffer_floats(&b, count, 0.0f, 0.0f, &vel);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    /* the scalars of torch.optim.Adam(lr 2e-4, betas (0.5, 0.999)) at step 1 */
    gan_adam_hyper s = {2e-4, 0.5, 0.999, 1e-8};
    char shape[48];
    snprintf(shape, sizeof shape, "%zu parameters", count);
    op_call call = {.kind = OP_ADAM, .count = count, .a = grad, .out = param, .out2 = mom, .out3 = vel, .adam = s};
    /* reads param, grad, m, v; writes param, m, v */
    GAN_CHECK(report_op(be, &call, opt, pk, "adam", m->name, shape, 0, 7.0 * count * sizeof(float),
                        &it->adam, 1));
cleanup:
    buffers_free(&b);
    return status;
}

/* The EMA of G's weights (train.ema_decay), one launch over its contiguous weights per step. */
static gan_status bench_ema(gan_backend *be, const gan_model *g, const ops_options *opt, const peaks *pk,
                            iteration_ms *it)
{
    size_t count = g->trainable_count;
    buffers b = {.be = be};
    float *param = NULL, *ema = NULL;
    buffer_floats(&b, count, 0.0f, 0.02f, &param);
    buffer_floats(&b, count, 0.0f, 0.02f, &ema);
    gan_status status = GAN_OK;
    GAN_CHECK(b.status);
    char shape[48];
    snprintf(shape, sizeof shape, "%zu parameters", count);
    op_call call = {.kind = OP_EMA, .count = count, .a = param, .out = ema};
    /* reads param and ema; writes ema */
    GAN_CHECK(report_op(be, &call, opt, pk, "ema_update", g->name, shape, 0, 3.0 * count * sizeof(float),
                        &it->ema, 1));
cleanup:
    buffers_free(&b);
    return status;
}

static gan_status bench_config(gan_backend *be, const char *config, int batch, const ops_options *opt,
                               const peaks *pk)
{
    gan_config cfg;
    char path[4200];
    GAN_TRY(bench_load_config(config, opt->overrides, opt->override_count, &cfg, path, sizeof path));
    GAN_TRY(bench_check_options(be, &cfg));
    gan_model *g = NULL, *d = NULL;
    gan_shape z_shape = {cfg.nz, 1, 1}, image = {cfg.channels, cfg.image_size, cfg.image_size};
    gan_status status = GAN_OK;
    GAN_CHECK(gan_model_create("G", cfg.generator, z_shape, batch, be, &g));
    GAN_CHECK(gan_model_create("D", cfg.discriminator, image, batch, be, &d));
    gan_model_plan_storage(g); /* the edges training keeps BF16 NHWC: their rows run the stored ops */
    gan_model_plan_storage(d);
    printf("\n== %s batch %d (%s) ==\n", cfg.name, batch, path);
    printf("%-18s %-6s %-44s %10s %10s %9s %8s %7s %4s  %s\n", "op", "layer", "shape", "best ms", "median ms",
           "GFLOP/s", "GB/s", "% peak", "x/it", "algorithm");
    iteration_ms it = {0};
    GAN_CHECK(bench_model(be, g, opt, pk, &it));
    GAN_CHECK(bench_model(be, d, opt, pk, &it));
    if (opt->want_bce)
        GAN_CHECK(bench_bce(be, batch, opt, pk, &it));
    if (opt->want_adam) {
        GAN_CHECK(bench_adam(be, g, opt, pk, &it));
        GAN_CHECK(bench_adam(be, d, opt, pk, &it));
    }
    if (opt->want_ema)
        GAN_CHECK(bench_ema(be, g, opt, pk, &it));
    gan_conv_choices_update_cache(be, stderr); /* what the layers' planning chose */
    printf("iteration   : %.2f ms from these ops, each best time x the times one iteration runs it "
           "(x/it, k = 1; an op fused with the activation after it, a layer's two backward passes as "
           "one op (grads), and the forms on a kept input copy (kept) count in place of the plain ops, as "
           "training runs them): conv/convt/linear %.2f, "
           "batch norm %.2f, activations %.2f, loss %.3f, Adam %.2f ms "
           "(+ %.3f ms EMA of G with train.ema_decay > 0); "
           "gan bench train %s train.batch_size=%d times the whole iteration\n",
           it.conv + it.bn + it.act + it.loss + it.adam, it.conv, it.bn, it.act, it.loss, it.adam, it.ema,
           cfg.name, batch);
cleanup:
    gan_model_destroy(g);
    gan_model_destroy(d);
    return status;
}

/* The backend, the peaks, every config at every batch, the gemm peak again, and the command line
 * that repeats the run. */
static gan_status bench_all(const char *prog, const ops_options *o, const char *batch_text,
                            const char *configs_text, const char *ops_text)
{
    /* The backend computes as the first config asks (bench_config holds the others to it). */
    gan_config first;
    char first_path[4200];
    gan_backend *be = NULL;
    GAN_TRY(bench_load_config(o->configs[0], o->overrides, o->override_count, &first, first_path,
                              sizeof first_path));
    GAN_TRY(bench_open_backend(o->device, &first, &be));
    bench_print_machine(be, stdout, "");
    peaks pk = {0};
    double gemm_before = 0, gemm_after = 0;
    char what[256] = "";
    gan_status status = GAN_OK;
    GAN_CHECK(bench_measure_gemm_peak(be, &gemm_before, what, sizeof what));
    GAN_CHECK(bench_measure_copy_gbps(be, &pk.copy_gbps));
    pk.gemm_gflops = gemm_before;
    printf("peak        : %.1f GFLOP/s %s; copy %.1f GB/s (%s copy of 256 MiB, read + write)\n", gemm_before,
           what, pk.copy_gbps, be->name);
    printf("%% peak      : GFLOP/s over that gemm peak, GB/s over that copy bandwidth (from memory: tensors "
           "that stay in cache can pass 100%%); GB/s counts each tensor once\n");
    for (int c = 0; c < o->config_count; c++)
        for (int b = 0; b < o->batch_count; b++)
            GAN_CHECK(bench_config(be, o->configs[c], o->batches[b], o, &pk));
    GAN_CHECK(bench_measure_gemm_peak(be, &gemm_after, what, sizeof what));
    printf("\npeak again  : %.1f GFLOP/s %s at the end (%.1f at the start; the percentages use the start)\n",
           gemm_after, what, gemm_before);
    printf("reproduce   : %s", prog);
    for (int i = 0; i < o->override_count; i++)
        printf(" %s", o->overrides[i]);
    printf(" --device %s --batch %s --configs %s --runs %d --warmup %d --min-ms %g%s%s\n",
           !strcmp(o->device, "auto") ? be->name : o->device, batch_text, configs_text, o->runs, o->warmup,
           o->min_ms, ops_text ? " --ops " : "", ops_text ? ops_text : "");
cleanup:
    be->destroy(be);
    return status;
}

/* ---- options -------------------------------------------------------------------------------- */
static int usage(FILE *out)
{
    fprintf(out,
            "usage: gan bench ops [section.key=value ...] [--device auto|cpu|cuda|cuda:N] [--batch 64,128]\n"
            "                     [--configs dcgan_celeba64,dcgan_fmnist32] [--runs R] [--warmup W]\n"
            "                     [--min-ms M] [--ops conv,bn,act,bce,adam,ema]\n"
            "\n"
            "Times every op at every layer shape of the configs through the backend's op table: best and\n"
            "median ms per call, GFLOP/s (conv, convt, linear) or GB/s (the rest), and the share of the\n"
            "peak measured in the same run (gemm for GFLOP/s, the backend's copy for GB/s), and for\n"
            "convolutions the algorithm the backend runs (on CUDA: cuDNN's, chosen by timing each one\n"
            "when the models are planned, or reused from the cache of earlier choices). Where training\n"
            "runs the activation after a conv, convt or batch norm inside it, the fused op gets rows too\n"
            "(conv fwd+lrelu, convt fwd+tanh, bn+relu fwd-train, bn+relu bwd); so does a layer's two\n"
            "backward passes as one op (conv grads), and, where the backend keeps a forward's input\n"
            "copy for the backward-filter (CUDA with both passes in NHWC), the forward that keeps it and\n"
            "the backwards that read it (conv fwd kept, conv grads kept, conv bwd-filter kept), and for\n"
            "D's first layer the real batch converted straight into that copy and the forward on it\n"
            "(images kept, conv fwd+lrelu images; GAN_CUDA_KEEP_IMAGES=never turns them off). In tf32\n"
            "and bf16 on CUDA the layers whose tensors training keeps NHWC run the ops on that storage\n"
            "(the shape marked nhwc for FP32, bf16 for BF16), and each model's weight copies, one op per\n"
            "forward, get a row (conv weight copies; GAN_CUDA_STORAGE=never turns both off). x/it: how\n"
            "many times one iteration runs the row's op, 0 for an op training runs in another form; the\n"
            "iteration total is the sum of best time x x/it.\n"
            "Defaults: --runs 5 --warmup 1 --min-ms 2; conv covers conv, convt and linear; act covers\n"
            "the activations and dropout. The overrides apply to every config; train.precision=fp32|tf32|bf16\n"
            "and train.deterministic=true|false set how the backend computes.\n");
    return out == stdout ? 0 : 2;
}

static bool parse_ints(const char *text, int *values, int *count)
{
    *count = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1 << 20 || *count == MAX_LIST || (*end && *end != ','))
            return false;
        values[(*count)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return *count > 0;
}

/* Splits `text` (copied into `buffer`) at commas. */
static bool split_list(const char *text, char *buffer, size_t bytes, const char **items, int *count)
{
    snprintf(buffer, bytes, "%s", text);
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(buffer, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*count == MAX_LIST)
            return false;
        items[(*count)++] = tok;
    }
    return *count > 0;
}

int gan_bench_ops(int argc, char **argv)
{
    ops_options o = {.device = "auto", .runs = 5, .warmup = 1, .min_ms = 2.0};
    const char *batch_text = "64,128", *configs_text = "dcgan_celeba64,dcgan_fmnist32", *ops_text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout);
        if (a[0] != '-' && strchr(a, '=') && o.override_count < MAX_OVERRIDES)
            o.overrides[o.override_count++] = a;
        else if (!strcmp(a, "--device") && has_value)
            o.device = argv[++i];
        else if (!strcmp(a, "--batch") && has_value)
            batch_text = argv[++i];
        else if (!strcmp(a, "--configs") && has_value)
            configs_text = argv[++i];
        else if (!strcmp(a, "--runs") && has_value) { /* strict numbers (cli/args.h), not atoi's */
            if (!gan_arg_int("bench ops", a, argv[++i], 1, INT_MAX, &o.runs))
                return 2;
        } else if (!strcmp(a, "--warmup") && has_value) {
            if (!gan_arg_int("bench ops", a, argv[++i], 0, INT_MAX, &o.warmup))
                return 2;
        } else if (!strcmp(a, "--min-ms") && has_value) {
            if (!gan_arg_double("bench ops", a, argv[++i], 0, 1e9, &o.min_ms))
                return 2;
        }
        else if (!strcmp(a, "--ops") && has_value)
            ops_text = argv[++i];
        else {
            fprintf(stderr, "gan bench ops: unknown or incomplete option '%s'\n", a);
            return usage(stderr);
        }
    }
    if (!parse_ints(batch_text, o.batches, &o.batch_count)) {
        fprintf(stderr, "gan bench ops: --batch wants positive integers separated by commas, got '%s'\n",
                batch_text);
        return 2;
    }
    if (!split_list(configs_text, o.configs_text, sizeof o.configs_text, o.configs, &o.config_count)) {
        fprintf(stderr, "gan bench ops: --configs wants names or paths separated by commas\n");
        return 2;
    }
    o.want_conv = o.want_bn = o.want_act = o.want_bce = o.want_adam = o.want_ema = !ops_text;
    if (ops_text) {
        const char *ops[MAX_LIST];
        int op_count = 0;
        if (!split_list(ops_text, o.ops_text, sizeof o.ops_text, ops, &op_count)) {
            fprintf(stderr, "gan bench ops: --ops wants some of conv,bn,act,bce,adam,ema\n");
            return 2;
        }
        for (int i = 0; i < op_count; i++) {
            bool *flag = !strcmp(ops[i], "conv")   ? &o.want_conv
                         : !strcmp(ops[i], "bn")   ? &o.want_bn
                         : !strcmp(ops[i], "act")  ? &o.want_act
                         : !strcmp(ops[i], "bce")  ? &o.want_bce
                         : !strcmp(ops[i], "adam") ? &o.want_adam
                         : !strcmp(ops[i], "ema")  ? &o.want_ema
                                                   : NULL;
            if (!flag) {
                fprintf(stderr, "gan bench ops: unknown op group '%s' (conv, bn, act, bce, adam, ema)\n", ops[i]);
                return 2;
            }
            *flag = true;
        }
    }
    if (o.runs < 1 || o.runs > 64 || o.warmup < 0 || o.min_ms < 0) {
        fprintf(stderr, "gan bench ops: needs 1 <= --runs <= 64, --warmup >= 0, --min-ms >= 0\n");
        return 2;
    }

    if (bench_all(argv[0], &o, batch_text, configs_text, ops_text) != GAN_OK) {
        fprintf(stderr, "gan bench ops: %s\n", gan_error_message());
        return 1;
    }
    return 0;
}
