/* On a machine with a CUDA device: every op of the CUDA backend against the CPU backend on random
 * inputs (gan_selftest_ops, tolerances stated in src/selftest/ops.c), in fp32 + deterministic (the
 * parity mode) and in tf32 + not deterministic (the fast mode), plus what the deterministic mode
 * promises beyond tolerances: reductions and convolution gradients repeat bit for bit, and conv_grads
 * gives the bits of the two ops it stands for (fp32 and bf16), and a batch norm on each of the two
 * streams gives the bits of one stream's. Without a usable device it reports
 * skipped (exit 77) and says why. */
#include <stdlib.h>
#include <string.h>

#include "gan/backend_select.h"
#include "gan/cuda_backend.h"
#include "gan/selftest.h"
#include "test_util.h"

static gan_backend *cpu, *cuda;

static float *device_random_on(gan_backend *be, size_t count, unsigned seed)
{
    float *host = malloc(count * sizeof *host), *dev = NULL;
    test_fill_uniform(host, count, seed, -1.0f, 1.0f);
    CHECK_OK(be->alloc(be, count * sizeof(float), (void **)&dev));
    if (dev)
        CHECK_OK(be->upload(be, dev, host, count * sizeof(float)));
    free(host);
    return dev;
}
static float *device_random(size_t count, unsigned seed) { return device_random_on(cuda, count, seed); }

static bool same_bits_on(gan_backend *be, const float *dev_a, const float *dev_b, size_t count)
{
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b);
    CHECK_OK(be->download(be, a, dev_a, count * sizeof(float)));
    CHECK_OK(be->download(be, b, dev_b, count * sizeof(float)));
    bool same = memcmp(a, b, count * sizeof(float)) == 0;
    free(a);
    free(b);
    return same;
}
static bool same_bits(const float *dev_a, const float *dev_b, size_t count)
{
    return same_bits_on(cuda, dev_a, dev_b, count);
}

/* The convolution the bit-for-bit checks run: a k4 s2 p1 layer, 32 -> 64 channels, 16x16 -> 8x8, at
 * batch 16; its element counts. */
static const gan_conv_geom LAYER = {.n = 16, .c_in = 32, .h_in = 16, .w_in = 16, .c_out = 64, .h_out = 8,
                                    .w_out = 8, .k_h = 4, .k_w = 4, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                                    .pad_w = 1};
enum { LAYER_X = 16 * 32 * 16 * 16, LAYER_Y = 16 * 64 * 8 * 8, LAYER_W = 64 * 32 * 4 * 4 };

/* A CUDA backend in `precision`, deterministic; NULL (and a failed check) where it cannot open. */
static gan_backend *deterministic_backend(gan_precision precision)
{
    gan_backend_options options = gan_backend_options_default();
    options.precision = precision;
    options.deterministic = true;
    gan_backend *be = NULL;
    CHECK_OK(gan_cuda_backend_create(&options, &be));
    return be;
}

/* conv_grads gives the bits of the two ops it stands for, deterministic, in `precision` (fp32:
 * NCHW, the two ops; bf16: NHWC, the input in common copied once): a Conv2d's backward
 * (accumulating into dw) and a ConvTranspose2d's. */
static void test_conv_grads_bits(gan_precision precision)
{
    gan_backend *be = deterministic_backend(precision);
    if (!be)
        return;
    const gan_conv_geom g = LAYER;
    const size_t x_count = LAYER_X, y_count = LAYER_Y, w_count = LAYER_W;
    size_t ws_bytes = be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL);
    void *ws = NULL;
    CHECK_OK(be->alloc(be, ws_bytes ? ws_bytes : 4, &ws));
    float *x = device_random_on(be, x_count, 31), *w = device_random_on(be, w_count, 32);
    float *dy = device_random_on(be, y_count, 33);
    float *dw1 = device_random_on(be, w_count, 34), *dw2 = device_random_on(be, w_count, 34);
    float *dx1 = device_random_on(be, x_count, 35), *dx2 = device_random_on(be, x_count, 36);
    float *y1 = device_random_on(be, y_count, 37), *y2 = device_random_on(be, y_count, 38);
    const char *name = gan_precision_name(precision);
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 1.0f, dw1, ws));
    CHECK_OK(be->conv_backward_data(be, &g, dy, w, dx1, ws));
    CHECK_OK(be->conv_grads(be, &g, x, dy, 1.0f, dw2, GAN_CONV_BACKWARD_DATA, w, dx2, NULL, ws));
    CHECK_MSG(same_bits_on(be, dw1, dw2, w_count) && same_bits_on(be, dx1, dx2, x_count),
              "%s: conv_grads (backward-data) is not the two ops bit for bit", name);
    CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 0.0f, dw1, ws));
    CHECK_OK(be->conv_forward(be, &g, x, w, y1, ws));
    CHECK_OK(be->conv_grads(be, &g, x, dy, 0.0f, dw2, GAN_CONV_FORWARD, w, y2, NULL, ws));
    CHECK_MSG(same_bits_on(be, dw1, dw2, w_count) && same_bits_on(be, y1, y2, y_count),
              "%s: conv_grads (forward) is not the two ops bit for bit", name);

    /* A layer's forward keeping its input's copy (conv_keep_pass) and its backward reading it
     * (conv_grads' kept): the bits of the plain ops. fp32 runs on the buffers: nothing to keep. */
    size_t keep_x = be->conv_keep_bytes(be, &g, GAN_CONV_FORWARD);
    size_t keep_dy = be->conv_keep_bytes(be, &g, GAN_CONV_BACKWARD_DATA);
    void *keep = NULL;
    CHECK_OK(be->alloc(be, (keep_x > keep_dy ? keep_x : keep_dy) + 4, &keep));
    if (precision == GAN_PRECISION_FP32) {
        CHECK_MSG(!keep_x && !keep_dy, "fp32 keeps copies of %zu and %zu bytes", keep_x, keep_dy);
        CHECK_FAILS_WITH(be->conv_keep_pass(be, &g, GAN_CONV_FORWARD, x, w, GAN_CONV_NO_ACT, 0.0f, y2, keep, ws),
                         GAN_ERR_ARG, "this geometry keeps no copy");
        CHECK_FAILS_WITH(be->conv_grads(be, &g, x, dy, 0.0f, dw2, GAN_CONV_FORWARD, w, y2, keep, ws), GAN_ERR_ARG,
                         "a kept copy was given where this geometry keeps none");
    }
    if (keep_x) { /* a Conv2d: x kept */
        CHECK_OK(be->conv_forward(be, &g, x, w, y1, ws));
        CHECK_OK(be->conv_keep_pass(be, &g, GAN_CONV_FORWARD, x, w, GAN_CONV_NO_ACT, 0.0f, y2, keep, ws));
        CHECK_MSG(same_bits_on(be, y1, y2, y_count), "%s: conv_keep_pass (forward) is not the forward", name);
        CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 1.0f, dw1, ws));
        CHECK_OK(be->conv_backward_data(be, &g, dy, w, dx1, ws));
        CHECK_OK(be->conv_grads(be, &g, x, dy, 1.0f, dw2, GAN_CONV_BACKWARD_DATA, w, dx2, keep, ws));
        CHECK_MSG(same_bits_on(be, dw1, dw2, w_count) && same_bits_on(be, dx1, dx2, x_count),
                  "%s: conv_grads (backward-data) on the kept x is not the two ops bit for bit", name);
        /* no dx wanted (a model's first layer): the backward-filter alone, on the kept x */
        CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 1.0f, dw1, ws));
        CHECK_OK(be->conv_grads(be, &g, x, dy, 1.0f, dw2, GAN_CONV_BACKWARD_DATA, NULL, NULL, keep, ws));
        CHECK_MSG(same_bits_on(be, dw1, dw2, w_count),
                  "%s: conv_grads without dx on the kept x is not the backward-filter bit for bit", name);
    }
    if (keep_dy) { /* a ConvTranspose2d: its convolution's dy kept */
        CHECK_OK(be->conv_backward_data(be, &g, dy, w, dx1, ws));
        CHECK_OK(be->conv_keep_pass(be, &g, GAN_CONV_BACKWARD_DATA, dy, w, GAN_CONV_NO_ACT, 0.0f, dx2, keep, ws));
        CHECK_MSG(same_bits_on(be, dx1, dx2, x_count), "%s: conv_keep_pass (backward-data) is not the pass", name);
        CHECK_OK(be->conv_backward_filter(be, &g, x, dy, 0.0f, dw1, ws));
        CHECK_OK(be->conv_forward(be, &g, x, w, y1, ws));
        CHECK_OK(be->conv_grads(be, &g, x, dy, 0.0f, dw2, GAN_CONV_FORWARD, w, y2, keep, ws));
        CHECK_MSG(same_bits_on(be, dw1, dw2, w_count) && same_bits_on(be, y1, y2, y_count),
                  "%s: conv_grads (forward) on the kept dy is not the two ops bit for bit", name);
    }
    if (precision != GAN_PRECISION_FP32)
        printf("%s: kept copies x %zu bytes, dy %zu bytes (0: the backward-filter is not cuDNN in NHWC)\n", name,
               keep_x, keep_dy);
    be->free(be, keep);
    float *all[] = {x, w, dy, dw1, dw2, dx1, dx2, y1, y2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        be->free(be, all[i]);
    be->free(be, ws);
    be->destroy(be);
}

/* A model's first Conv2d on the uint8 batch (3 -> 16 channels, 16x16 -> 8x8, k4 s2 p1, batch 4), in
 * `precision`: conv_keep_images makes the bytes of the copy conv_keep_pass makes of images_to_float's
 * output, and the forward on it (conv_keep_pass with no input; D's LeakyReLU) and the backward-filter
 * on it (given other values as x, which it must not read) give the bits of those on images_to_float's
 * output. Where the geometry keeps no
 * copy, conv_keep_images is refused. */
static void keep_images_in(gan_precision precision)
{
    gan_backend *be = deterministic_backend(precision);
    if (!be)
        return;
    const char *name = gan_precision_name(precision);
    const gan_conv_geom g = {.n = 4, .c_in = 3, .h_in = 16, .w_in = 16, .c_out = 16, .h_out = 8, .w_out = 8,
                             .k_h = 4, .k_w = 4, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    const size_t pixel_count = 4 * 16 * 16 * 3, y_count = 4 * 16 * 8 * 8, w_count = 16 * 3 * 4 * 4;
    uint8_t host[4 * 16 * 16 * 3];
    for (size_t i = 0; i < pixel_count; i++)
        host[i] = (uint8_t)((i * 37u + 11u) % 256u);
    void *pixels = NULL, *ws = NULL, *keep1 = NULL, *keep2 = NULL;
    CHECK_OK(be->alloc(be, pixel_count, &pixels));
    CHECK_OK(be->upload(be, pixels, host, pixel_count));
    size_t ws_bytes = be->conv_workspace_bytes(be, &g, GAN_CONV_PASSES_ALL);
    CHECK_OK(be->alloc(be, ws_bytes ? ws_bytes : 4, &ws));
    float *x = device_random_on(be, pixel_count, 51), *junk = device_random_on(be, pixel_count, 52);
    float *w = device_random_on(be, w_count, 53), *dy = device_random_on(be, y_count, 54);
    float *y1 = device_random_on(be, y_count, 55), *y2 = device_random_on(be, y_count, 56);
    float *dw1 = device_random_on(be, w_count, 57), *dw2 = device_random_on(be, w_count, 58);
    CHECK_OK(be->images_to_float(be, 4, 16, 16, 3, pixels, x));
    size_t keep_bytes = be->conv_keep_bytes(be, &g, GAN_CONV_FORWARD);
    CHECK_MSG(be->conv_keep_images != NULL, "%s: the CUDA backend has no conv_keep_images", name);
    if (!keep_bytes && be->conv_keep_images) {
        void *any = NULL;
        CHECK_OK(be->alloc(be, pixel_count * sizeof(float), &any));
        CHECK_FAILS_WITH(be->conv_keep_images(be, &g, pixels, any), GAN_ERR_ARG, "keeps no copy");
        be->free(be, any);
    }
    if (keep_bytes && be->conv_keep_images) {
        CHECK_OK(be->alloc(be, keep_bytes, &keep1));
        CHECK_OK(be->alloc(be, keep_bytes, &keep2));
        /* the same bytes everywhere first: the copies leave the alignment's tail alone */
        CHECK_OK(be->fill(be, keep1, 0.0f, keep_bytes / sizeof(float)));
        CHECK_OK(be->fill(be, keep2, 0.0f, keep_bytes / sizeof(float)));
        CHECK_OK(be->conv_keep_pass(be, &g, GAN_CONV_FORWARD, x, w, GAN_ACT_LRELU, 0.2f, y1, keep1, ws));
        CHECK_OK(be->conv_keep_images(be, &g, pixels, keep2));
        CHECK_MSG(same_bits_on(be, keep1, keep2, keep_bytes / sizeof(float)),
                  "%s: conv_keep_images is not the copy conv_keep_pass keeps of images_to_float's output", name);
        CHECK_OK(be->fill(be, keep2, 0.0f, keep_bytes / sizeof(float)));
        CHECK_OK(be->conv_keep_images(be, &g, pixels, keep2));
        CHECK_OK(be->conv_keep_pass(be, &g, GAN_CONV_FORWARD, NULL, w, GAN_ACT_LRELU, 0.2f, y2, keep2, ws));
        CHECK_MSG(same_bits_on(be, y1, y2, y_count), "%s: the forward on the images' copy is not the forward", name);
        CHECK_OK(be->conv_grads(be, &g, x, dy, 0.0f, dw1, GAN_CONV_BACKWARD_DATA, NULL, NULL, keep1, ws));
        CHECK_OK(be->conv_grads(be, &g, junk, dy, 0.0f, dw2, GAN_CONV_BACKWARD_DATA, NULL, NULL, keep2, ws));
        CHECK_MSG(same_bits_on(be, dw1, dw2, w_count),
                  "%s: the backward-filter on the images' copy is not the one on images_to_float's", name);
    }
    printf("%s: images kept %zu bytes (0: the first layer's forward is not cuDNN in NHWC)\n", name, keep_bytes);
    be->free(be, keep1);
    be->free(be, keep2);
    be->free(be, pixels);
    be->free(be, ws);
    float *all[] = {x, junk, w, dy, y1, y2, dw1, dw2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        be->free(be, all[i]);
    be->destroy(be);
}

/* ... with cuDNN in NHWC on every pass of the layer where the precision has it (GAN_CUDA_NHWC=always,
 * GAN_CUDA_IM2COL=never: the timing may choose NCHW or a form of ours, which keep nothing), the
 * environment put back after. */
static void test_keep_images(gan_precision precision)
{
    static const char *const names[2] = {"GAN_CUDA_NHWC", "GAN_CUDA_IM2COL"};
    static const char *const forced[2] = {"always", "never"};
    char *saved[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        const char *now = getenv(names[i]);
        saved[i] = now ? strdup(now) : NULL;
        setenv(names[i], forced[i], 1);
    }
    keep_images_in(precision);
    for (int i = 0; i < 2; i++) {
        if (saved[i])
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
}

/* Deterministic fp32: deterministic algorithms, so two runs of a gradient give the same bits. */
static void test_determinism(void)
{
    CHECK(cuda->options.precision == GAN_PRECISION_FP32 && cuda->options.deterministic);
    const gan_conv_geom g = LAYER;
    const size_t x_count = LAYER_X, y_count = LAYER_Y, w_count = LAYER_W;
    size_t ws_bytes = cuda->conv_workspace_bytes(cuda, &g, GAN_CONV_PASSES_ALL);
    void *ws = NULL;
    CHECK_OK(cuda->alloc(cuda, ws_bytes ? ws_bytes : 4, &ws));
    float *x = device_random(x_count, 1), *w = device_random(w_count, 2), *dy = device_random(y_count, 3);
    float *dw1 = device_random(w_count, 4), *dw2 = device_random(w_count, 5);
    float *dx1 = device_random(x_count, 6), *dx2 = device_random(x_count, 7);
    float *db1 = device_random(64, 8), *db2 = device_random(64, 9), *loss = device_random(2, 10);
    CHECK_OK(cuda->conv_backward_filter(cuda, &g, x, dy, 0.0f, dw1, ws));
    CHECK_OK(cuda->conv_backward_filter(cuda, &g, x, dy, 0.0f, dw2, ws));
    CHECK_MSG(same_bits(dw1, dw2, w_count), "conv backward-filter is not deterministic in parity mode");
    CHECK_OK(cuda->conv_backward_data(cuda, &g, dy, w, dx1, ws));
    CHECK_OK(cuda->conv_backward_data(cuda, &g, dy, w, dx2, ws));
    CHECK_MSG(same_bits(dx1, dx2, x_count), "conv backward-data is not deterministic in parity mode");
    CHECK_OK(cuda->bias_backward(cuda, 16, 64, 64, dy, 0.0f, db1));
    CHECK_OK(cuda->bias_backward(cuda, 16, 64, 64, dy, 0.0f, db2));
    CHECK_MSG(same_bits(db1, db2, 64), "bias backward is not deterministic");
    CHECK_OK(cuda->bce_logits(cuda, 1000, x, 1.0f, 1.0f, loss, NULL, NULL));
    CHECK_OK(cuda->bce_logits(cuda, 1000, x, 1.0f, 1.0f, loss + 1, NULL, NULL));
    CHECK_MSG(same_bits(loss, loss + 1, 1), "the BCE reduction is not deterministic");
    float *all[] = {x, w, dy, dw1, dw2, dx1, dx2, db1, db2, loss};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cuda->free(cuda, all[i]);
    cuda->free(cuda, ws);
}

/* The batch norm fused with LeakyReLU at G's [64, 64, 32, 32] (16 chunks per channel): every
 * output of a second run has the same bits, forward and backward. */
static void test_bn_determinism(void)
{
    enum { N = 64, C = 64, HW = 1024 };
    const size_t count = (size_t)N * C * HW;
    float *x = device_random(count, 11), *dy = device_random(count, 12), *gamma = device_random(C, 13);
    float *beta = device_random(C, 14), *rm = device_random(C, 15), *rv = device_random(C, 16);
    float *out[2][7]; /* y, y_act, save_mean, save_invstd, dx, dgamma, dbeta */
    const size_t counts[7] = {count, count, C, C, count, C, C};
    for (int run = 0; run < 2; run++) {
        for (int i = 0; i < 7; i++)
            out[run][i] = device_random(counts[i], 20 + 7 * run + i);
        CHECK_OK(cuda->fill(cuda, rv, 1.0f, C)); /* the same running statistics before each run */
        CHECK_OK(cuda->fill(cuda, rm, 0.0f, C));
        CHECK_OK(cuda->bn_act_forward_train(cuda, N, C, HW, x, gamma, beta, 0.1f, 1e-5f, rm, rv, out[run][2],
                                            out[run][3], out[run][0], GAN_ACT_LRELU, 0.2f, out[run][1]));
        CHECK_OK(cuda->bn_act_backward(cuda, N, C, HW, x, out[run][1], dy, GAN_ACT_LRELU, 0.2f, gamma, out[run][2],
                                       out[run][3], out[run][4], 0.0f, out[run][5], out[run][6]));
    }
    static const char *names[7] = {"y", "y_act", "save_mean", "save_invstd", "dx", "dgamma", "dbeta"};
    for (int i = 0; i < 7; i++)
        CHECK_MSG(same_bits(out[0][i], out[1][i], counts[i]), "batch norm + lrelu [64, 64, 1024]: %s differs "
                  "between two runs", names[i]);
    float *all[] = {x, dy, gamma, beta, rm, rv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cuda->free(cuda, all[i]);
    for (int run = 0; run < 2; run++)
        for (int i = 0; i < 7; i++)
            cuda->free(cuda, out[run][i]);
}

/* The side stream (gan/backend.h side_fork): a chunked batch norm, forward and backward, on each
 * stream at once, captured and replayed, gives the bits of the two run one after the other on the
 * first stream, so the streams share no scratch. On a GPU the two run at once; the emulated
 * device runs them interleaved, launch by launch (GAN_EMU_SIDE_ORDER, set here for it), so that a
 * scratch both streams used would hand one batch norm the other's partial sums. */
static void test_side_stream(void)
{
    if (!cuda->side_fork) {
        const char *side = getenv("GAN_CUDA_SIDE_STREAM");
        CHECK_MSG(side && !strcmp(side, "never"), "the CUDA backend has no side stream");
        return;
    }
    setenv("GAN_EMU_SIDE_ORDER", "interleave", 1);
    enum { N = 8, C = 8, HW = 1024 }; /* 8192 values per channel: two chunks, 3 + 2 launches */
    const size_t count = (size_t)N * C * HW;
    const size_t counts[7] = {count, count, C, C, count, C, C};
    float *x[2], *dy[2], *gamma = device_random(C, 41), *beta = device_random(C, 42);
    float *out[2][2][8]; /* [one stream, two][job][y, y_act, save_mean, save_invstd, dx, dgamma, dbeta, rm] */
    float *rv[2][2];
    for (int job = 0; job < 2; job++) {
        x[job] = device_random(count, 43 + (unsigned)job);
        dy[job] = device_random(count, 45 + (unsigned)job);
    }
    for (int mode = 0; mode < 2; mode++)
        for (int job = 0; job < 2; job++) {
            for (int i = 0; i < 7; i++)
                out[mode][job][i] = device_random(counts[i], 50 + (unsigned)(16 * mode + 8 * job + i));
            out[mode][job][7] = device_random(C, 90);
            rv[mode][job] = device_random(C, 91);
            CHECK_OK(cuda->fill(cuda, out[mode][job][7], 0.0f, C));
            CHECK_OK(cuda->fill(cuda, rv[mode][job], 1.0f, C));
        }
    gan_graph *graph = NULL;
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1)
            CHECK_OK(cuda->capture_begin(cuda));
        for (int step = 0; step < 2; step++) {
            int job = mode == 1 ? 1 - step : step; /* two streams: job 1 forked first, job 0 beside it */
            if (mode == 1 && job == 1)
                CHECK_OK(cuda->side_fork(cuda));
            float **o = out[mode][job];
            CHECK_OK(cuda->bn_act_forward_train(cuda, N, C, HW, x[job], gamma, beta, 0.1f, 1e-5f, o[7], rv[mode][job],
                                                o[2], o[3], o[0], GAN_ACT_LRELU, 0.2f, o[1]));
            CHECK_OK(cuda->bn_act_backward(cuda, N, C, HW, x[job], o[1], dy[job], GAN_ACT_LRELU, 0.2f, gamma, o[2],
                                           o[3], o[4], 0.0f, o[5], o[6]));
            if (mode == 1 && job == 1)
                CHECK_OK(cuda->side_return(cuda));
        }
        if (mode == 1) {
            CHECK_OK(cuda->side_join(cuda));
            CHECK_OK(cuda->capture_end(cuda, &graph));
            if (graph)
                CHECK_OK(cuda->graph_launch(cuda, graph));
        }
    }
    CHECK_OK(cuda->synchronize(cuda));
    static const char *names[8] = {"y", "y_act", "save_mean", "save_invstd", "dx", "dgamma", "dbeta", "running_mean"};
    for (int job = 0; job < 2; job++)
        for (int i = 0; i < 8; i++)
            CHECK_MSG(same_bits(out[0][job][i], out[1][job][i], i < 7 ? counts[i] : C),
                      "batch norm %d of two, one on each stream: %s differs from one stream's", job, names[i]);
    if (graph)
        cuda->graph_destroy(cuda, graph);
    unsetenv("GAN_EMU_SIDE_ORDER");
    for (int job = 0; job < 2; job++) {
        cuda->free(cuda, x[job]);
        cuda->free(cuda, dy[job]);
    }
    cuda->free(cuda, gamma);
    cuda->free(cuda, beta);
    for (int mode = 0; mode < 2; mode++)
        for (int job = 0; job < 2; job++) {
            for (int i = 0; i < 8; i++)
                cuda->free(cuda, out[mode][job][i]);
            cuda->free(cuda, rv[mode][job]);
        }
}

int main(void)
{
    gan_status status = gan_cuda_backend_create(NULL, &cuda);
    if (status == GAN_ERR_UNSUPPORTED) {
        printf("skipped: %s\n", gan_error_message());
        return TEST_SKIP_EXIT_CODE;
    }
    CHECK_OK(status);
    if (status != GAN_OK)
        return test_finish();
    CHECK_OK(gan_cpu_backend_create(NULL, &cpu));
    if (!cpu)
        return test_finish();

    /* --device auto takes the GPU when there is one, and says nothing. */
    gan_backend *chosen = NULL;
    char why[256];
    CHECK_OK(gan_backend_open("auto", NULL, &chosen, why, sizeof why));
    CHECK(chosen && chosen->kind == GAN_BACKEND_CUDA && why[0] == '\0');
    if (chosen)
        chosen->destroy(chosen);

    bool ok = false;
    CHECK_OK(gan_selftest_ops(cpu, cuda, stdout, &ok));
    CHECK_MSG(ok, "CUDA ops out of tolerance in parity mode (see the table above)");

    gan_backend_options fast_options = gan_backend_options_default();
    fast_options.precision = GAN_PRECISION_TF32;
    fast_options.deterministic = false;
    gan_backend *fast = NULL;
    CHECK_OK(gan_cuda_backend_create(&fast_options, &fast));
    if (fast) {
        CHECK(fast->options.precision == GAN_PRECISION_TF32 && !fast->options.deterministic);
        ok = false;
        CHECK_OK(gan_selftest_ops(cpu, fast, stdout, &ok));
        CHECK_MSG(ok, "CUDA ops out of tolerance in tf32 (see the table above)");
        fast->destroy(fast);
    }

    test_determinism();
    test_bn_determinism();
    test_side_stream();
    test_conv_grads_bits(GAN_PRECISION_FP32);
    test_conv_grads_bits(GAN_PRECISION_BF16);
    test_keep_images(GAN_PRECISION_FP32);
    test_keep_images(GAN_PRECISION_TF32);
    test_keep_images(GAN_PRECISION_BF16);
    cuda->destroy(cuda);
    cpu->destroy(cpu);
    return test_finish();
}
