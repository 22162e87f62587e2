/* CIFAR-10 binary batches (cifar-10-batches-bin): each file is 10,000 records of
 *   1 label byte, then 1024 red, 1024 green and 1024 blue bytes (a 32x32 image, row-major),
 * read into NHWC RGB. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gan/data.h"

enum { CIFAR_SIDE = 32, CIFAR_PLANE = CIFAR_SIDE * CIFAR_SIDE, CIFAR_RECORD = 1 + 3 * CIFAR_PLANE };

/* Appends the records of one batch file to `set` (pixels grown to fit). */
static gan_status read_batch(const char *path, gan_image_set *set)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) /* never open a FIFO: it would wait */
        return gan_error(GAN_ERR_IO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return gan_error(GAN_ERR_IO, "%s: not a regular file", path);
    }
    size_t bytes = (size_t)st.st_size;
    if (bytes == 0 || bytes % CIFAR_RECORD != 0) {
        fclose(f);
        return gan_error(GAN_ERR_FORMAT, "%s: %zu bytes is not a whole number of CIFAR-10 records of %d "
                                         "bytes (truncated, or not a CIFAR-10 binary batch)",
                         path, bytes, CIFAR_RECORD);
    }
    int64_t records = (int64_t)(bytes / CIFAR_RECORD);
    size_t image_bytes = (size_t)CIFAR_RECORD - 1;
    uint8_t *pixels = realloc(set->pixels, (size_t)(set->count + records) * image_bytes);
    if (!pixels) {
        fclose(f);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %lld images", path,
                         (long long)(set->count + records));
    }
    set->pixels = pixels;
    unsigned char record[CIFAR_RECORD];
    gan_status status = GAN_OK;
    for (int64_t r = 0; r < records; r++) {
        if (fread(record, 1, sizeof record, f) != sizeof record) {
            status = gan_error(GAN_ERR_FORMAT, "%s: truncated at record %lld of %lld", path, (long long)r,
                               (long long)records);
            break;
        }
        uint8_t *dst = pixels + (size_t)(set->count + r) * image_bytes; /* [32, 32, 3] */
        const unsigned char *planes = record + 1;                        /* [3, 32, 32] */
        for (int p = 0; p < CIFAR_PLANE; p++) {
            dst[p * 3 + 0] = planes[p];
            dst[p * 3 + 1] = planes[CIFAR_PLANE + p];
            dst[p * 3 + 2] = planes[2 * CIFAR_PLANE + p];
        }
    }
    fclose(f);
    GAN_TRY(status);
    set->count += records;
    return GAN_OK;
}

gan_status gan_cifar_read(const char *path, const char *split, gan_image_set *out)
{
    memset(out, 0, sizeof *out);
    out->height = out->width = CIFAR_SIDE;
    out->channels = 3;
    if (!split || !split[0])
        split = "all";
    struct stat st;
    if (stat(path, &st) != 0)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    gan_status status = GAN_OK;
    if (!S_ISDIR(st.st_mode)) {
        GAN_CHECK(read_batch(path, out));
    } else if (!strcmp(split, "all") || !strcmp(split, "train")) {
        for (int i = 1; i <= 5; i++) {
            char file[4200];
            snprintf(file, sizeof file, "%s/data_batch_%d.bin", path, i);
            GAN_CHECK(read_batch(file, out));
        }
    } else if (!strcmp(split, "test")) {
        char file[4200];
        snprintf(file, sizeof file, "%s/test_batch.bin", path);
        GAN_CHECK(read_batch(file, out));
    } else {
        status = gan_error(GAN_ERR_CONFIG, "%s: CIFAR-10 has the splits all (= train), train and test, "
                                           "not '%s'",
                           path, split);
        goto cleanup;
    }
    return GAN_OK;
cleanup:
    gan_image_set_free(out);
    return status;
}
