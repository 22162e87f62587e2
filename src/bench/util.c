/* Shared pieces of the benchmarks: see bench.h. */
#include "bench/bench.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gan/backend_select.h"
#include "gan/clock.h"
#include "gan/conv_choices.h"
#include "gan/blas.h"
#include "gan/cuda_backend.h"

#ifndef GAN_SOURCE_DIR
#define GAN_SOURCE_DIR "."
#endif

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, int count)
{
    if (count < 1)
        return 0.0;
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

double bench_min(const double *values, int count)
{
    double m = count > 0 ? values[0] : 0.0;
    for (int i = 1; i < count; i++)
        m = values[i] < m ? values[i] : m;
    return m;
}

double bench_max(const double *values, int count)
{
    double m = count > 0 ? values[0] : 0.0;
    for (int i = 1; i < count; i++)
        m = values[i] > m ? values[i] : m;
    return m;
}

gan_status bench_open_backend(const char *device, const gan_config *cfg, gan_backend **out)
{
    char why[512] = "";
    gan_backend_options options = gan_backend_options_for_config(cfg);
    GAN_TRY(gan_backend_open(device, &options, out, why, sizeof why));
    if (why[0])
        printf("device      : cpu (%s)\n", why);
    /* The convolution algorithms chosen before on this GPU (gan/conv_choices.h): a benchmark
     * process does not search again; what it chooses is added after planning. */
    gan_conv_choices_reuse_cache(*out, stderr);
    return GAN_OK;
}

gan_status bench_check_options(const gan_backend *be, const gan_config *cfg)
{
    gan_backend_options want = gan_backend_options_for_config(cfg);
    if (want.precision != be->options.precision || want.deterministic != be->options.deterministic)
        return gan_error(GAN_ERR_CONFIG,
                         "%s asks for train.precision = %s, train.deterministic = %s, but this run's "
                         "backend was opened with %s, %s (one backend serves every config of a run: "
                         "give the same keys to all, or run them apart)",
                         cfg->name, gan_precision_name(want.precision), want.deterministic ? "true" : "false",
                         gan_precision_name(be->options.precision),
                         be->options.deterministic ? "true" : "false");
    return GAN_OK;
}

/* cuda (or any backend but cpu): the backend's gemm on n^3, best of `repeats` after one warm-up. */
static gan_status measure_backend_gemm(gan_backend *be, int n, int repeats, double *gflops)
{
    size_t count = (size_t)n * (size_t)n;
    float *a = NULL, *b = NULL, *c = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(be->alloc(be, count * sizeof(float), (void **)&a));
    GAN_CHECK(be->alloc(be, count * sizeof(float), (void **)&b));
    GAN_CHECK(be->alloc(be, count * sizeof(float), (void **)&c));
    GAN_CHECK(be->rng_uniform(be, count, 1, 1, gan_count_of(0), -1.0f, 1.0f, a));
    GAN_CHECK(be->rng_uniform(be, count, 1, 2, gan_count_of(0), -1.0f, 1.0f, b));
    double best = 1e30;
    for (int r = -1; r < repeats; r++) {
        GAN_CHECK(be->synchronize(be));
        double t0 = gan_now_s();
        GAN_CHECK(be->gemm(be, false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n));
        GAN_CHECK(be->synchronize(be));
        double t = gan_now_s() - t0;
        if (r >= 0 && t < best)
            best = t;
    }
    *gflops = 2.0 * (double)n * n * n / best * 1e-9;
cleanup:
    if (a)
        be->free(be, a);
    if (b)
        be->free(be, b);
    if (c)
        be->free(be, c);
    return status;
}

gan_status bench_measure_gemm_peak(gan_backend *be, double *gflops, char *what, size_t what_bytes)
{
    if (be->kind == GAN_BACKEND_CPU) {
        gan_blas_info info;
        GAN_TRY(gan_blas_get_info(&info));
        GAN_TRY(gan_blas_measure_sgemm_gflops(2048, 3, gflops));
        snprintf(what, what_bytes, "sgemm 2048^3 best of 3 (OpenBLAS core %s, %d threads)", info.core,
                 info.threads);
        return GAN_OK;
    }
    /* GAN_BENCH_PEAK_N: a smaller GEMM, for the emulated device of the tests (naive loops) */
    int n = 8192;
    const char *env = getenv("GAN_BENCH_PEAK_N");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (*end || v < 16 || v > 8192)
            return gan_error(GAN_ERR_ARG, "GAN_BENCH_PEAK_N=%s: want a size from 16 to 8192", env);
        n = (int)v;
    }
    GAN_TRY(measure_backend_gemm(be, n, 3, gflops));
    snprintf(what, what_bytes, "%s gemm %d^3 best of 3 (%s)", be->name, n, gan_precision_name(be->options.precision));
    return GAN_OK;
}

gan_status bench_measure_copy_gbps(gan_backend *be, double *gbps)
{
    size_t bytes = (size_t)256 << 20;
    void *src = NULL, *dst = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(be->alloc(be, bytes, &src));
    GAN_CHECK(be->alloc(be, bytes, &dst));
    GAN_CHECK(be->fill(be, src, 1.0f, bytes / sizeof(float)));
    GAN_CHECK(be->fill(be, dst, 0.0f, bytes / sizeof(float)));
    double best = 1e30;
    for (int r = -1; r < 5; r++) {
        GAN_CHECK(be->synchronize(be));
        double t0 = gan_now_s();
        GAN_CHECK(be->copy(be, dst, src, bytes));
        GAN_CHECK(be->synchronize(be));
        double t = gan_now_s() - t0;
        if (r >= 0 && t < best)
            best = t;
    }
    *gbps = 2.0 * (double)bytes / best * 1e-9;
cleanup:
    if (src)
        be->free(be, src);
    if (dst)
        be->free(be, dst);
    return status;
}

static void cpu_model_name(char *out, size_t bytes)
{
    snprintf(out, bytes, "(unknown)");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            const char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                snprintf(out, bytes, "%s", colon);
                out[strcspn(out, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

void bench_print_machine(gan_backend *be, FILE *out, const char *prefix)
{
    char cpu[256];
    cpu_model_name(cpu, sizeof cpu);
    fprintf(out, "%scpu         : %s, %ld cores online, %d OpenMP threads\n", prefix, cpu,
            sysconf(_SC_NPROCESSORS_ONLN), omp_get_max_threads());
    gan_blas_info blas;
    if (gan_blas_init() == GAN_OK && gan_blas_get_info(&blas) == GAN_OK) {
        fprintf(out, "%sblas        : %s, core %s%s%s%s, %d threads\n", prefix, blas.library, blas.core,
                blas.coretype_set[0] ? " (OPENBLAS_CORETYPE=" : "", blas.coretype_set,
                blas.coretype_set[0] ? " set by gan)" : "", blas.threads);
        if (blas.note[0])
            fprintf(out, "%sblas note   : %s\n", prefix, blas.note);
    }
    if (be && be->kind == GAN_BACKEND_CUDA) {
        gan_cuda_versions v;
        if (gan_cuda_get_versions(&v) == GAN_OK && v.device_count > 0)
            fprintf(out, "%sgpu         : %s (sm_%d%d, %.1f GiB), CUDA runtime %d.%d, cuDNN %zu.%zu.%zu, %s, "
                         "%sdeterministic\n",
                    prefix, v.device_name, v.compute_capability_major, v.compute_capability_minor,
                    (double)v.device_memory_bytes / (1024.0 * 1024.0 * 1024.0), v.runtime_version / 1000,
                    (v.runtime_version % 1000) / 10, v.cudnn_version / 10000, (v.cudnn_version / 100) % 100,
                    v.cudnn_version % 100, gan_precision_name(be->options.precision),
                    be->options.deterministic ? "" : "not ");
    }
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

gan_status bench_load_config(const char *name_or_path, const char *const *overrides, int override_count,
                             gan_config *cfg, char *path, size_t path_bytes)
{
    snprintf(path, path_bytes, "%s", name_or_path);
    if (!file_exists(path) && !strchr(name_or_path, '/')) {
        const char *ext = strstr(name_or_path, ".ini") ? "" : ".ini";
        snprintf(path, path_bytes, "configs/%s%s", name_or_path, ext);
        if (!file_exists(path))
            snprintf(path, path_bytes, "%s/configs/%s%s", GAN_SOURCE_DIR, name_or_path, ext);
        if (!file_exists(path))
            return gan_error(GAN_ERR_IO,
                             "config '%s': no such file, and no configs/%s%s here or in %s/configs",
                             name_or_path, name_or_path, ext, GAN_SOURCE_DIR);
    }
    gan_config_defaults(cfg);
    GAN_TRY(gan_config_load(cfg, path));
    for (int i = 0; i < override_count; i++)
        GAN_TRY(gan_config_override(cfg, overrides[i]));
    return gan_config_validate(cfg);
}

gan_conv_geom bench_layer_conv_geom(const gan_layer_info *layer)
{
    const gan_layer_spec *s = &layer->spec;
    /* conv: x = input, y = output; convt: x = output, y = input */
    gan_shape x = layer->spec.kind == GAN_LAYER_CONVT ? layer->out : layer->in;
    gan_shape y = layer->spec.kind == GAN_LAYER_CONVT ? layer->in : layer->out;
    return (gan_conv_geom){
        .n = layer->batch,
        .c_in = x.c, .h_in = x.h, .w_in = x.w,
        .c_out = y.c, .h_out = y.h, .w_out = y.w,
        .k_h = s->kernel, .k_w = s->kernel,
        .stride_h = s->stride, .stride_w = s->stride,
        .pad_h = s->pad, .pad_w = s->pad,
    };
}

double bench_layer_pass_flops(const gan_layer_info *layer)
{
    switch (layer->spec.kind) {
    case GAN_LAYER_CONV:
    case GAN_LAYER_CONVT: {
        gan_conv_geom g = bench_layer_conv_geom(layer);
        return 2.0 * g.n * g.c_out * g.h_out * g.w_out * (double)g.c_in * g.k_h * g.k_w;
    }
    case GAN_LAYER_LINEAR:
        return 2.0 * layer->batch * (double)layer->in.c * layer->out.c;
    default:
        return 0.0;
    }
}

/* FLOPs of every conv/convt/linear pass of the model's active layers; `first` receives those of
 * the first layer (whose backward-data is skipped when no input gradient is wanted). */
static double model_pass_flops(const gan_model *m, double *first)
{
    double total = 0.0;
    *first = 0.0;
    gan_layer_info layer;
    for (int i = 0; gan_model_layer_info(m, i, &layer) == GAN_OK && layer.active; i++) {
        double flops = bench_layer_pass_flops(&layer);
        total += flops;
        if (i == 0)
            *first = flops;
    }
    return total;
}

/* The passes of one iteration (src/train/trainer.c), with F_x = one pass over all layers of x and
 * F_x0 = its first layer:
 *   each of k D steps: D(real) forward F_D, backward filter F_D + data F_D - F_D0 (no gradient
 *     into the images); G forward F_G; D(fake) forward F_D, backward F_D + F_D - F_D0;
 *   G step: D(fake) forward F_D, backward data only F_D (down to the images: filter gradients
 *     skipped); G backward filter F_G + data F_G - F_G0.
 * total = k (6 F_D - 2 F_D0 + F_G) + 2 F_D + 2 F_G - F_G0. */
double bench_iteration_flops(const gan_model *g, const gan_model *d, int d_steps)
{
    double g0, d0;
    double fg = model_pass_flops(g, &g0), fd = model_pass_flops(d, &d0);
    return d_steps * (6.0 * fd - 2.0 * d0 + fg) + 2.0 * fd + 2.0 * fg - g0;
}
