#include "test_util.h"

#include "gan/config.h"
#include "gan/data.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int test_checks_passed = 0;
int test_checks_failed = 0;

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list args;
    test_checks_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}

void test_check_fails_with(const char *file, int line, const char *expr_text, gan_status got,
                           gan_status want, const char *needle)
{
    if (got != want) {
        test_fail_at(file, line, "%s returned %s, expected %s (message: %s)", expr_text,
                     gan_status_name(got), gan_status_name(want),
                     got == GAN_OK ? "-" : gan_error_message());
        return;
    }
    if (needle && !strstr(gan_error_message(), needle)) {
        test_fail_at(file, line, "%s: message \"%s\" does not mention \"%s\"", expr_text,
                     gan_error_message(), needle);
        return;
    }
    test_checks_passed++;
}

test_diff test_compare(const float *got, const float *want, size_t n, double rel_floor)
{
    test_diff d = {0.0, 0.0, 0};
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (isnan(got[i]) != isnan(want[i]))
            diff = INFINITY;
        double rel = diff / (fabs((double)want[i]) + rel_floor);
        if (diff > d.max_abs) {
            d.max_abs = diff;
            d.worst_index = i;
        }
        if (rel > d.max_rel)
            d.max_rel = rel;
    }
    return d;
}

bool test_allclose(const char *name, const float *got, const float *want, size_t n, double rtol,
                   double atol)
{
    size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    double max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!isfinite(got[i]) || !isfinite(want[i]))
            diff = (got[i] == want[i]) ? 0.0 : INFINITY;
        double allowed = atol + rtol * fabs((double)want[i]);
        if (diff > max_abs)
            max_abs = diff;
        if (diff > allowed) {
            bad++;
            if (diff - allowed > worst_excess) {
                worst_excess = diff - allowed;
                worst = i;
            }
        }
    }
    if (bad) {
        fprintf(stderr, "  %s: %zu of %zu elements out of tolerance; worst [%zu] got %.9g want %.9g\n",
                name, bad, n, worst, (double)got[worst], (double)want[worst]);
        return false;
    }
    if (getenv("GAN_TEST_VERBOSE"))
        fprintf(stderr, "  %s: max abs diff %.3g over %zu elements\n", name, max_abs, n);
    return true;
}

void test_fill_uniform(float *x, size_t n, unsigned seed, float low, float high)
{
    unsigned long long state = 0x9E3779B97F4A7C15ull ^ (unsigned long long)seed * 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        double u = (double)(state >> 11) * (1.0 / 9007199254740992.0);
        x[i] = (float)(low + (high - low) * u);
    }
}

const char *test_source_dir(void)
{
    const char *dir = getenv("GAN_SOURCE_DIR");
    return dir ? dir : GAN_TEST_SOURCE_DIR; /* run by hand: the tree this was built from */
}

bool test_fid_weights_path(char *path, size_t bytes)
{
    const char *env = getenv("GAN_FID_WEIGHTS");
    if (env && *env)
        snprintf(path, bytes, "%s", env);
    else
        snprintf(path, bytes, "%s/.whl/fid_inception_v3.safetensors", test_source_dir());
    return access(path, R_OK) == 0;
}

const char *test_binary_dir(void)
{
    const char *dir = getenv("GAN_BINARY_DIR");
    return dir ? dir : GAN_TEST_BINARY_DIR;
}

const char *test_temp_dir(const char *test_name)
{
    static char path[4096];
    char command[4200];
    snprintf(path, sizeof path, "%s/test-tmp/%s", test_binary_dir(), test_name);
    snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(command) != 0) {
        fprintf(stderr, "cannot make %s\n", path);
        exit(1);
    }
    return path;
}

int test_count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

int test_finish(void)
{
    printf("%d passed, %d failed\n", test_checks_passed, test_checks_failed);
    return test_checks_failed ? 1 : 0;
}

gan_status test_hashed_image_source(const gan_config *cfg, int count, gan_data_source **out)
{
    gan_image_set images = {.count = count, .height = cfg->image_size, .width = cfg->image_size,
                            .channels = cfg->channels};
    size_t bytes = (size_t)images.count * images.height * images.width * images.channels;
    images.pixels = malloc(bytes ? bytes : 1);
    if (!images.pixels)
        return gan_error(GAN_ERR_NOMEM, "out of memory for %zu test pixels", bytes);
    for (size_t i = 0; i < bytes; i++)
        images.pixels[i] = (uint8_t)((i * 2654435761u) >> 24);
    return gan_memory_source_open(&images, cfg->batch_size, cfg->seed, out);
}
