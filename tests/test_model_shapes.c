/* Shape inference and refusal. A stack that cannot fit is refused with GAN_ERR_SHAPE and a message
 * naming the layer (its PyTorch module index and kind) and both shapes, and no model comes back;
 * grammar errors are GAN_ERR_CONFIG naming the token and what is wrong with it; the DCGAN-64
 * networks get PyTorch's output shapes, parameter names, dims and counts (state_dict order,
 * without num_batches_tracked, which the model keeps as a host counter). */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/cuda_args.h"
#include "gan/nn.h"
#include "test_util.h"

enum { BATCH = 4 };

/* Building `layers` on `in` (batch 4) must fail with `status`, return no model, and say every
 * string of the NULL-terminated list. */
static void expect_refused(const char *layers, gan_shape in, gan_status status, ...)
{
    gan_model *m = (gan_model *)(uintptr_t)1; /* must be overwritten with NULL */
    gan_status got = gan_model_create("D", layers, in, BATCH, NULL, &m);
    CHECK_MSG(got == status, "'%s' gave %s, expected %s (%s)", layers, gan_status_name(got),
              gan_status_name(status), got == GAN_OK ? "built" : gan_error_message());
    CHECK_MSG(m == NULL || got == GAN_OK, "'%s': refused but *out is not NULL", layers);
    if (got == GAN_OK) {
        gan_model_destroy(m);
        return;
    }
    va_list needles;
    va_start(needles, status);
    for (const char *needle = va_arg(needles, const char *); needle; needle = va_arg(needles, const char *))
        CHECK_MSG(strstr(gan_error_message(), needle) != NULL, "'%s': message \"%s\" does not say '%s'",
                  layers, gan_error_message(), needle);
    va_end(needles);
}

static void shape_refusals(void)
{
    /* DCGAN's D with padding 0 on 32x32: Conv2d(k4, s2, p0) gives 32 -> 15 -> 6 -> 2, and the
     * fourth conv (module 6: the lrelus are modules 1, 3, 5) has a 4x4 kernel over 2x2. */
    const char *four_convs = "conv(8,4,2,0) lrelu(0.2) conv(8,4,2,0) lrelu(0.2) conv(8,4,2,0) lrelu(0.2) "
                             "conv(1,4,2,0)";
    expect_refused(four_convs, (gan_shape){1, 32, 32}, GAN_ERR_SHAPE, "layer 6 (conv)", "[4, 8, 2, 2]",
                   "4x4", "[N, 1, 0, 0]", NULL);
    /* the same refused through create_allocated on a real backend: nothing to release after */
    gan_backend *be = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (be) {
        gan_pool pool;
        gan_model *m = NULL;
        CHECK_FAILS_WITH(gan_model_create_allocated("D", four_convs, (gan_shape){1, 32, 32}, BATCH, be,
                                                    &pool, &m),
                         GAN_ERR_SHAPE, "layer 6 (conv)");
        CHECK(m == NULL);
        be->destroy(be);
    }
    /* one step less is fine: [N, 1, 2, 2]... and the shapes on the way are PyTorch's */
    gan_model *ok = NULL;
    CHECK_OK(gan_model_create("D", "conv(8,4,2,0) lrelu(0.2) conv(8,4,2,0) lrelu(0.2) conv(1,4,2,0)",
                              (gan_shape){1, 32, 32}, BATCH, NULL, &ok));
    CHECK(ok && ok->output_shape.c == 1 && ok->output_shape.h == 2 && ok->output_shape.w == 2);
    gan_model_destroy(ok);

    /* non-square input too small in one direction only */
    expect_refused("conv(4,5,1,0)", (gan_shape){2, 4, 7}, GAN_ERR_SHAPE, "layer 0 (conv)", "[4, 2, 4, 7]",
                   "5x5", NULL);
    /* linear on an unflattened input: names the fix */
    expect_refused("conv(8,3,1,1) linear(4)", (gan_shape){1, 5, 5}, GAN_ERR_SHAPE, "layer 1 (linear)",
                   "[4, 8, 5, 5]", "flatten", NULL);
    expect_refused("linear(4)", (gan_shape){3, 2, 2}, GAN_ERR_SHAPE, "layer 0 (linear)", "[4, 3, 2, 2]", NULL);
    /* reshape with the wrong count: both shapes and both counts */
    expect_refused("flatten reshape(3,4,4) conv(2,3,1,1)", (gan_shape){1, 5, 5}, GAN_ERR_SHAPE, "reshape",
                   "[4, 25, 1, 1]", "[4, 3, 4, 4]", "25 vs 48", NULL);
    expect_refused("linear(50) reshape(2,5,6) conv(3,3,1,1)", (gan_shape){7, 1, 1}, GAN_ERR_SHAPE,
                   "reshape", "[4, 50, 1, 1]", "[4, 2, 5, 6]", NULL);
    /* a transposed conv whose padding eats its whole output */
    expect_refused("convt(4,4,1,3)", (gan_shape){2, 1, 1}, GAN_ERR_SHAPE, "layer 0 (convt)", "[4, 2, 1, 1]",
                   "padding 3", NULL);
    /* BatchNorm1d over one sample has no variance (PyTorch refuses it in training too) */
    gan_model *m = NULL;
    gan_status got = gan_model_create("G", "linear(4) bn", (gan_shape){3, 1, 1}, 1, NULL, &m);
    CHECK_MSG(got == GAN_ERR_SHAPE && m == NULL, "BN1d at batch 1 gave %s", gan_status_name(got));
    CHECK_MSG(strstr(gan_error_message(), "layer 1 (bn)") != NULL, "BN1d at batch 1: \"%s\"", gan_error_message());
    gan_model_destroy(m);
    m = NULL;
    CHECK_OK(gan_model_create("G", "conv(4,3,1,1) bn", (gan_shape){3, 2, 2}, 1, NULL, &m)); /* 4 values */
    gan_model_destroy(m);
    /* impossible arguments */
    m = NULL;
    CHECK_FAILS_WITH(gan_model_create("G", "relu", (gan_shape){3, 2, 2}, 0, NULL, &m), GAN_ERR_ARG, "batch");
    CHECK_FAILS_WITH(gan_model_create("G", "relu", (gan_shape){3, 0, 2}, 2, NULL, &m), GAN_ERR_ARG, "[3, 0, 2]");
    CHECK(m == NULL);
}

static void grammar_refusals(void)
{
    gan_shape in = {1, 8, 8};
    /* unknown layer: names it and lists the known ones */
    expect_refused("conv(8,4,2,1) frobnicate", in, GAN_ERR_CONFIG, "'frobnicate'", "unknown layer", "lrelu", NULL);
    expect_refused("conv(8,4,2,1) batchnorm", in, GAN_ERR_CONFIG, "'batchnorm'", "unknown layer", NULL);
    /* missing arguments */
    expect_refused("conv(8,4,2)", in, GAN_ERR_CONFIG, "'conv(8,4,2)'", "(out,kernel,stride,padding", NULL);
    expect_refused("conv(8,4,2,bias)", in, GAN_ERR_CONFIG, "'conv(8,4,2,bias)'", NULL);
    expect_refused("conv", in, GAN_ERR_CONFIG, "'conv'", "(out,kernel,stride,padding", NULL);
    expect_refused("flatten linear()", in, GAN_ERR_CONFIG, "'linear()'", "(out[,bias])", NULL);
    expect_refused("lrelu", in, GAN_ERR_CONFIG, "'lrelu'", "lrelu(slope)", NULL);
    expect_refused("dropout()", in, GAN_ERR_CONFIG, "'dropout()'", "dropout(p)", NULL);
    expect_refused("flatten reshape(2,32)", in, GAN_ERR_CONFIG, "'reshape(2,32)'", "reshape(c,h,w)", NULL);
    /* an empty argument is not a missing one: "conv(8,4,,2,1)" must not read as conv(8,4,2,1) */
    expect_refused("conv(8,4,,2,1)", in, GAN_ERR_CONFIG, "'conv(8,4,,2,1)'", NULL);
    expect_refused("lrelu(0.2,)", in, GAN_ERR_CONFIG, "'lrelu(0.2,)'", NULL);
    /* bad numbers: the token, the argument and the value */
    expect_refused("conv(64,0,2,1)", in, GAN_ERR_CONFIG, "'conv(64,0,2,1)'", "kernel size", "'0'", NULL);
    expect_refused("conv(0,4,2,1)", in, GAN_ERR_CONFIG, "output size", "'0'", NULL);
    expect_refused("conv(8,4,0,1)", in, GAN_ERR_CONFIG, "stride", "'0'", NULL);
    expect_refused("conv(8,4,2,-1)", in, GAN_ERR_CONFIG, "padding", "'-1'", NULL);
    expect_refused("conv(8.5,4,2,1)", in, GAN_ERR_CONFIG, "output size", "'8.5'", NULL);
    expect_refused("conv(8,4x,2,1)", in, GAN_ERR_CONFIG, "kernel size", "'4x'", NULL);
    expect_refused("convt(99999999999,4,2,1)", in, GAN_ERR_CONFIG, "output size", "'99999999999'", NULL);
    expect_refused("lrelu(x)", in, GAN_ERR_CONFIG, "'lrelu(x)'", "slope", "'x'", NULL);
    expect_refused("lrelu(nan)", in, GAN_ERR_CONFIG, "slope", "'nan'", NULL);
    expect_refused("lrelu(-0.2)", in, GAN_ERR_CONFIG, "slope", "'-0.2'", NULL);
    expect_refused("dropout(1.5)", in, GAN_ERR_CONFIG, "'dropout(1.5)'", "1.5", NULL);
    expect_refused("dropout(1)", in, GAN_ERR_CONFIG, "'dropout(1)'", NULL); /* p = 1 drops everything */
    expect_refused("flatten reshape(2,0,32)", in, GAN_ERR_CONFIG, "'0'", NULL);
    /* arguments where none are taken, broken punctuation, nothing at all */
    expect_refused("relu(2)", in, GAN_ERR_CONFIG, "relu takes no arguments", NULL);
    expect_refused("bn()", in, GAN_ERR_CONFIG, "bn takes no arguments", NULL);
    expect_refused("conv(8,4,2,1", in, GAN_ERR_CONFIG, "missing ')'", NULL);
    expect_refused("conv(8,4,2,1)relu", in, GAN_ERR_CONFIG, "expected white space", NULL);
    expect_refused("conv(8,4,2,1,bias,bias)", in, GAN_ERR_CONFIG, "'conv(8,4,2,1,bias,bias)'", NULL);
    expect_refused("", in, GAN_ERR_CONFIG, "empty", NULL);
    expect_refused("   \n\t ", in, GAN_ERR_CONFIG, "empty", NULL);
    expect_refused(NULL, in, GAN_ERR_CONFIG, "empty", NULL);
    expect_refused("flatten", in, GAN_ERR_CONFIG, "only views", NULL);
    /* the position is the token's: the 3rd token here */
    expect_refused("conv(8,4,2,1) lrelu(0.2) conv(8,0,2,1)", in, GAN_ERR_CONFIG, "layer 3 'conv(8,0,2,1)'", NULL);

    /* what the grammar does accept: spaces inside parentheses, tabs and newlines between tokens,
     * upper case, a trailing bias */
    gan_layer_spec *specs = NULL;
    int count = 0;
    CHECK_OK(gan_layers_parse("  Conv( 8 , 4 ,2, 1 , bias )\n\tLRELU(0.25)  dropout(0.5) reshape(2,4,4) ",
                              &specs, &count));
    CHECK(count == 4);
    if (specs && count == 4) {
        CHECK(specs[0].kind == GAN_LAYER_CONV && specs[0].out == 8 && specs[0].kernel == 4 &&
              specs[0].stride == 2 && specs[0].pad == 1 && specs[0].bias);
        CHECK(specs[1].kind == GAN_LAYER_LRELU && specs[1].slope == 0.25f);
        CHECK(specs[2].kind == GAN_LAYER_DROPOUT && specs[2].drop_p == 0.5f);
        CHECK(specs[3].kind == GAN_LAYER_RESHAPE && specs[3].reshape.c == 2 && specs[3].reshape.h == 4 &&
              specs[3].reshape.w == 4);
    }
    free(specs);
}

typedef struct expected_param {
    const char *name;
    int ndim;
    int64_t dims[4];
    bool trainable;
} expected_param;

/* Every parameter and buffer, in order, with PyTorch's names and dims; returns the trainable count. */
static size_t check_params(gan_model *m, const expected_param *want, int want_count)
{
    CHECK_MSG(m->param_count == want_count, "%s: %d parameters and buffers, PyTorch has %d", m->name,
              m->param_count, want_count);
    size_t trainable = 0, buffers = 0;
    for (int i = 0; i < want_count && i < m->param_count; i++) {
        const gan_param *p = &m->params[i];
        const expected_param *e = &want[i];
        size_t count = 1;
        bool dims_ok = p->ndim == e->ndim;
        for (int d = 0; d < e->ndim; d++) {
            count *= (size_t)e->dims[d];
            dims_ok = dims_ok && p->dims[d] == e->dims[d];
        }
        CHECK_MSG(!strcmp(p->name, e->name) && dims_ok && p->count == count && p->trainable == e->trainable,
                  "%s param %d: '%s' ndim %d [%lld, %lld, %lld, %lld] count %zu trainable %d, expected '%s' "
                  "[%lld, %lld, %lld, %lld] count %zu trainable %d",
                  m->name, i, p->name, p->ndim, (long long)p->dims[0], (long long)p->dims[1],
                  (long long)p->dims[2], (long long)p->dims[3], p->count, p->trainable, e->name,
                  (long long)e->dims[0], (long long)e->dims[1], (long long)e->dims[2], (long long)e->dims[3],
                  count, e->trainable);
        CHECK_MSG(gan_model_find_param(m, e->name) == p, "%s: find_param('%s') is not param %d", m->name,
                  e->name, i);
        *(e->trainable ? &trainable : &buffers) += count;
    }
    CHECK_MSG(m->trainable_count == trainable && m->buffer_count == buffers,
              "%s: %zu trainable and %zu buffer floats, expected %zu and %zu", m->name, m->trainable_count,
              m->buffer_count, trainable, buffers);
    return trainable;
}

#define BN_PARAMS(i, c)                                                                       \
    {#i ".weight", 1, {c}, true}, {#i ".bias", 1, {c}, true}, {#i ".running_mean", 1, {c}, false}, \
    {#i ".running_var", 1, {c}, false}

static const char *G64 = "convt(512,4,1,0) bn relu convt(256,4,2,1) bn relu convt(128,4,2,1) bn relu "
                         "convt(64,4,2,1) bn relu convt(3,4,2,1) tanh";
static const char *D64 = "conv(64,4,2,1) lrelu(0.2) conv(128,4,2,1) bn lrelu(0.2) conv(256,4,2,1) bn "
                         "lrelu(0.2) conv(512,4,2,1) bn lrelu(0.2) conv(1,4,1,0) sigmoid";

/* The output shape of the first `tokens` tokens of `text` on `in`. */
static gan_shape prefix_shape(const char *text, int tokens, gan_shape in)
{
    char prefix[512];
    size_t len = 0;
    for (int seen = 0; text[len] && seen < tokens; len++)
        if (text[len] == ' ' && len > 0 && text[len - 1] != ' ')
            seen++;
    snprintf(prefix, sizeof prefix, "%.*s", (int)len, text);
    gan_model *m = NULL;
    gan_shape out = {0, 0, 0};
    CHECK_OK(gan_model_create("P", prefix, in, BATCH, NULL, &m));
    if (m)
        out = m->output_shape;
    gan_model_destroy(m);
    return out;
}

static bool shape_is(gan_shape s, int c, int h, int w) { return s.c == c && s.h == h && s.w == w; }

static void dcgan64(void)
{
    static const expected_param g_params[] = {
        {"0.weight", 4, {100, 512, 4, 4}, true}, BN_PARAMS(1, 512),
        {"3.weight", 4, {512, 256, 4, 4}, true}, BN_PARAMS(4, 256),
        {"6.weight", 4, {256, 128, 4, 4}, true}, BN_PARAMS(7, 128),
        {"9.weight", 4, {128, 64, 4, 4}, true},  BN_PARAMS(10, 64),
        {"12.weight", 4, {64, 3, 4, 4}, true},
    };
    static const expected_param d_params[] = {
        {"0.weight", 4, {64, 3, 4, 4}, true},
        {"2.weight", 4, {128, 64, 4, 4}, true},  BN_PARAMS(3, 128),
        {"5.weight", 4, {256, 128, 4, 4}, true}, BN_PARAMS(6, 256),
        {"8.weight", 4, {512, 256, 4, 4}, true}, BN_PARAMS(9, 512),
        {"11.weight", 4, {1, 512, 4, 4}, true},
    };
    gan_model *g = NULL, *d = NULL;
    CHECK_OK(gan_model_create("G", G64, (gan_shape){100, 1, 1}, BATCH, NULL, &g));
    CHECK_OK(gan_model_create("D", D64, (gan_shape){3, 64, 64}, BATCH, NULL, &d));
    if (!g || !d) {
        gan_model_destroy(g);
        gan_model_destroy(d);
        return;
    }
    CHECK(g->batch == BATCH && shape_is(g->output_shape, 3, 64, 64));
    CHECK(d->batch == BATCH && shape_is(d->output_shape, 1, 1, 1));
    CHECK(g->layer_count == 14 && d->layer_count == 13);
    /* the tutorial's parameter counts, as PyTorch's sum(p.numel()) prints them */
    CHECK(check_params(g, g_params, (int)(sizeof g_params / sizeof g_params[0])) == 3576704);
    CHECK(check_params(d, d_params, (int)(sizeof d_params / sizeof d_params[0])) == 2765568);
    gan_param *p = gan_model_find_param(g, "1.running_mean");
    CHECK(p && p->count == 512 && !p->trainable);
    p = gan_model_find_param(g, "0.weight");
    CHECK(p && p->ndim == 4 && p->dims[0] == 100 && p->dims[1] == 512 && p->dims[2] == 4 && p->dims[3] == 4);
    CHECK(gan_model_find_param(g, "0.bias") == NULL && gan_model_find_param(g, "13.weight") == NULL &&
          gan_model_find_param(g, "1.num_batches_tracked") == NULL);
    CHECK(gan_model_bn_batches_tracked(g, 1) == 0 && gan_model_bn_batches_tracked(g, 10) == 0 &&
          gan_model_bn_batches_tracked(g, 0) == -1 && gan_model_bn_batches_tracked(g, 14) == -1);
    CHECK(gan_model_bn_batches_tracked(d, 3) == 0 && gan_model_bn_batches_tracked(d, 2) == -1);

    /* the shapes along the way: 4x4, 8x8, 16x16, 32x32, 64x64 up; 32, 16, 8, 4, 1 down */
    gan_shape z = {100, 1, 1}, image = {3, 64, 64};
    CHECK(shape_is(prefix_shape(G64, 1, z), 512, 4, 4));
    CHECK(shape_is(prefix_shape(G64, 4, z), 256, 8, 8));
    CHECK(shape_is(prefix_shape(G64, 7, z), 128, 16, 16));
    CHECK(shape_is(prefix_shape(G64, 10, z), 64, 32, 32));
    CHECK(shape_is(prefix_shape(D64, 1, image), 64, 32, 32));
    CHECK(shape_is(prefix_shape(D64, 3, image), 128, 16, 16));
    CHECK(shape_is(prefix_shape(D64, 6, image), 256, 8, 8));
    CHECK(shape_is(prefix_shape(D64, 9, image), 512, 4, 4));

    /* the trainer's logits: D without its final sigmoid; G has no sigmoid to drop */
    CHECK_OK(gan_model_set_logits_output(d, true));
    CHECK(d->active_layers == 12);
    CHECK_OK(gan_model_set_logits_output(d, false));
    CHECK(d->active_layers == 13);
    CHECK_FAILS_WITH(gan_model_set_logits_output(g, true), GAN_ERR_CONFIG, "last layer must be sigmoid");
    gan_model_destroy(g);
    gan_model_destroy(d);
}

static void views(void)
{
    /* views take no module index: linear after flatten is module 0, bn after reshape module 1 */
    gan_model *m = NULL;
    CHECK_OK(gan_model_create("M", "flatten linear(3,bias) reshape(3,1,1) bn", (gan_shape){2, 2, 2}, BATCH, NULL, &m));
    if (m) {
        CHECK(m->layer_count == 2 && shape_is(m->output_shape, 3, 1, 1));
        gan_param *w = gan_model_find_param(m, "0.weight");
        CHECK(w && w->ndim == 2 && w->dims[0] == 3 && w->dims[1] == 8); /* flatten: 2*2*2 inputs */
        CHECK(gan_model_find_param(m, "0.bias") && gan_model_find_param(m, "1.running_var"));
    }
    gan_model_destroy(m);
    /* a view at the end shapes the output (mlp_mnist's G ends in reshape(1,28,28)) */
    m = NULL;
    CHECK_OK(gan_model_create("G", "linear(50) tanh reshape(2,5,5)", (gan_shape){7, 1, 1}, BATCH, NULL, &m));
    CHECK(m && shape_is(m->output_shape, 2, 5, 5));
    gan_model_destroy(m);
    /* a reshape feeding a conv: [50] -> [2, 5, 5] -> conv k3 s2 p1 -> [3, 3, 3] */
    m = NULL;
    CHECK_OK(gan_model_create("G", "linear(50) reshape(2,5,5) conv(3,3,2,1)", (gan_shape){7, 1, 1}, BATCH,
                              NULL, &m));
    CHECK(m && shape_is(m->output_shape, 3, 3, 3));
    gan_model_destroy(m);
}

static void odd_geometries(void)
{
    /* PyTorch's formulas with floor division: conv (h + 2p - k) / s + 1, convt (h - 1) s - 2p + k */
    static const struct {
        const char *layers;
        gan_shape in, out;
    } cases[] = {
        {"conv(5,3,2,0)", {2, 6, 5}, {5, 2, 2}},
        {"conv(5,4,2,1)", {2, 7, 5}, {5, 3, 2}},
        {"conv(2,1,2,1)", {2, 5, 7}, {2, 4, 5}},
        {"conv(2,5,3,2)", {1, 9, 8}, {2, 3, 3}},
        {"convt(3,4,2,1)", {2, 3, 4}, {3, 6, 8}},
        {"convt(3,3,2,0)", {2, 4, 3}, {3, 9, 7}},
        {"convt(3,3,2,1)", {2, 3, 4}, {3, 5, 7}},
        {"convt(2,1,1,0)", {3, 5, 7}, {2, 5, 7}},
        {"flatten linear(6)", {2, 3, 3}, {6, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gan_model *m = NULL;
        CHECK_OK(gan_model_create("M", cases[i].layers, cases[i].in, BATCH, NULL, &m));
        gan_shape want = cases[i].out;
        CHECK_MSG(m && shape_is(m->output_shape, want.c, want.h, want.w), "'%s' on [%d, %d, %d]: got [%d, %d, %d], want [%d, %d, %d]",
                  cases[i].layers, cases[i].in.c, cases[i].in.h, cases[i].in.w, m ? m->output_shape.c : -1,
                  m ? m->output_shape.h : -1, m ? m->output_shape.w : -1, want.c, want.h, want.w);
        gan_model_destroy(m);
    }
}

/* Which edges a model stores NHWC (model.c plan_storage), on a backend that keeps such edges:
 * the CPU backend's op table with edge_storage set (BF16 NHWC as in bf16, FP32 NHWC as in tf32) and
 * the stored ops present (planning calls none of them). DCGAN-64: every edge between G's
 * convolutions, batch norms and ReLUs but those of its first layer (a whole-input GEMM: its output,
 * and the batch norm after it reads FP32) and its 3-channel image; D's from its first convolution
 * to the last batch norm's input (the LeakyReLU before the whole-input last layer keeps both its
 * edges FP32). Nothing with no edge storage, with train.sync_bn, at a view, at a layer with no stored
 * ops (linear, dropout, a conv with a bias's output), or with channels not in groups of 16 bytes (8
 * BF16, 4 FP32). */
/* The ops planning never calls, present so that the model may use them. */
static gan_status no_bn_forward(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                const float *gamma, const float *beta, float momentum, float eps, float *rm, float *rv,
                                float *sm, float *si, gan_storage out, void *y, int act, float slope, void *y_act)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
static gan_status no_bn_eval(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x, const float *gamma,
                             const float *beta, const float *rm, const float *rv, float eps, gan_storage out, void *y)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
static gan_status no_bn_backward(gan_backend *be, int n, int c, int hw, gan_storage in, const void *x,
                                 gan_storage out, const void *y_act, const void *dy, int act, float slope,
                                 const float *gamma, const float *sm, const float *si, void *dx, float param_beta,
                                 float *dgamma, float *dbeta)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
static gan_status no_act_forward(gan_backend *be, gan_activation kind, float slope, size_t count, const void *x,
                                 void *y)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
static gan_status no_act_backward(gan_backend *be, gan_activation kind, float slope, size_t count, const void *x,
                                  const void *y, const void *dy, void *dx)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
static gan_status no_copies(gan_backend *be, int count, const gan_conv_weight_copy *copies)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
static gan_status no_allreduce(gan_backend *be, double *data, size_t count)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "planning only");
}
/* a weight copy for every convolution with a stored x or y, as the CUDA backend's */
static size_t some_copy_bytes(gan_backend *be, const gan_conv_geom *g)
{
    (void)be;
    bool stored = g->x_storage != GAN_STORAGE_F32_NCHW || g->y_storage != GAN_STORAGE_F32_NCHW;
    return stored && !gan_conv_is_whole_input(g) ? 256 : 0;
}

static int planned_storage(gan_backend *be, const char *layers, gan_shape in, bool logits, bool sync_bn,
                           char *pattern, int *weight_copies)
{
    gan_model *m = NULL;
    int stored = -1;
    CHECK_OK(gan_model_create("M", layers, in, BATCH, be, &m));
    if (!m)
        return stored;
    if (logits)
        CHECK_OK(gan_model_set_logits_output(m, true));
    if (sync_bn)
        CHECK_OK(gan_model_set_data_parallel(m, 2 * BATCH, 0, true));
    gan_pool pool;
    gan_pool_init(&pool, be);
    CHECK_OK(gan_model_plan(m, &pool));
    stored = gan_model_stored_edges(m);
    *weight_copies = m->weight_copies;
    int n = gan_model_layer_count(m);
    for (int i = 0; i < n; i++) {
        gan_layer_info info;
        CHECK_OK(gan_model_layer_info(m, i, &info));
        pattern[i] = info.storage == GAN_STORAGE_BF16_NHWC ? 'b' : info.storage == GAN_STORAGE_F32_NHWC ? 'f' : '.';
    }
    pattern[n] = '\0';
    gan_pool_release(&pool);
    gan_model_destroy(m);
    return stored;
}

static void stored_edges(void)
{
    gan_backend *cpu = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &cpu));
    if (!cpu)
        return;
    gan_backend be = *cpu;
    be.bn_stored_forward_train = no_bn_forward;
    be.bn_stored_forward_eval = no_bn_eval;
    be.bn_stored_backward = no_bn_backward;
    be.activation_bf16_forward = no_act_forward;
    be.activation_bf16_backward = no_act_backward;
    be.conv_weight_copy_bytes = some_copy_bytes;
    be.conv_weight_copies = no_copies;
    /* train.sync_bn's ops, so that a model may ask for it (planning calls none) */
    if (!be.allreduce_sum_f64)
        be.allreduce_sum_f64 = no_allreduce;
#define N GAN_STORAGE_F32_NCHW
#define B GAN_STORAGE_BF16_NHWC
#define F GAN_STORAGE_F32_NHWC
    static const struct {
        const char *layers;
        gan_shape in;
        bool logits, sync_bn;
        gan_storage storage; /* the backend's edge storage */
        const char *want; /* per layer: its output stored BF16 NHWC (b), FP32 NHWC (f), FP32 NCHW (.) */
        int weight_copies; /* the convolutions reading a weight copy: those with a stored x or y */
    } cases[] = {
        /* G: convt bn relu (x4), convt tanh */
        {"convt(512,4,1,0) bn relu convt(256,4,2,1) bn relu convt(128,4,2,1) bn relu convt(64,4,2,1) bn relu "
         "convt(3,4,2,1) tanh", {100, 1, 1}, false, false, B, ".bbbbbbbbbbb..", 4},
        /* D with logits: conv lrelu, (conv bn lrelu) x3, conv (the sigmoid not run) */
        {"conv(64,4,2,1) lrelu(0.2) conv(128,4,2,1) bn lrelu(0.2) conv(256,4,2,1) bn lrelu(0.2) conv(512,4,2,1) bn "
         "lrelu(0.2) conv(1,4,1,0) sigmoid", {3, 64, 64}, true, false, B, "bbbbbbbbb....", 4},
        {"convt(512,4,1,0) bn relu convt(256,4,2,1) bn relu", {100, 1, 1}, false, false, N, "......", 0},
        {"convt(512,4,1,0) bn relu convt(256,4,2,1) bn relu", {100, 1, 1}, false, true, B, "......", 0},
        /* a flatten between: the conv's output is read in NCHW order */
        {"conv(16,3,1,1) bn relu flatten linear(8)", {8, 4, 4}, false, false, B, "b...", 1},
        /* a conv with a bias: its output goes through bias_forward (FP32 NCHW) */
        {"conv(16,3,1,1) conv(16,3,1,1,bias) bn relu conv(16,3,1,1)", {8, 4, 4}, false, false, B, "b.bb.", 3},
        /* 12 channels: not in groups of 8 */
        {"conv(12,3,1,1) bn relu conv(16,3,1,1) bn relu conv(8,3,1,1)", {8, 4, 4}, false, false, B, "...bbb.", 2},
        /* dropout between: no stored ops, and the relu before it keeps both its edges */
        {"conv(16,3,1,1) bn relu dropout(0.5) conv(16,3,1,1)", {8, 4, 4}, false, false, B, "b....", 1},
        /* FP32 NHWC (tf32): the same edges in DCGAN-64 */
        {"convt(512,4,1,0) bn relu convt(256,4,2,1) bn relu convt(128,4,2,1) bn relu convt(64,4,2,1) bn relu "
         "convt(3,4,2,1) tanh", {100, 1, 1}, false, false, F, ".fffffffffff..", 4},
        {"conv(64,4,2,1) lrelu(0.2) conv(128,4,2,1) bn lrelu(0.2) conv(256,4,2,1) bn lrelu(0.2) conv(512,4,2,1) bn "
         "lrelu(0.2) conv(1,4,1,0) sigmoid", {3, 64, 64}, true, false, F, "fffffffff....", 4},
        /* 12 channels are whole groups of 4 FP32 values; 6 are not */
        {"conv(12,3,1,1) bn relu conv(16,3,1,1) bn relu conv(8,3,1,1)", {8, 4, 4}, false, false, F, "ffffff.", 3},
        {"conv(6,3,1,1) bn relu conv(16,3,1,1) bn relu conv(8,3,1,1)", {8, 4, 4}, false, false, F, "...fff.", 2},
        {"convt(512,4,1,0) bn relu convt(256,4,2,1) bn relu", {100, 1, 1}, false, true, F, "......", 0},
    };
#undef N
#undef B
#undef F
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        be.edge_storage = cases[i].storage;
        char got[64];
        int copies = -1;
        int stored = planned_storage(&be, cases[i].layers, cases[i].in, cases[i].logits, cases[i].sync_bn, got,
                                     &copies);
        int want_count = 0;
        for (const char *c = cases[i].want; *c; c++)
            want_count += *c != '.';
        CHECK_MSG(!strcmp(got, cases[i].want) && stored == want_count, "'%s': stored %s (%d), want %s",
                  cases[i].layers, got, stored, cases[i].want);
        CHECK_MSG(copies == cases[i].weight_copies, "'%s': %d weight copies, want %d", cases[i].layers, copies,
                  cases[i].weight_copies);
    }
    cpu->destroy(cpu);
}

int main(void)
{
    shape_refusals();
    grammar_refusals();
    dcgan64();
    views();
    odd_geometries();
    stored_edges();
    return test_finish();
}
