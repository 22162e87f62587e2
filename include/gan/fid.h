/* The Frechet Inception Distance (src/eval/fid.c): feature statistics, their .npz files, and the
 * distance, in double precision, as pytorch-fid computes them.
 *
 *   statistics   mu = the mean of N feature vectors, sigma = their covariance with N - 1
 *                (numpy.mean, numpy.cov(rowvar=False): pytorch-fid's calculate_activation_statistics);
 *   files        pytorch-fid's .npz layout: float64 arrays mu [dims] and sigma [dims, dims]
 *                (gan/npz.h reads numpy.savez and numpy.savez_compressed files alike);
 *   distance     |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2).
 *
 * The trace of the square root is computed from eigenvalues, with LAPACK (dsyevd from the loaded
 * OpenBLAS, gan/blas.h) rather than a matrix square root: sigma1 = V diag(l) V^T; the eigenvalues
 * m_i of M = diag(sqrt l) V^T sigma2 V diag(sqrt l), which is sqrt(sigma1) sigma2 sqrt(sigma1) in
 * the basis V, are those of sigma1 sigma2 (AB and BA share their eigenvalues; both are >= 0 for
 * covariances), so tr sqrt(sigma1 sigma2) = sum sqrt(m_i), with eigenvalues below zero (rounding)
 * taken as zero. pytorch-fid takes scipy's sqrtm of sigma1 sigma2 instead and, when that gives a
 * non-finite matrix (a singular product its algorithm cannot take the root of), adds eps = 1e-6 to
 * both diagonals inside the root and tries again; gan does the same when its computation fails
 * (non-finite, or LAPACK not converging), and says so in the result. */
#ifndef GAN_FID_H
#define GAN_FID_H

#include <stdbool.h>
#include <stdint.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* pytorch-fid's offset for a singular product. */
#define GAN_FID_EPS 1e-6

typedef struct gan_fid_stats {
    int dims;
    int64_t count;  /* feature vectors they were made from (0 when read from a file) */
    double *mu;     /* [dims] */
    double *sigma;  /* [dims, dims], symmetric */
} gan_fid_stats;

/* mu and sigma of `count` >= 2 feature vectors features [count, dims] (float, host). */
gan_status gan_fid_stats_from_features(const float *features, int64_t count, int dims, gan_fid_stats *out);
void gan_fid_stats_free(gan_fid_stats *stats);

/* pytorch-fid's .npz: mu [dims] and sigma [dims, dims] (float64; float32 is read too). The reader
 * checks the shapes (mu 1-d, sigma square and as wide as mu, `expect_dims` when > 0), symmetry
 * (within 1e-9 relative) and finiteness, naming the file and the array. */
gan_status gan_fid_stats_read(const char *path, int expect_dims, gan_fid_stats *out);
gan_status gan_fid_stats_write(const char *path, const gan_fid_stats *stats);

typedef struct gan_fid_result {
    double fid;
    double mean_term;   /* |mu1 - mu2|^2 */
    double trace_sqrt;  /* tr sqrt(sigma1 sigma2) */
    bool eps_added;     /* the offset of a singular product was needed */
} gan_fid_result;

/* The distance between two sets of statistics of the same dims. */
gan_status gan_frechet_distance(const gan_fid_stats *a, const gan_fid_stats *b, gan_fid_result *out);

/* The same with `offset` added to both diagonals inside the root (and not to the traces), as
 * pytorch-fid's singular-product path computes it: gan_frechet_distance's fallback. */
gan_status gan_frechet_distance_offset(const gan_fid_stats *a, const gan_fid_stats *b, double offset,
                                       gan_fid_result *out);

/* Many distances against one set (FID during training: the reference statistics): the first
 * set's eigendecomposition is computed once, which halves the LAPACK work of each distance.
 * gan_frechet_distance_prepared(prepared of A, B) is gan_frechet_distance(A, B), the same
 * operations in the same order (bit for bit), the eps fallback included. `a` must outlive the
 * prepared form. */
typedef struct gan_fid_prepared {
    const gan_fid_stats *stats;
    double *v;     /* [dims, dims] the eigenvectors of sigma (NULL: its decomposition failed) */
    double *root;  /* [dims] the square roots of its eigenvalues (negative ones as 0) */
} gan_fid_prepared;

gan_status gan_fid_prepare(const gan_fid_stats *a, gan_fid_prepared *out);
void gan_fid_prepared_free(gan_fid_prepared *prepared);
gan_status gan_frechet_distance_prepared(const gan_fid_prepared *a, const gan_fid_stats *b, gan_fid_result *out);

/* ---- what `gan fid` reads (src/eval/fid_input.c) ------------------------------------------ */

typedef enum gan_fid_input_kind {
    GAN_FID_INPUT_FOLDER, /* PNG/JPEG files below a folder (gan_folder_list's rules) */
    GAN_FID_INPUT_NPY,    /* uint8 [N, H, W, C] (gan prepare) or float32 [N, C, H, W] in [-1, 1]
                             (gan sample --npy), C 1 or 3 */
    GAN_FID_INPUT_STATS   /* a statistics .npz */
} gan_fid_input_kind;

/* By what the path is: a folder, a file starting as a .npy does, a zip (or a name ending .npz);
 * anything else is refused naming it. */
gan_status gan_fid_input_kind_of(const char *path, gan_fid_input_kind *kind);

/* Checks what an input holds before the network is loaded (*images: how many; 0 for statistics):
 * a folder without images, a .npy that is not images, or one of no images, is refused naming it;
 * a statistics file is read and checked as gan_fid_stats_read does for the network's 2048
 * features (a caller that keeps the statistics can read them with that instead). */
gan_status gan_fid_input_check(const char *path, gan_fid_input_kind kind, int64_t *images);

/* What gan_fid_input_inspect finds in an input. A folder is listed by gan_folder_list's rules
 * (.png/.jpg/.jpeg in any letter case, in subfolders too), which are not pytorch-fid's (the top
 * level only, lower-case names, and also .bmp/.pgm/.ppm/.tif/.tiff/.webp): the counts say where
 * the two would read different sets. */
typedef struct gan_fid_input_info {
    int64_t images;        /* images the input holds (0 for statistics) */
    int64_t in_subfolders; /* a folder's images below a subfolder of it */
    int64_t upper_case;    /* a folder's images whose extension is not all lower case */
    int64_t ignored;       /* a folder's other files (not read) */
} gan_fid_input_info;

/* gan_fid_input_check with the counts above. */
gan_status gan_fid_input_inspect(const char *path, gan_fid_input_kind kind, gan_fid_input_info *info);

/* Called now and then with the images done so far; may be NULL. */
typedef void (*gan_fid_progress)(void *ctx, int64_t done, int64_t total);

typedef struct gan_inception gan_inception;

/* The FID Inception's features of every image of a folder or a .npy: *features malloc'ed
 * [*count, 2048]. Folder images are decoded as RGB (gray replicated, alpha dropped), in parallel,
 * each at its own size; a file that cannot be decoded stops it, naming the file. */
gan_status gan_fid_features_of(gan_inception *net, const char *path, float **features, int64_t *count,
                               gan_fid_progress progress, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
