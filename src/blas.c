/* OpenBLAS loaded at run time, after OPENBLAS_CORETYPE is chosen from the CPU's features (see
 * gan/blas.h for why). */
#include "gan/blas.h"

#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gan/clock.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GAN_BLAS_X86 1
#endif

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112, CBLAS_UPPER = 121 };

typedef void (*cblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                               float alpha, const float *a, int lda, const float *b, int ldb,
                               float beta, float *c, int ldc);
typedef void (*cblas_dgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                               double alpha, const double *a, int lda, const double *b, int ldb,
                               double beta, double *c, int ldc);
typedef void (*cblas_dsyrk_fn)(int order, int uplo, int trans, int n, int k, double alpha,
                               const double *a, int lda, double beta, double *c, int ldc);
/* LAPACK's Fortran interface, gfortran's calling convention: every argument by reference, the
 * lengths of the character arguments appended. */
typedef void (*lapack_dsyevd_fn)(const char *jobz, const char *uplo, const int *n, double *a,
                                 const int *lda, double *w, double *work, const int *lwork, int *iwork,
                                 const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
typedef char *(*string_fn)(void);
typedef int (*int_fn)(void);
typedef void (*set_int_fn)(int);

static struct {
    pthread_once_t once;
    gan_status status;
    char message[1536];
    cblas_sgemm_fn sgemm;
    /* double precision, for the Frechet distance (NULL where the library lacks them) */
    cblas_dgemm_fn dgemm;
    cblas_dsyrk_fn dsyrk;
    lapack_dsyevd_fn dsyevd;
    string_fn get_corename, get_config;
    int_fn get_num_threads;
    set_int_fn set_num_threads;
    /* OpenBLAS keeps to the calling thread between calls (see load_blas). False for a BLAS
     * loaded before gan (its threads are its owner's) or one without openblas_set_num_threads. */
    bool split;
    gan_blas_info info;
} blas = {.once = PTHREAD_ONCE_INIT};

#ifdef GAN_BLAS_X86
static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* The OpenBLAS core this CPU can run at full speed, or NULL to let OpenBLAS decide. SkylakeX's
 * kernels use AVX-512 F/BW/VL/DQ and Haswell's AVX2 and FMA: a CPU without them would stop on an
 * illegal instruction. The OS must also save the wide registers (XCR0: SSE, AVX and, for
 * AVX-512, opmask and both ZMM halves), or the instructions fault all the same. */
static const char *core_for_this_cpu(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return NULL;
    bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), fma = ecx & (1u << 12);
    if (!osxsave || !avx)
        return NULL;
    uint64_t xcr0 = read_xcr0();
    bool ymm_state = (xcr0 & 0x6) == 0x6;
    bool zmm_state = (xcr0 & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return NULL;
    bool avx2 = ebx & (1u << 5);
    bool avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17);
    bool avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31);
    if (zmm_state && avx512f && avx512dq && avx512bw && avx512vl && avx2 && fma)
        return "SkylakeX";
    if (ymm_state && avx2 && fma)
        return "Haswell";
    return NULL;
}
#else
/* Other architectures: OpenBLAS's own detection. */
static const char *core_for_this_cpu(void) { return NULL; }
#endif

/* Appends one remark to info.note, "; "-separated. */
static void add_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add_note(const char *fmt, ...)
{
    size_t used = strlen(blas.info.note);
    if (used && used + 2 < sizeof blas.info.note) {
        memcpy(blas.info.note + used, "; ", 3);
        used += 2;
    }
    va_list args;
    va_start(args, fmt);
    vsnprintf(blas.info.note + used, sizeof blas.info.note - used, fmt, args);
    va_end(args);
}

/* A BLAS some other part of the process loaded before us (linked by a plugin, a host program):
 * its constructor has already read OPENBLAS_CORETYPE, so our choice cannot reach it. */
static void *already_loaded(const char *const *candidates, size_t count, const char **name)
{
    for (size_t i = 0; i < count; i++) {
        if (!candidates[i] || !*candidates[i])
            continue;
        void *handle = dlopen(candidates[i], RTLD_NOW | RTLD_NOLOAD);
        if (handle) {
            *name = candidates[i];
            return handle;
        }
    }
    return NULL;
}

/* Does OpenBLAS core `name` run this CPU at least as fast as `best` (our choice) and only on
 * instructions it has? Cooper Lake and Sapphire Rapids are SkylakeX's AVX-512 kernels and more;
 * Zen is OpenBLAS's name for Haswell's kernels on AMD. */
static bool core_matches(const char *name, const char *best)
{
    static const char *const skylakex[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *const haswell[] = {"Haswell", "Zen"};
    bool avx512 = !strcasecmp(best, "SkylakeX");
    const char *const *same = avx512 ? skylakex : haswell;
    size_t count = avx512 ? sizeof skylakex / sizeof *skylakex : sizeof haswell / sizeof *haswell;
    for (size_t i = 0; i < count; i++)
        if (!strcasecmp(name, same[i]))
            return true;
    return false;
}

/* Sets OPENBLAS_CORETYPE before OpenBLAS reads it. GAN_BLAS_CORETYPE pins a core (used as it is:
 * the way to get one machine's rounding on another). Otherwise the core follows the CPU: an
 * OPENBLAS_CORETYPE already in the environment is kept when it names the core this CPU calls for
 * (or an equal one), and replaced, with a note, when it names a slower core (Prescott, Haswell on
 * an AVX-512 CPU: half the sgemm speed or less) or one whose instructions this CPU lacks
 * (SkylakeX without AVX-512: an illegal instruction). Such a value is usually inherited from a
 * machine image or a shell profile written for another CPU rather than chosen for gan. */
static void choose_core(void)
{
    const char *pinned = getenv("GAN_BLAS_CORETYPE");
    if (pinned && *pinned) {
        setenv("OPENBLAS_CORETYPE", pinned, 1);
        return;
    }
    const char *core = core_for_this_cpu();
    if (!core)
        return; /* not x86, or no AVX2: OpenBLAS's own detection, or the user's value */
    const char *inherited = getenv("OPENBLAS_CORETYPE");
    if (inherited && *inherited && core_matches(inherited, core))
        return;
    if (inherited && *inherited)
        add_note("OPENBLAS_CORETYPE=%s from the environment replaced by %s, the fastest core this "
                 "CPU runs (GAN_BLAS_CORETYPE=%s would pin yours)",
                 inherited, core, inherited);
    setenv("OPENBLAS_CORETYPE", core, 1);
    snprintf(blas.info.coretype_set, sizeof blas.info.coretype_set, "%s", core);
}

static void load_blas(void)
{
    const char *user_library = getenv("GAN_BLAS_LIBRARY");
    const char *candidates[] = {user_library, "libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
    const size_t candidate_count = sizeof candidates / sizeof candidates[0];
    const char *loaded = NULL;
    void *handle = already_loaded(candidates, candidate_count, &loaded);
    const bool already_loaded_before = handle != NULL;
    if (handle) {
        snprintf(blas.info.library, sizeof blas.info.library, "%s (already loaded before gan)",
                 loaded);
        add_note("%s was already in the process before gan loaded it: its core was chosen "
                 "without gan",
                 loaded);
    } else {
        choose_core();
        /* OpenBLAS's idle workers spin for 2^28 cycles (~0.1 s) after each call by default,
         * taking the cores from the OpenMP threads of the elementwise ops in between: wait 2^20
         * cycles (well under a millisecond) before sleeping, unless the user chose otherwise. */
        setenv("OPENBLAS_THREAD_TIMEOUT", "20", 0);
    }
    char errors[1024] = "";
    for (size_t i = 0; i < candidate_count && !handle; i++) {
        if (!candidates[i] || !*candidates[i])
            continue;
        handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (handle) {
            loaded = candidates[i];
            snprintf(blas.info.library, sizeof blas.info.library, "%s", loaded);
        } else {
            const char *why = dlerror();
            size_t used = strlen(errors);
            snprintf(errors + used, sizeof errors - used, "%s%s", used ? "; " : "",
                     why ? why : candidates[i]);
            if (i == 0) /* the user named a library: falling back must not go unnoticed */
                add_note("GAN_BLAS_LIBRARY=%s could not be loaded (%s)", candidates[i],
                         why ? why : "?");
        }
    }
    if (!handle) {
        blas.status = GAN_ERR_BACKEND;
        snprintf(blas.message, sizeof blas.message,
                 "no BLAS could be loaded (%s): install libopenblas0-pthread (tools/setup.sh) or set "
                 "GAN_BLAS_LIBRARY to a CBLAS library",
                 errors);
        return;
    }
    blas.sgemm = (cblas_sgemm_fn)dlsym(handle, "cblas_sgemm");
    if (!blas.sgemm) {
        blas.status = GAN_ERR_BACKEND;
        snprintf(blas.message, sizeof blas.message,
                 "%s has no cblas_sgemm: set GAN_BLAS_LIBRARY to a CBLAS library", loaded);
        return;
    }
    blas.dgemm = (cblas_dgemm_fn)dlsym(handle, "cblas_dgemm");
    blas.dsyrk = (cblas_dsyrk_fn)dlsym(handle, "cblas_dsyrk");
    blas.dsyevd = (lapack_dsyevd_fn)dlsym(handle, "dsyevd_");
    blas.get_corename = (string_fn)dlsym(handle, "openblas_get_corename");
    blas.get_config = (string_fn)dlsym(handle, "openblas_get_config");
    blas.get_num_threads = (int_fn)dlsym(handle, "openblas_get_num_threads");
    snprintf(blas.info.config, sizeof blas.info.config, "%s",
             blas.get_config ? blas.get_config() : "(not OpenBLAS)");
    snprintf(blas.info.core, sizeof blas.info.core, "%s",
             blas.get_corename ? blas.get_corename() : "(unknown)");
    blas.set_num_threads = (set_int_fn)dlsym(handle, "openblas_set_num_threads");
    blas.info.threads = blas.get_num_threads ? blas.get_num_threads() : 1;
    /* OpenBLAS's workers and OpenMP's spin-wait for work after each call (OpenBLAS ~2^20 cycles
     * with the timeout above, libgomp up to its GOMP_SPINCOUNT), so with both pools busy on the
     * same cores every GEMM after an elementwise op, and every elementwise op after a GEMM,
     * shares its cores with the other pool's spinning threads (measured: a fifth of a DCGAN
     * iteration). OpenBLAS keeps to the calling thread; the convolutions split their GEMMs over
     * OpenMP threads themselves, and gan_blas_sgemm hands OpenBLAS its threads for one call. */
    if (!already_loaded_before && blas.set_num_threads && blas.get_num_threads) {
        blas.set_num_threads(1);
        blas.split = true;
    }
    /* Our choice did not take (an OpenBLAS built for one target, or one that does not know the
     * name): it still computes correctly, only more slowly, so go on and say so. */
    if (blas.info.coretype_set[0] && !blas.get_corename)
        add_note("gan set OPENBLAS_CORETYPE=%s but %s is not OpenBLAS (no openblas_get_corename)",
                 blas.info.coretype_set, loaded);
    else if (blas.info.coretype_set[0] && strcasecmp(blas.info.core, blas.info.coretype_set))
        add_note("gan set OPENBLAS_CORETYPE=%s but OpenBLAS runs core %s (slower)",
                 blas.info.coretype_set, blas.info.core);
    blas.status = GAN_OK;
}

gan_status gan_blas_init(void)
{
    pthread_once(&blas.once, load_blas);
    if (blas.status != GAN_OK)
        return gan_error(blas.status, "%s", blas.message);
    return GAN_OK;
}

/* Checks a row-major GEMM's sizes and pointers (see gan/blas.h); GAN_OK when it is one to run. */
static gan_status check_sgemm(bool trans_a, bool trans_b, int m, int n, int k, const float *a,
                              int lda, const float *b, int ldb, const float *c, int ldc)
{
    /* Row-major: op(A) is [m, k], so A itself is [m, k] (lda >= k) or [k, m] (lda >= m). */
    int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (a_cols > 1 ? a_cols : 1) ||
        ldb < (b_cols > 1 ? b_cols : 1) || ldc < (n > 1 ? n : 1))
        return gan_error(GAN_ERR_ARG,
                         "sgemm: bad sizes m=%d n=%d k=%d lda=%d ldb=%d ldc=%d (trans_a %d trans_b %d)",
                         m, n, k, lda, ldb, ldc, trans_a, trans_b);
    if ((m && n) && ((k && (!a || !b)) || !c))
        return gan_error(GAN_ERR_ARG, "sgemm: NULL matrix (a %s, b %s, c %s) for m=%d n=%d k=%d",
                         a ? "set" : "NULL", b ? "set" : "NULL", c ? "set" : "NULL", m, n, k);
    return GAN_OK;
}

static void sgemm_call(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc)
{
    blas.sgemm(CBLAS_ROW_MAJOR, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS,
               trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* OpenBLAS runs a GEMM of at most this many multiply-adds on one thread whatever its thread count
 * (65536 * GEMM_MULTITHREAD_THRESHOLD in interface/gemm.c): no need to hand it its threads. */
#define OPENBLAS_ONE_THREAD_MULADDS 262144.0

gan_status gan_blas_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc)
{
    GAN_TRY(gan_blas_init());
    GAN_TRY(check_sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc));
    if (m == 0 || n == 0)
        return GAN_OK;
    /* OpenBLAS on its own threads for this call only, so the products are the ones it gives
     * with its default threads; between calls it keeps to one, and its workers sleep. */
    bool own_threads = blas.split && blas.info.threads > 1 && !omp_in_parallel() &&
                       (double)m * n * k > OPENBLAS_ONE_THREAD_MULADDS;
    if (own_threads)
        blas.set_num_threads(blas.info.threads);
    sgemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (own_threads)
        blas.set_num_threads(1);
    return GAN_OK;
}

gan_status gan_blas_sgemm_this_thread(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                                      const float *a, int lda, const float *b, int ldb, float beta,
                                      float *c, int ldc)
{
    GAN_TRY(gan_blas_init());
    GAN_TRY(check_sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc));
    if (m && n)
        sgemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return GAN_OK;
}

/* ---- double precision and LAPACK (the Frechet distance, src/eval/fid.c) --------------------- */

/* The library has the routine and 32-bit integers (an ILP64 build, OpenBLAS's USE64BITINT, would
 * read our int arguments wrongly). */
static gan_status check_double_routine(const void *routine, const char *name)
{
    if (!routine)
        return gan_error(GAN_ERR_UNSUPPORTED, "%s has no %s: the Frechet distance needs a BLAS with LAPACK "
                                              "(OpenBLAS: libopenblas0-pthread, tools/setup.sh)",
                         blas.info.library, name);
    if (strstr(blas.info.config, "USE64BITINT"))
        return gan_error(GAN_ERR_UNSUPPORTED, "%s is built with 64-bit integers (%s); gan calls LAPACK with "
                                              "32-bit ones: set GAN_BLAS_LIBRARY to libopenblas.so.0",
                         blas.info.library, blas.info.config);
    return GAN_OK;
}

/* OpenBLAS on its own threads for one call outside OpenMP regions, as gan_blas_sgemm does. */
static bool blas_threads_begin(void)
{
    bool own = blas.split && blas.info.threads > 1 && !omp_in_parallel();
    if (own)
        blas.set_num_threads(blas.info.threads);
    return own;
}

static void blas_threads_end(bool own)
{
    if (own)
        blas.set_num_threads(1);
}

gan_status gan_blas_dgemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double *a,
                          int lda, const double *b, int ldb, double beta, double *c, int ldc)
{
    GAN_TRY(gan_blas_init()); /* before the routine is looked at */
    GAN_TRY(check_double_routine((const void *)blas.dgemm, "cblas_dgemm"));
    int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) ||
        ldc < (n > 1 ? n : 1) || ((m && n) && ((k && (!a || !b)) || !c)))
        return gan_error(GAN_ERR_ARG, "dgemm: bad arguments m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda,
                         ldb, ldc);
    if (m == 0 || n == 0)
        return GAN_OK;
    bool own = blas_threads_begin();
    blas.dgemm(CBLAS_ROW_MAJOR, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS, trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS, m,
               n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    blas_threads_end(own);
    return GAN_OK;
}

gan_status gan_blas_dsyrk_at_a(int n, int k, double alpha, const double *a, int lda, double beta, double *c,
                               int ldc)
{
    GAN_TRY(gan_blas_init()); /* before the routine is looked at */
    GAN_TRY(check_double_routine((const void *)blas.dsyrk, "cblas_dsyrk"));
    if (n < 0 || k < 0 || lda < (n > 1 ? n : 1) || ldc < (n > 1 ? n : 1) || (n && ((k && !a) || !c)))
        return gan_error(GAN_ERR_ARG, "dsyrk: bad arguments n=%d k=%d lda=%d ldc=%d", n, k, lda, ldc);
    if (n == 0)
        return GAN_OK;
    bool own = blas_threads_begin();
    blas.dsyrk(CBLAS_ROW_MAJOR, CBLAS_UPPER, CBLAS_TRANS, n, k, alpha, a, lda, beta, c, ldc);
    blas_threads_end(own);
    return GAN_OK;
}

gan_status gan_blas_dsyevd(bool vectors, int n, double *a, double *w)
{
    GAN_TRY(gan_blas_init()); /* before the routine is looked at */
    GAN_TRY(check_double_routine((const void *)blas.dsyevd, "dsyevd_ (LAPACK)"));
    if (n < 1 || !a || !w)
        return gan_error(GAN_ERR_ARG, "dsyevd: bad arguments n=%d", n);
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    int lwork = -1, liwork = -1, info = 0, iwork_size = 0;
    double work_size = 0.0;
    /* the workspace query, then the call */
    blas.dsyevd(&jobz, &uplo, &n, a, &n, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
    if (info != 0)
        return gan_error(GAN_ERR_BACKEND, "dsyevd: workspace query for n=%d failed (info %d)", n, info);
    lwork = (int)work_size + 1;
    liwork = iwork_size > 0 ? iwork_size : 1;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return gan_error(GAN_ERR_NOMEM, "dsyevd: out of memory for the workspace of n=%d", n);
    }
    bool own = blas_threads_begin();
    blas.dsyevd(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    blas_threads_end(own);
    free(work);
    free(iwork);
    if (info > 0)
        return gan_error(GAN_ERR_NUMERIC, "dsyevd: the eigenvalues of a %dx%d matrix did not converge (info %d)",
                         n, n, info);
    if (info < 0)
        return gan_error(GAN_ERR_BACKEND, "dsyevd: argument %d was refused", -info);
    return GAN_OK;
}

gan_status gan_blas_get_info(gan_blas_info *info)
{
    if (!info)
        return gan_error(GAN_ERR_ARG, "gan_blas_get_info: info is NULL");
    GAN_TRY(gan_blas_init());
    *info = blas.info;
    return GAN_OK;
}

gan_status gan_blas_measure_sgemm_gflops(int n, int repeats, double *gflops)
{
    if (!gflops)
        return gan_error(GAN_ERR_ARG, "sgemm benchmark: gflops is NULL");
    if (n < 1 || repeats < 1)
        return gan_error(GAN_ERR_ARG, "sgemm benchmark: n = %d and repeats = %d must be >= 1", n,
                         repeats);
    if ((size_t)n > SIZE_MAX / sizeof(float) / (size_t)n - 64)
        return gan_error(GAN_ERR_ARG, "sgemm benchmark: n = %d is too large to allocate", n);
    GAN_TRY(gan_blas_init());
    /* a, b, c: [n, n] each, 64-byte aligned as a real workload's buffers would be */
    size_t bytes = ((size_t)n * n * sizeof(float) + 63) / 64 * 64;
    float *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes), *c = aligned_alloc(64, bytes);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return gan_error(GAN_ERR_NOMEM, "sgemm benchmark: out of memory for n = %d", n);
    }
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)((i * 7) % 13) * 0.01f;
        b[i] = (float)((i * 5) % 11) * 0.01f;
        c[i] = 0.0f;
    }
    (void)gan_blas_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30; /* seconds */
    for (int r = 0; r < repeats; r++) {
        double start = gan_now_s();
        (void)gan_blas_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double elapsed = gan_now_s() - start;
        if (elapsed < best)
            best = elapsed;
    }
    free(a);
    free(b);
    free(c);
    if (best <= 0.0) /* too small for the clock: say so rather than divide by zero */
        return gan_error(GAN_ERR_ARG, "sgemm benchmark: n = %d runs faster than the clock resolves", n);
    *gflops = 2.0 * n * (double)n * n / best * 1e-9;
    return GAN_OK;
}
