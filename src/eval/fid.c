/* The Frechet distance and its statistics (see gan/fid.h for the method). */
#include "gan/fid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/blas.h"
#include "gan/npz.h"

/* Feature rows centred and converted to double per block, then added into sigma by dsyrk. */
enum { STATS_BLOCK_ROWS = 256 };

void gan_fid_stats_free(gan_fid_stats *stats)
{
    if (!stats)
        return;
    free(stats->mu);
    free(stats->sigma);
    memset(stats, 0, sizeof *stats);
}

static gan_status stats_alloc(int dims, gan_fid_stats *out)
{
    memset(out, 0, sizeof *out);
    out->dims = dims;
    out->mu = malloc((size_t)dims * sizeof *out->mu);
    out->sigma = malloc((size_t)dims * dims * sizeof *out->sigma);
    if (!out->mu || !out->sigma) {
        gan_fid_stats_free(out);
        return gan_error(GAN_ERR_NOMEM, "out of memory for the statistics of %d features", dims);
    }
    return GAN_OK;
}

/* The lower triangle from the upper (row-major). */
static void mirror_upper(double *m, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            m[(size_t)i * n + j] = m[(size_t)j * n + i];
}

gan_status gan_fid_stats_from_features(const float *features, int64_t count, int dims, gan_fid_stats *out)
{
    if (!features || !out || dims < 1 || dims > 65536)
        return gan_error(GAN_ERR_ARG, "FID statistics: bad arguments (dims %d)", dims);
    if (count < 2)
        return gan_error(GAN_ERR_ARG, "FID statistics need at least 2 images (got %lld): a covariance of one "
                                      "image is undefined",
                         (long long)count);
    GAN_TRY(stats_alloc(dims, out));
    out->count = count;
    gan_status status = GAN_OK;
    double *block = malloc((size_t)STATS_BLOCK_ROWS * dims * sizeof *block);
    if (!block) {
        status = gan_error(GAN_ERR_NOMEM, "out of memory for the FID statistics");
        goto cleanup;
    }
    for (int j = 0; j < dims; j++)
        out->mu[j] = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const float *row = features + (size_t)i * dims;
        for (int j = 0; j < dims; j++)
            out->mu[j] += row[j];
    }
    for (int j = 0; j < dims; j++)
        out->mu[j] /= (double)count;
    /* sigma = (X - mu)^T (X - mu) / (N - 1), as numpy.cov */
    for (int64_t first = 0; first < count; first += STATS_BLOCK_ROWS) {
        int rows = (int)(count - first < STATS_BLOCK_ROWS ? count - first : STATS_BLOCK_ROWS);
        for (int r = 0; r < rows; r++) {
            const float *row = features + (size_t)(first + r) * dims;
            for (int j = 0; j < dims; j++)
                block[(size_t)r * dims + j] = (double)row[j] - out->mu[j];
        }
        GAN_CHECK(gan_blas_dsyrk_at_a(dims, rows, 1.0, block, dims, first == 0 ? 0.0 : 1.0, out->sigma, dims));
    }
    mirror_upper(out->sigma, dims);
    for (size_t k = 0; k < (size_t)dims * dims; k++)
        out->sigma[k] /= (double)(count - 1);
    free(block);
    return GAN_OK;
cleanup:
    free(block);
    gan_fid_stats_free(out);
    return status;
}

/* ---- files -------------------------------------------------------------------------------- */

static gan_status check_finite(const char *path, const char *name, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return gan_error(GAN_ERR_FORMAT, "%s: %s[%zu] is %g: statistics must be finite", path, name, i, v[i]);
    return GAN_OK;
}

gan_status gan_fid_stats_read(const char *path, int expect_dims, gan_fid_stats *out)
{
    if (!path || !out)
        return gan_error(GAN_ERR_ARG, "gan_fid_stats_read: NULL argument");
    memset(out, 0, sizeof *out);
    gan_npz_array mu = {0}, sigma = {0};
    gan_status status = GAN_OK;
    /* mu first, its length checked, then sigma read with a bound from it: a small deflated file
     * can claim a sigma of gigabytes, refused before it is inflated */
    GAN_CHECK(gan_npz_read_at_most(path, "mu", 65536, &mu));
    if (mu.ndim != 1 || mu.shape[0] < 1 || mu.shape[0] > 65536) {
        status = gan_error(GAN_ERR_FORMAT, "%s: mu has %d dimensions%s; FID statistics hold mu [dims] and sigma "
                                           "[dims, dims] (pytorch-fid's .npz)",
                           path, mu.ndim, mu.ndim == 1 ? " of an impossible size" : "");
        goto cleanup;
    }
    int dims = (int)mu.shape[0];
    if (expect_dims > 0 && dims != expect_dims) {
        status = gan_error(GAN_ERR_FORMAT, "%s: statistics of %d features; the FID Inception's have %d", path, dims,
                           expect_dims);
        goto cleanup;
    }
    GAN_CHECK(gan_npz_read_at_most(path, "sigma", (uint64_t)dims * (uint64_t)dims, &sigma));
    if (sigma.ndim != 2 || sigma.shape[0] != dims || sigma.shape[1] != dims) {
        char shape[192] = "";
        for (int d = 0, used = 0; d < sigma.ndim && used < (int)sizeof shape; d++)
            used += snprintf(shape + used, sizeof shape - (size_t)used, "%s%lld", d ? ", " : "", (long long)sigma.shape[d]);
        status = gan_error(GAN_ERR_FORMAT, "%s: sigma is [%s] but mu has %d features: sigma must be [%d, %d]", path,
                           shape, dims, dims, dims);
        goto cleanup;
    }
    GAN_CHECK(check_finite(path, "mu", mu.data, (size_t)dims));
    GAN_CHECK(check_finite(path, "sigma", sigma.data, (size_t)dims * dims));
    for (int i = 0; i < dims; i++)
        for (int j = 0; j < i; j++) {
            double a = sigma.data[(size_t)i * dims + j], b = sigma.data[(size_t)j * dims + i];
            if (fabs(a - b) > 1e-9 * (fabs(a) + fabs(b)) + 1e-300) {
                status = gan_error(GAN_ERR_FORMAT, "%s: sigma is not symmetric (sigma[%d, %d] = %g, sigma[%d, %d] = "
                                                   "%g): not a covariance",
                                   path, i, j, a, j, i, b);
                goto cleanup;
            }
        }
    out->dims = dims;
    out->count = 0;
    out->mu = mu.data;
    out->sigma = sigma.data;
    return GAN_OK;
cleanup:
    free(mu.data);
    free(sigma.data);
    return status;
}

gan_status gan_fid_stats_write(const char *path, const gan_fid_stats *stats)
{
    if (!path || !stats || !stats->mu || !stats->sigma || stats->dims < 1)
        return gan_error(GAN_ERR_ARG, "gan_fid_stats_write: no statistics");
    gan_npz_array arrays[2] = {
        {.name = "mu", .ndim = 1, .shape = {stats->dims}, .data = stats->mu},
        {.name = "sigma", .ndim = 2, .shape = {stats->dims, stats->dims}, .data = stats->sigma},
    };
    return gan_npz_write(path, arrays, 2);
}

/* ---- the distance ------------------------------------------------------------------------- */

/* S1 + offset I = V diag(lambda) V^T: v [n, n] holds V column-major, i.e. V^T row-major (row j:
 * eigenvector j); root[i] = sqrt(max(lambda_i, 0)). */
static gan_status decompose(const gan_fid_stats *a, double offset, double *v, double *root)
{
    const int n = a->dims;
    memcpy(v, a->sigma, (size_t)n * n * sizeof *v);
    for (int i = 0; i < n; i++)
        v[(size_t)i * n + i] += offset;
    GAN_TRY(gan_blas_dsyevd(true, n, v, root));
    for (int i = 0; i < n; i++)
        root[i] = root[i] > 0.0 ? sqrt(root[i]) : 0.0;
    return GAN_OK;
}

/* tr sqrt((S1 + offset I)(S2 + offset I)) from S1's decomposition (v, root) by the eigenvalues of
 * sqrt(S1') S2' sqrt(S1') (gan/fid.h). */
static gan_status trace_sqrt_decomposed(const double *v, const double *root, const gan_fid_stats *b, double offset,
                                        double *trace)
{
    const int n = b->dims;
    const size_t nn = (size_t)n * n;
    double *s2 = malloc(nn * sizeof *s2), *t = malloc(nn * sizeof *t);
    double *lambda = malloc((size_t)n * sizeof *lambda);
    gan_status status = GAN_OK;
    if (!s2 || !t || !lambda) {
        status = gan_error(GAN_ERR_NOMEM, "out of memory for the Frechet distance of %d features", n);
        goto cleanup;
    }
    memcpy(s2, b->sigma, nn * sizeof *s2);
    for (int i = 0; i < n; i++)
        s2[(size_t)i * n + i] += offset;
    /* t = V^T S2, then s2 = (V^T S2) V = t (V^T)^T: S2 in the eigenbasis of S1 */
    GAN_CHECK(gan_blas_dgemm(false, false, n, n, n, 1.0, v, n, s2, n, 0.0, t, n));
    GAN_CHECK(gan_blas_dgemm(false, true, n, n, n, 1.0, t, n, v, n, 0.0, s2, n));
    /* M = diag(root) (V^T S2 V) diag(root), symmetrised against rounding */
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double m = 0.5 * (s2[(size_t)i * n + j] + s2[(size_t)j * n + i]) * root[i] * root[j];
            s2[(size_t)i * n + j] = s2[(size_t)j * n + i] = m;
        }
    GAN_CHECK(gan_blas_dsyevd(false, n, s2, lambda));
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += lambda[i] > 0.0 ? sqrt(lambda[i]) : 0.0;
    if (!isfinite(sum)) {
        status = gan_error(GAN_ERR_NUMERIC, "the trace of the square root is %g", sum);
        goto cleanup;
    }
    *trace = sum;
cleanup:
    free(s2);
    free(t);
    free(lambda);
    return status;
}

static gan_status trace_sqrt_product(const gan_fid_stats *a, const gan_fid_stats *b, double offset, double *trace)
{
    const int n = a->dims;
    double *v = malloc((size_t)n * n * sizeof *v), *root = malloc((size_t)n * sizeof *root);
    gan_status status = GAN_OK;
    if (!v || !root) {
        status = gan_error(GAN_ERR_NOMEM, "out of memory for the Frechet distance of %d features", n);
        goto cleanup;
    }
    GAN_CHECK(decompose(a, offset, v, root));
    GAN_CHECK(trace_sqrt_decomposed(v, root, b, offset, trace));
cleanup:
    free(v);
    free(root);
    return status;
}

static gan_status check_pair(const gan_fid_stats *a, const gan_fid_stats *b)
{
    if (!a || !b || !a->mu || !a->sigma || !b->mu || !b->sigma)
        return gan_error(GAN_ERR_ARG, "Frechet distance: missing statistics");
    if (a->dims != b->dims)
        return gan_error(GAN_ERR_ARG, "Frechet distance: statistics of %d and %d features cannot be compared",
                         a->dims, b->dims);
    return GAN_OK;
}

/* |mu1 - mu2|^2 + tr S1 + tr S2 - 2 trace_sqrt */
static void assemble(const gan_fid_stats *a, const gan_fid_stats *b, double offset, double trace_sqrt,
                     gan_fid_result *out)
{
    const int n = a->dims;
    double mean = 0.0, traces = 0.0;
    for (int i = 0; i < n; i++) {
        double d = a->mu[i] - b->mu[i];
        mean += d * d;
        traces += a->sigma[(size_t)i * n + i] + b->sigma[(size_t)i * n + i];
    }
    out->mean_term = mean;
    out->trace_sqrt = trace_sqrt;
    out->fid = mean + traces - 2.0 * trace_sqrt;
    out->eps_added = offset != 0.0;
}

gan_status gan_frechet_distance_offset(const gan_fid_stats *a, const gan_fid_stats *b, double offset,
                                       gan_fid_result *out)
{
    GAN_TRY(check_pair(a, b));
    double trace_sqrt = 0.0;
    GAN_TRY(trace_sqrt_product(a, b, offset, &trace_sqrt));
    assemble(a, b, offset, trace_sqrt, out);
    return GAN_OK;
}

gan_status gan_frechet_distance(const gan_fid_stats *a, const gan_fid_stats *b, gan_fid_result *out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "Frechet distance: no result pointer");
    memset(out, 0, sizeof *out);
    gan_status status = gan_frechet_distance_offset(a, b, 0.0, out);
    if (status != GAN_ERR_NUMERIC)
        return status;
    /* pytorch-fid's path for a product whose root it cannot take: eps on both diagonals */
    gan_error_clear();
    return gan_frechet_distance_offset(a, b, GAN_FID_EPS, out);
}

gan_status gan_fid_prepare(const gan_fid_stats *a, gan_fid_prepared *out)
{
    memset(out, 0, sizeof *out);
    GAN_TRY(check_pair(a, a));
    const int n = a->dims;
    out->stats = a;
    out->v = malloc((size_t)n * n * sizeof *out->v);
    out->root = malloc((size_t)n * sizeof *out->root);
    gan_status status = GAN_OK;
    if (!out->v || !out->root) {
        status = gan_error(GAN_ERR_NOMEM, "out of memory for the Frechet distance of %d features", n);
        goto cleanup;
    }
    status = decompose(a, 0.0, out->v, out->root);
    if (status == GAN_OK)
        return GAN_OK;
    /* (a set whose own decomposition fails: each distance takes gan_frechet_distance's path) */
    gan_error_clear();
    status = GAN_OK;
cleanup:
    free(out->v);
    free(out->root);
    out->v = out->root = NULL;
    return status;
}

void gan_fid_prepared_free(gan_fid_prepared *prepared)
{
    free(prepared->v);
    free(prepared->root);
    memset(prepared, 0, sizeof *prepared);
}

gan_status gan_frechet_distance_prepared(const gan_fid_prepared *a, const gan_fid_stats *b, gan_fid_result *out)
{
    if (!out || !a || !a->stats)
        return gan_error(GAN_ERR_ARG, "Frechet distance: missing statistics");
    memset(out, 0, sizeof *out);
    GAN_TRY(check_pair(a->stats, b));
    if (a->v) {
        double trace_sqrt = 0.0;
        gan_status status = trace_sqrt_decomposed(a->v, a->root, b, 0.0, &trace_sqrt);
        if (status == GAN_OK) {
            assemble(a->stats, b, 0.0, trace_sqrt, out);
            return GAN_OK;
        }
        if (status != GAN_ERR_NUMERIC)
            return status;
        gan_error_clear();
    }
    return gan_frechet_distance(a->stats, b, out);
}
