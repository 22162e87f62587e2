/* The selftest harness itself, without a GPU: the CPU backend against itself must be within
 * every tolerance, and a backend with one op slightly wrong must be caught on that op (and only
 * there). Also --device selection on this machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend_select.h"
#include "gan/cuda_backend.h"
#include "gan/selftest.h"
#include "test_util.h"

static gan_backend *real_cpu;

/* sigmoid that is off by 1e-4: well beyond the 1e-6 relative tolerance of sigmoid. */
static gan_status skewed_activation_forward(gan_backend *be, gan_activation kind, float slope,
                                            size_t count, const float *x, float *y)
{
    GAN_TRY(real_cpu->activation_forward(real_cpu, kind, slope, count, x, y));
    if (kind == GAN_ACT_SIGMOID)
        for (size_t i = 0; i < count; i++)
            y[i] += 1e-4f;
    return GAN_OK;
}

/* the fused batch norm's backward with dgamma off by 0.01, on 8-channel shapes only */
static gan_status skewed_bn_act_backward(gan_backend *be, int n, int c, int hw, const float *x, const float *y_act,
                                         const float *dy_act, gan_activation act, float slope, const float *gamma,
                                         const float *save_mean, const float *save_invstd, float *dx,
                                         float param_beta, float *dgamma, float *dbeta)
{
    GAN_TRY(real_cpu->bn_act_backward(real_cpu, n, c, hw, x, y_act, dy_act, act, slope, gamma, save_mean,
                                      save_invstd, dx, param_beta, dgamma, dbeta));
    if (c == 8)
        for (int i = 0; i < c; i++)
            dgamma[i] += 0.01f;
    return GAN_OK;
}

static gan_status failing_multiply(gan_backend *be, size_t count, const float *a, const float *b,
                                   float *y)
{
    return gan_error(GAN_ERR_BACKEND, "multiply broke on purpose");
}

/* Whether the report line of `op` contains `word`. */
static bool line_has(const char *text, const char *op, const char *word)
{
    const char *line = strstr(text, op);
    if (!line)
        return false;
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
    return strstr(buf, word) != NULL;
}

/* The rel_l2 figure on the report line of `op`, or -1 when there is none. */
static double line_rel_l2(const char *text, const char *op)
{
    const char *line = strstr(text, op);
    const char *end = line ? strchr(line, '\n') : NULL;
    const char *at = line ? strstr(line, "rel_l2 ") : NULL;
    if (!at || (end && at > end))
        return -1.0;
    return strtod(at + 7, NULL);
}

/* conv_grads that forgets to accumulate into dw (beta taken as 0) */
static gan_status skewed_conv_grads(gan_backend *be, const gan_conv_geom *g, const float *x, const float *dy,
                                    float beta, float *dw, gan_conv_pass other, const float *w, float *out,
                                    const void *kept, void *workspace)
{
    (void)beta;
    return real_cpu->conv_grads(be, g, x, dy, 0.0f, dw, other, w, out, kept, workspace);
}

static void test_selftest(void)
{
    gan_backend *reference = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &real_cpu));
    CHECK_OK(gan_cpu_backend_create(NULL, &reference));
    if (!real_cpu || !reference)
        return;

    char *text = NULL;
    size_t text_bytes = 0;
    FILE *report = open_memstream(&text, &text_bytes);
    bool ok = false;
    CHECK_OK(gan_selftest_ops(reference, real_cpu, report, &ok));
    fclose(report);
    CHECK_MSG(ok, "the CPU backend against itself is out of tolerance:\n%s", text);
    CHECK(strstr(text, "conv_backward_filter") && strstr(text, "bn_backward") &&
          strstr(text, "adam_step") && strstr(text, "ema_update") && strstr(text, "rng_normal") && strstr(text, "images_to_float"));
    CHECK(!strstr(text, "FAIL"));
    /* the optional fused convolutions, which the CPU backend has */
    CHECK_MSG(line_has(text, "conv_forward_act lrelu(0.2)", " ok") && line_has(text, "conv_backward_data_act tanh", " ok"),
              "the fused convolutions were not compared:\n%s", text);
    /* the fused batch norms, and the shape of several chunks per channel on CUDA */
    CHECK_MSG(line_has(text, "bn_act_forward_train lrelu(0.2) [16,8,1024] y_act", " ok") &&
                  line_has(text, "bn_act_backward lrelu(0.2) [8,16,64] dx", " ok") &&
                  line_has(text, "bn_backward b1 [16,8,1024] dgamma", " ok"),
              "the fused batch norms or the chunked shape were not compared:\n%s", text);
    /* both backward passes in one op, which the CPU backend has */
    CHECK_MSG(line_has(text, "conv_grads bwd-data b1 [8,16,16,16] k4 s2 p1 dw", " ok") &&
                  line_has(text, "conv_grads bwd-data b1 [8,16,16,16] k4 s2 p1 dx", " ok") &&
                  line_has(text, "conv_grads fwd b0 [3,5,11,9] k3 s2 p1 y", " ok"),
              "conv_grads was not compared:\n%s", text);
    free(text);

    /* One op wrong: caught, named, and the rest still ok. */
    gan_backend skewed = *real_cpu;
    skewed.activation_forward = skewed_activation_forward;
    skewed.multiply = failing_multiply;
    skewed.conv_backward_data_act = NULL; /* an optional op missing: said, not failed */
    skewed.bn_act_backward = skewed_bn_act_backward;
    skewed.conv_grads = skewed_conv_grads;
    report = open_memstream(&text, &text_bytes);
    ok = true;
    CHECK_OK(gan_selftest_ops(reference, &skewed, report, &ok));
    fclose(report);
    CHECK(!ok);
    CHECK_MSG(line_has(text, "activation_forward sigmoid", "FAIL"),
              "the skewed sigmoid was not reported:\n%s", text);
    CHECK_MSG(strstr(text, "multiply broke on purpose") != NULL, "the failing op was not reported:\n%s", text);
    CHECK(line_has(text, "activation_forward relu", " ok"));
    CHECK(line_has(text, "activation_backward sigmoid", " ok"));
    CHECK_MSG(line_has(text, "bn_act_backward lrelu(0.2) [16,8,1024] dgamma", "FAIL") &&
                  line_has(text, "bn_act_backward lrelu(0.2) [16,8,1024] dx", " ok") &&
                  line_has(text, "bn_act_backward lrelu(0.2) [8,16,64] dgamma", " ok"),
              "the skewed dgamma of the fused batch norm was not reported on its shape alone:\n%s", text);
    CHECK_MSG(line_has(text, "conv_grads bwd-data b1 [8,64,4,4] k4 s1 p0 dw", "FAIL") &&
                  line_has(text, "conv_grads bwd-data b1 [8,64,4,4] k4 s1 p0 dx", " ok") &&
                  line_has(text, "conv_grads fwd b0 [8,64,4,4] k4 s1 p0 dw", " ok"),
              "the conv_grads that does not accumulate was not reported on its dw alone:\n%s", text);
    CHECK_MSG(line_has(text, "conv_backward_data_act", "not in the cpu backend") &&
                  line_has(text, "conv_forward_act", " ok"),
              "a missing conv_backward_data_act was not said, or took conv_forward_act with it:\n%s", text);
    /* The whole-tensor relative error: zero where the ops agree, about 1e-4 / mean sigmoid where
     * every value is off by 1e-4. */
    CHECK_MSG(line_rel_l2(text, "activation_forward relu") == 0.0, "relu rel_l2:\n%s", text);
    double skew = line_rel_l2(text, "activation_forward sigmoid");
    CHECK_MSG(skew > 5e-5 && skew < 1e-3, "sigmoid rel_l2 %g:\n%s", skew, text);
    free(text);
    reference->destroy(reference);
    real_cpu->destroy(real_cpu);
}

static void test_backend_open(void)
{
    gan_backend *be = NULL;
    char why[256] = "untouched";
    CHECK_OK(gan_backend_open("cpu", NULL, &be, why, sizeof why));
    CHECK(be && be->kind == GAN_BACKEND_CPU && why[0] == '\0');
    if (be)
        be->destroy(be);

    be = NULL;
    CHECK_OK(gan_backend_open("auto", NULL, &be, why, sizeof why));
    CHECK(be != NULL);
    if (be && be->kind == GAN_BACKEND_CPU)
        CHECK_MSG(strncmp(why, "using the CPU: ", 15) == 0 && strlen(why) > 15,
                  "auto fell back to the CPU without saying why: \"%s\"", why);
    if (be && be->kind == GAN_BACKEND_CUDA)
        CHECK(why[0] == '\0');
    if (be)
        be->destroy(be);

    be = NULL;
    gan_status status = gan_backend_open("cuda", NULL, &be, why, sizeof why);
    if (status == GAN_OK) {
        CHECK(be && be->kind == GAN_BACKEND_CUDA);
        be->destroy(be);
    } else {
        CHECK(status == GAN_ERR_UNSUPPORTED && be == NULL);
        CHECK(strstr(gan_error_message(), "--device cuda") != NULL);
    }
#ifndef GAN_HAVE_CUDA
    CHECK(status == GAN_ERR_UNSUPPORTED);
    CHECK(strstr(gan_error_message(), "no CUDA backend") != NULL);
#endif
    CHECK_FAILS_WITH(gan_backend_open("tpu", NULL, &be, why, sizeof why), GAN_ERR_ARG, "auto, cpu or cuda");

    /* Options: the CPU computes in fp32 only and says so; auto does not fall back to another
     * precision; what a backend was opened with is what it reports. */
    const gan_precision reduced[] = {GAN_PRECISION_TF32, GAN_PRECISION_BF16};
    for (int i = 0; i < 2; i++) {
        const char *name = gan_precision_name(reduced[i]);
        char said[96];
        gan_backend_options options = gan_backend_options_default();
        options.precision = reduced[i];
        be = NULL;
        snprintf(said, sizeof said, "train.precision = %s: the CPU backend computes in fp32 only", name);
        CHECK_FAILS_WITH(gan_backend_open("cpu", &options, &be, why, sizeof why), GAN_ERR_UNSUPPORTED, said);
        CHECK(be == NULL);
        status = gan_backend_open("auto", &options, &be, why, sizeof why);
        if (status == GAN_OK) {
            CHECK(be && be->kind == GAN_BACKEND_CUDA && be->options.precision == reduced[i]);
            be->destroy(be);
        } else {
            CHECK(status == GAN_ERR_UNSUPPORTED && be == NULL);
            snprintf(said, sizeof said, "train.precision = %s needs the CUDA backend", name);
            CHECK_MSG(strstr(gan_error_message(), said) != NULL, "%s", gan_error_message());
        }
    }
    gan_backend_options loose = gan_backend_options_default();
    loose.deterministic = false;
    be = NULL;
    CHECK_OK(gan_backend_open("cpu", &loose, &be, why, sizeof why));
    CHECK(be && be->options.precision == GAN_PRECISION_FP32 && !be->options.deterministic);
    if (be)
        be->destroy(be);
    be = NULL;
    CHECK_FAILS_WITH(gan_backend_open("cuda:x", NULL, &be, why, sizeof why), GAN_ERR_ARG, "cuda:N");
    gan_config cfg;
    gan_config_defaults(&cfg);
    gan_backend_options from_defaults = gan_backend_options_for_config(&cfg);
    CHECK(from_defaults.precision == GAN_PRECISION_FP32 && from_defaults.deterministic);
    CHECK_OK(gan_config_override(&cfg, "train.precision=tf32"));
    CHECK_OK(gan_config_override(&cfg, "train.deterministic=false"));
    gan_backend_options from_config = gan_backend_options_for_config(&cfg);
    CHECK(from_config.precision == GAN_PRECISION_TF32 && !from_config.deterministic);
    CHECK_OK(gan_config_override(&cfg, "train.precision=bf16"));
    CHECK(gan_backend_options_for_config(&cfg).precision == GAN_PRECISION_BF16);
    CHECK(strcmp(gan_precision_name(GAN_PRECISION_BF16), "bf16") == 0);
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.precision=fp16"), GAN_ERR_CONFIG, "fp32|tf32|bf16");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.deterministic=yes"), GAN_ERR_CONFIG, "false|true");

    gan_cuda_versions versions;
    CHECK_OK(gan_cuda_get_versions(&versions));
    if (versions.device_count == 0)
        CHECK_MSG(versions.note[0] != '\0', "no device and no note saying so");
#ifdef GAN_HAVE_CUDA
    CHECK(versions.built_with_cuda && versions.runtime_version > 0 && versions.cudnn_version > 0 &&
          versions.cublas_version > 0);
#else
    CHECK(!versions.built_with_cuda);
#endif
}

/* The CPU backend alone never loads the CUDA module (nor maps the CUDA libraries). */
static void check_cuda_not_loaded(void)
{
    CHECK_MSG(!gan_cuda_module_loaded(), "CPU work loaded libgan_cuda.so");
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return;
    char line[1024];
    bool mapped = false;
    while (fgets(line, sizeof line, maps))
        mapped = mapped || strstr(line, "libcudnn") || strstr(line, "libcublas") || strstr(line, "libcudart");
    fclose(maps);
    CHECK_MSG(!mapped, "CPU work mapped a CUDA library");
}

int main(void)
{
    test_selftest();
    check_cuda_not_loaded();
    test_backend_open();
    return test_finish();
}
