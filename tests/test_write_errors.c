/* Every writer's error names the file and the OS reason, taken from the call that failed. The
 * failure here is the file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored): every write past it
 * fails with EFBIG, "File too large", on any file system and without privileges. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gan/config.h"
#include "gan/file_atomic.h"
#include "gan/image.h"
#include "gan/npy.h"
#include "gan/safetensors.h"
#include "gan/tb_events.h"
#include "test_util.h"

enum { LIMIT_BYTES = 1024, BIG_BYTES = 64 * 1024 };

static char *in_dir(const char *dir, const char *name)
{
    static char paths[8][4200];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

/* The message names `path` and the reason. */
static void check_message(const char *what, const char *path)
{
    const char *m = gan_error_message();
    CHECK_MSG(strstr(m, strerror(EFBIG)) != NULL, "%s: message lacks the reason: %s", what, m);
    if (path)
        CHECK_MSG(strstr(m, path) != NULL, "%s: message does not name %s: %s", what, path, m);
}

int main(void)
{
    const char *dir = test_temp_dir("test_write_errors");
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, limit;
    getrlimit(RLIMIT_FSIZE, &old);
    limit = old;
    limit.rlim_cur = LIMIT_BYTES;
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) {
        printf("skipped: cannot lower RLIMIT_FSIZE: %s\n", strerror(errno));
        return TEST_SKIP_EXIT_CODE;
    }
    float *big = calloc(BIG_BYTES / sizeof(float), sizeof(float));
    uint8_t *noise = malloc(BIG_BYTES);
    for (int i = 0; i < BIG_BYTES; i++)
        noise[i] = (uint8_t)(i * 2654435761u >> 13); /* incompressible enough for PNG */

    /* the resolved config (gan train's config.ini, a checkpoint's metadata) */
    gan_config cfg;
    gan_config_defaults(&cfg);
    const char *config_path = in_dir(dir, "config.ini");
    FILE *f = fopen(config_path, "w");
    CHECK(f != NULL);
    if (f) {
        CHECK_FAILS_WITH(gan_config_write(&cfg, f), GAN_ERR_IO, strerror(EFBIG));
        fclose(f);
    }

    /* a TensorBoard record */
    const char *events = in_dir(dir, "events.out.tfevents");
    f = fopen(events, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(gan_tb_write_record(f, events, noise, BIG_BYTES) == GAN_ERR_IO);
        check_message("tb record", events);
        fclose(f);
    }

    /* whole files: through a temporary name */
    const char *raw = in_dir(dir, "raw.bin");
    gan_file_piece piece = {noise, BIG_BYTES};
    CHECK(gan_file_write_atomic(raw, &piece, 1) == GAN_ERR_IO);
    check_message("gan_file_write_atomic", raw);
    CHECK(access(raw, F_OK) != 0);

    const char *npy = in_dir(dir, "x.npy");
    int64_t shape[2] = {BIG_BYTES / 4 / 16, 16};
    CHECK(gan_npy_write_f32(npy, big, 2, shape) == GAN_ERR_IO);
    check_message("gan_npy_write_f32", npy);
    CHECK(access(npy, F_OK) != 0);

    const char *png = in_dir(dir, "x.png");
    CHECK(gan_png_write(png, noise, 128, 128, 3) == GAN_ERR_IO);
    check_message("gan_png_write", png);
    CHECK(access(png, F_OK) != 0);

    const char *st_path = in_dir(dir, "x.safetensors");
    gan_st_tensor t = {.name = "w", .dtype = GAN_ST_F32, .ndim = 1, .shape = {BIG_BYTES / 4}, .data = big};
    CHECK(gan_safetensors_write(st_path, &t, 1, NULL, 0) == GAN_ERR_IO);
    check_message("gan_safetensors_write", st_path);
    CHECK(access(st_path, F_OK) != 0);

    setrlimit(RLIMIT_FSIZE, &old);
    free(big);
    free(noise);
    return test_finish();
}
