/* The Frechet distance and its statistics (src/eval/fid.c) against pytorch-fid's, and the .npz
 * statistics files against numpy's.
 *
 * References (tests/fixtures/fid_features.safetensors, tools/make_fid_refs.py): pytorch-fid's
 * calculate_frechet_distance (scipy's sqrtm) on numpy.mean / numpy.cov of
 *   - two synthetic sets of 2500 x 2048 features (full rank; made here from the same hash), and
 *     the same with one feature constant in both (a zero row and column in both covariances);
 *   - the committed 64 real feature vectors: 32 Fashion-MNIST against 32 colour images, 16
 *     Fashion-MNIST against the next 16 (rank-deficient covariances: 31 and 15 of 2048), and the
 *     latter through pytorch-fid's eps path (its sqrtm made to fail once).
 * Tolerance: 0.1% relative, the bar. Both sides compute the statistics in double from the
 * same float features and take the trace of the root in double (gan by eigenvalues, scipy by a
 * Schur decomposition), so they are expected to agree to ~1e-9 relative on full-rank covariances;
 * rank-deficient ones leave ~2000 eigenvalues at rounding level (~1e-16 of the largest), whose
 * square roots each side sums differently: that costs at most ~2000 x 1e-8 sqrt(max eigenvalue),
 * still far inside 0.1% of these distances. The printed relative differences show how far inside.
 * The 2,500 vs 2,500 Fashion-MNIST comparison runs the network and is a benchmark
 * (bench/compare_fid.py, bench/RESULTS.md): its statistics (32 MB each) are not committed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/fid.h"
#include "gan/image.h"
#include "gan/inception.h"
#include "gan/npz.h"
#include "parity_util.h"
#include "test_util.h"

static gan_safetensors st;

static double meta_double(const char *key)
{
    const char *text = gan_safetensors_metadata(&st, key);
    CHECK_MSG(text != NULL, "fid_features.safetensors lacks %s", key);
    return text ? strtod(text, NULL) : NAN;
}

/* tools/make_fid_refs.py's synthetic_features, value for value (float arithmetic in the same order:
 * s[j] (u + 1)^2 + 0.5 (v + 1)). */
static float *synthetic_features(uint64_t seed, double scale, int constant_column, int n, int dims)
{
    float *f = malloc((size_t)n * dims * sizeof *f);
    float *s = malloc((size_t)dims * sizeof *s);
    if (!f || !s) {
        free(f);
        free(s);
        return NULL;
    }
    for (int j = 0; j < dims; j++)
        s[j] = (float)(scale / (1.0 + j / 32.0));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dims; j++) {
            float u = parity_hash_uniform((uint64_t)i * dims + j, seed) + 1.0f;
            float v = parity_hash_uniform((uint64_t)i * 64 + (uint64_t)(j % 64), seed + 1) + 1.0f;
            f[(size_t)i * dims + j] = s[j] * (u * u) + 0.5f * v;
        }
    if (constant_column >= 0)
        for (int i = 0; i < n; i++)
            f[(size_t)i * dims + constant_column] = 0.25f;
    free(s);
    return f;
}

static void check_fid(const char *name, const gan_fid_stats *a, const gan_fid_stats *b, double offset)
{
    char key[96];
    snprintf(key, sizeof key, "fid.%s", name);
    double want = meta_double(key);
    gan_fid_result r;
    gan_status status = offset == 0.0 ? gan_frechet_distance(a, b, &r) : gan_frechet_distance_offset(a, b, offset, &r);
    CHECK_MSG(status == GAN_OK, "%s: %s", name, gan_error_message());
    if (status != GAN_OK)
        return;
    double rel = fabs(r.fid - want) / fabs(want);
    printf("FID %-26s gan %.10g  pytorch-fid %.10g  relative difference %.2e%s\n", name, r.fid, want, rel,
           r.eps_added ? " (eps)" : "");
    CHECK_MSG(rel <= 1e-3, "%s: gan's FID %.10g differs from pytorch-fid's %.10g by %.3g relative (> 0.1%%)", name,
              r.fid, want, rel);
    snprintf(key, sizeof key, "fid.%s.eps", name);
    bool reference_eps = meta_double(key) != 0.0;
    CHECK_MSG(r.eps_added == reference_eps || offset != 0.0, "%s: eps added by gan %d, by pytorch-fid %d", name,
              r.eps_added, reference_eps);
}

static void test_synthetic(void)
{
    const int n = 2500, dims = GAN_INCEPTION_FEATURES;
    for (int constant = 0; constant < 2; constant++) {
        float *fa = synthetic_features(11, 1.0, constant ? 7 : -1, n, dims);
        float *fb = synthetic_features(23, 1.1, constant ? 7 : -1, n, dims);
        gan_fid_stats a = {0}, b = {0};
        if (fa && fb) {
            CHECK_OK(gan_fid_stats_from_features(fa, n, dims, &a));
            CHECK_OK(gan_fid_stats_from_features(fb, n, dims, &b));
        }
        if (a.mu && b.mu) {
            /* the statistics themselves, against a plain double loop on a few entries */
            double mean3 = 0.0, cov_3_9 = 0.0, mean9 = 0.0;
            for (int i = 0; i < n; i++)
                mean3 += fa[(size_t)i * dims + 3], mean9 += fa[(size_t)i * dims + 9];
            mean3 /= n, mean9 /= n;
            for (int i = 0; i < n; i++)
                cov_3_9 += (fa[(size_t)i * dims + 3] - mean3) * (fa[(size_t)i * dims + 9] - mean9);
            cov_3_9 /= n - 1;
            CHECK(fabs(a.mu[3] - mean3) <= 1e-12 * fabs(mean3));
            CHECK_MSG(fabs(a.sigma[3 * dims + 9] - cov_3_9) <= 1e-9 * fabs(a.sigma[3 * dims + 3]) &&
                          a.sigma[3 * dims + 9] == a.sigma[9 * dims + 3],
                      "sigma[3, 9] %.17g, a double loop gives %.17g", a.sigma[3 * dims + 9], cov_3_9);
            check_fid(constant ? "synthetic_constant" : "synthetic", &a, &b, 0.0);
            /* (a set against itself: tests/script_fid_cli.sh) */
        }
        gan_fid_stats_free(&a);
        gan_fid_stats_free(&b);
        free(fa);
        free(fb);
    }
}

static void test_real_features(void)
{
    const int dims = GAN_INCEPTION_FEATURES;
    const float *f = parity_tensor(&st, "features", (size_t)64 * dims);
    if (!f)
        return;
    gan_fid_stats fmnist = {0}, colour = {0}, first = {0}, second = {0};
    CHECK_OK(gan_fid_stats_from_features(f, 32, dims, &fmnist));
    CHECK_OK(gan_fid_stats_from_features(f + (size_t)32 * dims, 32, dims, &colour));
    CHECK_OK(gan_fid_stats_from_features(f, 16, dims, &first));
    CHECK_OK(gan_fid_stats_from_features(f + (size_t)16 * dims, 16, dims, &second));
    if (fmnist.mu && colour.mu && first.mu && second.mu) {
        check_fid("fmnist_vs_colour", &fmnist, &colour, 0.0);
        check_fid("fmnist_halves", &first, &second, 0.0);
        check_fid("fmnist_halves_forced_eps", &first, &second, GAN_FID_EPS);
        /* one set prepared once (FID during training's reference): bit for bit the plain distance
         * (each pair costs 3 eigendecompositions of 2048x2048: one pair only) */
        gan_fid_prepared prepared;
        CHECK_OK(gan_fid_prepare(&fmnist, &prepared));
        const gan_fid_stats *others[1] = {&colour};
        for (int i = 0; i < 1 && prepared.v; i++) {
            gan_fid_result got, want;
            CHECK_OK(gan_frechet_distance_prepared(&prepared, others[i], &got));
            CHECK_OK(gan_frechet_distance(&fmnist, others[i], &want));
            CHECK_MSG(got.fid == want.fid && got.trace_sqrt == want.trace_sqrt && got.eps_added == want.eps_added,
                      "prepared distance %d: %.17g, plain %.17g", i, got.fid, want.fid);
        }
        CHECK(prepared.v != NULL);
        gan_fid_prepared_free(&prepared);
    }
    CHECK_FAILS_WITH(gan_fid_stats_from_features(f, 1, dims, &first), GAN_ERR_ARG, "at least 2 images");
    gan_fid_stats_free(&fmnist);
    gan_fid_stats_free(&colour);
    gan_fid_stats_free(&first);
    gan_fid_stats_free(&second);
}

/* ---- .npz files --------------------------------------------------------------------------- */

static bool have_numpy(void) { return system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0; }

static void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *file = fopen(path, "wb");
    CHECK(file && fwrite(bytes, 1, n, file) == n);
    if (file)
        fclose(file);
}

static void test_npz(void)
{
    const char *dir = test_temp_dir("test_fid_distance");
    char path[1024], other[1024], cmd[4096];
    const int dims = 5;
    gan_fid_stats s = {0}, back = {0};
    CHECK_OK(gan_fid_stats_from_features((const float[]){1, 2, 3, 4, 5.5f, 0, 1, 0, 2, 9, 3, 3, 1, 7, -2}, 3, dims, &s));
    if (!s.mu)
        return;
    snprintf(path, sizeof path, "%s/gan.npz", dir);
    CHECK_OK(gan_fid_stats_write(path, &s));
    CHECK_OK(gan_fid_stats_read(path, 0, &back));
    CHECK(back.dims == dims && back.mu && back.sigma);
    if (back.mu) {
        CHECK(memcmp(back.mu, s.mu, dims * sizeof(double)) == 0);
        CHECK(memcmp(back.sigma, s.sigma, (size_t)dims * dims * sizeof(double)) == 0);
    }
    gan_fid_stats_free(&back);
    CHECK_FAILS_WITH(gan_fid_stats_read(path, 2048, &back), GAN_ERR_FORMAT, "statistics of 5 features");
    /* the input check reads a statistics file too (it used to pass it unread) */
    int64_t images = -1;
    CHECK_FAILS_WITH(gan_fid_input_check(path, GAN_FID_INPUT_STATS, &images), GAN_ERR_FORMAT, "statistics of 5 features");
    /* a read with a limit: sigma [5, 5] is 25 values */
    gan_npz_array array = {0};
    CHECK_OK(gan_npz_read_at_most(path, "sigma", 25, &array));
    CHECK(array.ndim == 2 && array.shape[0] == dims && array.shape[1] == dims);
    free(array.data);
    CHECK_FAILS_WITH(gan_npz_read_at_most(path, "sigma", 24, &array), GAN_ERR_FORMAT,
                     "sigma.npy is [5, 5]: more than the 24 values expected");

    if (!have_numpy()) {
        printf("skipped the numpy half of the .npz checks: /usr/bin/python3 cannot import numpy (Debian python3-numpy, tools/setup.sh)\n");
    } else {
        /* numpy reads gan's file as pytorch-fid does (np.load(path)['mu'][:]) and gets the same numbers */
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np, sys; f = np.load('%s'); m, s = f['mu'][:], f['sigma'][:]; "
                 "ok = m.dtype == np.float64 and m.shape == (5,) and s.shape == (5, 5) and "
                 "abs(m - np.array([4/3, 2, 4/3, 13/3, 25/6])).max() < 1e-12 and "
                 "abs(s - np.cov(np.array([[1,2,3,4,5.5],[0,1,0,2,9],[3,3,1,7,-2]], np.float32).astype(np.float64), rowvar=False)).max() < 1e-12; "
                 "sys.exit(0 if ok else 1)\"",
                 path);
        CHECK_MSG(system(cmd) == 0, "numpy does not read gan's .npz as written: %s", path);
        /* gan reads numpy's: savez (stored), savez_compressed (deflated), float32, Fortran order,
         * pytorch-fid's own writer (np.savez_compressed(path, mu=, sigma=)) */
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np; d = '%s'; rng = np.random.default_rng(5); x = rng.normal(size=(40, 7)); "
                 "m, s = x.mean(0), np.cov(x, rowvar=False); "
                 "np.savez(d + '/stored.npz', mu=m, sigma=s); np.savez_compressed(d + '/deflated.npz', mu=m, sigma=s); "
                 "np.savez(d + '/f32.npz', mu=m.astype(np.float32), sigma=s.astype(np.float32)); "
                 "np.savez(d + '/fortran.npz', sigma=np.asfortranarray(s + np.triu(np.ones((7, 7)), 1) * 0), mu=m); "
                 "np.savez(d + '/badshape.npz', mu=m, sigma=s[:, :6]); np.savez(d + '/nomu.npz', sigma=s); "
                 "np.savez(d + '/mu2d.npz', mu=m[None], sigma=s); np.savez(d + '/ints.npz', mu=np.arange(7), sigma=s); "
                 "np.savez(d + '/asym.npz', mu=m, sigma=s + np.triu(np.ones((7, 7)), 1)); "
                 "np.savez_compressed(d + '/bigsigma.npz', mu=m, sigma=np.zeros((200, 200), np.float32)); "
                 "np.savez(d + '/tallsigma.npz', mu=m, sigma=np.zeros((8, 7))); "
                 "np.save(d + '/want.npy', np.concatenate([m, s.ravel()]))\"",
                 dir);
        CHECK_MSG(system(cmd) == 0, "numpy could not write the test files");
        double *want = NULL;
        snprintf(other, sizeof other, "%s/want.npy", dir);
        FILE *file = fopen(other, "rb");
        if (file) {
            want = malloc(56 * sizeof *want);
            fseek(file, -56 * (long)sizeof(double), SEEK_END);
            CHECK(fread(want, sizeof(double), 56, file) == 56);
            fclose(file);
        }
        const char *good[] = {"stored", "deflated", "f32", "fortran"};
        for (int i = 0; i < 4 && want; i++) {
            snprintf(other, sizeof other, "%s/%s.npz", dir, good[i]);
            gan_fid_stats g = {0};
            gan_status status = gan_fid_stats_read(other, 7, &g);
            CHECK_MSG(status == GAN_OK, "%s: %s", good[i], gan_error_message());
            if (status == GAN_OK) {
                double tol = !strcmp(good[i], "f32") ? 1e-6 : 0.0, worst = 0.0;
                for (int k = 0; k < 7; k++)
                    worst = fmax(worst, fabs(g.mu[k] - want[k]));
                for (int k = 0; k < 49; k++)
                    worst = fmax(worst, fabs(g.sigma[k] - want[7 + k]));
                CHECK_MSG(worst <= tol * 4.0, "%s.npz read with a largest difference of %g", good[i], worst);
            }
            gan_fid_stats_free(&g);
        }
        free(want);
        const struct { const char *file, *needle; } bad[] = {
            {"badshape", "sigma is [7, 6] but mu has 7 features"}, {"nomu", "no array 'mu'"},
            {"mu2d", "mu has 2 dimensions"}, {"ints", "dtype '<i8'"}, {"asym", "not symmetric"},
            /* sigma larger than mu's length allows: a deflated one is refused by its size before
             * it is inflated (a 4 MB file once claimed a 4 GB sigma and got 12 GB allocated), a
             * small one by its shape before it is converted */
            {"bigsigma", "sigma.npy is 160128 bytes, more than 49 values take"},
            {"tallsigma", "sigma.npy is [8, 7]: more than the 49 values expected"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(other, sizeof other, "%s/%s.npz", dir, bad[i].file);
            gan_fid_stats g = {0};
            CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &g), GAN_ERR_FORMAT, bad[i].needle);
        }
    }

    /* damaged files: not a zip, truncated, a flipped data byte (CRC), an empty file */
    size_t size = 0, cap = 0;
    uint8_t *bytes = NULL;
    CHECK_OK(gan_file_read(path, &bytes, &cap, &size));
    if (bytes && size > 200) {
        snprintf(other, sizeof other, "%s/damaged.npz", dir);
        bytes[170] ^= 0x40; /* inside mu's data */
        write_file(other, bytes, size);
        CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &back), GAN_ERR_FORMAT, "CRC-32");
        bytes[170] ^= 0x40;
        write_file(other, bytes, size / 2);
        CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &back), GAN_ERR_FORMAT, "not a .npz");
        write_file(other, "PK", 2);
        CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &back), GAN_ERR_FORMAT, "too short");
        write_file(other, "", 0);
        CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &back), GAN_ERR_FORMAT, "too short");
        /* 42 bytes: a ZIP64 locator pointing far away, then an end record asking for ZIP64. A file
         * shorter than the ZIP64 end record (56 bytes) once made the bound size - 56 wrap around and
         * the reader read at the locator's offset (a crash). */
        static const uint8_t short64[42] = {
            0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 0, /* locator */
            0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0, 0, /* end record: every count and offset 0xFF.. (ZIP64) */
        };
        write_file(other, short64, sizeof short64);
        CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &back), GAN_ERR_FORMAT, "ZIP64 end record is missing");
    }
    free(bytes);
    snprintf(other, sizeof other, "%s/missing.npz", dir);
    CHECK_FAILS_WITH(gan_fid_stats_read(other, 0, &back), GAN_ERR_IO, "missing.npz");
    gan_fid_stats_free(&s);
}

int main(void)
{
    if (!parity_open("fid_features", &st))
        return test_finish();
    test_npz();
    test_real_features();
    test_synthetic();
    gan_safetensors_close(&st);
    return test_finish();
}
