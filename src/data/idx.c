/* MNIST / Fashion-MNIST IDX image files (magic 0x00000803: unsigned bytes, 3 dimensions, big
 * endian sizes), raw or gzip-compressed (zlib's gzread reads both). The sizes the header claims are
 * checked against the file before anything is allocated: a raw file must hold them, a gzip file
 * must be large enough for deflate to unpack them (at most 1032:1); the pixels are then read into a
 * buffer grown as they arrive, so a lying header costs no more than the data there is. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gan/data.h"
#include "gan/file_atomic.h"

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

/* deflate packs at most 1032 bytes into one (258-byte matches at one bit each), so a gzip file of
 * `packed` bytes holds at most this much; a header claiming more is lying (or the file is cut). */
static uint64_t gzip_capacity(uint64_t packed) { return packed * 1032 + (1u << 16); }

/* Reads `bytes` from `f` into out->pixels, growing the buffer as the data arrives (from 16 MiB,
 * doubling), so a header that claims more than the file holds costs no more memory than the data
 * that is there. Returns the bytes read. */
static gan_status read_growing(gzFile f, const char *path, size_t bytes, gan_image_set *out, size_t *done)
{
    size_t capacity = 0;
    *done = 0;
    while (*done < bytes) {
        if (*done == capacity) {
            size_t next = capacity ? capacity * 2 : (size_t)16 << 20;
            if (next > bytes)
                next = bytes;
            uint8_t *grown = realloc(out->pixels, next);
            if (!grown)
                return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, next);
            out->pixels = grown;
            capacity = next;
        }
        size_t want = capacity - *done;
        unsigned chunk = want > (1u << 30) ? 1u << 30 : (unsigned)want;
        int n = gzread(f, out->pixels + *done, chunk);
        if (n <= 0)
            break;
        *done += (size_t)n;
    }
    return GAN_OK;
}

/* The header and the pixels of the IDX file open as `f` (of `file_bytes` bytes on disk) into `out`;
 * on failure the caller frees what `out` holds. */
static gan_status read_images(gzFile f, const char *path, uint64_t file_bytes, gan_image_set *out)
{
    unsigned char header[16];
    int got = gzread(f, header, sizeof header);
    if (got != (int)sizeof header)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated IDX header (%d of 16 bytes: %s)", path,
                         got < 0 ? 0 : got, gz_reason(f));
    if (big_endian(header) == 0x00000801u)
        return gan_error(GAN_ERR_FORMAT, "%s: this is an IDX labels file (magic 0x00000801); name the "
                                         "images file (*-images-idx3-ubyte)",
                         path);
    if (big_endian(header) != 0x00000803u)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: IDX magic is 0x%08x, expected 0x00000803 (unsigned bytes, 3 "
                         "dimensions: an MNIST-style images file)",
                         path, big_endian(header));
    uint32_t count = big_endian(header + 4), rows = big_endian(header + 8), cols = big_endian(header + 12);
    if (count == 0 || rows == 0 || cols == 0 || rows > 65536 || cols > 65536 ||
        (uint64_t)count * rows * cols > ((uint64_t)1 << 34))
        return gan_error(GAN_ERR_FORMAT, "%s: implausible IDX sizes %u x %u x %u", path, count, rows, cols);
    size_t bytes = (size_t)count * rows * cols;
    /* what the file can hold, before anything is allocated: its size when raw (gzread reads files
     * that are not gzip as they are), what deflate can unpack from it when compressed */
    bool raw = gzdirect(f);
    uint64_t can_hold = raw ? (file_bytes > 16 ? file_bytes - 16 : 0) : gzip_capacity(file_bytes);
    if (bytes > can_hold && raw)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated: %llu of %zu image bytes (%u images of %ux%u): "
                                         "the file ends early",
                         path, (unsigned long long)can_hold, bytes, count, rows, cols);
    if (bytes > can_hold)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated: the header claims %zu image bytes (%u images of "
                                         "%ux%u), more than its %llu compressed bytes can hold",
                         path, bytes, count, rows, cols, (unsigned long long)file_bytes);
    size_t done = 0;
    GAN_TRY(read_growing(f, path, bytes, out, &done));
    if (done != bytes)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated: %zu of %zu image bytes (%u images of %ux%u): %s",
                         path, done, bytes, count, rows, cols, gz_reason(f));
    out->count = count;
    out->height = (int)rows;
    out->width = (int)cols;
    out->channels = 1;
    return GAN_OK;
}

gan_status gan_idx_read_images(const char *path, gan_image_set *out)
{
    memset(out, 0, sizeof *out);
    int fd;
    size_t file_size;
    GAN_TRY(gan_input_open_regular(path, &fd, &file_size));
    errno = 0;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return gan_error(GAN_ERR_IO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    }
    gan_status status = read_images(f, path, (uint64_t)file_size, out);
    gzclose(f); /* closes fd */
    if (status != GAN_OK)
        gan_image_set_free(out);
    return status;
}
