/* Small test harness: every check prints what failed and where; a test's main() ends with
 * `return test_finish();`, which prints "N passed, M failed" and returns non-zero on any failure. */
#ifndef GAN_TEST_UTIL_H
#define GAN_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gan/error.h"

extern int test_checks_passed;
extern int test_checks_failed;

#define TEST_SKIP_EXIT_CODE 77

void test_fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (cond)                                                             \
            test_checks_passed++;                                             \
        else                                                                  \
            test_fail_at(__FILE__, __LINE__, "check failed: %s", #cond);      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (cond)                                                             \
            test_checks_passed++;                                             \
        else                                                                  \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                    \
    } while (0)

/* A gan_status call that must succeed; prints the library's message if it does not. */
#define CHECK_OK(expr)                                                                   \
    do {                                                                                 \
        gan_status check_ok_status_ = (expr);                                            \
        if (check_ok_status_ == GAN_OK)                                                  \
            test_checks_passed++;                                                        \
        else                                                                             \
            test_fail_at(__FILE__, __LINE__, "%s returned %s: %s", #expr,                \
                         gan_status_name(check_ok_status_), gan_error_message());        \
    } while (0)

/* A call that must fail with `status`, and whose message must contain `needle`. */
#define CHECK_FAILS_WITH(expr, status, needle)                                           \
    test_check_fails_with(__FILE__, __LINE__, #expr, (expr), (status), (needle))

void test_check_fails_with(const char *file, int line, const char *expr_text, gan_status got,
                           gan_status want, const char *needle);

/* Largest |a - b| and largest |a - b| / (|b| + floor) over n values. */
typedef struct test_diff {
    double max_abs;
    double max_rel;
    size_t worst_index;
} test_diff;
test_diff test_compare(const float *got, const float *want, size_t n, double rel_floor);

/* Passes when every element satisfies |got - want| <= atol + rtol * |want| (numpy.allclose);
 * on failure prints the name, the worst element and both values. */
bool test_allclose(const char *name, const float *got, const float *want, size_t n, double rtol,
                   double atol);
#define CHECK_ALLCLOSE(name, got, want, n, rtol, atol)                                     \
    do {                                                                                   \
        if (test_allclose((name), (got), (want), (n), (rtol), (atol)))                     \
            test_checks_passed++;                                                          \
        else                                                                               \
            test_fail_at(__FILE__, __LINE__, "%s differs beyond rtol %g atol %g", (name),  \
                         (double)(rtol), (double)(atol));                                  \
    } while (0)

/* Deterministic test data: uniform in [low, high) from a small xorshift generator. */
void test_fill_uniform(float *x, size_t n, unsigned seed, float low, float high);

/* Source tree and build tree paths, from the environment ctest sets (GAN_SOURCE_DIR ...). */
const char *test_source_dir(void);
/* The FID Inception weights: $GAN_FID_WEIGHTS, else .whl/fid_inception_v3.safetensors in the
 * source tree (tools/setup.sh makes it), into path; whether that file can be read. */
bool test_fid_weights_path(char *path, size_t bytes);

/* An in-memory data source of `count` images of cfg's data.image_size and data.channels, pixels a
 * fixed hash of their index, batched by cfg's train.batch_size and shuffled by its seed. */
struct gan_config;
struct gan_data_source;
gan_status test_hashed_image_source(const struct gan_config *cfg, int count, struct gan_data_source **out);
const char *test_binary_dir(void);
/* A fresh empty directory under the build tree for this test's files. */
const char *test_temp_dir(const char *test_name);
/* How many entries of directory `dir` have names starting with `prefix` (0 if it cannot be read). */
int test_count_entries(const char *dir, const char *prefix);

int test_finish(void);

#endif
