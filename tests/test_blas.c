/* The run-time BLAS: row-major sgemm against a naive product for every transpose combination,
 * odd sizes and padded leading dimensions; results bit-identical run to run; no BLAS in the process
 * before gan loads one (gan must not link it); the core follows the CPU's features and the OS's
 * saved register state; a user's OPENBLAS_CORETYPE and thread count are respected; a BLAS loaded
 * before us, an unloadable GAN_BLAS_LIBRARY and a non-OpenBLAS library are reported as such; bad
 * arguments are refused. The cases that need a fresh process run in forked children before the
 * parent loads anything. */
#define _GNU_SOURCE /* CPU_COUNT */
#include <cpuid.h>
#include <dlfcn.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gan/blas.h"
#include "test_util.h"

static const char *const blas_names[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};

static void naive(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sum = 0.0;
            for (int p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                sum += av * bv;
            }
            c[i * ldc + j] = (float)(alpha * sum + beta * c[i * ldc + j]);
        }
}

/* One product against the naive one, with leading dimensions padded past the minimum: the
 * padding of C must come back untouched (the naive product leaves it as it was too). */
static void check_case(bool ta, bool tb, int m, int n, int k)
{
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
    int a_rows = ta ? k : m, b_rows = tb ? n : k;
    float *a = malloc(sizeof(float) * a_rows * lda); /* [a_rows, lda] */
    float *b = malloc(sizeof(float) * b_rows * ldb); /* [b_rows, ldb] */
    float *c = malloc(sizeof(float) * m * ldc);      /* [m, ldc] */
    float *want = malloc(sizeof(float) * m * ldc);   /* [m, ldc] */
    test_fill_uniform(a, (size_t)a_rows * lda, 1, -1, 1);
    test_fill_uniform(b, (size_t)b_rows * ldb, 2, -1, 1);
    test_fill_uniform(c, (size_t)m * ldc, 3, -1, 1);
    memcpy(want, c, sizeof(float) * m * ldc);
    CHECK_OK(gan_blas_sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, -0.5f, c, ldc));
    naive(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, -0.5f, want, ldc);
    char name[64];
    snprintf(name, sizeof name, "sgemm ta=%d tb=%d %dx%dx%d", ta, tb, m, n, k);
    CHECK_ALLCLOSE(name, c, want, (size_t)m * ldc, 1e-5, 1e-5);
    free(a);
    free(b);
    free(c);
    free(want);
}

/* A product big enough for OpenBLAS to split over its threads, twice: bit-identical. */
static void check_repeatable(void)
{
    const int m = 151, n = 173, k = 191;
    float *a = malloc(sizeof(float) * m * k); /* [m, k] */
    float *b = malloc(sizeof(float) * n * k); /* [n, k], used transposed */
    float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n); /* [m, n] */
    float *want = malloc(sizeof(float) * m * n);                                     /* [m, n] */
    test_fill_uniform(a, (size_t)m * k, 4, -1, 1);
    test_fill_uniform(b, (size_t)n * k, 5, -1, 1);
    memset(want, 0, sizeof(float) * m * n);
    naive(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, want, n);
    CHECK_OK(gan_blas_sgemm(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, c1, n));
    CHECK_OK(gan_blas_sgemm(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, c2, n));
    CHECK_ALLCLOSE("sgemm 151x173x191", c1, want, (size_t)m * n, 1e-4, 1e-4);
    CHECK_MSG(!memcmp(c1, c2, sizeof(float) * m * n), "two identical sgemm calls differ");
    free(a);
    free(b);
    free(c1);
    free(c2);
    free(want);
}

/* The core gan should choose, worked out here independently of src/blas.c's code path. */
static const char *expected_core(void)
{
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27)) || !(ecx & (1u << 28)))
        return "";
    bool fma = ecx & (1u << 12);
    uint32_t xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    bool os_ymm = (xcr0_lo & 0x6) == 0x6, os_zmm = (xcr0_lo & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return "";
    bool avx2 = ebx & (1u << 5);
    bool avx512 = (ebx & (1u << 16)) && (ebx & (1u << 17)) && (ebx & (1u << 30)) && (ebx & (1u << 31));
    if (os_zmm && avx512 && avx2 && fma)
        return "SkylakeX";
    if (os_ymm && avx2 && fma)
        return "Haswell";
    return "";
}

/* OpenBLAS cores that run `core`'s kernels or better ones on the same instructions: an
 * OPENBLAS_CORETYPE naming one of them is kept. */
static bool same_kernels(const char *name, const char *core)
{
    if (!strcasecmp(core, "SkylakeX"))
        return !strcasecmp(name, "SkylakeX") || !strcasecmp(name, "Cooperlake") ||
               !strcasecmp(name, "SapphireRapids");
    return !strcasecmp(name, core) || (!strcasecmp(core, "Haswell") && !strcasecmp(name, "Zen"));
}

/* OpenBLAS's default thread count: every CPU this process may run on, at most the build's
 * MAX_THREADS (from the config string); 0 if it cannot be worked out. */
static int expected_default_threads(const char *config)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    int cpus = CPU_COUNT(&set);
    long configured = sysconf(_SC_NPROCESSORS_CONF);
    if (configured > 0 && configured < cpus)
        cpus = (int)configured;
    const char *max = strstr(config, "MAX_THREADS=");
    if (max && atoi(max + strlen("MAX_THREADS=")) > 0 && atoi(max + strlen("MAX_THREADS=")) < cpus)
        cpus = atoi(max + strlen("MAX_THREADS="));
    return cpus;
}

/* Runs `body` in a fresh child (nothing loaded yet) and returns its exit status: 0 all checks
 * passed, 77 skipped, anything else failed (the child printed why). */
static int in_child(const char *what, int (*body)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        test_checks_failed = 0;
        int skip = body();
        fflush(stdout);
        _exit(skip ? 77 : test_checks_failed ? 1 : 0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        printf("child '%s' did not exit normally\n", what);
        return -1;
    }
    if (WEXITSTATUS(status) == 77)
        printf("child '%s': skipped\n", what);
    return WEXITSTATUS(status);
}

/* A host program linked against OpenBLAS loads it first: gan must neither claim to have set the
 * core nor hide that the library was there before it, and reports the core as OpenBLAS runs it. */
static int child_blas_already_loaded(void)
{
    void *handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return 1;
    char *(*corename)(void) = (char *(*)(void))dlsym(handle, "openblas_get_corename");
    gan_blas_info info;
    CHECK_OK(gan_blas_get_info(&info));
    printf("child (BLAS loaded first): library '%s', core '%s', set by gan '%s', note '%s'\n",
           info.library, info.core, info.coretype_set, info.note);
    CHECK(strstr(info.library, "already loaded") != NULL);
    CHECK(strstr(info.note, "already in the process") != NULL);
    CHECK(info.coretype_set[0] == '\0');
    CHECK(corename && !strcmp(info.core, corename()));
    check_case(false, true, 7, 5, 3);
    return 0;
}

/* An OPENBLAS_CORETYPE inherited from the environment that names a slower core (Prescott runs on
 * every x86-64 CPU and is slower than anything gan chooses on an AVX2 one) is replaced by the
 * CPU's core, with a note; OPENBLAS_NUM_THREADS is the user's and stays. */
static int child_inherited_slow_core(void)
{
    unsetenv("GAN_BLAS_CORETYPE");
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    gan_blas_info info;
    CHECK_OK(gan_blas_get_info(&info));
    printf("child (OPENBLAS_CORETYPE=Prescott OPENBLAS_NUM_THREADS=1): core '%s', set by gan '%s', "
           "%d threads, note '%s'\n",
           info.core, info.coretype_set, info.threads, info.note);
    if (!strstr(info.config, "DYNAMIC_ARCH"))
        return 1; /* a single-target OpenBLAS has no core to choose */
    CHECK(info.threads == 1);
    const char *want = expected_core();
    if (want[0]) {
        CHECK_MSG(!strcasecmp(info.coretype_set, want) && !strcasecmp(info.core, want),
                  "Prescott from the environment: gan set '%s', OpenBLAS runs '%s', the CPU calls for %s",
                  info.coretype_set, info.core, want);
        CHECK_MSG(strstr(info.note, "OPENBLAS_CORETYPE=Prescott from the environment replaced by") &&
                      strstr(info.note, want),
                  "the note does not say Prescott was replaced by %s: '%s'", want, info.note);
    } else {
        CHECK(info.coretype_set[0] == '\0');
        CHECK(!strcasecmp(info.core, "Prescott"));
    }
    check_case(true, false, 7, 5, 3);
    return 0;
}

/* GAN_BLAS_CORETYPE pins a core as given, slower or not, without a note. */
static int child_pinned_core(void)
{
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("GAN_BLAS_CORETYPE", "Prescott", 1);
    gan_blas_info info;
    CHECK_OK(gan_blas_get_info(&info));
    printf("child (GAN_BLAS_CORETYPE=Prescott): core '%s', set by gan '%s', note '%s'\n", info.core,
           info.coretype_set, info.note);
    if (!strstr(info.config, "DYNAMIC_ARCH"))
        return 1;
    CHECK(info.coretype_set[0] == '\0');
    CHECK(!strcasecmp(info.core, "Prescott"));
    CHECK(!strcmp(getenv("OPENBLAS_CORETYPE"), "Prescott"));
    CHECK_MSG(info.note[0] == '\0', "unexpected note: %s", info.note);
    check_case(false, true, 7, 5, 3);
    return 0;
}

/* A GAN_BLAS_LIBRARY that cannot be loaded falls back to the usual names, and says so. */
static int child_bad_library_variable(void)
{
    setenv("GAN_BLAS_LIBRARY", "/nonexistent/libnotablas.so", 1);
    gan_blas_info info;
    CHECK_OK(gan_blas_get_info(&info));
    printf("child (GAN_BLAS_LIBRARY unloadable): library '%s', note '%s'\n", info.library, info.note);
    CHECK(strstr(info.note, "GAN_BLAS_LIBRARY=/nonexistent/libnotablas.so could not be loaded"));
    CHECK(strcmp(info.library, "/nonexistent/libnotablas.so") != 0);
    return 0;
}

/* A CBLAS that is not OpenBLAS (Debian's reference BLAS) through GAN_BLAS_LIBRARY: it computes,
 * and the info says what it cannot know. */
static int child_reference_blas(void)
{
    const char *path = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";
    if (access(path, R_OK) != 0)
        return 1;
    setenv("GAN_BLAS_LIBRARY", path, 1);
    gan_blas_info info;
    CHECK_OK(gan_blas_get_info(&info));
    printf("child (reference BLAS): library '%s', config '%s', core '%s', note '%s'\n",
           info.library, info.config, info.core, info.note);
    CHECK(!strcmp(info.library, path));
    CHECK(!strcmp(info.config, "(not OpenBLAS)"));
    CHECK(!strcmp(info.core, "(unknown)"));
    CHECK(info.threads == 1);
    if (info.coretype_set[0])
        CHECK(strstr(info.note, "is not OpenBLAS") != NULL);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            check_case(ta, tb, 33, 17, 29);
    return 0;
}

int main(void)
{
    const char *user_core = getenv("OPENBLAS_CORETYPE");
    bool user_set = user_core && *user_core;
    const char *pinned = getenv("GAN_BLAS_CORETYPE");
    if (pinned && !*pinned)
        pinned = NULL;
    bool user_threads = getenv("OPENBLAS_NUM_THREADS") || getenv("GOTO_NUM_THREADS") ||
                        getenv("OMP_NUM_THREADS");

    /* gan links no BLAS: OpenBLAS's constructor must not have run before main(). */
    for (size_t i = 0; i < sizeof blas_names / sizeof blas_names[0]; i++)
        CHECK_MSG(!dlopen(blas_names[i], RTLD_NOW | RTLD_NOLOAD),
                  "%s is in the process before gan_blas_init: something links it", blas_names[i]);

    int status = in_child("BLAS loaded first", child_blas_already_loaded);
    CHECK_MSG(status == 0 || status == 77, "child 'BLAS loaded first' exited with %d", status);
    status = in_child("inherited slow core", child_inherited_slow_core);
    CHECK_MSG(status == 0 || status == 77, "child 'inherited slow core' exited with %d", status);
    status = in_child("pinned core", child_pinned_core);
    CHECK_MSG(status == 0 || status == 77, "child 'pinned core' exited with %d", status);
    status = in_child("bad GAN_BLAS_LIBRARY", child_bad_library_variable);
    CHECK_MSG(status == 0, "child 'bad GAN_BLAS_LIBRARY' exited with %d", status);
    status = in_child("reference BLAS", child_reference_blas);
    CHECK_MSG(status == 0 || status == 77, "child 'reference BLAS' exited with %d", status);

    CHECK_OK(gan_blas_init());
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_case(ta, tb, 7, 5, 3);
            check_case(ta, tb, 33, 17, 29);
            check_case(ta, tb, 4, 6, 0); /* k = 0: C = beta C */
        }
    check_repeatable();

    gan_blas_info info;
    CHECK_OK(gan_blas_get_info(&info));
    printf("BLAS %s (%s), core %s, set by gan: '%s', %d threads, note '%s'\n", info.library,
           info.config, info.core, info.coretype_set, info.threads, info.note);
    CHECK(info.library[0] != '\0');
    CHECK(info.threads >= 1);
    if (pinned) {
        CHECK_MSG(info.coretype_set[0] == '\0', "gan overrode GAN_BLAS_CORETYPE=%s with %s", pinned,
                  info.coretype_set);
    } else if (strstr(info.config, "OpenBLAS")) {
        /* The CPU's core, whatever OPENBLAS_CORETYPE the environment held (kept when it names
         * that core, replaced with a note otherwise). */
        const char *want = expected_core();
        bool kept = user_set && want[0] && same_kernels(user_core, want);
        if (kept)
            want = user_core;
        CHECK_MSG(!strcasecmp(kept ? "" : want, info.coretype_set), "gan set '%s', the CPU calls for '%s'%s%s",
                  info.coretype_set, want, user_set ? ", the environment said " : "", user_set ? user_core : "");
        if (want[0]) {
            CHECK_MSG(!strcasecmp(info.core, want), "CPU calls for %s but OpenBLAS runs %s", want,
                      info.core);
            if (user_set && !kept)
                CHECK_MSG(strstr(info.note, "replaced by") != NULL, "no note of the replaced %s: '%s'",
                          user_core, info.note);
            else
                CHECK_MSG(info.note[0] == '\0', "unexpected note: %s", info.note);
        }
        CHECK_MSG(!strcmp(want, "SkylakeX") || strcasecmp(info.core, "SkylakeX"),
                  "SkylakeX core without usable AVX-512");
    }
    if (!user_threads && strstr(info.config, "OpenBLAS")) {
        int want = expected_default_threads(info.config);
        if (want > 0)
            CHECK_MSG(info.threads == want, "BLAS runs %d threads, this process may use %d cores",
                      info.threads, want);
    }

    float x[4] = {0};
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, 2, 2, 1.0f, x, 1, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "lda=1");
    CHECK_FAILS_WITH(gan_blas_sgemm(true, false, 3, 2, 2, 1.0f, x, 2, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "lda=2"); /* A^T stored [k, m]: lda >= m = 3 */
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, 3, 2, 1.0f, x, 2, x, 2, 0.0f, x, 3),
                     GAN_ERR_ARG, "ldb=2"); /* B stored [k, n]: ldb >= n = 3 */
    CHECK_FAILS_WITH(gan_blas_sgemm(false, true, 2, 2, 3, 1.0f, x, 3, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "ldb=2"); /* B^T stored [n, k]: ldb >= k = 3 */
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, 3, 2, 1.0f, x, 2, x, 3, 0.0f, x, 2),
                     GAN_ERR_ARG, "ldc=2");
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 0, 0, 0, 1.0f, x, 0, x, 0, 0.0f, x, 0),
                     GAN_ERR_ARG, "lda=0"); /* leading dimensions are at least 1 */
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, -1, 2, 2, 1.0f, x, 2, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "m=-1");
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, -3, 2, 1.0f, x, 2, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "n=-3");
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, 2, -1, 1.0f, x, 2, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "k=-1");
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, 2, 2, 1.0f, NULL, 2, x, 2, 0.0f, x, 2),
                     GAN_ERR_ARG, "a NULL");
    CHECK_FAILS_WITH(gan_blas_sgemm(false, false, 2, 2, 2, 1.0f, x, 2, x, 2, 0.0f, NULL, 2),
                     GAN_ERR_ARG, "c NULL");
    CHECK_OK(gan_blas_sgemm(false, false, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, x, 2)); /* k = 0 */
    CHECK_FAILS_WITH(gan_blas_get_info(NULL), GAN_ERR_ARG, "NULL");

    double gflops = 0.0;
    CHECK_FAILS_WITH(gan_blas_measure_sgemm_gflops(0, 2, &gflops), GAN_ERR_ARG, "n = 0");
    CHECK_FAILS_WITH(gan_blas_measure_sgemm_gflops(64, 0, &gflops), GAN_ERR_ARG, "repeats = 0");
    CHECK_FAILS_WITH(gan_blas_measure_sgemm_gflops(64, 1, NULL), GAN_ERR_ARG, "gflops");
    CHECK_OK(gan_blas_measure_sgemm_gflops(256, 2, &gflops));
    CHECK(gflops > 0.0);
    printf("sgemm 256^3: %.1f GFLOP/s\n", gflops);
    return test_finish();
}
