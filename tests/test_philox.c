/* Philox4x32-10 against Random123's known-answer vectors, and the fills built on it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "test_util.h"

int main(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/philox_kat.txt", test_source_dir());
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    int vectors = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        unsigned c[4], k[2], want[4];
        int rounds = 0;
        if (sscanf(line, "philox4x32 %d %x %x %x %x %x %x %x %x %x %x", &rounds, &c[0], &c[1], &c[2],
                   &c[3], &k[0], &k[1], &want[0], &want[1], &want[2], &want[3]) != 11 || rounds != 10)
            continue;
        gan_philox4 ctr = {{c[0], c[1], c[2], c[3]}};
        gan_philox4 got = gan_philox4x32_10(ctr, k[0], k[1]);
        for (int i = 0; i < 4; i++)
            CHECK_MSG(got.v[i] == want[i], "KAT vector %d word %d: %08x, want %08x", vectors, i,
                      got.v[i], want[i]);
        vectors++;
    }
    if (f)
        fclose(f);
    CHECK_MSG(vectors == 3, "read %d known-answer vectors, expected 3", vectors);

    gan_backend *be = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    enum { N = 1000000 };
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    /* Normal fill: moments, determinism, and positions in elements (4 to a Philox block). */
    CHECK_OK(be->rng_normal(be, N, 42, 3, gan_count_of(0), 0.0f, 1.0f, a));
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        sum += a[i];
        sq += (double)a[i] * a[i];
    }
    double mean = sum / N, std = sqrt(sq / N - mean * mean);
    CHECK_MSG(fabs(mean) < 0.01 && fabs(std - 1.0) < 0.01, "normal: mean %g std %g", mean, std);
    CHECK_OK(be->rng_normal(be, N, 42, 3, gan_count_of(0), 0.0f, 1.0f, b));
    CHECK(!memcmp(a, b, N * sizeof(float)));
    /* every value is the per-index definition, and fill(from 20) is fill(from 0) from value 20 */
    int off = 0;
    for (int i = 0; i < N; i++)
        off += a[i] != gan_philox_normal_at(42, 3, 0 + (uint64_t)i);
    CHECK_MSG(off == 0, "%d of %d normal values differ from gan_philox_normal_at", off, N);
    CHECK_OK(be->rng_normal(be, N - 20, 42, 3, gan_count_of(20), 0.0f, 1.0f, b));
    CHECK(!memcmp(a + 20, b, (N - 20) * sizeof(float)));
    CHECK_OK(be->rng_normal(be, 64, 42, 4, gan_count_of(0), 0.0f, 1.0f, b));
    CHECK(memcmp(a, b, 64 * sizeof(float)) != 0); /* another stream, other numbers */
    CHECK_OK(be->rng_normal(be, 64, 43, 3, gan_count_of(0), 0.0f, 1.0f, b));
    CHECK(memcmp(a, b, 64 * sizeof(float)) != 0); /* another seed, other numbers */
    /* Uniform fill: [0, 1), mean 1/2, variance 1/12. */
    CHECK_OK(be->rng_uniform(be, N, 7, 0, gan_count_of(0), 0.0f, 1.0f, a));
    sum = sq = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < N; i++) {
        sum += a[i];
        sq += (double)a[i] * a[i];
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    mean = sum / N;
    CHECK_MSG(lo >= 0.0f && hi < 1.0f, "uniform outside [0, 1): %g %g", lo, hi);
    CHECK_MSG(fabs(mean - 0.5) < 0.005 && fabs(sq / N - mean * mean - 1.0 / 12) < 0.005,
              "uniform: mean %g var %g", mean, sq / N - mean * mean);
    off = 0;
    for (int i = 0; i < N; i++)
        off += a[i] != gan_philox_uniform_at(7, 0, 0 + (uint64_t)i);
    CHECK_MSG(off == 0, "%d of %d uniform values differ from gan_philox_uniform_at", off, N);
    CHECK_OK(be->rng_uniform(be, N, 7, 0, gan_count_of(0), 0.0f, 1.0f, b));
    CHECK(!memcmp(a, b, N * sizeof(float))); /* same (seed, stream, offset), same numbers */
    CHECK_OK(be->rng_uniform(be, N - 44, 7, 0, gan_count_of(44), 0.0f, 1.0f, b));
    CHECK(!memcmp(a + 44, b, (N - 44) * sizeof(float))); /* from element 44 */
    CHECK_OK(be->rng_uniform(be, 64, 7, 1, gan_count_of(0), 0.0f, 1.0f, b));
    CHECK(memcmp(a, b, 64 * sizeof(float)) != 0);
    /* low + (high - low) u, and mean + std z */
    CHECK_OK(be->rng_uniform(be, 1003, 7, 0, gan_count_of(0), -2.0f, 3.0f, b));
    off = 0;
    for (int i = 0; i < 1003; i++)
        off += fabsf(b[i] - (-2.0f + 5.0f * a[i])) > 1e-6f || b[i] < -2.0f || b[i] >= 3.0f;
    CHECK_MSG(off == 0, "%d uniform [-2, 3) values are not -2 + 5 u", off);
    CHECK_OK(be->rng_normal(be, 1003, 42, 3, gan_count_of(0), 0.0f, 1.0f, a));
    CHECK_OK(be->rng_normal(be, 1003, 42, 3, gan_count_of(0), 0.5f, 0.02f, b));
    off = 0;
    for (int i = 0; i < 1003; i++)
        off += fabsf(b[i] - (0.5f + 0.02f * a[i])) > 1e-7f; /* up to a contracted multiply-add */
    CHECK_MSG(off == 0, "%d normal(0.5, 0.02) values are not 0.5 + 0.02 z", off);
    /* every value of a fill is the per-index definition (all four lanes, a partial last block) */
    CHECK_OK(be->rng_normal(be, 1003, 42, 3, gan_count_of(36), 0.0f, 1.0f, a));
    off = 0;
    for (int i = 0; i < 1003; i++)
        off += a[i] != gan_philox_normal_at(42, 3, 36 + (uint64_t)i);
    CHECK_MSG(off == 0, "%d normal values differ from gan_philox_normal_at", off);
    /* a fill may start inside a block: from element 23 it is the fill from 20 shifted by 3 */
    CHECK_OK(be->rng_normal(be, 1003, 42, 3, gan_count_of(20), 0.0f, 1.0f, a));
    CHECK_OK(be->rng_normal(be, 1000, 42, 3, gan_count_of(23), 0.0f, 1.0f, b));
    CHECK(!memcmp(a + 3, b, 1000 * sizeof(float)));
    /* and the position may lie in backend memory: *base + offset */
    uint64_t base = 21;
    CHECK_OK(be->rng_normal(be, 1000, 42, 3, (gan_count){&base, 2}, 0.0f, 1.0f, b));
    CHECK(!memcmp(a + 3, b, 1000 * sizeof(float)));
    free(a);
    free(b);
    be->destroy(be);
    return test_finish();
}
