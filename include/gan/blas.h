/* The BLAS the CPU backend runs on. OpenBLAS is loaded at run time (dlopen) rather than linked,
 * so that OPENBLAS_CORETYPE can be chosen from the CPU's features before OpenBLAS's constructor
 * reads it: Debian's OpenBLAS misdetects CPUs it does not know and falls back to a slow core. */
#ifndef GAN_BLAS_H
#define GAN_BLAS_H

#include <stdbool.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the BLAS once (later calls return at once); thread-safe. Sets OPENBLAS_CORETYPE from
 * cpuid/xgetbv (AVX-512 F/BW/VL/DQ with the OS saving their state: SkylakeX; AVX2+FMA: Haswell;
 * otherwise left to OpenBLAS); a value already in the environment stays when it names that core
 * or an equal one and is replaced, with a note in the info, when it names a slower core or one
 * this CPU cannot run; GAN_BLAS_CORETYPE pins a core as given. Then it dlopens, in order,
 * $GAN_BLAS_LIBRARY, libopenblas.so.0, libopenblas.so, libblas.so.3. A BLAS already in the process
 * (loaded by a host program or a plugin) is used as it is and reported so in the info. Threads:
 * OpenBLAS's own count (every core, or OPENBLAS_NUM_THREADS / OMP_NUM_THREADS) is info.threads;
 * an OpenBLAS gan loaded itself keeps to the calling thread between calls, so that its workers
 * sleep while OpenMP's threads work (gan_blas_sgemm hands it its threads for the call; the CPU
 * convolutions split their work over OpenMP threads and call gan_blas_sgemm_this_thread).
 * Modifies the process's environment (OPENBLAS_CORETYPE, OPENBLAS_THREAD_TIMEOUT), which child
 * processes inherit. */
gan_status gan_blas_init(void);

/* Row-major single-precision GEMM: C[m, n] = alpha op(A) op(B) + beta C, where op(A) is [m, k]
 * (A stored [m, k], lda >= k; or with trans_a, stored [k, m], lda >= m), op(B) is [k, n] (B stored
 * [k, n], ldb >= n; or with trans_b, [n, k], ldb >= k) and ldc >= n. Loads the BLAS if needed.
 * Bit-identical from run to run for the same thread count. On OpenBLAS's threads (info.threads);
 * inside an OpenMP parallel region, on the calling thread. It hands OpenBLAS its threads by
 * openblas_set_num_threads around the call (a process-wide setting): one host thread at a time
 * may call it outside OpenMP regions, as gan's trainer does (the data loader's thread does no
 * GEMMs); calls from the threads of one OpenMP region are fine. */
gan_status gan_blas_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc);

/* The same GEMM on the calling thread only: for code that splits its work over OpenMP threads
 * itself (the CPU convolutions), each thread calling this on its own part. */
gan_status gan_blas_sgemm_this_thread(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                                      const float *a, int lda, const float *b, int ldb, float beta,
                                      float *c, int ldc);

/* Double precision for the Frechet distance (src/eval/fid.c), from the same library, on its own
 * threads for the call (as gan_blas_sgemm). GAN_ERR_UNSUPPORTED, saying so, where the library
 * lacks the routine (libblas.so.3 has no LAPACK) or uses 64-bit integers.
 * Row-major C[m, n] = alpha op(A) op(B) + beta C, the conventions of gan_blas_sgemm. */
gan_status gan_blas_dgemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double *a,
                          int lda, const double *b, int ldb, double beta, double *c, int ldc);
/* Row-major A [k, n] (lda >= n): the upper triangle of C [n, n] = alpha A^T A + beta C (the strict
 * lower triangle is not written). */
gan_status gan_blas_dsyrk_at_a(int n, int k, double alpha, const double *a, int lda, double beta, double *c,
                               int ldc);
/* LAPACK's dsyevd (divide and conquer) on the symmetric a [n, n], of which only the upper triangle
 * in column-major terms (the lower in row-major) is read: the eigenvalues ascending into w[n]; with
 * `vectors`, the eigenvectors into a's columns (column-major: eigenvector j is a[j n .. j n + n - 1]),
 * else a is overwritten. GAN_ERR_NUMERIC when the iteration does not converge. */
gan_status gan_blas_dsyevd(bool vectors, int n, double *a, double *w);

typedef struct gan_blas_info {
    char library[256];     /* the file loaded, e.g. libopenblas.so.0 ("... (already loaded
                              before gan)" when it was in the process before gan_blas_init) */
    char config[256];      /* openblas_get_config(), or "(not OpenBLAS)" */
    char core[64];         /* openblas_get_corename() as reported after loading, or "(unknown)" */
    char coretype_set[64]; /* the OPENBLAS_CORETYPE gan chose, or "" (the environment's value kept,
                              GAN_BLAS_CORETYPE's, or OpenBLAS's own detection) */
    int threads;           /* BLAS threads */
    char note[512];        /* "" when all went as planned; otherwise what did not, e.g. OpenBLAS
                              runs another core than the one gan set (it works, more slowly), the
                              library was loaded before gan, $GAN_BLAS_LIBRARY could not be loaded */
} gan_blas_info;

gan_status gan_blas_get_info(gan_blas_info *info);

/* Measured single-precision GEMM speed on n x n x n: one warm-up call, then the best wall time
 * of `repeats` calls of gan_blas_sgemm, as 2 n^3 / t in GFLOP/s. */
gan_status gan_blas_measure_sgemm_gflops(int n, int repeats, double *gflops);

#ifdef __cplusplus
}
#endif
#endif
