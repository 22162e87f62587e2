/* gan prepare: the cache holds exactly what the data set gives for every image that decodes, in
 * order, with corrupt ones skipped and counted; too many bad images leave no output and no
 * temporary file; the command line: exit codes and one message naming the file; numpy opens the
 * cache with mmap_mode='r' (when /usr/bin/python3 has numpy). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gan/data.h"
#include "gan/image.h"
#include "test_util.h"

static const char *dir;

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* n images of several sizes and aspect ratios, JPEG and PNG, each with its own content. */
static void make_images(const char *path, int n)
{
    mkdir(path, 0755);
    for (int i = 0; i < n; i++) {
        int w = 20 + (i * 7) % 31, h = 18 + (i * 11) % 29;
        uint8_t *px = malloc((size_t)w * h * 3);
        for (int p = 0; p < w * h * 3; p++)
            px[p] = (uint8_t)(i * 9 + (p / 3 % w) * 3 + (p / 3 / w) * 2 + p % 3 * 50);
        uint8_t *data;
        size_t size;
        char file[4400];
        if (i % 2) {
            CHECK_OK(gan_jpeg_encode(px, w, h, 3, 90, &data, &size));
            snprintf(file, sizeof file, "%s/im%03d.jpg", path, i);
        } else {
            CHECK_OK(gan_png_encode(px, w, h, 3, &data, &size));
            snprintf(file, sizeof file, "%s/im%03d.png", path, i);
        }
        write_bytes(file, data, size);
        free(data);
        free(px);
    }
}


typedef struct warnings {
    int count;
    char last[4096];
} warnings;

static pthread_mutex_t collect_mu = PTHREAD_MUTEX_INITIALIZER;

static void collect(void *ctx, const char *message) /* called from the preparing threads */
{
    warnings *w = ctx;
    pthread_mutex_lock(&collect_mu);
    w->count++;
    snprintf(w->last, sizeof w->last, "%s", message);
    pthread_mutex_unlock(&collect_mu);
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static int progress_calls;
static int64_t progress_last;
static void on_progress(void *ctx, int64_t done, int64_t total)
{
    (void)ctx;
    progress_calls++;
    progress_last = done;
    CHECK(done <= total);
}

static void check_prepare(void)
{
    char images[4200], out[4200], path[4400];
    snprintf(images, sizeof images, "%s/images", dir);
    snprintf(out, sizeof out, "%s/cache.npy", dir);
    enum { N = 70, S = 16 };
    make_images(images, N);
    snprintf(path, sizeof path, "%s/im013.jpg", images); /* corrupt one: cut in half */
    FILE *f = fopen(path, "rb");
    uint8_t buf[65536];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    write_bytes(path, buf, n / 2);

    warnings w = {0};
    gan_prepare_options o = {.data = {.path = images, .size = S, .channels = 3, .warn = collect, .warn_ctx = &w},
                             .output = out,
                             .threads = 2,
                             .max_bad_fraction = 0.05,
                             .progress = on_progress};
    gan_prepare_result r;
    CHECK_OK(gan_prepare_cache(&o, &r));
    CHECK(r.written == N - 1 && r.bad == 1);
    CHECK(w.count == 1 && strstr(w.last, "im013.jpg") && strstr(w.last, "truncated"));
    CHECK(progress_calls >= 1 && progress_last == N);
    CHECK(test_count_entries(dir, "cache.npy.tmp") == 0);

    /* the cache is what the data set gives, in order, without the bad image */
    gan_npy_array cache;
    CHECK_OK(gan_npy_map(out, &cache));
    CHECK_OK(gan_cache_check(&cache.header, out, S, S, 3));
    gan_dataset *ds = NULL;
    gan_dataset_worker *worker = NULL;
    CHECK_OK(gan_dataset_open(&o.data, &ds));
    if (ds && cache.data) {
        CHECK_OK(gan_dataset_worker_create(ds, &worker));
        uint8_t item[S * S * 3];
        int64_t row = 0;
        bool same = true;
        for (int64_t i = 0; i < N; i++) {
            if (gan_dataset_get(ds, worker, i, item) != GAN_OK)
                continue;
            same &= !memcmp(item, (uint8_t *)cache.data + row * S * S * 3, sizeof item);
            row++;
        }
        CHECK(same && row == N - 1);
    }
    gan_dataset_worker_destroy(worker);
    gan_dataset_close(ds);
    gan_npy_release(&cache);

    /* numpy reads it memory-mapped */
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0) {
        char cmd[8600];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s', mmap_mode='r'); "
                 "assert isinstance(a, np.memmap) and a.shape == (%d, %d, %d, 3) and a.dtype == np.uint8, a.shape\"",
                 out, N - 1, S, S);
        CHECK_MSG(system(cmd) == 0, "numpy cannot memory-map %s", out);
    }

    /* more bad than allowed: no output, no temporary file */
    char strict[4200];
    snprintf(strict, sizeof strict, "%s/strict.npy", dir);
    o.output = strict;
    o.max_bad_fraction = 0.0;
    CHECK_FAILS_WITH(gan_prepare_cache(&o, &r), GAN_ERR_FORMAT, "im013.jpg");
    CHECK(access(strict, F_OK) != 0 && test_count_entries(dir, "strict.npy") == 0);

    /* cancelled: the same */
    volatile int cancel = 1;
    o.max_bad_fraction = 0.5;
    o.cancel = &cancel;
    CHECK_FAILS_WITH(gan_prepare_cache(&o, &r), GAN_ERR_IO, "interrupted");
    CHECK(test_count_entries(dir, "strict.npy") == 0);
    o.cancel = NULL;

    /* gray, from an IDX file */
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/tiny-idx3-ubyte", dir);
    uint8_t file[16 + 3 * 28 * 28] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28};
    for (int i = 16; i < (int)sizeof file; i++)
        file[i] = (uint8_t)(i * 13);
    write_bytes(idx, file, sizeof file);
    gan_prepare_options g = {.data = {.path = idx, .size = 32, .channels = 1}, .output = strict, .threads = 1};
    CHECK_OK(gan_prepare_cache(&g, &r));
    CHECK(r.written == 3 && r.bad == 0);
    CHECK_OK(gan_npy_map(strict, &cache));
    CHECK(cache.header.shape[0] == 3 && cache.header.shape[1] == 32 && cache.header.shape[3] == 1);
    uint8_t want[32 * 32];
    CHECK_OK(gan_resize_center_crop(file + 16 + 2 * 784, 28, 28, 1, 32, want));
    CHECK(cache.data && !memcmp((uint8_t *)cache.data + 2 * 1024, want, sizeof want));
    gan_npy_release(&cache);
}

/* Runs the gan command line; returns its exit status, its stderr in err. */
static int run_gan(const char *args, char *err, size_t err_size)
{
    const char *exe = getenv("GAN_EXE");
    char cmd[9000], err_path[4300];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", exe, args, err_path);
    int status = system(cmd);
    FILE *f = fopen(err_path, "r");
    size_t n = f ? fread(err, 1, err_size - 1, f) : 0;
    err[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void check_command_line(void)
{
    if (!getenv("GAN_EXE")) {
        printf("GAN_EXE not set: command-line part skipped (ctest sets it)\n");
        return;
    }
    char args[9000], err[8192];
    snprintf(args, sizeof args, "prepare '%s/images' -o '%s/cli.npy' --size 8 --channels 1 --threads 2 "
                                   "--max-bad-fraction 0.05", dir, dir);
    CHECK_MSG(run_gan(args, err, sizeof err) == 0, "gan prepare failed: %s", err);
    CHECK(strstr(err, "im013.jpg") && strstr(err, "warning")); /* one warning for the bad image */
    char cache[4300];
    snprintf(cache, sizeof cache, "%s/cli.npy", dir);
    gan_npy_array a;
    CHECK_OK(gan_npy_map(cache, &a));
    CHECK(a.header.shape[0] == 69 && a.header.shape[1] == 8 && a.header.shape[3] == 1);
    gan_npy_release(&a);

    snprintf(args, sizeof args, "prepare '%s/no-such-folder' -o '%s/x.npy' --size 8", dir, dir);
    CHECK(run_gan(args, err, sizeof err) == 1 && strstr(err, "no-such-folder") && count_lines(err) == 1);
    snprintf(args, sizeof args, "prepare '%s/images' -o '%s/x.npy' --size 8 --max-bad-fraction 0", dir, dir);
    CHECK(run_gan(args, err, sizeof err) == 1 && strstr(err, "im013.jpg"));
    CHECK(test_count_entries(dir, "x.npy") == 0);
    CHECK(run_gan("prepare", err, sizeof err) == 2 && strstr(err, "required"));
    snprintf(args, sizeof args, "prepare '%s/images' -o '%s/x.npy' --size 8 --channels 4", dir, dir);
    CHECK(run_gan(args, err, sizeof err) == 2 && strstr(err, "--channels 4"));
    snprintf(args, sizeof args, "prepare '%s/images' -o '%s/x.npy' --size 8 --bogus", dir, dir);
    CHECK(run_gan(args, err, sizeof err) == 2 && strstr(err, "--bogus"));
}

int main(void)
{
    dir = test_temp_dir("test_data_prepare");
    check_prepare();
    check_command_line();
    return test_finish();
}
