/* Every op of the op table on two backends, compared output by output (see gan/selftest.h).
 *
 * Tolerances, element by element |test - ref| <= atol + rtol |ref| (numpy.allclose), and why:
 *   exact (0, 0): ops whose per-element math is the same IEEE operations on both sides with no
 *     multiply-add to contract: fill, copy, relu/lrelu, multiply, dropout (its uniform draws
 *     are integer arithmetic and one comparison), bias add, image conversion, the EMA update
 *     (two products each rounded on its own, then their sum: gan_mul_rn keeps nvcc from fusing).
 *   rtol 1e-6, atol 1e-7: elementwise ops where nvcc contracts a*b+c into one FMA, or where the
 *     device's expf/tanhf/logf differ from glibc's by an ulp or two: tanh, sigmoid, their
 *     backward, BCE gradient, Adam; uniform fill (low + range * u, fused or not: at most half
 *     an ulp of range * u apart, so atol 2.5e-7 for values up to 2).
 *   rtol 1e-5, atol 1e-5: normal fill (Box-Muller through device logf, sinf, cosf; values up to
 *     ~5 in magnitude).
 *   rtol 1e-4, atol 1e-4 .. 1e-3: sums in a different order: GEMM and convolution (FP32, up to
 *     ~1000 terms of O(1)), bias gradient, batch norm (cuDNN's statistics), BCE mean.
 *   TF32 (train.precision = tf32 only): GEMM and convolution rtol 1e-2, atol 5e-2 (10-bit
 *     mantissas).
 *   BF16 (train.precision = bf16 only): GEMM and convolution rtol 1e-2, atol 2.5e-1. Each operand
 *     is rounded to 8 significant bits (relative error up to 2^-9 each, 2^-8 per product); the
 *     rounding errors of K products of uniform [-1, 1) operands (E|ab| = 1/4) add up like a
 *     random walk, sqrt(K) 2^-8 / 4 = 0.03 for K = 1000 (the largest K here), and atol is about
 *     8 of those standard deviations: the CPU backend rounding as bf16 does
 *     (tests/test_selftest_precision.c) reaches 0.10 on these inputs, and cuDNN's transform
 *     algorithms (Winograd, FFT) add error of their own. A convolution's result is itself stored
 *     in BF16 (half an ulp: 2^-9 relative), which rtol covers. A wrong layout or index gives
 *     errors of order 1 and a rel_l2 far above BF16's ~3e-3.
 * Inputs are uniform in [-1, 1) (wider where a range matters, e.g. activations in [-6, 6)). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/selftest.h"

typedef struct tolerance {
    double atol, rtol;
} tolerance;

static const tolerance EXACT = {0.0, 0.0};
static const tolerance ULPS = {1e-7, 1e-6};
static const tolerance TRANSCENDENTAL = {1e-5, 1e-5};
static const tolerance REDUCTION = {1e-4, 1e-4};
static const tolerance LONG_REDUCTION = {1e-3, 1e-4};
static const tolerance TF32 = {5e-2, 1e-2};
static const tolerance BF16 = {2.5e-1, 1e-2};

typedef struct selftest {
    gan_backend *ref, *test;
    FILE *report;
    bool all_ok;
    gan_precision precision; /* of the test backend's GEMMs and convolutions */
    uint64_t rng_state;
} selftest;

/* The same buffer on both backends. */
typedef struct pair {
    void *ref, *test;
    size_t bytes;
} pair;

/* ---- helpers ------------------------------------------------------------------------------- */

/* The tolerance of a GEMM or convolution result: `fp32`'s, or the reduced precision's. */
static tolerance math_tolerance(const selftest *st, tolerance fp32)
{
    switch (st->precision) {
    case GAN_PRECISION_FP32: return fp32;
    case GAN_PRECISION_TF32: return TF32;
    case GAN_PRECISION_BF16: return BF16;
    }
    return fp32;
}

static float next_uniform(selftest *st, float low, float high)
{
    /* xorshift64*: reproducible inputs, independent of both backends' generators */
    st->rng_state ^= st->rng_state >> 12;
    st->rng_state ^= st->rng_state << 25;
    st->rng_state ^= st->rng_state >> 27;
    uint64_t bits = st->rng_state * 0x2545F4914F6CDD1Dull;
    float u = (float)(bits >> 40) * (1.0f / 16777216.0f);
    return low + (high - low) * u;
}

static gan_status pair_alloc(selftest *st, pair *p, size_t bytes)
{
    p->ref = p->test = NULL;
    p->bytes = bytes;
    GAN_TRY(st->ref->alloc(st->ref, bytes ? bytes : 4, &p->ref));
    gan_status status = st->test->alloc(st->test, bytes ? bytes : 4, &p->test);
    if (status != GAN_OK) {
        st->ref->free(st->ref, p->ref);
        p->ref = NULL;
    }
    return status;
}

static void pair_free(selftest *st, pair *p)
{
    if (p->ref)
        st->ref->free(st->ref, p->ref);
    if (p->test)
        st->test->free(st->test, p->test);
    p->ref = p->test = NULL;
}

static gan_status pair_upload(selftest *st, pair *p, const void *host)
{
    GAN_TRY(st->ref->upload(st->ref, p->ref, host, p->bytes));
    return st->test->upload(st->test, p->test, host, p->bytes);
}

/* `count` random floats in [low, high) in host memory (the caller frees them). */
static gan_status random_host(selftest *st, size_t count, float low, float high, float **out)
{
    float *host = *out = malloc((count ? count : 1) * sizeof *host);
    if (!host)
        return gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
    for (size_t i = 0; i < count; i++)
        host[i] = next_uniform(st, low, high);
    return GAN_OK;
}

/* A pair of `count` floats holding the same random values in [low, high). */
static gan_status pair_random(selftest *st, pair *p, size_t count, float low, float high)
{
    GAN_TRY(pair_alloc(st, p, count * sizeof(float)));
    float *host;
    GAN_TRY(random_host(st, count, low, high, &host));
    gan_status status = pair_upload(st, p, host);
    free(host);
    return status;
}

/* A uint64 count holding `value` on both backends. */
static gan_status pair_count(selftest *st, pair *p, uint64_t value)
{
    GAN_TRY(pair_alloc(st, p, sizeof value));
    return pair_upload(st, p, &value);
}

/* Copies the reference side's contents over the test side's, so that the next op starts both
 * backends from the same input (isolating its own error). */
static gan_status pair_sync_from_ref(selftest *st, pair *p)
{
    void *host = malloc(p->bytes ? p->bytes : 1);
    if (!host)
        return gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
    gan_status status = GAN_OK;
    GAN_CHECK(st->ref->download(st->ref, host, p->ref, p->bytes));
    GAN_CHECK(st->test->upload(st->test, p->test, host, p->bytes));
cleanup:
    free(host);
    return status;
}

/* An op failed on one side: reported, counted as out of tolerance, and the selftest goes on. */
static void op_failed(selftest *st, const char *op, const char *side, gan_status status)
{
    st->all_ok = false;
    if (st->report)
        fprintf(st->report, "%-44s FAIL: %s backend returned %s: %s\n", op, side,
                gan_status_name(status), gan_error_message());
    gan_error_clear();
}

/* RUN_BOTH(st, op, call) runs `call` once on each backend, with `be` naming the backend (and
 * SIDE(p) its half of pair p); true when both succeeded, failures reported. A function using it
 * declares BOTH_SIDES_LOCALS first. The comma operator sequences the two runs. */
#define BOTH_SIDES_LOCALS      \
    gan_backend *be = NULL;    \
    gan_status side_status[2]
#define RUN_BOTH(st, op, call)                                                              \
    (be = (st)->ref, side_status[0] = (call), be = (st)->test, side_status[1] = (call),    \
     run_both_result((st), (op), side_status[0], side_status[1]))
/* The side of pair p that belongs to backend be. */
#define SIDE(p) ((float *)(be == st->ref ? (p).ref : (p).test))
#define SIDE_RAW(p) (be == st->ref ? (p).ref : (p).test)
/* A count in backend memory (pair_count) as the ops read it: *base + offset. */
#define SIDE_COUNT(p, offset) ((gan_count){(const uint64_t *)SIDE_RAW(p), (offset)})

static bool run_both_result(selftest *st, const char *op, gan_status ref_status,
                            gan_status test_status)
{
    if (ref_status != GAN_OK) {
        op_failed(st, op, "reference", ref_status);
        return false;
    }
    if (test_status != GAN_OK) {
        op_failed(st, op, "test", test_status);
        return false;
    }
    return true;
}

/* Prints the comparison line of `count` floats, `got` (the test side) against `ref`. */
static void report_comparison(selftest *st, const char *op, const float *ref, const float *got,
                              size_t count, tolerance tol)
{
    double max_abs = 0.0, max_rel = 0.0, err_sq = 0.0, ref_sq = 0.0;
    size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < count; i++) {
        double r = ref[i], g = got[i];
        double diff = fabs(g - r);
        if (!isfinite(r) || !isfinite(g))
            diff = (r == g || (isnan(r) && isnan(g))) ? 0.0 : INFINITY;
        double rel = diff / (fabs(r) > 1e-6 ? fabs(r) : 1e-6);
        if (diff > max_abs)
            max_abs = diff;
        if (rel > max_rel)
            max_rel = rel;
        err_sq += diff * diff;
        if (isfinite(r))
            ref_sq += r * r;
        double allowed = tol.atol + tol.rtol * fabs(r);
        if (diff > allowed) {
            bad++;
            if (diff - allowed > worst_excess) {
                worst_excess = diff - allowed;
                worst = i;
            }
        }
    }
    if (bad)
        st->all_ok = false;
    /* The relative L2 error, |got - ref| / |ref| over the whole tensor: the figure reduced
     * precisions (tf32, bf16) are judged by, where single values may stray further. */
    double rel_l2 = sqrt(err_sq) / (ref_sq > 0.0 ? sqrt(ref_sq) : 1.0);
    if (st->report) {
        fprintf(st->report,
                "%-44s %8zu  max_abs %.3e  max_rel %.3e  rel_l2 %.3e  tol atol %.0e rtol %.0e  %s",
                op, count, max_abs, max_rel, rel_l2, tol.atol, tol.rtol, bad ? "FAIL" : "ok");
        if (bad)
            fprintf(st->report, " (%zu out of tolerance; worst [%zu] %.9g vs %.9g)", bad, worst,
                    (double)got[worst], (double)ref[worst]);
        fputc('\n', st->report);
    }
}

/* Downloads both sides of `count` floats and prints the comparison line. */
static gan_status compare(selftest *st, const char *op, const pair *p, size_t count, tolerance tol)
{
    GAN_TRY(st->test->synchronize(st->test));
    float *ref = malloc((count ? count : 1) * sizeof *ref);
    float *got = malloc((count ? count : 1) * sizeof *got);
    gan_status status = GAN_OK;
    if (!ref || !got) {
        status = gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
        goto cleanup;
    }
    GAN_CHECK(st->ref->download(st->ref, ref, p->ref, count * sizeof(float)));
    GAN_CHECK(st->test->download(st->test, got, p->test, count * sizeof(float)));
    report_comparison(st, op, ref, got, count, tol);
cleanup:
    free(ref);
    free(got);
    return status;
}

/* ---- the ops -------------------------------------------------------------------------------- */

static gan_status check_memory_ops(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const size_t count = 1000;
    pair a = {0}, b = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_alloc(st, &a, count * sizeof(float)));
    GAN_CHECK(pair_random(st, &b, count, -1.0f, 1.0f));
    if (RUN_BOTH(st, "fill", be->fill(be, SIDE(a), 0.375f, count)))
        GAN_CHECK(compare(st, "fill", &a, count, EXACT));
    if (RUN_BOTH(st, "copy", be->copy(be, SIDE(a), SIDE(b), count * sizeof(float))))
        GAN_CHECK(compare(st, "copy", &a, count, EXACT));
cleanup:
    pair_free(st, &a);
    pair_free(st, &b);
    return status;
}

/* One GEMM, A and B transposed or not, with padded leading dimensions. */
static gan_status check_gemm_case(selftest *st, bool ta, bool tb)
{
    BOTH_SIDES_LOCALS;
    const int m = 67, n = 45, k = 129, pad = 3;
    tolerance tol = math_tolerance(st, REDUCTION);
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    size_t a_count = (size_t)(ta ? k : m) * lda, b_count = (size_t)(tb ? n : k) * ldb;
    size_t c_count = (size_t)m * ldc;
    pair a = {0}, b = {0}, c = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &a, a_count, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &b, b_count, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &c, c_count, -1.0f, 1.0f));
    char op[64];
    snprintf(op, sizeof op, "gemm %c%c %dx%dx%d", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
    if (RUN_BOTH(st, op, be->gemm(be, ta, tb, m, n, k, 0.75f, SIDE(a), lda, SIDE(b), ldb, 0.5f,
                                  SIDE(c), ldc)))
        GAN_CHECK(compare(st, op, &c, c_count, tol));
cleanup:
    pair_free(st, &a);
    pair_free(st, &b);
    pair_free(st, &c);
    return status;
}

static gan_status check_gemm(selftest *st)
{
    for (int t = 0; t < 4; t++)
        GAN_TRY(check_gemm_case(st, t & 1, t & 2));
    return GAN_OK;
}

static gan_conv_geom conv_geom(int n, int c_in, int h_in, int w_in, int c_out, int k, int s, int p)
{
    gan_conv_geom g = {
        .n = n, .c_in = c_in, .h_in = h_in, .w_in = w_in, .c_out = c_out,
        .h_out = (h_in + 2 * p - k) / s + 1, .w_out = (w_in + 2 * p - k) / s + 1,
        .k_h = k, .k_w = k, .stride_h = s, .stride_w = s, .pad_h = p, .pad_w = p,
    };
    return g;
}

/* The buffers of one convolution geometry on both sides: x, dy and dw random in [-1, 1], w in
 * [-w_scale, w_scale], room for y and dx, and each backend's workspace for the geometry (planned
 * by each, as a model does); `name` describes the geometry. */
typedef struct conv_pairs {
    pair x, w, y, dy, dx, dw, ws;
    size_t x_count, y_count, w_count;
    char name[96];
} conv_pairs;

static void conv_pairs_free(selftest *st, conv_pairs *c)
{
    pair *all[] = {&c->x, &c->w, &c->y, &c->dy, &c->dx, &c->dw, &c->ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(st, all[i]);
}

static gan_status conv_pairs_make(selftest *st, const gan_conv_geom *g, float w_scale, conv_pairs *c)
{
    memset(c, 0, sizeof *c);
    c->x_count = (size_t)g->n * g->c_in * g->h_in * g->w_in;
    c->y_count = (size_t)g->n * g->c_out * g->h_out * g->w_out;
    c->w_count = (size_t)g->c_out * g->c_in * g->k_h * g->k_w;
    snprintf(c->name, sizeof c->name, "[%d,%d,%d,%d] k%d s%d p%d", g->n, g->c_in, g->h_in, g->w_in, g->k_h,
             g->stride_h, g->pad_h);
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &c->x, c->x_count, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &c->w, c->w_count, -w_scale, w_scale));
    GAN_CHECK(pair_random(st, &c->dy, c->y_count, -1.0f, 1.0f));
    GAN_CHECK(pair_alloc(st, &c->y, c->y_count * sizeof(float)));
    GAN_CHECK(pair_alloc(st, &c->dx, c->x_count * sizeof(float)));
    GAN_CHECK(pair_random(st, &c->dw, c->w_count, -1.0f, 1.0f));
    size_t ref_ws = st->ref->conv_workspace_bytes(st->ref, g, GAN_CONV_PASSES_ALL);
    size_t test_ws = st->test->conv_workspace_bytes(st->test, g, GAN_CONV_PASSES_ALL);
    GAN_CHECK(st->ref->alloc(st->ref, ref_ws ? ref_ws : 4, &c->ws.ref));
    GAN_CHECK(st->test->alloc(st->test, test_ws ? test_ws : 4, &c->ws.test));
    return GAN_OK;
cleanup:
    conv_pairs_free(st, c);
    return status;
}

/* A layer's forward `pass` (forward or backward-data) with the activation `act` on be: with its
 * input's copy made into `keep` (conv_keep_pass) where keep is given, else the plain ops. */
static gan_status forward_keeping(gan_backend *be, const gan_conv_geom *g, gan_conv_pass pass, const float *in,
                                  const float *w, gan_activation act, float slope, float *out, void *keep, void *ws)
{
    if (keep)
        return be->conv_keep_pass(be, g, pass, in, w, (int)act, slope, out, keep, ws);
    if (pass == GAN_CONV_FORWARD)
        return be->conv_forward_act(be, g, in, w, act, slope, out, ws);
    return be->conv_backward_data_act(be, g, in, w, act, slope, out, ws);
}

/* conv_keep_pass and conv_grads on its kept copy (test backend) against the plain ops (reference),
 * for the layer whose backward's second pass is grads_other: a Conv2d's forward (x kept, with D's
 * LeakyReLU) then its backward (backward-data into dx), or a ConvTranspose2d's forward (its
 * convolution's backward-data: dy kept, with G's ReLU) then its backward (forward into y). */
static gan_status check_conv_kept(selftest *st, const gan_conv_geom *g, conv_pairs *c, gan_conv_pass grads_other,
                                  tolerance tol)
{
    BOTH_SIDES_LOCALS;
    bool conv2d = grads_other == GAN_CONV_BACKWARD_DATA;
    gan_conv_pass pass = conv2d ? GAN_CONV_FORWARD : GAN_CONV_BACKWARD_DATA;
    const char *pass_name = conv2d ? "fwd lrelu" : "bwd-data relu";
    char op[160], part[200];
    snprintf(op, sizeof op, "conv_keep_pass %s %s", pass_name, c->name);
    size_t keep_bytes = st->test->conv_keep_bytes ? st->test->conv_keep_bytes(st->test, g, pass) : 0;
    if (!keep_bytes) {
        if (st->report)
            fprintf(st->report, "%-44s none: the %s backend keeps no copy here\n", op, st->test->name);
        return GAN_OK;
    }
    void *keep = NULL;
    GAN_TRY(st->test->alloc(st->test, keep_bytes, &keep));
    gan_status status = GAN_OK;
    pair *in = conv2d ? &c->x : &c->dy, *fwd_out = conv2d ? &c->y : &c->dx, *out = conv2d ? &c->dx : &c->y;
    size_t fwd_count = conv2d ? c->y_count : c->x_count, out_count = conv2d ? c->x_count : c->y_count;
    gan_activation act = conv2d ? GAN_ACT_LRELU : GAN_ACT_RELU;
    if (RUN_BOTH(st, op, forward_keeping(be, g, pass, SIDE(*in), SIDE(c->w), act, 0.2f, SIDE(*fwd_out),
                                         be == st->test ? keep : NULL, SIDE_RAW(c->ws))))
        GAN_CHECK(compare(st, op, fwd_out, fwd_count, tol));
    else
        goto cleanup; /* no copy kept to read */
    snprintf(op, sizeof op, "conv_grads %s kept %s", conv2d ? "bwd-data b1" : "fwd b0", c->name);
    if (RUN_BOTH(st, op, be->conv_grads(be, g, SIDE(c->x), SIDE(c->dy), conv2d ? 1.0f : 0.0f, SIDE(c->dw),
                                        grads_other, SIDE(c->w), SIDE(*out), be == st->test ? keep : NULL,
                                        SIDE_RAW(c->ws)))) {
        snprintf(part, sizeof part, "%s dw", op);
        GAN_CHECK(compare(st, part, &c->dw, c->w_count, tol));
        snprintf(part, sizeof part, "%s %s", op, conv2d ? "dx" : "y");
        GAN_CHECK(compare(st, part, out, out_count, tol));
    }
    GAN_CHECK(pair_sync_from_ref(st, &c->dw));
cleanup:
    st->test->free(st->test, keep);
    return status;
}

static gan_status check_conv_geom(selftest *st, const gan_conv_geom *g)
{
    BOTH_SIDES_LOCALS;
    tolerance tol = math_tolerance(st, LONG_REDUCTION);
    conv_pairs c;
    GAN_TRY(conv_pairs_make(st, g, 1.0f, &c));
    char op[128];
    gan_status status = GAN_OK;
    snprintf(op, sizeof op, "conv_forward %s", c.name);
    if (RUN_BOTH(st, op, be->conv_forward(be, g, SIDE(c.x), SIDE(c.w), SIDE(c.y), SIDE_RAW(c.ws))))
        GAN_CHECK(compare(st, op, &c.y, c.y_count, tol));
    snprintf(op, sizeof op, "conv_backward_data %s", c.name);
    if (RUN_BOTH(st, op, be->conv_backward_data(be, g, SIDE(c.dy), SIDE(c.w), SIDE(c.dx), SIDE_RAW(c.ws))))
        GAN_CHECK(compare(st, op, &c.dx, c.x_count, tol));
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        float beta = accumulate ? 1.0f : 0.0f;
        snprintf(op, sizeof op, "conv_backward_filter b%d %s", accumulate, c.name);
        if (RUN_BOTH(st, op, be->conv_backward_filter(be, g, SIDE(c.x), SIDE(c.dy), beta, SIDE(c.dw),
                                                      SIDE_RAW(c.ws))))
            GAN_CHECK(compare(st, op, &c.dw, c.w_count, tol));
        GAN_CHECK(pair_sync_from_ref(st, &c.dw));
    }
    /* conv_grads (optional: compared where both backends have it): a Conv2d's two backward
     * passes, dy in common (accumulating into dw), and a ConvTranspose2d's, x in common */
    if (!st->ref->conv_grads || !st->test->conv_grads) {
        if (st->report)
            fprintf(st->report, "%-44s not in the %s backend: its callers run the ops apart\n", "conv_grads",
                    !st->test->conv_grads ? st->test->name : st->ref->name);
    } else {
        /* the Conv2d's accumulates into dw (beta 1) and writes dx; the ConvTranspose2d's
         * overwrites dw and writes y */
        const struct {
            const char *name;
            gan_conv_pass other;
            float beta;
            pair *out;
            size_t out_count;
            const char *out_name;
        } grads[2] = {
            {"bwd-data b1", GAN_CONV_BACKWARD_DATA, 1.0f, &c.dx, c.x_count, "dx"},
            {"fwd b0", GAN_CONV_FORWARD, 0.0f, &c.y, c.y_count, "y"},
        };
        for (int i = 0; i < 2; i++) {
            char part[160];
            snprintf(op, sizeof op, "conv_grads %s %s", grads[i].name, c.name);
            if (RUN_BOTH(st, op, be->conv_grads(be, g, SIDE(c.x), SIDE(c.dy), grads[i].beta, SIDE(c.dw),
                                                grads[i].other, SIDE(c.w), SIDE((*grads[i].out)), NULL,
                                                SIDE_RAW(c.ws)))) {
                snprintf(part, sizeof part, "%s dw", op);
                GAN_CHECK(compare(st, part, &c.dw, c.w_count, tol));
                snprintf(part, sizeof part, "%s %s", op, grads[i].out_name);
                GAN_CHECK(compare(st, part, grads[i].out, grads[i].out_count, tol));
            }
            GAN_CHECK(pair_sync_from_ref(st, &c.dw));
            GAN_CHECK(check_conv_kept(st, g, &c, grads[i].other, tol));
        }
    }
cleanup:
    conv_pairs_free(st, &c);
    return status;
}

static gan_status check_conv(selftest *st)
{
    /* A DCGAN layer (k4 s2 p1), G's first transposed convolution's geometry (k4 s1 p0 to 1x1),
     * and an odd one. */
    gan_conv_geom geoms[3] = {
        conv_geom(8, 16, 16, 16, 32, 4, 2, 1),
        conv_geom(8, 64, 4, 4, 100, 4, 1, 0),
        conv_geom(3, 5, 11, 9, 7, 3, 2, 1),
    };
    for (int i = 0; i < 3; i++)
        GAN_TRY(check_conv_geom(st, &geoms[i]));
    return GAN_OK;
}

/* conv_forward_act and conv_backward_data_act are optional: compared where both backends have
 * them (the layers run the pass and activation_forward apart where one has not), one row each:
 * D's first layer (3 -> 64 channels, 64x64 -> 32x32, LeakyReLU 0.2) and G's last, the transposed
 * convolution of the same geometry (backward-data: 64 -> 3 channels, 32x32 -> 64x64, tanh).
 * Weights at a trained layer's scale keep tanh off its saturated ends. */
static gan_status check_conv_act(selftest *st)
{
    BOTH_SIDES_LOCALS;
    enum { FORWARD, BACKWARD_DATA };
    static const struct {
        const char *op;
        int pass;
        gan_activation act;
        float slope;
        const char *act_name;
    } rows[] = {
        {"conv_forward_act", FORWARD, GAN_ACT_LRELU, 0.2f, "lrelu(0.2)"},
        {"conv_backward_data_act", BACKWARD_DATA, GAN_ACT_TANH, 0.0f, "tanh"},
    };
    const gan_conv_geom g = conv_geom(8, 3, 64, 64, 64, 4, 2, 1);
    tolerance tol = math_tolerance(st, LONG_REDUCTION);
    conv_pairs c;
    GAN_TRY(conv_pairs_make(st, &g, 0.1f, &c));
    char op[160];
    gan_status status = GAN_OK;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const bool forward = rows[i].pass == FORWARD;
        const bool ref_has = forward ? st->ref->conv_forward_act != NULL : st->ref->conv_backward_data_act != NULL;
        const bool test_has = forward ? st->test->conv_forward_act != NULL : st->test->conv_backward_data_act != NULL;
        if (!ref_has || !test_has) {
            if (st->report)
                fprintf(st->report, "%-44s not in the %s backend: its callers run the ops apart\n", rows[i].op,
                        !test_has ? st->test->name : st->ref->name);
            continue;
        }
        snprintf(op, sizeof op, "%s %s %s", rows[i].op, rows[i].act_name, c.name);
        if (forward) { /* y = act(conv(x)) */
            if (RUN_BOTH(st, op, be->conv_forward_act(be, &g, SIDE(c.x), SIDE(c.w), rows[i].act, rows[i].slope,
                                                      SIDE(c.y), SIDE_RAW(c.ws))))
                GAN_CHECK(compare(st, op, &c.y, c.y_count, tol));
        } else { /* dx = act(conv^T(dy)): G's last layer, dy its input */
            if (RUN_BOTH(st, op, be->conv_backward_data_act(be, &g, SIDE(c.dy), SIDE(c.w), rows[i].act,
                                                            rows[i].slope, SIDE(c.dx), SIDE_RAW(c.ws))))
                GAN_CHECK(compare(st, op, &c.dx, c.x_count, tol));
        }
    }
cleanup:
    conv_pairs_free(st, &c);
    return status;
}

static gan_status check_bias(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const int n = 4, c = 6, hw = 50;
    size_t count = (size_t)n * c * hw;
    pair bias = {0}, y = {0}, db = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &bias, (size_t)c, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &y, count, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &db, (size_t)c, -1.0f, 1.0f));
    if (RUN_BOTH(st, "bias_forward", be->bias_forward(be, n, c, hw, SIDE(bias), SIDE(y))))
        GAN_CHECK(compare(st, "bias_forward", &y, count, EXACT));
    if (RUN_BOTH(st, "bias_backward b0", be->bias_backward(be, n, c, hw, SIDE(y), 0.0f, SIDE(db))))
        GAN_CHECK(compare(st, "bias_backward b0", &db, (size_t)c, REDUCTION));
    GAN_CHECK(pair_sync_from_ref(st, &db));
    if (RUN_BOTH(st, "bias_backward b1", be->bias_backward(be, n, c, hw, SIDE(y), 1.0f, SIDE(db))))
        GAN_CHECK(compare(st, "bias_backward b1", &db, (size_t)c, REDUCTION));
cleanup:
    pair_free(st, &bias);
    pair_free(st, &y);
    pair_free(st, &db);
    return status;
}

/* A batch norm's per-channel buffers: gamma, beta, the running mean and variance (random about
 * their starting values), and the saved mean and invstd (written by the forward). */
static gan_status bn_params_alloc(selftest *st, int c, pair *gamma, pair *beta, pair *rm, pair *rv, pair *sm,
                                  pair *si)
{
    GAN_TRY(pair_random(st, gamma, (size_t)c, 0.5f, 1.5f));
    GAN_TRY(pair_random(st, beta, (size_t)c, -0.5f, 0.5f));
    GAN_TRY(pair_random(st, rm, (size_t)c, -0.1f, 0.1f));
    GAN_TRY(pair_random(st, rv, (size_t)c, 0.9f, 1.1f));
    GAN_TRY(pair_alloc(st, sm, (size_t)c * sizeof(float)));
    return pair_alloc(st, si, (size_t)c * sizeof(float));
}

static gan_status check_bn_shape(selftest *st, int n, int c, int hw)
{
    BOTH_SIDES_LOCALS;
    size_t count = (size_t)n * c * hw;
    pair x = {0}, gamma = {0}, beta = {0}, rm = {0}, rv = {0}, sm = {0}, si = {0}, y = {0};
    pair dy = {0}, dx = {0}, dg = {0}, db = {0}, ya = {0};
    pair *all[] = {&x, &gamma, &beta, &rm, &rv, &sm, &si, &y, &dy, &dx, &dg, &db, &ya};
    char name[64], op[96];
    snprintf(name, sizeof name, "[%d,%d,%d]", n, c, hw);
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &x, count, -2.0f, 3.0f)); /* mean 0.5, var 2.1 */
    GAN_CHECK(bn_params_alloc(st, c, &gamma, &beta, &rm, &rv, &sm, &si));
    GAN_CHECK(pair_alloc(st, &y, count * sizeof(float)));
    GAN_CHECK(pair_random(st, &dy, count, -1.0f, 1.0f));
    GAN_CHECK(pair_alloc(st, &dx, count * sizeof(float)));
    GAN_CHECK(pair_random(st, &dg, (size_t)c, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &db, (size_t)c, -1.0f, 1.0f));
    GAN_CHECK(pair_alloc(st, &ya, count * sizeof(float)));

    snprintf(op, sizeof op, "bn_forward_train %s", name);
    if (RUN_BOTH(st, op, be->bn_forward_train(be, n, c, hw, SIDE(x), SIDE(gamma), SIDE(beta), 0.1f,
                                              1e-5f, SIDE(rm), SIDE(rv), SIDE(sm), SIDE(si), SIDE(y)))) {
        const struct { const char *what; pair *p; size_t count; tolerance tol; } outputs[] = {
            {"y", &y, count, REDUCTION},
            {"running_mean", &rm, (size_t)c, REDUCTION},
            {"running_var", &rv, (size_t)c, REDUCTION},
            {"save_mean", &sm, (size_t)c, REDUCTION},
            {"save_invstd", &si, (size_t)c, REDUCTION},
        };
        for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
            snprintf(op, sizeof op, "bn_forward_train %s %s", name, outputs[i].what);
            GAN_CHECK(compare(st, op, outputs[i].p, outputs[i].count, outputs[i].tol));
            if (i > 0)
                GAN_CHECK(pair_sync_from_ref(st, outputs[i].p));
        }
    }
    snprintf(op, sizeof op, "bn_forward_eval %s", name);
    if (RUN_BOTH(st, op, be->bn_forward_eval(be, n, c, hw, SIDE(x), SIDE(gamma), SIDE(beta), SIDE(rm),
                                             SIDE(rv), 1e-5f, SIDE(y))))
        GAN_CHECK(compare(st, op, &y, count, REDUCTION));
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        float param_beta = accumulate ? 1.0f : 0.0f;
        snprintf(op, sizeof op, "bn_backward b%d %s", accumulate, name);
        if (!RUN_BOTH(st, op, be->bn_backward(be, n, c, hw, SIDE(x), SIDE(dy), SIDE(gamma), SIDE(sm),
                                              SIDE(si), SIDE(dx), param_beta, SIDE(dg), SIDE(db))))
            continue;
        snprintf(op, sizeof op, "bn_backward b%d %s dx", accumulate, name);
        GAN_CHECK(compare(st, op, &dx, count, REDUCTION));
        snprintf(op, sizeof op, "bn_backward b%d %s dgamma", accumulate, name);
        GAN_CHECK(compare(st, op, &dg, (size_t)c, REDUCTION));
        snprintf(op, sizeof op, "bn_backward b%d %s dbeta", accumulate, name);
        GAN_CHECK(compare(st, op, &db, (size_t)c, REDUCTION));
        GAN_CHECK(pair_sync_from_ref(st, &dg));
        GAN_CHECK(pair_sync_from_ref(st, &db));
    }
    /* Batch norm fused with the LeakyReLU after it (optional ops, compared where both backends
     * have them): y_act, then the backward from the reference's y_act on both sides (the slope
     * taken depends on its signs). */
    if (!st->ref->bn_act_forward_train || !st->test->bn_act_forward_train || !st->ref->bn_act_backward ||
        !st->test->bn_act_backward) {
        if (st->report)
            fprintf(st->report, "%-44s not in both backends: its callers run the ops apart\n", "bn_act_*");
        goto cleanup;
    }
    snprintf(op, sizeof op, "bn_act_forward_train lrelu(0.2) %s", name);
    if (RUN_BOTH(st, op, be->bn_act_forward_train(be, n, c, hw, SIDE(x), SIDE(gamma), SIDE(beta), 0.1f, 1e-5f,
                                                  SIDE(rm), SIDE(rv), SIDE(sm), SIDE(si), SIDE(y), GAN_ACT_LRELU,
                                                  0.2f, SIDE(ya)))) {
        snprintf(op, sizeof op, "bn_act_forward_train lrelu(0.2) %s y_act", name);
        GAN_CHECK(compare(st, op, &ya, count, REDUCTION));
        pair *inputs_of_backward[] = {&sm, &si, &ya};
        for (size_t i = 0; i < sizeof inputs_of_backward / sizeof inputs_of_backward[0]; i++)
            GAN_CHECK(pair_sync_from_ref(st, inputs_of_backward[i]));
    }
    snprintf(op, sizeof op, "bn_act_backward lrelu(0.2) %s", name);
    if (RUN_BOTH(st, op, be->bn_act_backward(be, n, c, hw, SIDE(x), SIDE(ya), SIDE(dy), GAN_ACT_LRELU, 0.2f,
                                             SIDE(gamma), SIDE(sm), SIDE(si), SIDE(dx), 0.0f, SIDE(dg),
                                             SIDE(db)))) {
        const struct { const char *what; pair *p; size_t count; } outputs[] = {
            {"dx", &dx, count}, {"dgamma", &dg, (size_t)c}, {"dbeta", &db, (size_t)c}};
        for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
            snprintf(op, sizeof op, "bn_act_backward lrelu(0.2) %s %s", name, outputs[i].what);
            GAN_CHECK(compare(st, op, outputs[i].p, outputs[i].count, REDUCTION));
        }
    }
cleanup:
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(st, all[i]);
    return status;
}

static gan_status check_bn(selftest *st)
{
    GAN_TRY(check_bn_shape(st, 8, 16, 64)); /* BatchNorm2d on 8x8 maps */
    GAN_TRY(check_bn_shape(st, 64, 32, 1)); /* BatchNorm1d */
    GAN_TRY(check_bn_shape(st, 16, 8, 1024)); /* 32x32 maps: 4 chunks per channel on CUDA */
    return GAN_OK;
}

static gan_status check_activations(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const size_t count = 4099;
    static const struct { gan_activation kind; const char *name; tolerance forward, backward; } acts[] = {
        {GAN_ACT_RELU, "relu", {0.0, 0.0}, {0.0, 0.0}},
        {GAN_ACT_LRELU, "lrelu(0.2)", {0.0, 0.0}, {0.0, 0.0}},
        {GAN_ACT_TANH, "tanh", {1e-7, 1e-6}, {1e-7, 1e-6}},
        {GAN_ACT_SIGMOID, "sigmoid", {1e-7, 1e-6}, {1e-7, 1e-6}},
    };
    pair x = {0}, y = {0}, dy = {0}, dx = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &x, count, -6.0f, 6.0f));
    GAN_CHECK(pair_alloc(st, &y, count * sizeof(float)));
    GAN_CHECK(pair_random(st, &dy, count, -1.0f, 1.0f));
    GAN_CHECK(pair_alloc(st, &dx, count * sizeof(float)));
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        char op[64];
        snprintf(op, sizeof op, "activation_forward %s", acts[i].name);
        if (RUN_BOTH(st, op, be->activation_forward(be, acts[i].kind, 0.2f, count, SIDE(x), SIDE(y))))
            GAN_CHECK(compare(st, op, &y, count, acts[i].forward));
        GAN_CHECK(pair_sync_from_ref(st, &y)); /* backward from the same y */
        snprintf(op, sizeof op, "activation_backward %s", acts[i].name);
        if (RUN_BOTH(st, op, be->activation_backward(be, acts[i].kind, 0.2f, count, SIDE(x), SIDE(y),
                                                     SIDE(dy), SIDE(dx))))
            GAN_CHECK(compare(st, op, &dx, count, acts[i].backward));
    }
cleanup:
    pair_free(st, &x);
    pair_free(st, &y);
    pair_free(st, &dy);
    pair_free(st, &dx);
    return status;
}

static gan_status check_dropout_multiply(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const size_t count = 4099;
    pair x = {0}, mask = {0}, y = {0}, b = {0}, position = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &x, count, -1.0f, 1.0f));
    GAN_CHECK(pair_alloc(st, &mask, count * sizeof(float)));
    GAN_CHECK(pair_alloc(st, &y, count * sizeof(float)));
    GAN_CHECK(pair_random(st, &b, count, -1.0f, 1.0f));
    GAN_CHECK(pair_count(st, &position, 490));
    if (RUN_BOTH(st, "dropout_forward",
                 be->dropout_forward(be, count, 0.3f, 999, 7, gan_count_of(492), SIDE(x), SIDE(mask), SIDE(y)))) {
        GAN_CHECK(compare(st, "dropout_forward mask", &mask, count, EXACT));
        GAN_CHECK(compare(st, "dropout_forward y", &y, count, EXACT));
    }
    /* the position read on the backend, and not a whole number of Philox blocks */
    if (RUN_BOTH(st, "dropout_forward (position on the backend)",
                 be->dropout_forward(be, count, 0.3f, 999, 7, SIDE_COUNT(position, 3), SIDE(x), SIDE(mask),
                                     SIDE(y)))) {
        GAN_CHECK(compare(st, "dropout_forward (position on the backend) mask", &mask, count, EXACT));
        GAN_CHECK(compare(st, "dropout_forward (position on the backend) y", &y, count, EXACT));
    }
    if (RUN_BOTH(st, "multiply", be->multiply(be, count, SIDE(x), SIDE(b), SIDE(y))))
        GAN_CHECK(compare(st, "multiply", &y, count, EXACT));
cleanup:
    pair_free(st, &x);
    pair_free(st, &mask);
    pair_free(st, &y);
    pair_free(st, &b);
    pair_free(st, &position);
    return status;
}

static gan_status check_bce(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const int n = 128;
    static const float targets[] = {1.0f, 0.0f, 0.9f};
    pair logits = {0}, loss = {0}, prob = {0}, d = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &logits, (size_t)n, -8.0f, 8.0f));
    GAN_CHECK(pair_alloc(st, &loss, sizeof(float)));
    GAN_CHECK(pair_alloc(st, &prob, sizeof(float)));
    GAN_CHECK(pair_alloc(st, &d, (size_t)n * sizeof(float)));
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        char op[64];
        snprintf(op, sizeof op, "bce_logits target %.1f", (double)targets[t]);
        if (!RUN_BOTH(st, op, be->bce_logits(be, n, SIDE(logits), targets[t], 1.0f, SIDE(loss), SIDE(prob), SIDE(d))))
            continue;
        snprintf(op, sizeof op, "bce_logits target %.1f loss", (double)targets[t]);
        GAN_CHECK(compare(st, op, &loss, 1, REDUCTION));
        snprintf(op, sizeof op, "bce_logits target %.1f prob_mean", (double)targets[t]);
        GAN_CHECK(compare(st, op, &prob, 1, REDUCTION));
        snprintf(op, sizeof op, "bce_logits target %.1f dlogits", (double)targets[t]);
        GAN_CHECK(compare(st, op, &d, (size_t)n, ULPS));
    }
cleanup:
    pair_free(st, &logits);
    pair_free(st, &loss);
    pair_free(st, &prob);
    pair_free(st, &d);
    return status;
}

static gan_status check_adam(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const size_t count = 10007;
    /* Step 3 of Adam(lr 2e-4, betas (0.5, 0.999)): the step count 2 on the backend, plus 1. */
    const gan_adam_hyper hyper = {2e-4, 0.5, 0.999, 1e-8};
    pair p = {0}, g = {0}, m = {0}, v = {0}, steps = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &p, count, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &g, count, -0.1f, 0.1f));
    GAN_CHECK(pair_random(st, &m, count, -0.01f, 0.01f));
    GAN_CHECK(pair_random(st, &v, count, 0.0f, 1e-4f));
    GAN_CHECK(pair_count(st, &steps, 2));
    if (RUN_BOTH(st, "adam_step",
                 be->adam_step(be, count, SIDE(p), SIDE(g), SIDE(m), SIDE(v), hyper, SIDE_COUNT(steps, 1)))) {
        GAN_CHECK(compare(st, "adam_step param", &p, count, ULPS));
        GAN_CHECK(compare(st, "adam_step m", &m, count, (tolerance){1e-9, 1e-6}));
        GAN_CHECK(compare(st, "adam_step v", &v, count, (tolerance){1e-12, 1e-6}));
    }
cleanup:
    pair_free(st, &p);
    pair_free(st, &g);
    pair_free(st, &m);
    pair_free(st, &v);
    pair_free(st, &steps);
    return status;
}

/* The EMA of G's weights at train.ema_decay's usual 0.999, three steps: exact, since both sides
 * compute gan_ema_update's two products and their sum, each rounded on its own (no FMA). */
static gan_status check_ema(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const size_t count = 10007;
    pair param = {0}, ema = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_random(st, &ema, count, -1.0f, 1.0f));
    bool ran = true;
    for (int step = 0; step < 3 && ran; step++) {
        GAN_CHECK(pair_random(st, &param, count, -1.0f, 1.0f));
        ran = RUN_BOTH(st, "ema_update", be->ema_update(be, count, 0.999, SIDE(param), SIDE(ema)));
        pair_free(st, &param);
    }
    if (ran)
        GAN_CHECK(compare(st, "ema_update", &ema, count, EXACT));
cleanup:
    pair_free(st, &param);
    pair_free(st, &ema);
    return status;
}

static gan_status check_rng(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const size_t count = 10001;
    pair out = {0}, position = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_alloc(st, &out, count * sizeof(float)));
    GAN_CHECK(pair_count(st, &position, 21));
    if (RUN_BOTH(st, "rng_normal N(0,1)", be->rng_normal(be, count, 999, 3, gan_count_of(20), 0.0f, 1.0f, SIDE(out))))
        GAN_CHECK(compare(st, "rng_normal N(0,1)", &out, count, TRANSCENDENTAL));
    if (RUN_BOTH(st, "rng_normal N(1,0.02)",
                 be->rng_normal(be, count, 7, 1u << 8, gan_count_of(0), 1.0f, 0.02f, SIDE(out))))
        GAN_CHECK(compare(st, "rng_normal N(1,0.02)", &out, count, TRANSCENDENTAL));
    /* a position on the backend, inside a Philox block */
    if (RUN_BOTH(st, "rng_normal N(0,1) (position on the backend)",
                 be->rng_normal(be, count, 999, 3, SIDE_COUNT(position, 2), 0.0f, 1.0f, SIDE(out))))
        GAN_CHECK(compare(st, "rng_normal N(0,1) (position on the backend)", &out, count, TRANSCENDENTAL));
    if (RUN_BOTH(st, "rng_uniform U[-1,1)",
                 be->rng_uniform(be, count, 999, 3, gan_count_of(20), -1.0f, 1.0f, SIDE(out))))
        GAN_CHECK(compare(st, "rng_uniform U[-1,1)", &out, count, (tolerance){2.5e-7, 1e-6}));
    if (RUN_BOTH(st, "rng_uniform U[-1,1) (position on the backend)",
                 be->rng_uniform(be, count, 999, 3, SIDE_COUNT(position, 2), -1.0f, 1.0f, SIDE(out))))
        GAN_CHECK(compare(st, "rng_uniform U[-1,1) (position on the backend)", &out, count,
                          (tolerance){2.5e-7, 1e-6}));
cleanup:
    pair_free(st, &out);
    pair_free(st, &position);
    return status;
}

/* advance_counts: integers, so both sides must agree exactly. */
static gan_status check_counts(selftest *st)
{
    BOTH_SIDES_LOCALS;
    pair a = {0}, b = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(pair_count(st, &a, 40));
    GAN_CHECK(pair_count(st, &b, (uint64_t)1 << 40));
    if (RUN_BOTH(st, "advance_counts",
                 be->advance_counts(be, (gan_count_advance){.count = {(uint64_t *)SIDE_RAW(a), (uint64_t *)SIDE_RAW(b)},
                                                            .add = {12, 3},
                                                            .n = 2}))) {
        uint64_t got[2] = {0, 0}, ref[2] = {0, 0};
        GAN_CHECK(st->ref->download(st->ref, &ref[0], a.ref, sizeof(uint64_t)));
        GAN_CHECK(st->ref->download(st->ref, &ref[1], b.ref, sizeof(uint64_t)));
        GAN_CHECK(st->test->download(st->test, &got[0], a.test, sizeof(uint64_t)));
        GAN_CHECK(st->test->download(st->test, &got[1], b.test, sizeof(uint64_t)));
        bool ok = got[0] == ref[0] && got[1] == ref[1] && ref[0] == 52 && ref[1] == ((uint64_t)1 << 40) + 3;
        if (!ok)
            st->all_ok = false;
        if (st->report)
            fprintf(st->report, "%-44s %10d %s\n", "advance_counts", 2, ok ? "exact ok" : "FAIL: counts differ");
    }
cleanup:
    pair_free(st, &a);
    pair_free(st, &b);
    return status;
}

/* D's first layer on the real batch where the test backend converts the images straight into the
 * copy of its input it keeps (conv_keep_images, then conv_keep_pass with no input; the backward-filter
 * on that copy, x not read): against the reference's forward (with D's LeakyReLU) and backward-filter
 * on images_to_float's output `x`, of the images `pixels` [g->n, g->h_in, g->w_in, g->c_in]. */
static gan_status images_forward(selftest *st, gan_backend *be, const gan_conv_geom *g, const void *pixels,
                                 const float *x, const float *w, float *y, void *keep, void *ws)
{
    if (be == st->ref)
        return be->conv_forward_act(be, g, x, w, GAN_ACT_LRELU, 0.2f, y, ws);
    GAN_TRY(be->conv_keep_images(be, g, pixels, keep));
    return be->conv_keep_pass(be, g, GAN_CONV_FORWARD, NULL, w, (int)GAN_ACT_LRELU, 0.2f, y, keep, ws);
}

static gan_status images_filter(selftest *st, gan_backend *be, const gan_conv_geom *g, const float *x,
                                const float *dy, float *dw, void *keep, void *ws)
{
    if (be == st->ref)
        return be->conv_backward_filter(be, g, x, dy, 0.0f, dw, ws);
    return be->conv_grads(be, g, NULL, dy, 0.0f, dw, GAN_CONV_BACKWARD_DATA, NULL, NULL, keep, ws);
}

static gan_status check_images_kept(selftest *st, const gan_conv_geom *g, const pair *pixels, pair *x)
{
    BOTH_SIDES_LOCALS;
    const char *op = "conv_keep_images fwd lrelu";
    size_t keep_bytes = st->test->conv_keep_images && st->test->conv_keep_bytes
                            ? st->test->conv_keep_bytes(st->test, g, GAN_CONV_FORWARD)
                            : 0;
    if (!keep_bytes || !st->ref->conv_forward_act) {
        if (st->report)
            fprintf(st->report, "%-44s none: the %s backend %s\n", op, keep_bytes ? st->ref->name : st->test->name,
                    keep_bytes ? "has no conv_forward_act" : "keeps no copy of the images here");
        return GAN_OK;
    }
    tolerance tol = math_tolerance(st, LONG_REDUCTION);
    conv_pairs c;
    GAN_TRY(conv_pairs_make(st, g, 1.0f, &c));
    void *keep = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(st->test->alloc(st->test, keep_bytes, &keep));
    if (RUN_BOTH(st, op, images_forward(st, be, g, SIDE_RAW(*pixels), SIDE(*x), SIDE(c.w), SIDE(c.y), keep,
                                        SIDE_RAW(c.ws))))
        GAN_CHECK(compare(st, op, &c.y, c.y_count, tol));
    else
        goto cleanup; /* no copy made to read */
    op = "conv_grads kept images bwd-filter b0";
    if (RUN_BOTH(st, op, images_filter(st, be, g, SIDE(*x), SIDE(c.dy), SIDE(c.dw), keep, SIDE_RAW(c.ws))))
        GAN_CHECK(compare(st, op, &c.dw, c.w_count, tol));
cleanup:
    if (keep)
        st->test->free(st->test, keep);
    conv_pairs_free(st, &c);
    return status;
}

static gan_status check_images(selftest *st)
{
    BOTH_SIDES_LOCALS;
    const int n = 4, h = 9, w = 11, c = 3;
    size_t count = (size_t)n * h * w * c;
    pair pixels = {0}, out = {0};
    gan_status status = GAN_OK;
    uint8_t *host = NULL;
    GAN_CHECK(pair_alloc(st, &pixels, count));
    host = malloc(count);
    if (!host) {
        status = gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++)
        host[i] = (uint8_t)(next_uniform(st, 0.0f, 256.0f));
    host[0] = 0;
    host[1] = 255;
    GAN_CHECK(pair_upload(st, &pixels, host));
    GAN_CHECK(pair_alloc(st, &out, count * sizeof(float)));
    if (RUN_BOTH(st, "images_to_float", be->images_to_float(be, n, h, w, c, SIDE_RAW(pixels), SIDE(out)))) {
        GAN_CHECK(compare(st, "images_to_float", &out, count, EXACT));
        /* the same images into a first layer of 16 channels, k4 s2 p1 */
        gan_conv_geom g = conv_geom(n, c, h, w, 16, 4, 2, 1);
        GAN_CHECK(check_images_kept(st, &g, &pixels, &out));
    }
cleanup:
    free(host);
    pair_free(st, &pixels);
    pair_free(st, &out);
    return status;
}

/* The evaluation ops at the FID Inception's shapes, smaller batches: every output element is the
 * same fixed-order loop of the same per-element functions on both sides (no multiply-add left to
 * contract: the resize rounds each product on its own), so all are held to be exact. */
static gan_status check_eval_ops(selftest *st)
{
    BOTH_SIDES_LOCALS;
    static const struct {
        const char *name;
        gan_pool2d_geom g;
    } pools[] = {
        {"3x3 s2 [4,64,147,147]", {4, 64, 147, 147, 73, 73, 3, 3, 2, 2, 0, 0}},
        {"3x3 s1 p1 [4,288,35,35]", {4, 288, 35, 35, 35, 35, 3, 3, 1, 1, 1, 1}},
        {"3x3 s1 p1 [4,2048,8,8]", {4, 2048, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1}},
    };
    pair x = {0}, y = {0}, bias = {0};
    gan_status status = GAN_OK;
    const size_t most = (size_t)4 * 64 * 147 * 147;
    GAN_CHECK(pair_random(st, &x, most, -2.0f, 2.0f));
    GAN_CHECK(pair_alloc(st, &y, most * sizeof(float)));
    GAN_CHECK(pair_random(st, &bias, 2048, -0.5f, 0.5f));
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        const gan_pool2d_geom *g = &pools[i].g;
        size_t out = (size_t)g->n * g->c * g->h_out * g->w_out;
        char op[96];
        snprintf(op, sizeof op, "max_pool %s", pools[i].name);
        if (RUN_BOTH(st, op, be->max_pool_forward(be, g, SIDE(x), SIDE(y))))
            GAN_CHECK(compare(st, op, &y, out, EXACT));
        for (int include = 0; include < 2; include++) {
            snprintf(op, sizeof op, "avg_pool %s %s", include ? "incl" : "excl", pools[i].name);
            if (RUN_BOTH(st, op, be->avg_pool_forward(be, g, include, SIDE(x), SIDE(y))))
                GAN_CHECK(compare(st, op, &y, out, EXACT));
        }
    }
    if (RUN_BOTH(st, "global_avg_pool [40,2048,64]", be->global_avg_pool(be, 40, 2048, 64, SIDE(x), SIDE(y))))
        GAN_CHECK(compare(st, "global_avg_pool [40,2048,64]", &y, (size_t)40 * 2048, EXACT));
    GAN_CHECK(pair_sync_from_ref(st, &y));
    if (RUN_BOTH(st, "copy_channels [8,64,1225] at 224 of 288",
                 be->copy_channels(be, 8, 64, 1225, SIDE(x), 288, 224, SIDE(y))))
        GAN_CHECK(compare(st, "copy_channels [8,64,1225] at 224 of 288", &y, (size_t)8 * 288 * 1225, EXACT));
    if (RUN_BOTH(st, "resize_bilinear [8,3,28,28] -> 299", be->resize_bilinear(be, 8, 3, 28, 28, 299, 299, SIDE(x), SIDE(y))))
        GAN_CHECK(compare(st, "resize_bilinear [8,3,28,28] -> 299", &y, (size_t)8 * 3 * 299 * 299, EXACT));
    if (RUN_BOTH(st, "resize_bilinear [4,3,512,384] -> 299",
                 be->resize_bilinear(be, 4, 3, 512, 384, 299, 299, SIDE(x), SIDE(y))))
        GAN_CHECK(compare(st, "resize_bilinear [4,3,512,384] -> 299", &y, (size_t)4 * 3 * 299 * 299, EXACT));
    static const struct { gan_activation act; const char *name; tolerance tol; } acts[] = {
        {GAN_ACT_RELU, "bias_act relu [8,192,289]", {0.0, 0.0}},
        {GAN_ACT_LRELU, "bias_act lrelu(0.2) [8,192,289]", {0.0, 0.0}},
        {GAN_ACT_TANH, "bias_act tanh [8,192,289]", {1e-7, 1e-6}},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        GAN_CHECK(pair_sync_from_ref(st, &x)); /* the same starting y on both sides */
        if (RUN_BOTH(st, acts[i].name, be->bias_act_forward(be, 8, 192, 289, SIDE(bias), acts[i].act, 0.2f, SIDE(x))))
            GAN_CHECK(compare(st, acts[i].name, &x, (size_t)8 * 192 * 289, acts[i].tol));
    }
    /* conv_bias_act_forward is optional: compared where both backends have it (the FID Inception
     * runs conv, bias + ReLU and copy_channels apart where one has not) */
    if (!st->ref->conv_bias_act_forward || !st->test->conv_bias_act_forward) {
        if (st->report)
            fprintf(st->report, "%-44s not in the %s backend: its callers run the ops apart\n", "conv_bias_act_forward",
                    !st->test->conv_bias_act_forward ? st->test->name : st->ref->name);
    } else {
        gan_conv_geom g = conv_geom(4, 48, 35, 35, 64, 5, 1, 2);
        const size_t out = (size_t)g.n * 288 * 35 * 35;
        pair w = {0}, ws = {0};
        GAN_CHECK(pair_random(st, &w, (size_t)64 * 48 * 25, -0.1f, 0.1f));
        size_t ref_ws = st->ref->conv_workspace_bytes(st->ref, &g, GAN_CONV_PASSES_ALL), test_ws = st->test->conv_workspace_bytes(st->test, &g, GAN_CONV_PASSES_ALL);
        status = st->ref->alloc(st->ref, ref_ws ? ref_ws : 4, &ws.ref);
        if (status == GAN_OK)
            status = st->test->alloc(st->test, test_ws ? test_ws : 4, &ws.test);
        GAN_CHECK(pair_sync_from_ref(st, &y));
        const char *op = "conv_bias_act_forward [4,48,35,35] k5 p2 at 64 of 288";
        if (status == GAN_OK && RUN_BOTH(st, op, be->conv_bias_act_forward(be, &g, SIDE(x), SIDE(w), SIDE(bias), GAN_ACT_RELU,
                                                                      0.0f, 288, 64, SIDE(y), SIDE_RAW(ws))))
            status = compare(st, op, &y, out, math_tolerance(st, LONG_REDUCTION));
        pair_free(st, &w);
        pair_free(st, &ws);
    }
cleanup:
    pair_free(st, &x);
    pair_free(st, &y);
    pair_free(st, &bias);
    return status;
}

/* ---- tensors stored NHWC between layers (CUDA in tf32 and bf16) --------------------------- *
 * The ops a model runs next to an NHWC edge (gan_storage: BF16 in bf16, FP32 in tf32): the stored
 * batch norm, the BF16 activations (FP32 NHWC ones are the FP32 ops), and convolutions whose x and
 * y are stored. The reference has none of them: it runs its FP32 NCHW op on the values the test
 * backend's inputs hold (each BF16 input rounded to nearest even here, the reference given the
 * rounded floats), and the test backend's stored outputs are widened and put in NCHW order here to
 * be compared. Tolerances: an FP32 op's, plus a BF16 output's own rounding, half an ulp: 2^-8
 * relative at most (STORED: batch norm's sums, the activations' device functions); a convolution's
 * BF16 tolerance already covers it. A wrong index or layout gives errors of order 1. */
static const tolerance STORED = {1e-4, 1.0 / 256.0 + 1e-4};

static uint16_t host_to_bf16(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return 0x7fff;
    bits += 0x7fffu + ((bits >> 16) & 1u); /* to nearest, ties to even */
    return (uint16_t)(bits >> 16);
}

static float host_from_bf16(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A tensor [n, c, hw]: FP32 NCHW on the reference, in `storage` on the test backend. */
typedef struct stored_pair {
    pair p;
    gan_storage storage;
    int n, c, hw;
} stored_pair;

static size_t stored_count(const stored_pair *t) { return (size_t)t->n * t->c * t->hw; }

static gan_status stored_alloc(selftest *st, stored_pair *t, gan_storage storage, int n, int c, int hw)
{
    *t = (stored_pair){.storage = storage, .n = n, .c = c, .hw = hw};
    size_t count = stored_count(t);
    t->p.bytes = count * sizeof(float);
    GAN_TRY(st->ref->alloc(st->ref, count * sizeof(float), &t->p.ref));
    size_t test_bytes = count * gan_storage_element_bytes(storage);
    gan_status status = st->test->alloc(st->test, test_bytes ? test_bytes : 4, &t->p.test);
    if (status != GAN_OK) {
        st->ref->free(st->ref, t->p.ref);
        t->p.ref = NULL;
    }
    return status;
}

/* `values` (FP32 NCHW) on both sides: reordered where the test side is NHWC, and rounded where it
 * is BF16 (and `values` with them, so the reference holds what the test backend reads). */
static gan_status stored_upload(selftest *st, stored_pair *t, float *values)
{
    size_t count = stored_count(t);
    if (t->storage == GAN_STORAGE_F32_NCHW) {
        GAN_TRY(st->ref->upload(st->ref, t->p.ref, values, count * sizeof(float)));
        return st->test->upload(st->test, t->p.test, values, count * sizeof(float));
    }
    bool bf16 = t->storage == GAN_STORAGE_BF16_NHWC;
    size_t element = gan_storage_element_bytes(t->storage);
    unsigned char *nhwc = malloc((count ? count : 1) * element);
    if (!nhwc)
        return gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
    for (int m = 0; m < t->n; m++)
        for (int ch = 0; ch < t->c; ch++)
            for (int q = 0; q < t->hw; q++) {
                size_t i = ((size_t)m * t->c + ch) * t->hw + q, o = ((size_t)m * t->hw + q) * t->c + ch;
                if (bf16) {
                    uint16_t h = host_to_bf16(values[i]);
                    values[i] = host_from_bf16(h);
                    memcpy(nhwc + o * element, &h, element);
                } else {
                    memcpy(nhwc + o * element, &values[i], element);
                }
            }
    gan_status status = st->ref->upload(st->ref, t->p.ref, values, count * sizeof(float));
    if (status == GAN_OK)
        status = st->test->upload(st->test, t->p.test, nhwc, count * element);
    free(nhwc);
    return status;
}

static gan_status stored_random(selftest *st, stored_pair *t, gan_storage storage, int n, int c, int hw, float low,
                                float high)
{
    GAN_TRY(stored_alloc(st, t, storage, n, c, hw));
    float *host;
    GAN_TRY(random_host(st, stored_count(t), low, high, &host));
    gan_status status = stored_upload(st, t, host);
    free(host);
    return status;
}

/* The test side's values, FP32 NCHW (reordered from NHWC, widened from BF16). */
static gan_status stored_download(selftest *st, const stored_pair *t, float *out)
{
    size_t count = stored_count(t);
    if (t->storage == GAN_STORAGE_F32_NCHW)
        return st->test->download(st->test, out, t->p.test, count * sizeof(float));
    bool bf16 = t->storage == GAN_STORAGE_BF16_NHWC;
    size_t element = gan_storage_element_bytes(t->storage);
    unsigned char *nhwc = malloc((count ? count : 1) * element);
    if (!nhwc)
        return gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
    gan_status status = st->test->download(st->test, nhwc, t->p.test, count * element);
    for (int m = 0; status == GAN_OK && m < t->n; m++)
        for (int ch = 0; ch < t->c; ch++)
            for (int q = 0; q < t->hw; q++) {
                const unsigned char *at = nhwc + (((size_t)m * t->hw + q) * t->c + ch) * element;
                float *to = &out[((size_t)m * t->c + ch) * t->hw + q];
                if (bf16) {
                    uint16_t h;
                    memcpy(&h, at, sizeof h);
                    *to = host_from_bf16(h);
                } else {
                    memcpy(to, at, sizeof *to);
                }
            }
    free(nhwc);
    return status;
}

static gan_status compare_stored(selftest *st, const char *op, const stored_pair *t, tolerance tol)
{
    GAN_TRY(st->test->synchronize(st->test));
    size_t count = stored_count(t);
    float *ref = malloc((count ? count : 1) * sizeof *ref), *got = malloc((count ? count : 1) * sizeof *got);
    gan_status status = GAN_OK;
    if (!ref || !got) {
        status = gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
        goto cleanup;
    }
    GAN_CHECK(st->ref->download(st->ref, ref, t->p.ref, count * sizeof(float)));
    GAN_CHECK(stored_download(st, t, got));
    report_comparison(st, op, ref, got, count, tol);
cleanup:
    free(ref);
    free(got);
    return status;
}

/* The reference's values onto both sides again (rounded where stored): the next op's input. */
static gan_status stored_sync_from_ref(selftest *st, stored_pair *t)
{
    size_t count = stored_count(t);
    float *host = malloc((count ? count : 1) * sizeof *host);
    if (!host)
        return gan_error(GAN_ERR_NOMEM, "selftest: out of memory");
    gan_status status = st->ref->download(st->ref, host, t->p.ref, count * sizeof(float));
    if (status == GAN_OK)
        status = stored_upload(st, t, host);
    free(host);
    return status;
}

static const char *storage_word(gan_storage s)
{
    return s == GAN_STORAGE_BF16_NHWC ? "bf16" : s == GAN_STORAGE_F32_NHWC ? "f32nhwc" : "f32";
}

/* The stored batch norm with a LeakyReLU (or none) on [n, c, hw], x in `in`, y and y_act in `out`:
 * training forward, backward from the reference's y_act, eval forward. */
static gan_status check_bn_stored_case(selftest *st, int n, int c, int hw, gan_storage in, gan_storage out, bool act)
{
    stored_pair x = {0}, y = {0}, ya = {0}, dy = {0}, dx = {0};
    pair gamma = {0}, beta = {0}, rm = {0}, rv = {0}, sm = {0}, si = {0}, dg = {0}, db = {0};
    pair *params[] = {&gamma, &beta, &rm, &rv, &sm, &si, &dg, &db};
    stored_pair *tensors[] = {&x, &y, &ya, &dy, &dx};
    char name[96], op[128];
    snprintf(name, sizeof name, "%s [%d,%d,%d] %s->%s", act ? "lrelu(0.2)" : "none", n, c, hw, storage_word(in),
             storage_word(out));
    gan_status status = GAN_OK;
    GAN_CHECK(stored_random(st, &x, in, n, c, hw, -2.0f, 3.0f));
    GAN_CHECK(stored_alloc(st, &y, out, n, c, hw));
    GAN_CHECK(stored_alloc(st, &ya, out, n, c, hw));
    GAN_CHECK(stored_random(st, &dy, out, n, c, hw, -1.0f, 1.0f));
    GAN_CHECK(stored_alloc(st, &dx, in, n, c, hw));
    GAN_CHECK(bn_params_alloc(st, c, &gamma, &beta, &rm, &rv, &sm, &si));
    GAN_CHECK(pair_random(st, &dg, (size_t)c, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &db, (size_t)c, -1.0f, 1.0f));
    gan_backend *ref = st->ref, *test = st->test;
    int kind = act ? (int)GAN_ACT_LRELU : GAN_CONV_NO_ACT;

    snprintf(op, sizeof op, "bn_stored_forward_train %s", name);
    gan_status r = act ? ref->bn_act_forward_train(ref, n, c, hw, x.p.ref, gamma.ref, beta.ref, 0.1f, 1e-5f, rm.ref,
                                                   rv.ref, sm.ref, si.ref, y.p.ref, GAN_ACT_LRELU, 0.2f, ya.p.ref)
                       : ref->bn_forward_train(ref, n, c, hw, x.p.ref, gamma.ref, beta.ref, 0.1f, 1e-5f, rm.ref,
                                               rv.ref, sm.ref, si.ref, y.p.ref);
    gan_status t = test->bn_stored_forward_train(test, n, c, hw, in, x.p.test, gamma.test, beta.test, 0.1f, 1e-5f,
                                                 rm.test, rv.test, sm.test, si.test, out, y.p.test, kind, 0.2f,
                                                 act ? ya.p.test : NULL);
    if (run_both_result(st, op, r, t)) {
        snprintf(op, sizeof op, "bn_stored_forward_train %s y", name);
        GAN_CHECK(compare_stored(st, op, &y, STORED));
        if (act) {
            snprintf(op, sizeof op, "bn_stored_forward_train %s y_act", name);
            GAN_CHECK(compare_stored(st, op, &ya, STORED));
        }
        const struct { const char *what; pair *p; } stats[] = {
            {"running_mean", &rm}, {"running_var", &rv}, {"save_mean", &sm}, {"save_invstd", &si}};
        for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
            snprintf(op, sizeof op, "bn_stored_forward_train %s %s", name, stats[i].what);
            GAN_CHECK(compare(st, op, stats[i].p, (size_t)c, REDUCTION));
            GAN_CHECK(pair_sync_from_ref(st, stats[i].p));
        }
        if (act)
            GAN_CHECK(stored_sync_from_ref(st, &ya));
    }
    snprintf(op, sizeof op, "bn_stored_backward %s", name);
    r = act ? ref->bn_act_backward(ref, n, c, hw, x.p.ref, ya.p.ref, dy.p.ref, GAN_ACT_LRELU, 0.2f, gamma.ref, sm.ref,
                                   si.ref, dx.p.ref, 1.0f, dg.ref, db.ref)
            : ref->bn_backward(ref, n, c, hw, x.p.ref, dy.p.ref, gamma.ref, sm.ref, si.ref, dx.p.ref, 1.0f, dg.ref,
                               db.ref);
    t = test->bn_stored_backward(test, n, c, hw, in, x.p.test, out, act ? ya.p.test : NULL, dy.p.test, kind, 0.2f,
                                 gamma.test, sm.test, si.test, dx.p.test, 1.0f, dg.test, db.test);
    if (run_both_result(st, op, r, t)) {
        snprintf(op, sizeof op, "bn_stored_backward %s dx", name);
        GAN_CHECK(compare_stored(st, op, &dx, STORED));
        snprintf(op, sizeof op, "bn_stored_backward %s dgamma", name);
        GAN_CHECK(compare(st, op, &dg, (size_t)c, REDUCTION));
        snprintf(op, sizeof op, "bn_stored_backward %s dbeta", name);
        GAN_CHECK(compare(st, op, &db, (size_t)c, REDUCTION));
    }
    snprintf(op, sizeof op, "bn_stored_forward_eval %s", name);
    r = ref->bn_forward_eval(ref, n, c, hw, x.p.ref, gamma.ref, beta.ref, rm.ref, rv.ref, 1e-5f, y.p.ref);
    t = test->bn_stored_forward_eval(test, n, c, hw, in, x.p.test, gamma.test, beta.test, rm.test, rv.test, 1e-5f,
                                     out, y.p.test);
    if (run_both_result(st, op, r, t))
        GAN_CHECK(compare_stored(st, op, &y, STORED));
cleanup:
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        pair_free(st, &tensors[i]->p);
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        pair_free(st, params[i]);
    return status;
}

/* The BF16 activations, forward and backward from the reference's y. */
static gan_status check_activations_stored(selftest *st)
{
    static const struct { gan_activation kind; const char *name; } acts[] = {
        {GAN_ACT_RELU, "relu"}, {GAN_ACT_LRELU, "lrelu(0.2)"}, {GAN_ACT_TANH, "tanh"}, {GAN_ACT_SIGMOID, "sigmoid"}};
    const int n = 3, c = 8, hw = 171; /* 4104 values */
    stored_pair x = {0}, y = {0}, dy = {0}, dx = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(stored_random(st, &x, GAN_STORAGE_BF16_NHWC, n, c, hw, -6.0f, 6.0f));
    GAN_CHECK(stored_alloc(st, &y, GAN_STORAGE_BF16_NHWC, n, c, hw));
    GAN_CHECK(stored_random(st, &dy, GAN_STORAGE_BF16_NHWC, n, c, hw, -1.0f, 1.0f));
    GAN_CHECK(stored_alloc(st, &dx, GAN_STORAGE_BF16_NHWC, n, c, hw));
    size_t count = stored_count(&x);
    gan_backend *ref = st->ref, *test = st->test;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        char op[96];
        snprintf(op, sizeof op, "activation_bf16_forward %s", acts[i].name);
        gan_status r = ref->activation_forward(ref, acts[i].kind, 0.2f, count, x.p.ref, y.p.ref);
        gan_status t = test->activation_bf16_forward(test, acts[i].kind, 0.2f, count, x.p.test, y.p.test);
        if (run_both_result(st, op, r, t))
            GAN_CHECK(compare_stored(st, op, &y, STORED));
        GAN_CHECK(stored_sync_from_ref(st, &y));
        snprintf(op, sizeof op, "activation_bf16_backward %s", acts[i].name);
        r = ref->activation_backward(ref, acts[i].kind, 0.2f, count, x.p.ref, y.p.ref, dy.p.ref, dx.p.ref);
        t = test->activation_bf16_backward(test, acts[i].kind, 0.2f, count, x.p.test, y.p.test, dy.p.test,
                                           dx.p.test);
        if (run_both_result(st, op, r, t))
            GAN_CHECK(compare_stored(st, op, &dx, STORED));
    }
cleanup:
    pair_free(st, &x.p);
    pair_free(st, &y.p);
    pair_free(st, &dy.p);
    pair_free(st, &dx.p);
    return status;
}

/* A convolution with x and y stored (or y alone: D's first layer), each pass and a forward with
 * LeakyReLU on the way out, against the reference's plain geometry on the same values; with
 * `w_copy`, the test backend's passes read the weights from the layer's copy (conv_weight_copies,
 * where it makes them). */
static gan_status check_conv_stored_case(selftest *st, gan_conv_geom g, gan_storage xs, bool w_copy)
{
    const gan_storage ys = st->test->edge_storage;
    gan_conv_geom stored = g;
    stored.x_storage = xs;
    stored.y_storage = ys;
    tolerance tol = math_tolerance(st, REDUCTION);
    stored_pair x = {0}, y = {0}, dy = {0}, dx = {0};
    pair w = {0}, dw = {0}, ws_ref = {0}, ws_test = {0}, copy = {0};
    char name[96], op[128];
    gan_status status = GAN_OK;
    gan_backend *ref = st->ref, *test = st->test;
    size_t copy_bytes = w_copy && test->conv_weight_copy_bytes && test->conv_weight_copies
                            ? test->conv_weight_copy_bytes(test, &stored)
                            : 0;
    if (copy_bytes)
        stored.w_storage = ys;
    snprintf(name, sizeof name, "[%d,%d,%d,%d] k%d s%d p%d x %s y %s%s", g.n, g.c_in, g.h_in, g.w_in, g.k_h,
             g.stride_h, g.pad_h, storage_word(xs), storage_word(ys), copy_bytes ? " w copy" : "");
    size_t ref_bytes = ref->conv_workspace_bytes(ref, &g, GAN_CONV_PASSES_ALL);
    size_t test_bytes = test->conv_workspace_bytes(test, &stored, GAN_CONV_PASSES_ALL);
    GAN_CHECK(ref->alloc(ref, ref_bytes ? ref_bytes : 4, &ws_ref.ref));
    GAN_CHECK(test->alloc(test, test_bytes ? test_bytes : 4, &ws_test.test));
    GAN_CHECK(stored_random(st, &x, xs, g.n, g.c_in, g.h_in * g.w_in, -1.0f, 1.0f));
    GAN_CHECK(stored_alloc(st, &y, ys, g.n, g.c_out, g.h_out * g.w_out));
    GAN_CHECK(stored_random(st, &dy, ys, g.n, g.c_out, g.h_out * g.w_out, -1.0f, 1.0f));
    GAN_CHECK(stored_alloc(st, &dx, xs, g.n, g.c_in, g.h_in * g.w_in));
    GAN_CHECK(pair_random(st, &w, (size_t)g.c_out * g.c_in * g.k_h * g.k_w, -1.0f, 1.0f));
    GAN_CHECK(pair_random(st, &dw, (size_t)g.c_out * g.c_in * g.k_h * g.k_w, -1.0f, 1.0f));
    /* the weights the test backend's forward and backward-data read */
    const float *w_test = w.test;
    if (copy_bytes) {
        GAN_CHECK(test->alloc(test, copy_bytes, &copy.test));
        gan_conv_weight_copy wc = {&stored, w.test, copy.test};
        snprintf(op, sizeof op, "conv_weight_copies %s", name);
        if (!run_both_result(st, op, GAN_OK, test->conv_weight_copies(test, 1, &wc)))
            goto cleanup;
        w_test = copy.test;
    }
    snprintf(op, sizeof op, "conv_forward stored %s", name);
    if (run_both_result(st, op, ref->conv_forward(ref, &g, x.p.ref, w.ref, y.p.ref, ws_ref.ref),
                        test->conv_forward(test, &stored, x.p.test, w_test, y.p.test, ws_test.test)))
        GAN_CHECK(compare_stored(st, op, &y, tol));
    snprintf(op, sizeof op, "conv_forward_act lrelu(0.2) stored %s", name);
    if (run_both_result(st, op,
                        ref->conv_forward_act(ref, &g, x.p.ref, w.ref, GAN_ACT_LRELU, 0.2f, y.p.ref, ws_ref.ref),
                        test->conv_forward_act(test, &stored, x.p.test, w_test, GAN_ACT_LRELU, 0.2f, y.p.test,
                                               ws_test.test)))
        GAN_CHECK(compare_stored(st, op, &y, tol));
    snprintf(op, sizeof op, "conv_backward_data stored %s", name);
    if (run_both_result(st, op, ref->conv_backward_data(ref, &g, dy.p.ref, w.ref, dx.p.ref, ws_ref.ref),
                        test->conv_backward_data(test, &stored, dy.p.test, w_test, dx.p.test, ws_test.test)))
        GAN_CHECK(compare_stored(st, op, &dx, tol));
    snprintf(op, sizeof op, "conv_backward_filter b1 stored %s", name);
    if (run_both_result(st, op, ref->conv_backward_filter(ref, &g, x.p.ref, dy.p.ref, 1.0f, dw.ref, ws_ref.ref),
                        test->conv_backward_filter(test, &stored, x.p.test, dy.p.test, 1.0f, dw.test, ws_test.test)))
        GAN_CHECK(compare(st, op, &dw, (size_t)g.c_out * g.c_in * g.k_h * g.k_w, tol));
cleanup:
    pair_free(st, &x.p);
    pair_free(st, &y.p);
    pair_free(st, &dy.p);
    pair_free(st, &dx.p);
    pair_free(st, &w);
    pair_free(st, &dw);
    if (ws_ref.ref)
        ref->free(ref, ws_ref.ref);
    if (ws_test.test)
        test->free(test, ws_test.test);
    if (copy.test)
        test->free(test, copy.test);
    return status;
}

static gan_status check_stored(selftest *st)
{
    const gan_backend *t = st->test;
    const gan_storage e = t->edge_storage;
    bool bf16 = e == GAN_STORAGE_BF16_NHWC;
    if (e == GAN_STORAGE_F32_NCHW || !t->bn_stored_forward_train || !t->bn_stored_forward_eval ||
        !t->bn_stored_backward || (bf16 && (!t->activation_bf16_forward || !t->activation_bf16_backward))) {
        if (st->report)
            fprintf(st->report, "%-44s not in the %s backend here: every tensor stays FP32 NCHW\n",
                    "stored (NHWC) ops", t->name);
        return GAN_OK;
    }
    const struct { gan_storage in, out; } pairs[] = {
        {e, e},
        {GAN_STORAGE_F32_NCHW, e}, /* G's first batch norm, after a whole-input GEMM */
        {e, GAN_STORAGE_F32_NCHW}, /* D's last, before one */
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        GAN_TRY(check_bn_stored_case(st, 8, 16, 64, pairs[i].in, pairs[i].out, true));
    GAN_TRY(check_bn_stored_case(st, 16, 40, 100, e, e, false));
    if (bf16) /* (FP32 NHWC activations are the FP32 ones: elementwise) */
        GAN_TRY(check_activations_stored(st));
    gan_conv_geom g = {.n = 8, .c_in = 16, .h_in = 16, .w_in = 16, .c_out = 32, .h_out = 8, .w_out = 8, .k_h = 4,
                       .k_w = 4, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    GAN_TRY(check_conv_stored_case(st, g, e, false));
    GAN_TRY(check_conv_stored_case(st, g, e, true));
    GAN_TRY(check_conv_stored_case(st, g, GAN_STORAGE_F32_NCHW, true));
    return GAN_OK;
}

gan_status gan_selftest_ops(gan_backend *reference, gan_backend *test, FILE *report,
                            bool *all_within_tolerance)
{
    if (!reference || !test || !all_within_tolerance)
        return gan_error(GAN_ERR_ARG, "gan_selftest_ops: missing backend or result pointer");
    selftest st = {
        .ref = reference, .test = test, .report = report, .all_ok = true,
        .rng_state = 0x9E3779B97F4A7C15ull,
    };
    *all_within_tolerance = false;
    st.precision = test->options.precision;
    if (report)
        fprintf(report, "selftest: %s (%s, %sdeterministic%s) against %s; |test - ref| <= atol + rtol "
                        "|ref| per element\n",
                test->name, gan_precision_name(test->options.precision),
                test->options.deterministic ? "" : "not ",
                st.precision == GAN_PRECISION_TF32   ? ": TF32 tolerances for GEMM and convolution"
                : st.precision == GAN_PRECISION_BF16 ? ": BF16 tolerances for GEMM and convolution"
                                                     : "",
                reference->name);

    gan_status (*const checks[])(selftest *) = {
        check_memory_ops, check_gemm, check_conv, check_conv_act, check_bias, check_bn, check_activations,
        check_dropout_multiply, check_bce, check_adam, check_ema, check_rng, check_counts, check_images,
        check_eval_ops, check_stored,
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        GAN_TRY(checks[i](&st));
    if (report)
        fprintf(report, "selftest: %s\n", st.all_ok ? "every op within tolerance" : "FAILED");
    *all_within_tolerance = st.all_ok;
    return GAN_OK;
}
