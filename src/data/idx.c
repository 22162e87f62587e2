/* MNIST / Fashion-MNIST IDX image files (magic 0x00000803: unsigned bytes, 3 dimensions, big
 * endian sizes), raw or gzip-compressed (zlib's gzread reads both). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gan/data.h"

void gan_image_set_free(gan_image_set *set)
{
    free(set->pixels);
    memset(set, 0, sizeof *set);
}

static uint32_t big_endian(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* What gzread's failure was: zlib's message for corrupt compressed data. */
static const char *gz_reason(gzFile f)
{
    int code = Z_OK;
    const char *message = gzerror(f, &code);
    return code != Z_OK && message && message[0] ? message : "the data ends early";
}

gan_status gan_idx_read_images(const char *path, gan_image_set *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return gan_error(GAN_ERR_IO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    unsigned char header[16];
    int got = gzread(f, header, sizeof header);
    gan_status status = GAN_OK;
    if (got != (int)sizeof header)
        status = gan_error(GAN_ERR_FORMAT, "%s: truncated IDX header (%d of 16 bytes: %s)", path,
                           got < 0 ? 0 : got, gz_reason(f));
    else if (big_endian(header) == 0x00000801u)
        status = gan_error(GAN_ERR_FORMAT, "%s: this is an IDX labels file (magic 0x00000801); name the "
                                           "images file (*-images-idx3-ubyte)",
                           path);
    else if (big_endian(header) != 0x00000803u)
        status = gan_error(GAN_ERR_FORMAT,
                           "%s: IDX magic is 0x%08x, expected 0x00000803 (unsigned bytes, 3 "
                           "dimensions: an MNIST-style images file)",
                           path, big_endian(header));
    uint32_t count = big_endian(header + 4), rows = big_endian(header + 8), cols = big_endian(header + 12);
    if (status == GAN_OK && (count == 0 || rows == 0 || cols == 0 || rows > 65536 || cols > 65536 ||
                             (uint64_t)count * rows * cols > ((uint64_t)1 << 34)))
        status = gan_error(GAN_ERR_FORMAT, "%s: implausible IDX sizes %u x %u x %u", path, count, rows, cols);
    if (status == GAN_OK) {
        size_t bytes = (size_t)count * rows * cols;
        out->pixels = malloc(bytes);
        if (!out->pixels)
            status = gan_error(GAN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, bytes);
        size_t done = 0;
        while (status == GAN_OK && done < bytes) {
            unsigned chunk = bytes - done > (1u << 30) ? 1u << 30 : (unsigned)(bytes - done);
            int n = gzread(f, out->pixels + done, chunk);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        if (status == GAN_OK && done != bytes)
            status = gan_error(GAN_ERR_FORMAT, "%s: truncated: %zu of %zu image bytes (%u images of %ux%u): %s",
                               path, done, bytes, count, rows, cols, gz_reason(f));
        out->count = count;
        out->height = (int)rows;
        out->width = (int)cols;
        out->channels = 1;
    }
    gzclose(f);
    if (status != GAN_OK)
        gan_image_set_free(out);
    return status;
}
