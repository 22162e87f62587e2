/* The training iteration as a graph, checked without a GPU, on a recording backend: an op table
 * that wraps the CPU backend and turns every call into a record (the op, its pointer and scalar
 * arguments, gan_count positions as base pointer and offset).
 *
 * 1. Replay validity. For three iterations, the records of gan_trainer_run_iteration (the region a
 *    CUDA graph captures: it starts at the fixed device batch slots; the uploads into them stay
 *    outside) must be identical call for call and argument for argument; anything that changes
 *    from step to step must reach the ops through backend memory. To show that the comparison
 *    catches a per-step host scalar, one run changes train.label_smoothing (BCE's target, a host
 *    scalar) between iterations, and the comparison must flag the BCE call.
 * 2. The trainer's graph path. The recording backend also implements capture_begin / capture_end
 *    / graph_launch the way CUDA does (captured calls are recorded, not run; a launch runs the
 *    records again), so gan_trainer_step takes its graph path: step 1 op by op, step 2 captured
 *    then launched, steps 3.. launched. After 6 steps every weight, Adam moment, running
 *    statistic, batch norm counter and count must equal, bit for bit, those of the same run on
 *    the plain CPU backend.
 * Both for a DCGAN (convolutions, fused batch norm + activation) and an MLP GAN (dropout, batch
 * norm 1d, two D steps per G step).
 * The recording backend has a side stream too (gan/backend.h side_fork): its fork, return and
 * join are records like the others (so the replay check covers where they fall), and it fails a
 * call the contract forbids: an all-reduce on the side, a fork while on the side, a return or join
 * out of turn, an upload, download or capture between fork and return, a capture that ends with
 * the side not joined. Running in order, it computes the same.
 * 3. The data-parallel path (docs/DESIGN.md "Data parallel") on a one-rank process group (what
 *    GAN_DIST_FORCE=1 gives: the all-reduces and the batch norm split around them run, with no
 *    MPI): its iterations replay too, with and without train.sync_bn, and it trains bit for bit
 *    like the plain CPU backend; a trainer without a group makes none of those calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/data.h"
#include "gan/train.h"
#include "test_util.h"

/* ---- records -------------------------------------------------------------------------------- */

typedef enum op {
    OP_COPY, OP_FILL, OP_GEMM, OP_CONV_FORWARD, OP_CONV_BACKWARD_DATA, OP_CONV_BACKWARD_FILTER,
    OP_BIAS_FORWARD, OP_BIAS_BACKWARD, OP_BN_FORWARD_TRAIN, OP_BN_FORWARD_EVAL, OP_BN_BACKWARD,
    OP_BN_ACT_FORWARD_TRAIN, OP_BN_ACT_BACKWARD, OP_ACT_FORWARD, OP_ACT_BACKWARD, OP_DROPOUT_FORWARD,
    OP_MULTIPLY, OP_BCE, OP_ADAM, OP_RNG_NORMAL, OP_RNG_UNIFORM, OP_ADVANCE, OP_IMAGES_TO_FLOAT,
    OP_ALLREDUCE, OP_ALLREDUCE_F64, OP_BN_SUMS, OP_BN_CENTERED_SQUARES, OP_BN_FORWARD_FROM_SUMS,
    OP_BN_BACKWARD_SUMS, OP_BN_BACKWARD_FROM_SUMS, OP_EMA_UPDATE, OP_CONV_FORWARD_ACT, OP_CONV_BACKWARD_DATA_ACT,
    OP_CONV_GRADS, OP_SIDE_FORK, OP_SIDE_RETURN, OP_SIDE_JOIN, OP_COUNT
} op;

static const char *const op_names[OP_COUNT] = {
    "copy", "fill", "gemm", "conv_forward", "conv_backward_data", "conv_backward_filter",
    "bias_forward", "bias_backward", "bn_forward_train", "bn_forward_eval", "bn_backward",
    "bn_act_forward_train", "bn_act_backward", "activation_forward", "activation_backward",
    "dropout_forward", "multiply", "bce_logits", "adam_step", "rng_normal", "rng_uniform",
    "advance_counts", "images_to_float", "allreduce_sum", "allreduce_sum_f64", "bn_sums",
    "bn_centered_squares", "bn_forward_from_sums", "bn_backward_sums", "bn_backward_from_sums", "ema_update",
    "conv_forward_act", "conv_backward_data_act", "conv_grads", "side_fork", "side_return", "side_join",
};

/* Every argument of every op, by kind: pointers, ints, floats, 64-bit integers, a geometry, the
 * Adam hyper-parameters and a count advance. Zeroed before filling, so records compare with
 * memcmp (padding included). */
typedef struct record {
    op kind;
    const void *p[12];
    int i[8];
    float f[6];
    uint64_t u[4];
    double d[2];
    gan_conv_geom geom;
    gan_adam_hyper hyper;
    gan_count_advance advance;
} record;

typedef struct recorder {
    gan_backend *cpu;         /* what every call runs on */
    bool logging;             /* append each call to `log` (and run it) */
    bool capturing;           /* append each call to `captured` (and do not run it) */
    record *log, *captured;
    int log_count, log_capacity, captured_count, captured_capacity;
    int launches;
    bool on_side;      /* between side_fork and side_return */
    bool side_pending; /* forked since the last join */
    bool side_kinds[OP_COUNT]; /* the kinds of op called on the side */
} recorder;

struct gan_graph {
    record *records;
    int count;
};

static recorder *rec_of(gan_backend *be) { return be->impl; }

static gan_status push(record **list, int *count, int *capacity, const record *r)
{
    if (*count == *capacity) {
        int grown = *capacity ? 2 * *capacity : 256;
        record *bigger = realloc(*list, (size_t)grown * sizeof *bigger);
        if (!bigger)
            return gan_error(GAN_ERR_NOMEM, "out of memory for records");
        *list = bigger;
        *capacity = grown;
    }
    (*list)[(*count)++] = *r;
    return GAN_OK;
}

static gan_status run_record(gan_backend *cpu, const record *r);

/* Logs, captures or runs one call. */
static gan_status dispatch(gan_backend *be, const record *r)
{
    recorder *rec = rec_of(be);
    if (rec->on_side) {
        if (r->kind == OP_ALLREDUCE || r->kind == OP_ALLREDUCE_F64)
            return gan_error(GAN_ERR_ARG, "%s on the side stream", op_names[r->kind]);
        rec->side_kinds[r->kind] = true;
    }
    if (rec->capturing)
        return push(&rec->captured, &rec->captured_count, &rec->captured_capacity, r);
    if (rec->logging)
        GAN_TRY(push(&rec->log, &rec->log_count, &rec->log_capacity, r));
    return run_record(rec->cpu, r);
}

static gan_status run_record(gan_backend *c, const record *r)
{
    float *out[12];
    for (int k = 0; k < 12; k++)
        out[k] = (float *)r->p[k];
    const float *in[12];
    for (int k = 0; k < 12; k++)
        in[k] = r->p[k];
    gan_count count0 = {(const uint64_t *)r->p[9], r->u[1]};
    switch (r->kind) {
    case OP_COPY: return c->copy(c, out[0], in[1], (size_t)r->u[0]);
    case OP_FILL: return c->fill(c, out[0], r->f[0], (size_t)r->u[0]);
    case OP_GEMM:
        return c->gemm(c, r->i[0], r->i[1], r->i[2], r->i[3], r->i[4], r->f[0], in[0], r->i[5], in[1], r->i[6],
                       r->f[1], out[2], r->i[7]);
    case OP_CONV_FORWARD: return c->conv_forward(c, &r->geom, in[0], in[1], out[2], out[3]);
    case OP_CONV_BACKWARD_DATA: return c->conv_backward_data(c, &r->geom, in[0], in[1], out[2], out[3]);
    case OP_CONV_FORWARD_ACT:
        return c->conv_forward_act(c, &r->geom, in[0], in[1], (gan_activation)r->i[0], r->f[1], out[2], out[3]);
    case OP_CONV_BACKWARD_DATA_ACT:
        return c->conv_backward_data_act(c, &r->geom, in[0], in[1], (gan_activation)r->i[0], r->f[1], out[2],
                                         out[3]);
    case OP_CONV_BACKWARD_FILTER:
        return c->conv_backward_filter(c, &r->geom, in[0], in[1], r->f[0], out[2], out[3]);
    case OP_CONV_GRADS:
        return c->conv_grads(c, &r->geom, in[0], in[1], r->f[0], out[2], (gan_conv_pass)r->i[0], in[4], out[5],
                             in[6], out[3]);
    case OP_BIAS_FORWARD: return c->bias_forward(c, r->i[0], r->i[1], r->i[2], in[0], out[1]);
    case OP_BIAS_BACKWARD: return c->bias_backward(c, r->i[0], r->i[1], r->i[2], in[0], r->f[0], out[1]);
    case OP_BN_FORWARD_TRAIN:
        return c->bn_forward_train(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], r->f[0], r->f[1], out[3],
                                   out[4], out[5], out[6], out[7]);
    case OP_BN_FORWARD_EVAL:
        return c->bn_forward_eval(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], in[3], in[4], r->f[0],
                                  out[5]);
    case OP_BN_BACKWARD:
        return c->bn_backward(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], in[3], in[4], out[5], r->f[0],
                              out[6], out[7]);
    case OP_BN_ACT_FORWARD_TRAIN:
        return c->bn_act_forward_train(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], r->f[0], r->f[1],
                                       out[3], out[4], out[5], out[6], out[7], (gan_activation)r->i[3], r->f[2],
                                       out[8]);
    case OP_BN_ACT_BACKWARD:
        return c->bn_act_backward(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], (gan_activation)r->i[3],
                                  r->f[0], in[3], in[4], in[5], out[6], r->f[1], out[7], out[8]);
    case OP_ACT_FORWARD:
        return c->activation_forward(c, (gan_activation)r->i[0], r->f[0], (size_t)r->u[0], in[0], out[1]);
    case OP_ACT_BACKWARD:
        return c->activation_backward(c, (gan_activation)r->i[0], r->f[0], (size_t)r->u[0], in[0], in[1],
                                      in[2], out[3]);
    case OP_DROPOUT_FORWARD:
        return c->dropout_forward(c, (size_t)r->u[0], r->f[0], r->u[2], r->u[3], count0, in[0], out[1],
                                  out[2]);
    case OP_MULTIPLY: return c->multiply(c, (size_t)r->u[0], in[0], in[1], out[2]);
    case OP_BCE:
        return c->bce_logits(c, r->i[0], in[0], r->f[0], r->f[1], out[1], out[2], out[3]);
    case OP_ADAM: return c->adam_step(c, (size_t)r->u[0], out[0], in[1], out[2], out[3], r->hyper, count0);
    case OP_RNG_NORMAL:
        return c->rng_normal(c, (size_t)r->u[0], r->u[2], r->u[3], count0, r->f[0], r->f[1], out[0]);
    case OP_RNG_UNIFORM:
        return c->rng_uniform(c, (size_t)r->u[0], r->u[2], r->u[3], count0, r->f[0], r->f[1], out[0]);
    case OP_ADVANCE: return c->advance_counts(c, r->advance);
    case OP_IMAGES_TO_FLOAT:
        return c->images_to_float(c, r->i[0], r->i[1], r->i[2], r->i[3], r->p[0], out[1]);
    case OP_ALLREDUCE: return c->allreduce_sum(c, out[0], (size_t)r->u[0], r->f[0]);
    case OP_ALLREDUCE_F64: return c->allreduce_sum_f64(c, (double *)r->p[0], (size_t)r->u[0]);
    case OP_BN_SUMS: return c->bn_sums(c, r->i[0], r->i[1], r->i[2], in[0], (double *)r->p[1]);
    case OP_BN_CENTERED_SQUARES:
        return c->bn_centered_squares(c, r->i[0], r->i[1], r->i[2], in[0], r->p[1], r->d[0], (double *)r->p[2]);
    case OP_BN_FORWARD_FROM_SUMS:
        return c->bn_forward_from_sums(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], r->f[0], r->f[1],
                                       r->p[3], r->p[4], r->d[0], out[5], out[6], out[7], out[8], out[9],
                                       (gan_activation)r->i[3], r->f[2], out[10]);
    case OP_BN_BACKWARD_SUMS:
        return c->bn_backward_sums(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], (gan_activation)r->i[3],
                                   r->f[0], in[3], in[4], r->f[1], out[5], out[6], (double *)r->p[7]);
    case OP_BN_BACKWARD_FROM_SUMS:
        return c->bn_backward_from_sums(c, r->i[0], r->i[1], r->i[2], in[0], in[1], in[2], (gan_activation)r->i[3],
                                        r->f[0], in[3], in[4], in[5], r->p[6], r->d[0], out[7]);
    case OP_EMA_UPDATE: return c->ema_update(c, (size_t)r->u[0], r->d[0], in[0], out[1]);
    case OP_SIDE_FORK: case OP_SIDE_RETURN: case OP_SIDE_JOIN: return GAN_OK; /* the CPU runs in order */
    case OP_COUNT: break;
    }
    return gan_error(GAN_ERR_ARG, "unknown record");
}

#define RECORD(kind_)        \
    record r;                \
    memset(&r, 0, sizeof r); \
    r.kind = (kind_)

/* ---- the op table ------------------------------------------------------------------------- */

static gan_status rec_alloc(gan_backend *be, size_t bytes, void **out)
{
    return rec_of(be)->cpu->alloc(rec_of(be)->cpu, bytes, out);
}
static void rec_free(gan_backend *be, void *ptr) { rec_of(be)->cpu->free(rec_of(be)->cpu, ptr); }
/* Uploads and downloads are outside any captured region: a capture refuses them, as CUDA does. */
static gan_status rec_upload(gan_backend *be, void *dst, const void *src, size_t bytes)
{
    if (rec_of(be)->on_side)
        return gan_error(GAN_ERR_ARG, "upload on the side stream");
    if (rec_of(be)->capturing)
        return gan_error(GAN_ERR_ARG, "upload while capturing");
    return rec_of(be)->cpu->upload(rec_of(be)->cpu, dst, src, bytes);
}
static gan_status rec_download(gan_backend *be, void *dst, const void *src, size_t bytes)
{
    if (rec_of(be)->on_side)
        return gan_error(GAN_ERR_ARG, "download on the side stream");
    if (rec_of(be)->capturing)
        return gan_error(GAN_ERR_ARG, "download while capturing");
    return rec_of(be)->cpu->download(rec_of(be)->cpu, dst, src, bytes);
}
static gan_status rec_synchronize(gan_backend *be) { return GAN_OK; }
static size_t rec_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g, unsigned passes)
{
    return rec_of(be)->cpu->conv_workspace_bytes(rec_of(be)->cpu, g, passes);
}

static gan_status rec_copy(gan_backend *be, void *dst, const void *src, size_t bytes)
{
    RECORD(OP_COPY);
    r.p[0] = dst, r.p[1] = src, r.u[0] = bytes;
    return dispatch(be, &r);
}
static gan_status rec_fill(gan_backend *be, float *dst, float value, size_t count)
{
    RECORD(OP_FILL);
    r.p[0] = dst, r.f[0] = value, r.u[0] = count;
    return dispatch(be, &r);
}
static gan_status rec_gemm(gan_backend *be, bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
                           int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    RECORD(OP_GEMM);
    r.i[0] = ta, r.i[1] = tb, r.i[2] = m, r.i[3] = n, r.i[4] = k, r.i[5] = lda, r.i[6] = ldb, r.i[7] = ldc;
    r.f[0] = alpha, r.f[1] = beta, r.p[0] = a, r.p[1] = b, r.p[2] = c;
    return dispatch(be, &r);
}
static gan_status rec_conv(gan_backend *be, op kind, const gan_conv_geom *g, const float *a, const float *b,
                           float beta, float *out, void *ws)
{
    RECORD(kind);
    r.geom = *g, r.p[0] = a, r.p[1] = b, r.p[2] = out, r.p[3] = ws, r.f[0] = beta;
    return dispatch(be, &r);
}
static gan_status rec_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                   float *y, void *ws)
{
    return rec_conv(be, OP_CONV_FORWARD, g, x, w, 0.0f, y, ws);
}
static gan_status rec_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                         const float *w, float *dx, void *ws)
{
    return rec_conv(be, OP_CONV_BACKWARD_DATA, g, dy, w, 0.0f, dx, ws);
}
/* the activation in i[0], its slope in f[1] */
static gan_status rec_conv_act(gan_backend *be, op kind, const gan_conv_geom *g, const float *a, const float *b,
                               gan_activation act, float slope, float *out, void *ws)
{
    RECORD(kind);
    r.geom = *g, r.p[0] = a, r.p[1] = b, r.p[2] = out, r.p[3] = ws, r.i[0] = (int)act, r.f[1] = slope;
    return dispatch(be, &r);
}
static gan_status rec_conv_forward_act(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                       gan_activation act, float slope, float *y, void *ws)
{
    return rec_conv_act(be, OP_CONV_FORWARD_ACT, g, x, w, act, slope, y, ws);
}
static gan_status rec_conv_backward_data_act(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                             const float *w, gan_activation act, float slope, float *dx, void *ws)
{
    return rec_conv_act(be, OP_CONV_BACKWARD_DATA_ACT, g, dy, w, act, slope, dx, ws);
}
static gan_status rec_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                           const float *dy, float beta, float *dw, void *ws)
{
    return rec_conv(be, OP_CONV_BACKWARD_FILTER, g, x, dy, beta, dw, ws);
}
/* the pass beside the backward-filter in i[0], w and its output in p[4] and p[5] */
static gan_status rec_conv_grads(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy,
                                 float beta, float *dw, gan_conv_pass other, const float *w, float *out,
                                 const void *kept, void *ws)
{
    RECORD(OP_CONV_GRADS);
    r.geom = *g, r.p[0] = x, r.p[1] = dy, r.p[2] = dw, r.p[3] = ws, r.p[4] = w, r.p[5] = out, r.p[6] = kept;
    r.f[0] = beta;
    r.i[0] = (int)other;
    return dispatch(be, &r);
}
static gan_status rec_bias_forward(gan_backend *be, int n, int c, int hw, const float *bias, float *y)
{
    RECORD(OP_BIAS_FORWARD);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.p[0] = bias, r.p[1] = y;
    return dispatch(be, &r);
}
static gan_status rec_bias_backward(gan_backend *be, int n, int c, int hw, const float *dy, float beta,
                                    float *db)
{
    RECORD(OP_BIAS_BACKWARD);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.p[0] = dy, r.f[0] = beta, r.p[1] = db;
    return dispatch(be, &r);
}
static gan_status rec_bn_forward_train(gan_backend *be, int n, int c, int hw, const float *x, const float *gamma,
                                       const float *beta, float momentum, float eps, float *rm, float *rv,
                                       float *sm, float *si, float *y)
{
    RECORD(OP_BN_FORWARD_TRAIN);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.f[0] = momentum, r.f[1] = eps;
    const void *p[] = {x, gamma, beta, rm, rv, sm, si, y};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_bn_forward_eval(gan_backend *be, int n, int c, int hw, const float *x, const float *gamma,
                                      const float *beta, const float *rm, const float *rv, float eps, float *y)
{
    RECORD(OP_BN_FORWARD_EVAL);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.f[0] = eps;
    const void *p[] = {x, gamma, beta, rm, rv, y};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_bn_backward(gan_backend *be, int n, int c, int hw, const float *x, const float *dy,
                                  const float *gamma, const float *sm, const float *si, float *dx,
                                  float param_beta, float *dgamma, float *dbeta)
{
    RECORD(OP_BN_BACKWARD);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.f[0] = param_beta;
    const void *p[] = {x, dy, gamma, sm, si, dx, dgamma, dbeta};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_bn_act_forward_train(gan_backend *be, int n, int c, int hw, const float *x,
                                           const float *gamma, const float *beta, float momentum, float eps,
                                           float *rm, float *rv, float *sm, float *si, float *y,
                                           gan_activation act, float slope, float *y_act)
{
    RECORD(OP_BN_ACT_FORWARD_TRAIN);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.i[3] = (int)act, r.f[0] = momentum, r.f[1] = eps, r.f[2] = slope;
    const void *p[] = {x, gamma, beta, rm, rv, sm, si, y, y_act};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_bn_act_backward(gan_backend *be, int n, int c, int hw, const float *x, const float *y_act,
                                      const float *dy_act, gan_activation act, float slope, const float *gamma,
                                      const float *sm, const float *si, float *dx, float param_beta,
                                      float *dgamma, float *dbeta)
{
    RECORD(OP_BN_ACT_BACKWARD);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.i[3] = (int)act, r.f[0] = slope, r.f[1] = param_beta;
    const void *p[] = {x, y_act, dy_act, gamma, sm, si, dx, dgamma, dbeta};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_act_forward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                  const float *x, float *y)
{
    RECORD(OP_ACT_FORWARD);
    r.i[0] = (int)kind, r.f[0] = slope, r.u[0] = count, r.p[0] = x, r.p[1] = y;
    return dispatch(be, &r);
}
static gan_status rec_act_backward(gan_backend *be, gan_activation kind, float slope, size_t count,
                                   const float *x, const float *y, const float *dy, float *dx)
{
    RECORD(OP_ACT_BACKWARD);
    r.i[0] = (int)kind, r.f[0] = slope, r.u[0] = count, r.p[0] = x, r.p[1] = y, r.p[2] = dy, r.p[3] = dx;
    return dispatch(be, &r);
}
static gan_status rec_dropout_forward(gan_backend *be, size_t count, float p, uint64_t seed, uint64_t stream,
                                      gan_count first, const float *x, float *mask, float *y)
{
    RECORD(OP_DROPOUT_FORWARD);
    r.u[0] = count, r.f[0] = p, r.u[2] = seed, r.u[3] = stream, r.p[9] = first.base, r.u[1] = first.offset;
    r.p[0] = x, r.p[1] = mask, r.p[2] = y;
    return dispatch(be, &r);
}
static gan_status rec_multiply(gan_backend *be, size_t count, const float *a, const float *b, float *y)
{
    RECORD(OP_MULTIPLY);
    r.u[0] = count, r.p[0] = a, r.p[1] = b, r.p[2] = y;
    return dispatch(be, &r);
}
static gan_status rec_bce(gan_backend *be, int n, const float *logits, float target, float grad_scale,
                          float *loss, float *prob_mean, float *dlogits)
{
    RECORD(OP_BCE);
    r.i[0] = n, r.f[0] = target, r.f[1] = grad_scale;
    r.p[0] = logits, r.p[1] = loss, r.p[2] = prob_mean, r.p[3] = dlogits;
    return dispatch(be, &r);
}
static gan_status rec_adam(gan_backend *be, size_t count, float *param, const float *grad, float *m, float *v,
                           gan_adam_hyper hyper, gan_count step)
{
    RECORD(OP_ADAM);
    r.u[0] = count, r.p[0] = param, r.p[1] = grad, r.p[2] = m, r.p[3] = v, r.hyper = hyper;
    r.p[9] = step.base, r.u[1] = step.offset;
    return dispatch(be, &r);
}
static gan_status rec_rng(gan_backend *be, op kind, size_t count, uint64_t seed, uint64_t stream,
                          gan_count first, float a, float b, float *out)
{
    RECORD(kind);
    r.u[0] = count, r.u[2] = seed, r.u[3] = stream, r.p[9] = first.base, r.u[1] = first.offset;
    r.f[0] = a, r.f[1] = b, r.p[0] = out;
    return dispatch(be, &r);
}
static gan_status rec_rng_normal(gan_backend *be, size_t count, uint64_t seed, uint64_t stream, gan_count first,
                                 float mean, float std, float *out)
{
    return rec_rng(be, OP_RNG_NORMAL, count, seed, stream, first, mean, std, out);
}
static gan_status rec_rng_uniform(gan_backend *be, size_t count, uint64_t seed, uint64_t stream, gan_count first,
                                  float low, float high, float *out)
{
    return rec_rng(be, OP_RNG_UNIFORM, count, seed, stream, first, low, high, out);
}
static gan_status rec_advance(gan_backend *be, gan_count_advance advance)
{
    RECORD(OP_ADVANCE);
    r.advance = advance;
    return dispatch(be, &r);
}
static gan_status rec_images_to_float(gan_backend *be, int n, int h, int w, int c, const uint8_t *nhwc,
                                      float *nchw)
{
    RECORD(OP_IMAGES_TO_FLOAT);
    r.i[0] = n, r.i[1] = h, r.i[2] = w, r.i[3] = c, r.p[0] = nhwc, r.p[1] = nchw;
    return dispatch(be, &r);
}

static gan_status rec_allreduce(gan_backend *be, float *data, size_t count, float scale)
{
    RECORD(OP_ALLREDUCE);
    r.p[0] = data, r.u[0] = count, r.f[0] = scale;
    return dispatch(be, &r);
}
static gan_status rec_allreduce_f64(gan_backend *be, double *data, size_t count)
{
    RECORD(OP_ALLREDUCE_F64);
    r.p[0] = data, r.u[0] = count;
    return dispatch(be, &r);
}
static gan_status rec_bn_sums(gan_backend *be, int n, int c, int hw, const float *x, double *sums)
{
    RECORD(OP_BN_SUMS);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.p[0] = x, r.p[1] = sums;
    return dispatch(be, &r);
}
static gan_status rec_bn_centered_squares(gan_backend *be, int n, int c, int hw, const float *x, const double *sums,
                                          double count, double *squares)
{
    RECORD(OP_BN_CENTERED_SQUARES);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.p[0] = x, r.p[1] = sums, r.d[0] = count, r.p[2] = squares;
    return dispatch(be, &r);
}
static gan_status rec_bn_forward_from_sums(gan_backend *be, int n, int c, int hw, const float *x, const float *gamma,
                                           const float *beta, float momentum, float eps, const double *sums,
                                           const double *squares, double count, float *rm, float *rv, float *sm,
                                           float *si, float *y, gan_activation act, float slope, float *y_act)
{
    RECORD(OP_BN_FORWARD_FROM_SUMS);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.i[3] = (int)act, r.f[0] = momentum, r.f[1] = eps, r.f[2] = slope;
    r.d[0] = count;
    const void *p[] = {x, gamma, beta, sums, squares, rm, rv, sm, si, y, y_act};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_bn_backward_sums(gan_backend *be, int n, int c, int hw, const float *x, const float *y_act,
                                       const float *dy, gan_activation act, float slope, const float *sm,
                                       const float *si, float param_beta, float *dgamma, float *dbeta, double *sums)
{
    RECORD(OP_BN_BACKWARD_SUMS);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.i[3] = (int)act, r.f[0] = slope, r.f[1] = param_beta;
    const void *p[] = {x, y_act, dy, sm, si, dgamma, dbeta, sums};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}
static gan_status rec_bn_backward_from_sums(gan_backend *be, int n, int c, int hw, const float *x,
                                            const float *y_act, const float *dy, gan_activation act, float slope,
                                            const float *gamma, const float *sm, const float *si, const double *sums,
                                            double count, float *dx)
{
    RECORD(OP_BN_BACKWARD_FROM_SUMS);
    r.i[0] = n, r.i[1] = c, r.i[2] = hw, r.i[3] = (int)act, r.f[0] = slope, r.d[0] = count;
    const void *p[] = {x, y_act, dy, gamma, sm, si, sums, dx};
    memcpy(r.p, p, sizeof p);
    return dispatch(be, &r);
}

static gan_status rec_ema_update(gan_backend *be, size_t count, double decay, const float *param, float *ema)
{
    RECORD(OP_EMA_UPDATE);
    r.u[0] = count, r.d[0] = decay, r.p[0] = param, r.p[1] = ema;
    return dispatch(be, &r);
}

/* The side stream's calls, checked against the contract (gan/backend.h). */
static gan_status rec_side_fork(gan_backend *be)
{
    recorder *rec = rec_of(be);
    if (rec->on_side)
        return gan_error(GAN_ERR_ARG, "side_fork while on the side stream");
    RECORD(OP_SIDE_FORK);
    GAN_TRY(dispatch(be, &r));
    rec->on_side = rec->side_pending = true;
    return GAN_OK;
}
static gan_status rec_side_return(gan_backend *be)
{
    recorder *rec = rec_of(be);
    if (!rec->on_side)
        return gan_error(GAN_ERR_ARG, "side_return without side_fork");
    RECORD(OP_SIDE_RETURN);
    GAN_TRY(dispatch(be, &r));
    rec->on_side = false;
    return GAN_OK;
}
static gan_status rec_side_join(gan_backend *be)
{
    recorder *rec = rec_of(be);
    if (rec->on_side)
        return gan_error(GAN_ERR_ARG, "side_join while on the side stream");
    RECORD(OP_SIDE_JOIN);
    GAN_TRY(dispatch(be, &r));
    rec->side_pending = false;
    return GAN_OK;
}

/* Capture as CUDA does it: calls are recorded, not run; a launch runs the records. */
static gan_status rec_capture_begin(gan_backend *be)
{
    recorder *rec = rec_of(be);
    if (rec->on_side)
        return gan_error(GAN_ERR_ARG, "capture_begin on the side stream");
    rec->capturing = true;
    rec->captured_count = 0;
    return GAN_OK;
}
static gan_status rec_capture_end(gan_backend *be, gan_graph **out)
{
    recorder *rec = rec_of(be);
    rec->capturing = false;
    if (rec->on_side || rec->side_pending) {
        rec->captured_count = 0;
        return gan_error(GAN_ERR_ARG, "capture_end with the side stream %s", rec->on_side ? "in use" : "not joined");
    }
    gan_graph *g = calloc(1, sizeof *g);
    if (!g)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    g->records = rec->captured;
    g->count = rec->captured_count;
    rec->captured = NULL;
    rec->captured_count = rec->captured_capacity = 0;
    *out = g;
    return GAN_OK;
}
static gan_status rec_graph_launch(gan_backend *be, gan_graph *g)
{
    rec_of(be)->launches++;
    for (int i = 0; i < g->count; i++)
        GAN_TRY(run_record(rec_of(be)->cpu, &g->records[i]));
    return GAN_OK;
}
static void rec_graph_describe(gan_backend *be, gan_graph *g, char *out, size_t bytes)
{
    snprintf(out, bytes, "%d records", g->count);
}
static void rec_graph_destroy(gan_backend *be, gan_graph *g)
{
    if (g)
        free(g->records);
    free(g);
}
static void rec_destroy(gan_backend *be)
{
    recorder *rec = rec_of(be);
    rec->cpu->destroy(rec->cpu);
    free(rec->log);
    free(rec->captured);
    free(rec);
    free(be);
}

/* A one-rank process group running the data-parallel path (GAN_DIST_FORCE=1 without a launcher). */
static const gan_dist ONE_RANK = {.world_size = 1, .rank = 0, .local_size = 1, .local_rank = 0, .active = true,
                                  .mpi = false};

/* The recording backend over a CPU backend, opened with the process group `dist` (NULL: none). */
static gan_backend *recorder_create(bool with_graphs, const gan_dist *dist)
{
    gan_backend *be = calloc(1, sizeof *be);
    recorder *rec = calloc(1, sizeof *rec);
    CHECK(be && rec);
    gan_backend_options options = gan_backend_options_default();
    options.dist = dist;
    CHECK_OK(gan_cpu_backend_create(&options, &rec->cpu));
    *be = (gan_backend){
        .name = "recorder", .kind = GAN_BACKEND_CPU, .options = rec->cpu->options, .impl = rec,
        .alloc = rec_alloc, .free = rec_free, .upload = rec_upload, .download = rec_download,
        .copy = rec_copy, .fill = rec_fill, .synchronize = rec_synchronize, .gemm = rec_gemm,
        .conv_workspace_bytes = rec_conv_workspace_bytes, .conv_forward = rec_conv_forward,
        .conv_backward_data = rec_conv_backward_data, .conv_backward_filter = rec_conv_backward_filter,
        .conv_forward_act = rec_conv_forward_act, .conv_backward_data_act = rec_conv_backward_data_act,
        .conv_grads = rec_conv_grads, .bias_forward = rec_bias_forward, .bias_backward = rec_bias_backward,
        .bn_forward_train = rec_bn_forward_train, .bn_forward_eval = rec_bn_forward_eval,
        .bn_backward = rec_bn_backward, .bn_act_forward_train = rec_bn_act_forward_train,
        .bn_act_backward = rec_bn_act_backward, .activation_forward = rec_act_forward,
        .activation_backward = rec_act_backward, .dropout_forward = rec_dropout_forward,
        .multiply = rec_multiply, .bce_logits = rec_bce, .adam_step = rec_adam, .ema_update = rec_ema_update,
        .rng_normal = rec_rng_normal,
        .rng_uniform = rec_rng_uniform, .advance_counts = rec_advance, .images_to_float = rec_images_to_float,
        .bn_sums = rec_bn_sums, .bn_centered_squares = rec_bn_centered_squares,
        .bn_forward_from_sums = rec_bn_forward_from_sums, .bn_backward_sums = rec_bn_backward_sums,
        .bn_backward_from_sums = rec_bn_backward_from_sums, .destroy = rec_destroy,
    };
    if (rec->cpu->allreduce_sum) {
        be->allreduce_sum = rec_allreduce;
        be->allreduce_sum_f64 = rec_allreduce_f64;
    }
    if (with_graphs) {
        be->capture_begin = rec_capture_begin;
        be->capture_end = rec_capture_end;
        be->graph_launch = rec_graph_launch;
        be->graph_destroy = rec_graph_destroy;
        be->graph_describe = rec_graph_describe;
        be->side_fork = rec_side_fork;
        be->side_return = rec_side_return;
        be->side_join = rec_side_join;
    }
    return be;
}

/* ---- the trainers --------------------------------------------------------------------------- */

static const char *const DCGAN =
    "[model]\nnz = 16\n"
    "generator = convt(32,4,1,0) bn relu convt(16,4,2,1) bn relu convt(1,4,2,1) tanh\n"
    "discriminator = conv(16,4,2,1) lrelu(0.2) conv(32,4,2,1) bn lrelu(0.2) conv(1,4,1,0) sigmoid\n"
    "[data]\nimage_size = 16\nchannels = 1\n"
    "[train]\nbatch_size = 8\nseed = 3\nema_decay = 0.99\n"; /* the EMA of G: one more op in the graph */

static const char *const MLP =
    "[model]\nnz = 8\nnoise = uniform\n"
    "generator = linear(32) bn relu linear(64,bias) tanh reshape(1,8,8)\n"
    "discriminator = flatten linear(32,bias) lrelu(0.2) dropout(0.3) linear(16,bias) lrelu(0.2) dropout(0.3) "
    "linear(1,bias) sigmoid\n"
    "[data]\nimage_size = 8\nchannels = 1\n"
    "[train]\nbatch_size = 8\nseed = 4\nd_steps = 2\n";

/* How a trainer runs: on its own, or on a one-rank process group (the data-parallel path), with
 * or without train.sync_bn. */
typedef struct variant {
    const char *name;
    const gan_dist *dist;
    bool sync_bn;
} variant;

static const variant PLAIN = {"", NULL, true};
static const variant DIST_SYNC_BN = {" (one-rank group, sync_bn)", &ONE_RANK, true};
static const variant DIST_OWN_BN = {" (one-rank group, sync_bn = false)", &ONE_RANK, false};

/* A trainer on `be` fed by an in-memory data set of random images. */
static gan_trainer *make_trainer(gan_backend *be, const char *text, bool graph, bool sync_bn, gan_data_source **data)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg, text, "graph_replay.ini"));
    cfg.graph = graph;
    cfg.sync_bn = sync_bn;
    CHECK_OK(test_hashed_image_source(&cfg, 64, data));
    gan_trainer *t = NULL;
    CHECK_OK(gan_trainer_create(&cfg, be, *data, NULL, &t));
    return t;
}

static void free_trainer(gan_trainer *t, gan_data_source *data)
{
    gan_trainer_destroy(t);
    if (data)
        data->close(data);
}

/* The index of the first record that differs between the logs, -1 when they are the same. */
static int first_difference(const record *a, int a_count, const record *b, int b_count)
{
    int n = a_count < b_count ? a_count : b_count;
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]))
            return i;
    return a_count == b_count ? -1 : n;
}

/* Calls of the data-parallel ops (the all-reduces and the split batch norm) among `count` records. */
static int data_parallel_calls(const record *log, int count)
{
    int n = 0;
    for (int i = 0; i < count; i++)
        n += log[i].kind >= OP_ALLREDUCE && log[i].kind <= OP_BN_BACKWARD_FROM_SUMS;
    return n;
}

/* Three iterations' records of gan_trainer_run_iteration; returns the index of the first record
 * of iteration 2 or 3 that differs from iteration 1's (-1: none), with its op in *what. When
 * `leak` is set, a host scalar of the iteration (label smoothing) changes between iterations.
 * *parallel_calls: iteration 1's calls of the data-parallel ops. */
static int compare_iterations(const char *text, variant v, bool leak, const char **what, int *parallel_calls)
{
    gan_backend *be = recorder_create(false, v.dist);
    recorder *rec = rec_of(be);
    gan_data_source *data = NULL;
    gan_trainer *t = make_trainer(be, text, false, v.sync_bn, &data);
    record *logs[3] = {NULL, NULL, NULL};
    int counts[3] = {0, 0, 0};
    for (int it = 0; it < 3 && t; it++) {
        if (leak)
            t->cfg.label_smoothing = 0.1 * it;
        CHECK_OK(gan_trainer_upload_batches(t));
        rec->logging = true;
        CHECK_OK(gan_trainer_run_iteration(t));
        rec->logging = false;
        gan_trainer_finish_iteration(t);
        logs[it] = rec->log;
        counts[it] = rec->log_count;
        rec->log = NULL;
        rec->log_count = rec->log_capacity = 0;
    }
    int differs = -1;
    *what = "";
    for (int it = 1; it < 3 && differs < 0; it++) {
        differs = first_difference(logs[0], counts[0], logs[it], counts[it]);
        if (differs >= 0)
            *what = differs < counts[0] ? op_names[logs[0][differs].kind] : "(call count)";
    }
    if (!leak)
        CHECK_MSG(counts[0] > 20, "iteration 1 made only %d calls", counts[0]);
    *parallel_calls = data_parallel_calls(logs[0], counts[0]);
    for (int it = 0; it < 3; it++)
        free(logs[it]);
    free_trainer(t, data);
    be->destroy(be);
    return differs;
}

static void test_replay_validity(const char *name, const char *text, variant v)
{
    const char *what = "";
    int parallel_calls = 0;
    int differs = compare_iterations(text, v, false, &what, &parallel_calls);
    CHECK_MSG(differs < 0, "%s%s: call %d (%s) differs between iterations: the iteration cannot be replayed",
              name, v.name, differs, what);
    /* one process calls no data-parallel op; a group calls them (gradients, and batch norm's
     * statistics or running statistics) */
    if (v.dist)
        CHECK_MSG(parallel_calls >= 4, "%s%s: only %d data-parallel calls", name, v.name, parallel_calls);
    else
        CHECK_MSG(parallel_calls == 0, "%s: one process made %d data-parallel calls", name, parallel_calls);
    /* the comparison catches a host scalar that changes per step */
    differs = compare_iterations(text, v, true, &what, &parallel_calls);
    CHECK_MSG(differs >= 0 && !strcmp(what, "bce_logits"),
              "%s%s: a per-step label smoothing was not caught (first difference %d: %s)", name, v.name, differs,
              what);
}

static bool same_floats(gan_backend *be, const float *a, const float *b, size_t n)
{
    float *x = malloc(n * sizeof *x + 1), *y = malloc(n * sizeof *y + 1);
    CHECK_OK(be->download(be, x, a, n * sizeof *x));
    CHECK_OK(be->download(be, y, b, n * sizeof *y));
    bool same = !memcmp(x, y, n * sizeof *x);
    free(x);
    free(y);
    return same;
}

static void check_same_model(const char *what, gan_model *a, gan_model *b)
{
    CHECK_MSG(!memcmp(a->weights, b->weights, a->trainable_count * 4), "%s weights differ", what);
    CHECK_MSG(!memcmp(a->adam_m, b->adam_m, a->trainable_count * 4) &&
                  !memcmp(a->adam_v, b->adam_v, a->trainable_count * 4),
              "%s Adam moments differ", what);
    CHECK_MSG(!a->buffer_count || !memcmp(a->buffers, b->buffers, a->buffer_count * 4),
              "%s running statistics differ", what);
    int64_t ca[64], cb[64];
    int na = gan_model_bn_counts(a, ca, 64), nb = gan_model_bn_counts(b, cb, 64);
    CHECK_MSG(na == nb && !memcmp(ca, cb, (size_t)na * sizeof ca[0]), "%s num_batches_tracked differ", what);
}

/* The graph path of variant v against the plain CPU backend without a process group: the same
 * bits (a one-rank group's all-reduces are the identity, and the split batch norm adds what the
 * fused one does). */
static void test_graph_path(const char *base_name, const char *text, variant v)
{
    enum { STEPS = 6 };
    char name[128];
    snprintf(name, sizeof name, "%s%s", base_name, v.name);
    gan_backend *graphs = recorder_create(true, v.dist), *cpu = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &cpu));
    gan_data_source *data_graph = NULL, *data_eager = NULL;
    gan_trainer *g = make_trainer(graphs, text, true, v.sync_bn, &data_graph);
    gan_trainer *e = make_trainer(cpu, text, true, true, &data_eager); /* no graphs on the CPU backend */
    char described[64] = "untouched";
    if (g) { /* nothing captured yet: nothing to say */
        gan_trainer_describe_graph(g, described, sizeof described);
        CHECK_MSG(described[0] == '\0', "%s: a graph described before any was captured: %s", name, described);
    }
    for (int i = 0; i < STEPS && g && e; i++) {
        CHECK_OK(gan_trainer_step(g));
        CHECK_OK(gan_trainer_step(e));
    }
    if (g && e) {
        CHECK_MSG(g->graph != NULL && rec_of(graphs)->launches == STEPS - 1,
                  "%s: %d graph launches, want %d (step 1 op by op, then the graph)", name,
                  rec_of(graphs)->launches, STEPS - 1);
        CHECK_MSG(e->graph == NULL, "%s: the CPU backend has no graphs", name);
        /* G's forward went to the side beside D on the real batch, but in a data-parallel run; and
         * the DCGAN's weight gradients (its layers with an input gradient), which the MLP's linear
         * layers do not queue there */
        const recorder *rec = rec_of(graphs);
        bool convolutions = strstr(text, "conv(") != NULL;
        CHECK_MSG(rec->side_kinds[OP_CONV_BACKWARD_FILTER] == convolutions, "%s: backward-filters %son the side",
                  name, rec->side_kinds[OP_CONV_BACKWARD_FILTER] ? "" : "not ");
        bool g_beside = !v.dist;
        CHECK_MSG(rec->side_kinds[OP_BN_ACT_FORWARD_TRAIN] == g_beside, "%s: G's forward %son the side", name,
                  rec->side_kinds[OP_BN_ACT_FORWARD_TRAIN] ? "" : "not ");
        char want[64];
        snprintf(want, sizeof want, "%d records", g->graph ? g->graph->count : -1);
        gan_trainer_describe_graph(g, described, sizeof described);
        CHECK_MSG(!strcmp(described, want), "%s: the graph described as '%s', want '%s'", name, described, want);
        gan_trainer_describe_graph(e, described, sizeof described);
        CHECK_MSG(described[0] == '\0', "%s: the CPU trainer described a graph: %s", name, described);
        char what[160];
        snprintf(what, sizeof what, "%s G", name);
        check_same_model(what, g->g, e->g);
        snprintf(what, sizeof what, "%s D", name);
        check_same_model(what, g->d, e->d);
        CHECK_MSG(same_floats(cpu, g->step_values, e->step_values, 8), "%s: the last step's losses differ", name);
        CHECK_MSG((g->ema_weights != NULL) == (e->ema_weights != NULL) &&
                      (!g->ema_weights || !memcmp(g->ema_weights, e->ema_weights, g->g->trainable_count * 4)),
                  "%s: the EMA of G differs", name);
        CHECK_MSG(!g->ema_weights || memcmp(g->ema_weights, g->g->weights, g->g->trainable_count * 4),
                  "%s: the EMA of G was not updated", name);
        CHECK_MSG(!memcmp(g->counts, e->counts, GAN_COUNT_TOTAL * sizeof(uint64_t)),
                  "%s: the backend's counts differ", name);
        CHECK_MSG(g->adam_step_g == STEPS && g->adam_step_d == STEPS * g->cfg.d_steps &&
                      g->noise_offset == e->noise_offset && g->dropout_offset_d == e->dropout_offset_d &&
                      g->counts[GAN_COUNT_NOISE] == g->noise_offset &&
                      g->counts[GAN_COUNT_DROPOUT_D] == g->dropout_offset_d,
                  "%s: the host's counts do not follow the backend's", name);
    }
    free_trainer(g, data_graph);
    free_trainer(e, data_eager);
    graphs->destroy(graphs);
    cpu->destroy(cpu);
}

int main(void)
{
    const variant variants[] = {PLAIN, DIST_SYNC_BN, DIST_OWN_BN};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        test_replay_validity("dcgan", DCGAN, variants[i]);
        test_replay_validity("mlp", MLP, variants[i]);
        test_graph_path("dcgan", DCGAN, variants[i]);
        test_graph_path("mlp", MLP, variants[i]);
    }
    return test_finish();
}
