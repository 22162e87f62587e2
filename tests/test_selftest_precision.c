/* The selftest's tolerances for the reduced precisions, checked on the CPU before any GPU sees
 * them: a CPU backend that computes its GEMMs and convolutions the way the CUDA backend does in
 * tf32 and bf16 (operands rounded, FP32 sums; in bf16 a convolution's result stored in BF16 too)
 * must pass `gan selftest`'s op table and whole iteration (gan_selftest_ops and
 * gan_selftest_iteration, dcgan_celeba64 at batch 16: gan selftest's default) against the plain
 * CPU backend. The same backend claiming fp32 must fail on its GEMMs and convolutions, which is
 * what shows the rounding is there and the comparison can fail.
 *
 * The rounding, as the hardware does it:
 *   tf32: 10 explicit mantissa bits, round to nearest, ties away from zero (cvt.rna.tf32.f32,
 *         what cuBLAS and cuDNN apply to FP32 operands); results stay FP32;
 *   bf16: 7 explicit mantissa bits, round to nearest, ties to even (__float2bfloat16_rn, the
 *         conversion kernels' and cuBLAS's); GEMM results stay FP32 (CUBLAS_COMPUTE_32F_FAST_16BF
 *         writes FP32), a convolution's are rounded to BF16 before they are widened (the BF16
 *         copies of src/backend/cuda_conv.c), after which a backward-filter adds beta * dw.
 * The sums are the CPU backend's FP32 sums: the hardware's order differs, which the FP32 part of
 * each tolerance already covers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/config.h"
#include "gan/selftest.h"
#include "test_rounding.h"
#include "test_util.h"

static gan_backend *cpu; /* the backend the emulation computes with */
static gan_precision emulated;

static float round_operand(float x)
{
    return emulated == GAN_PRECISION_BF16 ? test_to_bf16(x) : test_to_tf32(x);
}

/* A rounded copy of src[count] (malloc'd; NULL when out of memory). */
static float *rounded_copy(const float *src, size_t count)
{
    float *copy = malloc((count ? count : 1) * sizeof *copy);
    if (copy)
        for (size_t i = 0; i < count; i++)
            copy[i] = round_operand(src[i]);
    return copy;
}

/* Elements a row-major [rows, cols] operand with leading dimension ld spans. */
static size_t span(int rows, int cols, int ld)
{
    return rows > 0 && cols > 0 ? (size_t)(rows - 1) * (size_t)ld + (size_t)cols : 0;
}

static gan_status emu_gemm(gan_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                           const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    (void)be;
    float *ra = rounded_copy(a, span(trans_a ? k : m, trans_a ? m : k, lda));
    float *rb = rounded_copy(b, span(trans_b ? n : k, trans_b ? k : n, ldb));
    gan_status status = ra && rb ? cpu->gemm(cpu, trans_a, trans_b, m, n, k, alpha, ra, lda, rb, ldb, beta, c, ldc)
                                 : gan_error(GAN_ERR_NOMEM, "out of memory");
    free(ra);
    free(rb);
    return status;
}

static size_t x_count(const gan_conv_geom *g) { return (size_t)g->n * g->c_in * g->h_in * g->w_in; }
static size_t w_count(const gan_conv_geom *g) { return (size_t)g->c_out * g->c_in * g->k_h * g->k_w; }
static size_t y_count(const gan_conv_geom *g) { return (size_t)g->n * g->c_out * g->h_out * g->w_out; }

/* bf16: a convolution's result goes through a BF16 copy. */
static void round_result(float *y, size_t count)
{
    if (emulated == GAN_PRECISION_BF16)
        for (size_t i = 0; i < count; i++)
            y[i] = test_to_bf16(y[i]);
}

/* A convolution pass with both inputs rounded, then its result as bf16 stores it:
 * run(cpu, g, a, b, out, workspace) is the CPU backend's forward or backward-data. */
typedef gan_status (*conv_pass_fn)(gan_backend *be, const gan_conv_geom *g, const float *a, const float *b,
                                   float *out, void *workspace);
static gan_status rounded_pass(conv_pass_fn run, const gan_conv_geom *g, const float *a, size_t a_count,
                               const float *b, size_t b_count, float *out, size_t out_count, void *workspace)
{
    float *ra = rounded_copy(a, a_count), *rb = rounded_copy(b, b_count);
    gan_status status = ra && rb ? run(cpu, g, ra, rb, out, workspace) : gan_error(GAN_ERR_NOMEM, "out of memory");
    if (status == GAN_OK)
        round_result(out, out_count);
    free(ra);
    free(rb);
    return status;
}

static gan_status emu_conv_forward(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                   float *y, void *workspace)
{
    (void)be;
    return rounded_pass(cpu->conv_forward, g, x, x_count(g), w, w_count(g), y, y_count(g), workspace);
}

static gan_status emu_conv_backward_data(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                         const float *w, float *dx, void *workspace)
{
    (void)be;
    return rounded_pass(cpu->conv_backward_data, g, dy, y_count(g), w, w_count(g), dx, x_count(g), workspace);
}

static gan_status emu_conv_backward_filter(gan_backend *be, const gan_conv_geom *g, const float *x,
                                           const float *dy, float beta, float *dw, void *workspace)
{
    (void)be;
    size_t count = w_count(g);
    float *rx = rounded_copy(x, x_count(g)), *rdy = rounded_copy(dy, y_count(g));
    float *fresh = malloc((count ? count : 1) * sizeof *fresh);
    gan_status status = rx && rdy && fresh ? cpu->conv_backward_filter(cpu, g, rx, rdy, 0.0f, fresh, workspace)
                                           : gan_error(GAN_ERR_NOMEM, "out of memory");
    if (status == GAN_OK) {
        round_result(fresh, count);
        for (size_t i = 0; i < count; i++)
            dw[i] = beta == 0.0f ? fresh[i] : beta * dw[i] + fresh[i];
    }
    free(rx);
    free(rdy);
    free(fresh);
    return status;
}

/* The fused ops: the rounded pass, then the activation on its (bf16: rounded) result. */
static gan_status emu_conv_forward_act(gan_backend *be, const gan_conv_geom *g, const float *x, const float *w,
                                       gan_activation act, float slope, float *y, void *workspace)
{
    GAN_TRY(emu_conv_forward(be, g, x, w, y, workspace));
    return cpu->activation_forward(cpu, act, slope, y_count(g), y, y);
}

static gan_status emu_conv_backward_data_act(gan_backend *be, const gan_conv_geom *g, const float *dy,
                                             const float *w, gan_activation act, float slope, float *dx,
                                             void *workspace)
{
    GAN_TRY(emu_conv_backward_data(be, g, dy, w, dx, workspace));
    return cpu->activation_forward(cpu, act, slope, x_count(g), dx, dx);
}

/* The CPU backend computing as the CUDA backend does in `precision`, and saying it is `claimed`. */
static gan_backend emulating(gan_precision precision, gan_precision claimed)
{
    emulated = precision;
    gan_backend be = *cpu;
    be.name = "cpu-emulating-cuda";
    be.options.precision = claimed;
    be.gemm = emu_gemm;
    be.conv_forward = emu_conv_forward;
    be.conv_backward_data = emu_conv_backward_data;
    be.conv_backward_filter = emu_conv_backward_filter;
    be.conv_bias_act_forward = NULL; /* as on CUDA: its callers run the ops apart */
    /* the CPU's own would compute in fp32, past the rounding */
    be.conv_forward_act = emu_conv_forward_act;
    be.conv_backward_data_act = emu_conv_backward_data_act;
    return be;
}

/* The report of gan_selftest_ops (into *text, which the caller frees); whether all were ok. */
static bool ops_report(gan_backend *reference, gan_backend *test, char **text)
{
    size_t bytes = 0;
    FILE *report = open_memstream(text, &bytes);
    bool ok = false;
    CHECK_OK(gan_selftest_ops(reference, test, report, &ok));
    fclose(report);
    return ok;
}

static bool iteration_report(gan_backend *reference, gan_backend *test, char **text)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/dcgan_celeba64.ini", test_source_dir());
    CHECK_OK(gan_config_load(&cfg, path));
    CHECK_OK(gan_config_override(&cfg, "train.batch_size=16"));
    size_t bytes = 0;
    FILE *report = open_memstream(text, &bytes);
    bool ok = false;
    CHECK_OK(gan_selftest_iteration(reference, test, &cfg, report, &ok));
    fclose(report);
    return ok;
}

/* Whether some line of `text` that names `op` says `word`. */
static bool some_line(const char *text, const char *op, const char *word)
{
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, op) && strstr(buf, word))
            return true;
        line = end ? end + 1 : NULL;
    }
    return false;
}

static void check_precision(gan_backend *reference, gan_precision precision)
{
    const char *name = gan_precision_name(precision);
    char *text = NULL;

    /* Rounded as that precision and judged by its tolerances: every op and the iteration pass. */
    gan_backend emu = emulating(precision, precision);
    bool ok = ops_report(reference, &emu, &text);
    CHECK_MSG(ok, "%s-rounded ops out of the %s tolerances:\n%s", name, name, text);
    CHECK_MSG(some_line(text, "gemm NN", " ok") && some_line(text, "conv_backward_filter", " ok"),
              "%s: GEMM and convolution lines missing:\n%s", name, text);
    free(text);
    text = NULL;
    ok = iteration_report(reference, &emu, &text);
    CHECK_MSG(ok, "a %s-rounded iteration out of the %s bounds:\n%s", name, name, text);
    free(text);
    text = NULL;

    /* The same rounding judged as fp32: the GEMMs and convolutions fail (the rounding is there,
     * and the comparison sees it), the ops without GEMM or convolution still pass. */
    emu = emulating(precision, GAN_PRECISION_FP32);
    ok = ops_report(reference, &emu, &text);
    CHECK_MSG(!ok, "%s-rounded ops passed the fp32 tolerances:\n%s", name, text);
    CHECK_MSG(some_line(text, "gemm NN", "FAIL") && some_line(text, "conv_forward", "FAIL"),
              "%s rounding not caught on GEMM and convolution:\n%s", name, text);
    CHECK(some_line(text, "bn_backward", " ok") && some_line(text, "adam_step", " ok"));
    free(text);
}

int main(void)
{
    gan_backend *reference = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &cpu));
    CHECK_OK(gan_cpu_backend_create(NULL, &reference));
    if (!cpu || !reference)
        return test_finish();
    /* the rounding itself, on values whose answers are known */
    CHECK(test_round_mantissa(1.0f + 0x1p-8f, 7, true) == 1.0f);                  /* tie, even stays */
    CHECK(test_round_mantissa(1.0f + 3 * 0x1p-8f, 7, true) == 1.0f + 0x1p-6f);    /* tie, odd goes up */
    CHECK(test_round_mantissa(1.0f + 0x1p-11f, 10, false) == 1.0f + 0x1p-10f);    /* tie, away from zero */
    CHECK(test_round_mantissa(-(1.0f + 0x1p-11f), 10, false) == -(1.0f + 0x1p-10f));
    CHECK(test_round_mantissa(0x1.ffffp0f, 7, true) == 2.0f);                      /* carries into the exponent */
    CHECK(test_round_mantissa(1.0f + 0x1p-7f, 7, true) == 1.0f + 0x1p-7f);        /* representable: kept */
    check_precision(reference, GAN_PRECISION_TF32);
    check_precision(reference, GAN_PRECISION_BF16);
    reference->destroy(reference);
    cpu->destroy(cpu);
    return test_finish();
}
