/* Finite-difference gradient checks of every layer kind, through the model API on the CPU backend.
 *
 * Loss: L = sum(output * R) for a fixed random R [batch, output], so dL/doutput = R, and
 * gan_model_backward(R) must give dL/dinput (model->grad_input) and dL/dparam (param->grad).
 * Numeric: fourth-order central differences in EVERY element v of the input and of every
 * trainable parameter, n = (8 (L(v+h) - L(v-h)) - (L(v+2h) - L(v-2h))) / 12h, L summed in double
 * over the float32 outputs. h is 1% of the tensor's largest |value| (at least 2.5e-3): 1e-2 for
 * inputs in [-1, 1], ~2.5e-3 for PyTorch-initialised weights, whose steps would otherwise move a
 * stack's pre-activations by h |x| and cross relu kinks everywhere. The two-point formula's h^2
 * error is 1% for BN over 3 samples at h = 1e-2; the four-point one is exact up to degree 4, and
 * its rounding noise is that of a two-point difference with step h.
 *
 * Metric, per element: rel = |a - n| / max(|a|, |n|, floor); an element fails when rel > TOL.
 * floor = max(1% of the tensor's largest |a| or |n|, NOISE_FLOOR x the rounding noise of n), the
 * noise being FLT_EPSILON sqrt(sum (y r)^2) / h (float rounding of the outputs, seen through the
 * difference quotient). Below the floor an element is judged on an absolute scale (allowed
 * |a - n| = TOL x floor >= 4 x noise), so elements whose true gradient is ~0 (a bias before BN,
 * an input row a strided conv never reads) are not divided by their own rounding noise.
 *
 * Why TOL = 1e-2 separates right from wrong (GAN_GRADCHECK_VERBOSE=1 prints every tensor,
 * GAN_GRADCHECK_SEED=N redraws weights, inputs and R):
 *  - correct gradients: the worst element of all cases measures 3.2e-3 (5.4e-3 over 100 other
 *    seeds): BN's batch statistics, residual kink effects and rounding near the floor; most
 *    tensors stay below 3e-4.
 *  - a wrong sign: a = -n, rel = 2 for every element above the floor: 200x TOL.
 *  - a transposed index, an off-by-one in padding or stride, a flipped kernel: element i gets the
 *    gradient of another element j; with random weights, inputs and R, g_i and g_j are unrelated,
 *    so rel ~ |g_i - g_j| / max(|g_i|, |g_j|) is O(1) for most pairs, and the check takes the
 *    worst element of the tensor; an index bug never moves just one element.
 * The checker proves this on itself: in every tensor the analytic gradient is also corrupted in
 * those ways (negate the largest element, swap it with the element most unlike it, shift the
 * tensor by one element, transpose and flip conv kernels); each corruption must fail by more than
 * 10x TOL (the run prints the weakest margin: 57x).
 *
 * Kinks: relu/lrelu are not differentiable at 0. Single activation layers get inputs with
 * |x| >= 0.05 > 2 x 2h, so no step crosses 0 (checked: none does). Inside stacks pre-activations
 * are anything: the loss watches the input z of every relu/lrelu (the layers' internal buffers).
 * Where a step puts some z on the other side of 0, the element is measured again with steps 4x
 * and 16x smaller; if they still cross, what the crossings do to L is bounded to first order by
 * (1 - slope) |dL/dy| |z| (dL/dy from the unperturbed backward), and the element is skipped where
 * that bound, through the difference formula, could take 10% of its tolerance. At most a third
 * of a tensor may be skipped.
 * Dropout is linear once its mask is fixed: one case hands it a mask (gan_model_set_dropout_mask),
 * the others draw it from Philox with model->dropout_position reset before every forward. BN in
 * training mode is a function of the whole batch, which differences of L see exactly; its running
 * statistics change on every forward, which training-mode outputs do not read. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/nn.h"
#include "nn/layer.h" /* the inputs of relu/lrelu layers and their output gradients */
#include "test_util.h"

static const double STEP_FRACTION = 1e-2; /* h = 1% of the tensor's largest |value| */
static const double TOL = 1e-2;
static const double FLOOR_FRACTION = 1e-2;     /* of the tensor's largest gradient */
static const double NOISE_FLOOR = 400.0;       /* times the rounding noise of n */
static const double KINK_SHARE = 0.1;          /* of an element's tolerance a kink may take */
enum { KINK_RETRIES = 2 };                     /* steps 4x and 16x smaller near a kink */
static const double MAX_SKIPPED_FRACTION = 1.0 / 3.0;
static const double CORRUPTION_MARGIN = 10.0;  /* a corrupted gradient must fail by 10x TOL */

enum { MAX_KINKED = 8 };

static gan_backend *be;
static bool verbose;
static double worst_correct_rel;  /* over all cases: how close correct gradients come to TOL */
static double weakest_corruption; /* over all self-tests: how far corruptions go past TOL */
static int corruptions_caught;

typedef struct kinked_layer {
    const float *pre;     /* its input z [count] (the previous layer's output, or the model input) */
    float *grad;          /* dL/dy [count] at the unperturbed point */
    unsigned char *positive; /* z > 0 at the unperturbed point [count] */
    size_t count;
    float slope;          /* 0 for relu */
} kinked_layer;

typedef struct harness {
    gan_model *model;
    gan_pool pool;
    float *x;                 /* [batch, input] */
    float *r;                 /* [batch, output]: dL/doutput */
    float *mask;              /* [batch, features] handed to the dropout layer, or NULL */
    size_t in_count, out_count;
    uint64_t dropout_offset;  /* replayed before every forward: one Philox mask throughout */
    double loss_noise;        /* rounding noise of L */
    int kinked;
    kinked_layer kinks[MAX_KINKED];
    bool watch_kinks;         /* false for the unperturbed forward */
    double kink_effect;       /* first-order bound on |L - smooth L| of the last loss() */
    bool failed;
} harness;

/* L = sum(output * R) in double after a training-mode forward; NAN if forward fails. */
static double loss(harness *t)
{
    gan_model *m = t->model;
    m->dropout_position = t->dropout_offset;
    gan_status status = gan_model_forward(m, t->x, true);
    if (status != GAN_OK) {
        if (!t->failed)
            fprintf(stderr, "%s: forward failed: %s\n", m->name, gan_error_message());
        t->failed = true;
        return NAN;
    }
    /* z that crossed 0: the piecewise-linear y = max(z, slope z) left the linear piece the
     * derivative is taken on by (1 - slope) |z| */
    t->kink_effect = 0.0;
    for (int k = 0; t->watch_kinks && k < t->kinked; k++) {
        const kinked_layer *kl = &t->kinks[k];
        for (size_t i = 0; i < kl->count; i++)
            if ((kl->pre[i] > 0.0f) != kl->positive[i])
                t->kink_effect += (1.0 - kl->slope) * fabs((double)kl->grad[i] * kl->pre[i]);
    }
    const float *y = gan_model_output(m);
    double sum = 0.0;
    for (size_t i = 0; i < t->out_count; i++)
        sum += (double)y[i] * (double)t->r[i];
    return sum;
}

/* L and its kink effect at values[i] = v (then restored). */
static double loss_at(harness *t, float *values, size_t i, float v, double *kink_effect)
{
    float saved = values[i];
    values[i] = v;
    double l = loss(t);
    values[i] = saved;
    *kink_effect = t->kink_effect;
    return l;
}

/* The fourth-order difference of L in values[i] with step h, and how much kinks crossed by its
 * steps could have moved it (through the same coefficients). */
static double difference(harness *t, float *values, size_t i, float h, double *kink_error)
{
    float v = values[i];
    /* the steps actually taken in float32, not the nominal ones */
    float p1 = v + h, m1 = v - h, p2 = v + 2.0f * h, m2 = v - 2.0f * h;
    double e[4];
    double d1 = loss_at(t, values, i, p1, &e[0]) - loss_at(t, values, i, m1, &e[1]);
    double d2 = loss_at(t, values, i, p2, &e[2]) - loss_at(t, values, i, m2, &e[3]);
    double h1 = ((double)p1 - (double)m1) / 2.0, h2 = ((double)p2 - (double)m2) / 4.0;
    *kink_error = (8.0 * (e[0] + e[1]) + (e[2] + e[3])) / (12.0 * h);
    /* with h1 = h2 = h this is (8 d1 - d2) / 12h */
    return (4.0 * d1 / (2.0 * h1) - d2 / (4.0 * h2)) / 3.0;
}

/* What the comparison of one tensor works with. */
typedef struct tensor_check {
    size_t count, checked, skipped, retried;
    double *numeric;     /* [count] */
    double *kink_error;  /* [count] */
    float *step;         /* [count] the step each element was measured with */
    double *floor;       /* [count] */
    unsigned char *skip; /* [count] */
    double scale;        /* largest |a| or |n| */
    double base_floor;   /* the floor at the tensor's own step */
} tensor_check;

/* Numeric gradients of every element. Where a step crosses a kink, the element is measured again
 * with steps 4x and 16x smaller: a kink at distance d stops being crossed once 2h < d (the noise,
 * and with it the element's floor, grows by as much). */
static void numeric_gradient(harness *t, float *values, float step, tensor_check *tc)
{
    for (size_t i = 0; i < tc->count; i++) {
        float h = step;
        for (int retry = 0;; retry++) {
            tc->numeric[i] = difference(t, values, i, h, &tc->kink_error[i]);
            tc->step[i] = h;
            if (tc->kink_error[i] == 0.0 || retry == KINK_RETRIES)
                break;
            h /= 4.0f;
            tc->retried += retry == 0;
        }
    }
}

static void tensor_check_free(tensor_check *tc)
{
    free(tc->numeric);
    free(tc->kink_error);
    free(tc->step);
    free(tc->floor);
    free(tc->skip);
}

static void classify(tensor_check *tc, const float *analytic, double loss_noise, float step)
{
    tc->scale = 0.0;
    for (size_t i = 0; i < tc->count; i++)
        tc->scale = fmax(tc->scale, fmax(fabs((double)analytic[i]), fabs(tc->numeric[i])));
    tc->base_floor = fmax(FLOOR_FRACTION * tc->scale, NOISE_FLOOR * loss_noise / step);
    tc->skipped = 0;
    for (size_t i = 0; i < tc->count; i++) {
        tc->floor[i] = fmax(FLOOR_FRACTION * tc->scale, NOISE_FLOOR * loss_noise / tc->step[i]);
        double size = fmax(fmax(fabs((double)analytic[i]), fabs(tc->numeric[i])), tc->floor[i]);
        tc->skip[i] = tc->kink_error[i] > KINK_SHARE * TOL * size;
        tc->skipped += tc->skip[i];
    }
    tc->checked = tc->count - tc->skipped;
}

typedef struct comparison {
    size_t bad;
    double worst_rel;
    size_t worst_index;
} comparison;

static comparison compare(const tensor_check *tc, const float *analytic)
{
    comparison c = {0, -1.0, 0};
    for (size_t i = 0; i < tc->count; i++) {
        if (tc->skip[i])
            continue;
        double a = analytic[i], n = tc->numeric[i];
        double rel = (isfinite(a) && isfinite(n))
                         ? fabs(a - n) / fmax(fmax(fabs(a), fabs(n)), tc->floor[i])
                         : INFINITY;
        if (rel > TOL)
            c.bad++;
        if (rel > c.worst_rel) {
            c.worst_rel = rel;
            c.worst_index = i;
        }
    }
    if (c.worst_rel < 0.0)
        c.worst_rel = 0.0; /* nothing checked */
    return c;
}

/* The checker must reject the kinds of error it is meant to catch. `dims` is the PyTorch shape
 * of a parameter (ndim 4, k x k for conv/convt weights; ndim 0 for the input); corruptions act on
 * a copy of the analytic gradient. A corruption that moves no checked element by more than half
 * the tensor's scale (two nearly equal elements swapped, a near-constant tensor shifted) is no
 * error the data could show and is not required to fail. */
static void self_test_tensor(const char *what, const tensor_check *tc, const float *analytic,
                             int ndim, const int64_t *dims)
{
    size_t count = tc->count;
    if (tc->checked < 2)
        return;
    const unsigned char *skip = tc->skip;
    float *bad = malloc(count * sizeof *bad);
    if (!bad)
        return;
    /* the largest checked element (so it is above the floor) and the one most unlike it */
    size_t big = 0;
    while (skip[big])
        big++;
    for (size_t i = 0; i < count; i++)
        if (!skip[i] && fabsf(analytic[i]) > fabsf(analytic[big]))
            big = i;
    size_t other = big;
    for (size_t i = 0; i < count; i++)
        if (i != big && !skip[i] &&
            (other == big || fabsf(analytic[i] - analytic[big]) > fabsf(analytic[other] - analytic[big])))
            other = i;

    static const char *names[] = {"negated element", "two elements swapped", "shift by one element",
                                  "transposed kernel", "flipped kernel"};
    bool square_kernel = ndim == 4 && dims[2] > 1 && dims[2] == dims[3];
    for (int kind = 0; kind < 5; kind++) {
        if (kind >= 3 && !square_kernel)
            continue;
        memcpy(bad, analytic, count * sizeof *bad);
        if (kind == 0) {
            bad[big] = -bad[big];
        } else if (kind == 1) {
            bad[big] = analytic[other];
            bad[other] = analytic[big];
        } else if (kind == 2) {
            /* g'[i] = g[i + 1]: an off-by-one in an index */
            for (size_t i = 0; i + 1 < count; i++)
                bad[i] = analytic[i + 1];
            bad[count - 1] = analytic[0];
        } else {
            /* [A, B, k, k]: kh <-> kw (3), or rotated by 180 degrees (4: a true convolution
             * where cross-correlation was meant) */
            size_t kk = (size_t)dims[2];
            for (size_t plane = 0; plane < count / (kk * kk); plane++)
                for (size_t i = 0; i < kk; i++)
                    for (size_t j = 0; j < kk; j++) {
                        size_t from = kind == 3 ? j * kk + i : (kk - 1 - i) * kk + (kk - 1 - j);
                        bad[plane * kk * kk + i * kk + j] = analytic[plane * kk * kk + from];
                    }
        }
        double moved = 0.0;
        for (size_t i = 0; i < count; i++)
            if (!skip[i])
                moved = fmax(moved, fabs((double)bad[i] - (double)analytic[i]));
        if (moved <= 0.5 * fmax(tc->scale, tc->base_floor))
            continue;
        comparison c = compare(tc, bad);
        double margin = c.worst_rel / TOL;
        if (margin < weakest_corruption)
            weakest_corruption = margin;
        corruptions_caught += c.bad > 0;
        CHECK_MSG(c.bad > 0 && margin > CORRUPTION_MARGIN,
                  "%s: the checker accepts a %s (worst rel %.3g, %zu elements over TOL)", what,
                  names[kind], c.worst_rel, c.bad);
    }
    free(bad);
}

/* Compares one tensor's analytic gradient with finite differences in its values, stepped by 1% of
 * the tensor's largest value (weights ~0.2 move pre-activations by h |x|: a fixed h of 1e-2
 * would make most steps in a stack cross some relu's kink). A tensor whose true gradient is 0
 * (`zero`: a bias before BN) must stay at the noise floor; any other must rise 4x above it, so
 * that its largest elements are judged relatively and the self-test's corruptions apply. */
static void check_tensor(harness *t, const char *case_name, const char *tensor_name, float *values,
                         const float *analytic, size_t count, int ndim, const int64_t *dims,
                         bool kinks_expected, bool zero)
{
    tensor_check tc = {.count = count};
    tc.numeric = malloc(count * sizeof *tc.numeric);
    tc.kink_error = malloc(count * sizeof *tc.kink_error);
    tc.step = malloc(count * sizeof *tc.step);
    tc.floor = malloc(count * sizeof *tc.floor);
    tc.skip = malloc(count);
    char what[128];
    snprintf(what, sizeof what, "%s: %s", case_name, tensor_name);
    if (!tc.numeric || !tc.kink_error || !tc.step || !tc.floor || !tc.skip) {
        CHECK_MSG(false, "%s: out of memory", what);
        tensor_check_free(&tc);
        return;
    }
    float largest = 0.25f; /* a tensor of small values (a bias near 0) is still stepped by 2.5e-3 */
    for (size_t i = 0; i < count; i++)
        largest = fmaxf(largest, fabsf(values[i]));
    float step = (float)STEP_FRACTION * largest;
    double noise = t->loss_noise / step;
    t->watch_kinks = true;
    numeric_gradient(t, values, step, &tc);
    classify(&tc, analytic, t->loss_noise, step);
    comparison c = compare(&tc, analytic);
    if (verbose)
        fprintf(stderr, "  %-30s %4zu checked %2zu retried %2zu skipped, h %.1e scale %.1e floor %.1e, "
                        "worst rel %.1e at %zu (a %.6g n %.6g)\n",
                what, tc.checked, tc.retried, tc.skipped, (double)step, tc.scale, tc.base_floor,
                c.worst_rel, c.worst_index, (double)analytic[c.worst_index], tc.numeric[c.worst_index]);
    if (c.worst_rel > worst_correct_rel)
        worst_correct_rel = c.worst_rel;
    CHECK_MSG(!t->failed, "%s: a forward failed", what);
    CHECK_MSG(c.bad == 0, "%s: %zu of %zu elements out of tolerance; worst [%zu]: analytic %.6g numeric %.6g",
              what, c.bad, tc.checked, c.worst_index, (double)analytic[c.worst_index],
              tc.numeric[c.worst_index]);
    if (zero)
        CHECK_MSG(tc.scale < NOISE_FLOOR * noise, "%s: gradient %.3g where 0 is exact", what,
                  tc.scale);
    else
        CHECK_MSG(tc.scale > 4.0 * NOISE_FLOOR * noise,
                  "%s: gradients (scale %.3g) too close to the noise (%.3g) to check", what,
                  tc.scale, noise);
    if (kinks_expected)
        CHECK_MSG(tc.skipped <= 1 || tc.skipped <= (size_t)(MAX_SKIPPED_FRACTION * (double)count),
                  "%s: %zu of %zu elements skipped at kinks", what, tc.skipped, count);
    else
        CHECK_MSG(tc.retried == 0, "%s: %zu elements crossed a kink the inputs were meant to avoid",
                  what, tc.retried);
    if (!zero)
        self_test_tensor(what, &tc, analytic, ndim, dims);
    tensor_check_free(&tc);
}

typedef enum dropout_source { DROPOUT_NONE, DROPOUT_MASK, DROPOUT_PHILOX } dropout_source;

typedef struct gradcase {
    const char *name;
    const char *layers;
    gan_shape input;
    int batch;
    float input_min_abs, input_max_abs; /* inputs are +-U[min, max]: away from 0 for kinks */
    dropout_source dropout;
    bool kinks_inside;     /* relu/lrelu behind other layers: steps may cross their kinks */
    const char *zero_grad; /* a parameter whose true gradient is exactly 0 (a bias before BN) */
} gradcase;

/* BN's initial weight 1 and bias 0 would hide a swapped gamma/beta: give them random values. */
static void randomize_bn_affine(gan_model *m, unsigned seed)
{
    for (int i = 0; i < m->layer_count; i++) {
        if (m->layers[i]->spec.kind != GAN_LAYER_BN)
            continue;
        gan_param *gamma = gan_layer_param(m, m->layers[i]->weight_param);
        gan_param *beta = gan_layer_param(m, m->layers[i]->bias_param);
        test_fill_uniform(gamma->value, gamma->count, seed + 2u * (unsigned)i, 0.5f, 1.5f);
        test_fill_uniform(beta->value, beta->count, seed + 2u * (unsigned)i + 1u, -0.5f, 0.5f);
    }
}

/* Fills x with +-U[min_abs, max_abs], signs at random. */
static void fill_signed(float *x, size_t n, unsigned seed, float min_abs, float max_abs)
{
    float *sign = malloc(n * sizeof *sign);
    test_fill_uniform(x, n, seed, min_abs, max_abs);
    test_fill_uniform(sign, n, seed + 1000u, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++)
        if (sign[i] < 0.0f)
            x[i] = -x[i];
    free(sign);
}

/* The dropout mask a forward really applied: about p of the outputs are 0, the rest x / (1-p). */
static void check_dropout_output(const gradcase *c, harness *t)
{
    const float *y = gan_model_output(t->model);
    float p = t->model->layers[0]->spec.drop_p;
    size_t dropped = 0, wrong = 0;
    for (size_t i = 0; i < t->in_count; i++) {
        if (y[i] == 0.0f)
            dropped++;
        else if (fabsf(y[i] - t->x[i] / (1.0f - p)) > 1e-6f * fabsf(t->x[i]))
            wrong++;
    }
    double fraction = (double)dropped / (double)t->in_count;
    CHECK_MSG(fraction > 0.15 && fraction < 0.45 && wrong == 0,
              "%s: %.2f of the outputs dropped (p %.2f), %zu kept ones are not x/(1-p)", c->name,
              fraction, (double)p, wrong);
}

static void run_case(const gradcase *c, unsigned seed)
{
    harness t;
    memset(&t, 0, sizeof t);
    gan_status status = gan_model_create_allocated(c->name, c->layers, c->input, c->batch, be,
                                                   &t.pool, &t.model);
    CHECK_MSG(status == GAN_OK, "%s: '%s' not built: %s", c->name, c->layers, gan_error_message());
    if (status != GAN_OK)
        return;
    gan_model *m = t.model;
    CHECK_OK(gan_model_init_weights(m, GAN_INIT_PYTORCH, seed));
    randomize_bn_affine(m, seed + 100u);
    t.in_count = gan_shape_count(c->input) * (size_t)c->batch;
    t.out_count = gan_shape_count(m->output_shape) * (size_t)c->batch;
    t.x = malloc(t.in_count * sizeof(float));
    t.r = malloc(t.out_count * sizeof(float));
    fill_signed(t.x, t.in_count, seed + 200u, c->input_min_abs, c->input_max_abs);
    test_fill_uniform(t.r, t.out_count, seed + 300u, -1.0f, 1.0f);

    for (int i = 0; i < m->layer_count; i++) {
        gan_layer *layer = m->layers[i];
        size_t count = gan_shape_count(layer->in) * (size_t)c->batch;
        if (layer->spec.kind == GAN_LAYER_DROPOUT) {
            if (c->dropout == DROPOUT_MASK) {
                /* PyTorch's kind of mask: 0 with probability p, else 1/(1-p) */
                float p = layer->spec.drop_p;
                t.mask = malloc(count * sizeof(float));
                test_fill_uniform(t.mask, count, seed + 400u, 0.0f, 1.0f);
                for (size_t j = 0; j < count; j++)
                    t.mask[j] = t.mask[j] < p ? 0.0f : 1.0f / (1.0f - p);
                CHECK_OK(gan_model_set_dropout_mask(m, layer->index, t.mask));
            } else {
                m->dropout_seed = 1234u + seed;
                t.dropout_offset = 77u; /* not 0: the offset must be honoured */
            }
        }
        if (layer->spec.kind == GAN_LAYER_RELU || layer->spec.kind == GAN_LAYER_LRELU) {
            if (t.kinked == MAX_KINKED) {
                CHECK_MSG(false, "%s: more than %d relu/lrelu layers to watch", c->name, MAX_KINKED);
                break;
            }
            kinked_layer *kl = &t.kinks[t.kinked++];
            /* Which side of its kink: the sign of its input, which is its output's (slope >= 0)
             * where a convolution applies it on the way out and its input is never written. */
            kl->pre = layer->in_epilogue ? layer->output : i > 0 ? m->layers[i - 1]->output : t.x;
            kl->count = count;
            kl->slope = layer->spec.kind == GAN_LAYER_LRELU ? layer->spec.slope : 0.0f;
            kl->grad = malloc(count * sizeof(float));
            kl->positive = malloc(count);
        }
    }

    /* the unperturbed point: which side of each kink, dL/dy there, the analytic gradients */
    t.watch_kinks = false;
    loss(&t);
    const float *y = gan_model_output(m);
    double sum_squares = 0.0;
    for (size_t i = 0; i < t.out_count; i++)
        sum_squares += (double)y[i] * t.r[i] * (double)y[i] * t.r[i];
    /* each y rounded to a few ulps, independently: L is off by ~eps sqrt(sum (y r)^2), and a
     * difference quotient over h divides that by h */
    t.loss_noise = FLT_EPSILON * sqrt(sum_squares);
    for (int k = 0; k < t.kinked; k++)
        for (size_t i = 0; i < t.kinks[k].count; i++)
            t.kinks[k].positive[i] = t.kinks[k].pre[i] > 0.0f;
    if (c->dropout != DROPOUT_NONE && m->layer_count == 1)
        check_dropout_output(c, &t);
    CHECK_OK(gan_model_backward(m, t.r, GAN_GRADS_OVERWRITE, true));
    float *grad_input = malloc(t.in_count * sizeof(float));
    float *grads = malloc((m->trainable_count + 1) * sizeof(float));
    memcpy(grad_input, m->grad_input, t.in_count * sizeof(float));
    memcpy(grads, m->grads, m->trainable_count * sizeof(float));
    for (int i = 0, k = 0; i < m->layer_count && k < t.kinked; i++) {
        gan_layer *layer = m->layers[i];
        if (layer->spec.kind != GAN_LAYER_RELU && layer->spec.kind != GAN_LAYER_LRELU)
            continue;
        /* dL/dy of layer i: what backward handed it */
        const float *dy = i == m->active_layers - 1 ? t.r : layer->grad_output;
        memcpy(t.kinks[k].grad, dy, t.kinks[k].count * sizeof(float));
        k++;
    }

    check_tensor(&t, c->name, "input", t.x, grad_input, t.in_count, 0, NULL, c->kinks_inside, false);
    for (int p = 0; p < m->param_count; p++) {
        gan_param *param = &m->params[p];
        if (!param->trainable)
            continue;
        check_tensor(&t, c->name, param->name, param->value, grads + (param->value - m->weights),
                     param->count, param->ndim, param->dims, c->kinks_inside,
                     c->zero_grad && !strcmp(c->zero_grad, param->name));
    }

    for (int k = 0; k < t.kinked; k++) {
        free(t.kinks[k].grad);
        free(t.kinks[k].positive);
    }
    free(grad_input);
    free(grads);
    free(t.x);
    free(t.r);
    free(t.mask);
    gan_model_destroy(m);
    gan_pool_release(&t.pool);
}

/* Odd shapes everywhere: batch 3, non-square inputs, channels that differ in and out. */
#define PLAIN 0.0f, 1.0f, DROPOUT_NONE, false, NULL
static const gradcase cases[] = {
    /* conv: kernel 1, 3, 4; stride 1, 2; padding 0, 1; with and without bias */
    {"conv k3 s1 p1 bias", "conv(4,3,1,1,bias)", {2, 5, 7}, 3, PLAIN},
    {"conv k3 s1 p1", "conv(3,3,1,1)", {2, 7, 5}, 3, PLAIN},
    {"conv k4 s2 p1", "conv(3,4,2,1)", {2, 7, 5}, 3, PLAIN},
    {"conv k4 s2 p1 bias", "conv(2,4,2,1,bias)", {3, 6, 9}, 3, PLAIN},
    {"conv k4 s1 p0", "conv(2,4,1,0)", {2, 5, 7}, 3, PLAIN},
    /* the last input row is never read ((6 - 3) / 2 rounds down): its gradient must be 0 */
    {"conv k3 s2 p0 skips a row", "conv(2,3,2,0)", {3, 6, 5}, 3, PLAIN},
    {"conv k1 s1 p0 bias", "conv(3,1,1,0,bias)", {2, 5, 7}, 3, PLAIN},
    /* kernel 1 with padding 1: the output's border sees only padding (its bias) */
    {"conv k1 s2 p1 bias", "conv(2,1,2,1,bias)", {2, 5, 7}, 3, PLAIN},
    /* convt: stride 1, 2; padding 0, 1; kernel 1, 3, 4 */
    {"convt k4 s2 p1", "convt(3,4,2,1)", {2, 3, 4}, 3, PLAIN},
    {"convt k4 s2 p1 bias", "convt(2,4,2,1,bias)", {3, 3, 2}, 3, PLAIN},
    {"convt k4 s1 p0 bias", "convt(2,4,1,0,bias)", {3, 1, 1}, 3, PLAIN},
    {"convt k4 s1 p0", "convt(3,4,1,0)", {2, 2, 3}, 3, PLAIN},
    {"convt k3 s2 p0", "convt(2,3,2,0)", {2, 4, 3}, 3, PLAIN},
    {"convt k3 s2 p1 bias", "convt(2,3,2,1,bias)", {2, 3, 4}, 3, PLAIN},
    {"convt k3 s1 p1", "convt(3,3,1,1)", {2, 5, 4}, 3, PLAIN},
    {"convt k1 s1 p0 bias", "convt(2,1,1,0,bias)", {3, 5, 7}, 3, PLAIN},
    /* linear, flat or after flatten */
    {"linear", "linear(5)", {7, 1, 1}, 3, PLAIN},
    {"linear bias", "linear(5,bias)", {7, 1, 1}, 3, PLAIN},
    {"flatten linear", "flatten linear(3)", {2, 3, 3}, 3, PLAIN},
    {"flatten linear bias", "flatten linear(4,bias)", {2, 3, 3}, 3, PLAIN},
    /* batch norm: 2d (first layer and behind a conv), 1d behind a linear */
    {"bn 2d", "bn", {3, 5, 7}, 3, 0.0f, 2.0f, DROPOUT_NONE, false, NULL},
    {"conv bn 2d", "conv(3,3,1,1,bias) bn", {2, 4, 5}, 3, 0.0f, 1.0f, DROPOUT_NONE, false, "0.bias"},
    {"bn 1d after linear", "linear(6,bias) bn", {5, 1, 1}, 3, 0.0f, 1.0f, DROPOUT_NONE, false, "0.bias"},
    {"bn 1d batch 5", "flatten linear(4) bn", {2, 2, 3}, 5, PLAIN},
    /* activations; relu/lrelu inputs kept at |x| >= 0.05 > 4h */
    {"relu", "relu", {2, 3, 5}, 3, 0.05f, 1.0f, DROPOUT_NONE, false, NULL},
    {"lrelu", "lrelu(0.2)", {2, 3, 5}, 3, 0.05f, 1.0f, DROPOUT_NONE, false, NULL},
    {"tanh", "tanh", {2, 3, 5}, 3, 0.0f, 2.0f, DROPOUT_NONE, false, NULL},
    {"sigmoid", "sigmoid", {2, 3, 5}, 3, 0.0f, 3.0f, DROPOUT_NONE, false, NULL},
    /* dropout: a given mask, and Philox's with the offset replayed */
    {"dropout mask", "dropout(0.3)", {4, 3, 5}, 3, 0.05f, 1.0f, DROPOUT_MASK, false, NULL},
    {"dropout philox", "dropout(0.3)", {4, 3, 5}, 3, 0.05f, 1.0f, DROPOUT_PHILOX, false, NULL},
    /* mlp_mnist's D block (its final sigmoid is left out: through one sigmoid output per sample
     * the first layer's gradients sit too close to float32's rounding of L to be checked) */
    {"mlp D block", "flatten linear(6,bias) lrelu(0.2) dropout(0.3) linear(3,bias)", {2, 3, 2}, 3,
     0.0f, 1.0f, DROPOUT_PHILOX, true, NULL},
    /* views between layers */
    {"reshape then conv", "flatten reshape(2,3,4) conv(2,3,1,1)", {4, 2, 3}, 3, PLAIN},
    /* the two small stacks */
    {"mini G", "convt(3,4,1,0) bn relu convt(2,4,2,1) tanh", {5, 1, 1}, 3, 0.0f, 1.0f,
     DROPOUT_NONE, true, NULL},
    {"mini D", "conv(3,4,2,1) lrelu(0.2) conv(4,3,2,1) bn lrelu(0.2) flatten linear(1) sigmoid",
     {2, 9, 7}, 3, 0.0f, 1.0f, DROPOUT_NONE, true, NULL},
};
#undef PLAIN

/* ---- gradient modes -------------------------------------------------------------------------- */

static void copy_floats(float *dst, const float *src, size_t n) { memcpy(dst, src, n * sizeof(float)); }

/* OVERWRITE ignores what was there (NaN included); ACCUMULATE adds to arbitrary existing values,
 * across two different batches as D's real and fake passes do; NONE leaves every parameter
 * gradient bit for bit and still gives grad_input; want_grad_input = false leaves grad_input. */
static void check_grad_modes(const char *layers, gan_shape input)
{
    gan_pool pool;
    gan_model *m = NULL;
    const int batch = 3;
    CHECK_OK(gan_model_create_allocated("modes", layers, input, batch, be, &pool, &m));
    if (!m)
        return;
    CHECK_OK(gan_model_init_weights(m, GAN_INIT_PYTORCH, 5));
    randomize_bn_affine(m, 55);
    size_t p = m->trainable_count;
    size_t in_count = gan_shape_count(input) * batch, out_count = gan_shape_count(m->output_shape) * batch;
    float *x1 = malloc(in_count * sizeof(float)), *x2 = malloc(in_count * sizeof(float));
    float *r1 = malloc(out_count * sizeof(float)), *r2 = malloc(out_count * sizeof(float));
    float *g1 = malloc(p * sizeof(float)), *g2 = malloc(p * sizeof(float));
    float *prior = malloc(p * sizeof(float)), *want = malloc(p * sizeof(float));
    float *gi1 = malloc(in_count * sizeof(float)), *gi2 = malloc(in_count * sizeof(float));
    float *sentinel_input = malloc(in_count * sizeof(float));
    test_fill_uniform(x1, in_count, 21, -1, 1);
    test_fill_uniform(x2, in_count, 22, -1, 1);
    test_fill_uniform(r1, out_count, 23, -1, 1);
    test_fill_uniform(r2, out_count, 24, -1, 1);
    test_fill_uniform(prior, p, 25, -3, 3);
    test_fill_uniform(sentinel_input, in_count, 26, 5, 6);
    char what[160];

    /* OVERWRITE over NaN */
    for (size_t i = 0; i < p; i++)
        m->grads[i] = NAN;
    CHECK_OK(gan_model_forward(m, x1, true));
    CHECK_OK(gan_model_backward(m, r1, GAN_GRADS_OVERWRITE, true));
    copy_floats(g1, m->grads, p);
    copy_floats(gi1, m->grad_input, in_count);
    size_t non_finite = 0, zero = 0;
    for (size_t i = 0; i < p; i++) {
        non_finite += !isfinite(g1[i]);
        zero += g1[i] == 0.0f;
    }
    CHECK_MSG(non_finite == 0, "%s: OVERWRITE kept %zu NaNs of the previous contents", layers, non_finite);
    CHECK_MSG(zero < p / 10, "%s: %zu of %zu gradients are 0", layers, zero, p);
    CHECK_OK(gan_model_forward(m, x2, true));
    CHECK_OK(gan_model_backward(m, r2, GAN_GRADS_OVERWRITE, true));
    copy_floats(g2, m->grads, p);
    copy_floats(gi2, m->grad_input, in_count);

    /* OVERWRITE without grad_input: the same parameter gradients, grad_input untouched */
    copy_floats(m->grad_input, sentinel_input, in_count);
    CHECK_OK(gan_model_forward(m, x1, true));
    CHECK_OK(gan_model_backward(m, r1, GAN_GRADS_OVERWRITE, false));
    snprintf(what, sizeof what, "%s: OVERWRITE without grad_input", layers);
    CHECK_ALLCLOSE(what, m->grads, g1, p, 1e-5, 1e-6);
    CHECK_MSG(!memcmp(m->grad_input, sentinel_input, in_count * sizeof(float)),
              "%s: want_grad_input=false wrote grad_input", layers);

    /* ACCUMULATE: prior + g1, then prior + g1 + g2 */
    copy_floats(m->grads, prior, p);
    CHECK_OK(gan_model_forward(m, x1, true));
    CHECK_OK(gan_model_backward(m, r1, GAN_GRADS_ACCUMULATE, false));
    for (size_t i = 0; i < p; i++)
        want[i] = prior[i] + g1[i];
    snprintf(what, sizeof what, "%s: ACCUMULATE once", layers);
    CHECK_ALLCLOSE(what, m->grads, want, p, 1e-5, 1e-5);
    CHECK_OK(gan_model_forward(m, x2, true));
    CHECK_OK(gan_model_backward(m, r2, GAN_GRADS_ACCUMULATE, true));
    for (size_t i = 0; i < p; i++)
        want[i] = prior[i] + g1[i] + g2[i];
    snprintf(what, sizeof what, "%s: ACCUMULATE twice", layers);
    CHECK_ALLCLOSE(what, m->grads, want, p, 1e-5, 1e-5);
    snprintf(what, sizeof what, "%s: grad_input with ACCUMULATE", layers);
    CHECK_ALLCLOSE(what, m->grad_input, gi2, in_count, 1e-5, 1e-6);

    /* NONE: parameter gradients untouched bit for bit, grad_input as with OVERWRITE */
    copy_floats(m->grads, prior, p);
    copy_floats(m->grad_input, sentinel_input, in_count);
    CHECK_OK(gan_model_forward(m, x1, true));
    CHECK_OK(gan_model_backward(m, r1, GAN_GRADS_NONE, true));
    CHECK_MSG(!memcmp(m->grads, prior, p * sizeof(float)), "%s: GAN_GRADS_NONE changed parameter gradients",
              layers);
    snprintf(what, sizeof what, "%s: grad_input with GAN_GRADS_NONE", layers);
    CHECK_ALLCLOSE(what, m->grad_input, gi1, in_count, 1e-5, 1e-6);
    copy_floats(m->grad_input, sentinel_input, in_count);
    CHECK_OK(gan_model_forward(m, x2, true));
    CHECK_OK(gan_model_backward(m, r2, GAN_GRADS_NONE, false));
    CHECK_MSG(!memcmp(m->grads, prior, p * sizeof(float)) &&
                  !memcmp(m->grad_input, sentinel_input, in_count * sizeof(float)),
              "%s: GAN_GRADS_NONE without grad_input wrote something", layers);

    free(x1);
    free(x2);
    free(r1);
    free(r2);
    free(g1);
    free(g2);
    free(prior);
    free(want);
    free(gi1);
    free(gi2);
    free(sentinel_input);
    gan_model_destroy(m);
    gan_pool_release(&pool);
}

int main(void)
{
    const char *v = getenv("GAN_GRADCHECK_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    /* GAN_GRADCHECK_SEED=N draws other weights, inputs and R (to probe the margins) */
    const char *seed_text = getenv("GAN_GRADCHECK_SEED");
    unsigned seed = seed_text ? (unsigned)strtoul(seed_text, NULL, 10) * 1000u : 0u;
    weakest_corruption = INFINITY;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int failed_before = test_checks_failed;
        if (verbose)
            fprintf(stderr, "%s: %s\n", cases[i].name, cases[i].layers);
        run_case(&cases[i], seed + 10u + (unsigned)i);
        if (test_checks_failed != failed_before)
            fprintf(stderr, "  (case '%s': %s)\n", cases[i].name, cases[i].layers);
    }
    printf("gradcheck: %zu cases; worst correct-gradient rel error %.2e (TOL %.0e); %d corrupted "
           "gradients caught, the weakest at %.0fx TOL\n",
           sizeof cases / sizeof cases[0], worst_correct_rel, TOL, corruptions_caught,
           weakest_corruption);
    CHECK_MSG(corruptions_caught >= 100, "only %d corruption self-tests ran", corruptions_caught);

    /* every kind with parameters (no bias right before a BN: its gradient is 0, and adding 0
     * proves nothing); conv first (dx not wanted), BN first (its dx goes to scratch) */
    check_grad_modes("conv(3,3,1,1,bias) lrelu(0.2) bn convt(2,3,2,1,bias) flatten linear(2,bias)",
                     (gan_shape){2, 4, 5});
    check_grad_modes("bn conv(2,3,2,1) flatten linear(3) bn", (gan_shape){3, 5, 7});
    be->destroy(be);
    return test_finish();
}
