/* .npy files. A file is "\x93NUMPY", major and minor version bytes, the header length (uint16 LE in
 * version 1.0, uint32 LE in 2.0 and 3.0), then the header: a Python dict literal such as
 *   {'descr': '|u1', 'fortran_order': False, 'shape': (202599, 64, 64, 3), }
 * padded with spaces and ended by '\n' so that the data starts on a 64-byte boundary; then the data,
 * C order. */
#include "gan/npy.h"

#include "gan/file_atomic.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAGIC_BYTES = 6, DATA_ALIGNMENT = 64, MAX_HEADER_TEXT = 1 << 20 };
static const char NPY_MAGIC[MAGIC_BYTES] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

size_t gan_npy_dtype_bytes(gan_npy_dtype dtype) { return dtype == GAN_NPY_F32 ? 4 : 1; }

const char *gan_npy_dtype_name(gan_npy_dtype dtype) { return dtype == GAN_NPY_F32 ? "float32" : "uint8"; }

static const char *dtype_descr(gan_npy_dtype dtype) { return dtype == GAN_NPY_F32 ? "<f4" : "|u1"; }

/* ---- header parsing: a small reader for the dict literal numpy writes ------------------------ */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool take(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes into out (at most out_size - 1 characters). */
static bool read_string(cursor *c, char *out, size_t out_size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= out_size)
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = '\0';
    return true;
}

static bool read_word(cursor *c, const char *word)
{
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n))
        return false;
    c->p += n;
    return true;
}

static gan_status parse_shape(cursor *c, const char *name, gan_npy_header *h)
{
    if (!take(c, '('))
        return gan_error(GAN_ERR_FORMAT, "%s: .npy header: 'shape' is not a tuple", name);
    h->ndim = 0;
    for (;;) {
        if (take(c, ')'))
            return GAN_OK;
        skip_space(c);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return gan_error(GAN_ERR_FORMAT, "%s: .npy header: 'shape' holds something other than "
                                             "non-negative integers",
                             name);
        int64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (INT64_MAX - 9) / 10)
                return gan_error(GAN_ERR_FORMAT, "%s: .npy header: a dimension is too large", name);
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') /* Python 2 longs: "3L" */
            c->p++;
        if (h->ndim == GAN_NPY_MAX_DIMS)
            return gan_error(GAN_ERR_FORMAT, "%s: .npy header: more than %d dimensions", name,
                             GAN_NPY_MAX_DIMS);
        h->shape[h->ndim++] = v;
        if (!take(c, ',')) {
            if (take(c, ')'))
                return GAN_OK;
            return gan_error(GAN_ERR_FORMAT, "%s: .npy header: 'shape' tuple is malformed", name);
        }
    }
}

gan_status gan_npy_parse_header(const uint8_t *bytes, size_t available, const char *name,
                                gan_npy_header *out)
{
    memset(out, 0, sizeof *out);
    if (available < 10 || memcmp(bytes, NPY_MAGIC, MAGIC_BYTES))
        return gan_error(GAN_ERR_FORMAT, "%s: not a .npy file (it does not start with \\x93NUMPY)", name);
    int major = bytes[6], minor = bytes[7];
    size_t header_len, prefix;
    if (major == 1) {
        header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8;
        prefix = 10;
    } else if (major == 2 || major == 3) {
        if (available < 12)
            return gan_error(GAN_ERR_FORMAT, "%s: truncated .npy header", name);
        header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 |
                     (size_t)bytes[11] << 24;
        prefix = 12;
    } else {
        return gan_error(GAN_ERR_FORMAT, "%s: .npy format version %d.%d; this reads versions 1.0 to 3.0",
                         name, major, minor);
    }
    if (header_len > MAX_HEADER_TEXT)
        return gan_error(GAN_ERR_FORMAT, "%s: .npy header of %zu bytes is implausible", name, header_len);
    if (available < prefix + header_len)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated .npy header (%zu of %zu bytes)", name,
                         available - prefix, header_len);
    cursor c = {(const char *)bytes + prefix, (const char *)bytes + prefix + header_len};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!take(&c, '{'))
        return gan_error(GAN_ERR_FORMAT, "%s: .npy header is not a dict", name);
    for (;;) {
        if (take(&c, '}'))
            break;
        char key[32], value[32];
        if (!read_string(&c, key, sizeof key) || !take(&c, ':'))
            return gan_error(GAN_ERR_FORMAT, "%s: .npy header: malformed dict", name);
        if (!strcmp(key, "descr") && !have_descr) {
            have_descr = true;
            if (!read_string(&c, value, sizeof value))
                return gan_error(GAN_ERR_FORMAT, "%s: .npy header: 'descr' is not a simple dtype string "
                                                 "(structured arrays are not supported)",
                                 name);
            if (!strcmp(value, "<f4"))
                out->dtype = GAN_NPY_F32;
            else if (!strcmp(value, "|u1") || !strcmp(value, "<u1") || !strcmp(value, ">u1") ||
                     !strcmp(value, "u1"))
                out->dtype = GAN_NPY_U8;
            else
                return gan_error(GAN_ERR_FORMAT, "%s: dtype '%s' is not supported: arrays are float32 "
                                                 "('<f4', little-endian) or uint8 ('|u1')",
                                 name, value);
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            have_order = true;
            if (read_word(&c, "True"))
                return gan_error(GAN_ERR_FORMAT, "%s: Fortran-ordered arrays are not supported; save "
                                                 "with numpy.ascontiguousarray(x)",
                                 name);
            if (!read_word(&c, "False"))
                return gan_error(GAN_ERR_FORMAT, "%s: .npy header: 'fortran_order' is not True/False", name);
        } else if (!strcmp(key, "shape") && !have_shape) {
            have_shape = true;
            GAN_TRY(parse_shape(&c, name, out));
        } else {
            return gan_error(GAN_ERR_FORMAT, "%s: .npy header: unexpected or repeated key '%s'", name, key);
        }
        if (take(&c, ','))
            continue;
        if (take(&c, '}'))
            break;
        return gan_error(GAN_ERR_FORMAT, "%s: .npy header: malformed dict", name);
    }
    skip_space(&c);
    if (c.p != c.end)
        return gan_error(GAN_ERR_FORMAT, "%s: .npy header: text after the dict", name);
    if (!have_descr || !have_order || !have_shape)
        return gan_error(GAN_ERR_FORMAT, "%s: .npy header lacks '%s'", name,
                         !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    size_t bytes_total = gan_npy_dtype_bytes(out->dtype);
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] != 0 && bytes_total > SIZE_MAX / 2 / (uint64_t)out->shape[i])
            return gan_error(GAN_ERR_FORMAT, "%s: .npy shape is too large", name);
        bytes_total *= (size_t)out->shape[i];
    }
    out->data_offset = prefix + header_len;
    out->data_bytes = bytes_total;
    return GAN_OK;
}

/* ---- reading ----------------------------------------------------------------------------------- */

static gan_status check_size(const gan_npy_header *h, size_t file_bytes, const char *path)
{
    if (h->data_offset > file_bytes || file_bytes - h->data_offset < h->data_bytes)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated: its shape needs %zu bytes of data, the file "
                                         "holds %zu",
                         path, h->data_bytes, file_bytes > h->data_offset ? file_bytes - h->data_offset : 0);
    return GAN_OK;
}

gan_status gan_npy_map(const char *path, gan_npy_array *out)
{
    memset(out, 0, sizeof *out);
    int fd;
    size_t file_bytes;
    GAN_TRY(gan_input_open_regular(path, &fd, &file_bytes));
    if (file_bytes < 10) {
        close(fd);
        return gan_error(GAN_ERR_FORMAT, "%s: not a .npy file (%zu bytes)", path, file_bytes);
    }
    void *base = mmap(NULL, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return gan_error(GAN_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    gan_status status = GAN_OK;
    GAN_CHECK(gan_npy_parse_header(base, file_bytes, path, &out->header));
    GAN_CHECK(check_size(&out->header, file_bytes, path));
    if (out->header.data_offset % gan_npy_dtype_bytes(out->header.dtype) != 0) {
        /* misaligned float data (not written by numpy): read it into aligned memory instead */
        munmap(base, file_bytes);
        return gan_npy_read(path, out);
    }
    out->map_base = base;
    out->map_bytes = file_bytes;
    out->data = (uint8_t *)base + out->header.data_offset;
    return GAN_OK;
cleanup:
    munmap(base, file_bytes);
    memset(out, 0, sizeof *out);
    return status;
}

static gan_status read_fully(int fd, void *buffer, size_t bytes, size_t offset, const char *path)
{
    uint8_t *p = buffer;
    while (bytes > 0) {
        ssize_t n = pread(fd, p, bytes > (1u << 30) ? (1u << 30) : bytes, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
        if (n == 0)
            return gan_error(GAN_ERR_FORMAT, "%s: truncated", path);
        p += n;
        bytes -= (size_t)n;
        offset += (size_t)n;
    }
    return GAN_OK;
}

/* The header of the .npy file open as `fd` (`file_bytes` long) into *h: the prefix says how long the
 * header is; that much is read and parsed. */
static gan_status read_header(int fd, size_t file_bytes, const char *path, gan_npy_header *h)
{
    uint8_t prefix[12] = {0};
    size_t prefix_bytes = file_bytes < sizeof prefix ? file_bytes : sizeof prefix;
    if (prefix_bytes < 10)
        return gan_error(GAN_ERR_FORMAT, "%s: not a .npy file (%zu bytes)", path, file_bytes);
    GAN_TRY(read_fully(fd, prefix, prefix_bytes, 0, path));
    size_t len = prefix[6] == 1 ? ((size_t)prefix[8] | (size_t)prefix[9] << 8) + 10
                                : ((size_t)prefix[8] | (size_t)prefix[9] << 8 | (size_t)prefix[10] << 16 |
                                   (size_t)prefix[11] << 24) + 12;
    if (len > MAX_HEADER_TEXT + 12)
        len = MAX_HEADER_TEXT + 12; /* parse_header explains why */
    if (len > file_bytes)
        len = file_bytes;
    uint8_t *header = malloc(len);
    if (!header)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
    gan_status status = GAN_OK;
    GAN_CHECK(read_fully(fd, header, len, 0, path));
    GAN_CHECK(gan_npy_parse_header(header, len, path, h));
cleanup:
    free(header);
    return status;
}

/* The header and the data of the .npy file open as `fd` into `out` (the data malloc'ed); on failure
 * the caller frees out->data. */
static gan_status read_array(int fd, const char *path, gan_npy_array *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: not a regular file", path);
    size_t file_bytes = (size_t)st.st_size;
    GAN_TRY(read_header(fd, file_bytes, path, &out->header));
    GAN_TRY(check_size(&out->header, file_bytes, path));
    out->data = malloc(out->header.data_bytes ? out->header.data_bytes : 1);
    if (!out->data)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, out->header.data_bytes);
    return read_fully(fd, out->data, out->header.data_bytes, out->header.data_offset, path);
}

gan_status gan_npy_read(const char *path, gan_npy_array *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not make it wait */
    if (fd < 0)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    gan_status status = read_array(fd, path, out);
    close(fd);
    if (status != GAN_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return status;
}

void gan_npy_release(gan_npy_array *array)
{
    if (array->map_base)
        munmap(array->map_base, array->map_bytes);
    else
        free(array->data);
    memset(array, 0, sizeof *array);
}

static gan_status read_typed(const char *path, gan_npy_dtype dtype, void **data, int *ndim,
                             int64_t shape[GAN_NPY_MAX_DIMS])
{
    *data = NULL;
    gan_npy_array array;
    GAN_TRY(gan_npy_read(path, &array));
    if (array.header.dtype != dtype) {
        gan_npy_dtype got = array.header.dtype;
        gan_npy_release(&array);
        return gan_error(GAN_ERR_FORMAT, "%s: dtype is %s, expected %s", path, gan_npy_dtype_name(got),
                         gan_npy_dtype_name(dtype));
    }
    *ndim = array.header.ndim;
    memcpy(shape, array.header.shape, sizeof array.header.shape);
    *data = array.data; /* gan_npy_read's data is malloc'ed: the caller frees it */
    return GAN_OK;
}

gan_status gan_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[GAN_NPY_MAX_DIMS])
{
    void *p = NULL;
    gan_status status = read_typed(path, GAN_NPY_F32, &p, ndim, shape);
    *data = p;
    return status;
}

gan_status gan_npy_read_u8(const char *path, uint8_t **data, int *ndim, int64_t shape[GAN_NPY_MAX_DIMS])
{
    void *p = NULL;
    gan_status status = read_typed(path, GAN_NPY_U8, &p, ndim, shape);
    *data = p;
    return status;
}

/* ---- writing ----------------------------------------------------------------------------------- */

/* The header for `shape`, padded to `total` bytes (0: the smallest multiple of 64 that fits). */
static size_t format_header(char *out, size_t out_size, gan_npy_dtype dtype, int ndim,
                            const int64_t *shape, size_t total)
{
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       dtype_descr(dtype));
    for (int i = 0; i < ndim; i++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%lld,%s", (long long)shape[i],
                        i + 1 < ndim ? " " : "");
    if (ndim > 1)
        len--; /* numpy writes (3,) for one dimension but (2, 3) for more: drop the last comma */
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    size_t needed = 10 + (size_t)len + 1;
    if (total == 0)
        total = (needed + DATA_ALIGNMENT - 1) / DATA_ALIGNMENT * DATA_ALIGNMENT;
    if (total < needed || total > out_size || total - 10 > 65535)
        return 0;
    size_t header_len = total - 10;
    memcpy(out, NPY_MAGIC, MAGIC_BYTES);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(header_len & 0xff);
    out[9] = (char)(header_len >> 8);
    memcpy(out + 10, dict, (size_t)len);
    memset(out + 10 + len, ' ', total - 10 - (size_t)len - 1);
    out[total - 1] = '\n';
    return total;
}

static gan_status write_fully(int fd, const void *buffer, size_t bytes, size_t offset, const char *path)
{
    const uint8_t *p = buffer;
    while (bytes > 0) {
        ssize_t n = pwrite(fd, p, bytes > (1u << 30) ? (1u << 30) : bytes, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return gan_error(GAN_ERR_IO, "%s: write failed: %s", path, n < 0 ? strerror(errno) : "no progress");
        p += n;
        bytes -= (size_t)n;
        offset += (size_t)n;
    }
    return GAN_OK;
}

static atomic_uint temp_counter;

/* An unnamed scratch file in $TMPDIR (or /tmp) for a cache streamed into a device or FIFO: rows
 * arrive in any order and the header's count is known only at the end, so the file is put
 * together here and copied out in order at commit. Its name is removed at once: nothing is left
 * behind, whatever happens to the process. */
static gan_status open_scratch(gan_npy_writer *w)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    char name[4200];
    snprintf(name, sizeof name, "%s/gan-npy-scratch-XXXXXX", dir);
    w->fd = mkstemp(name);
    if (w->fd < 0)
        return gan_error(GAN_ERR_IO, "%s: cannot make a scratch file in %s for a streamed output: %s",
                         w->path, dir, strerror(errno));
    unlink(name);
    fcntl(w->fd, F_SETFD, FD_CLOEXEC);
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s (scratch file in %s)", w->path, dir);
    return GAN_OK;
}

/* The whole file's `total` bytes reserved on the disk where the file system can (else the file is
 * only sized): a full disk fails here rather than in the middle of the rows. */
static gan_status reserve(gan_npy_writer *w, size_t total)
{
    int err = posix_fallocate(w->fd, 0, (off_t)total);
    if (err == ENOSPC || err == EFBIG || err == EIO || err == EDQUOT)
        return gan_error(GAN_ERR_IO, "%s: cannot reserve %zu bytes: %s", w->tmp_path, total, strerror(err));
    if (err != 0 && ftruncate(w->fd, (off_t)total) != 0) /* no fallocate here */
        return gan_error(GAN_ERR_IO, "%s: %s", w->tmp_path, strerror(errno));
    return GAN_OK;
}

gan_status gan_npy_writer_open(gan_npy_writer *w, const char *path, gan_npy_dtype dtype, int ndim,
                               const int64_t *shape)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->stream_fd = -1;
    if (ndim < 1 || ndim > GAN_NPY_MAX_DIMS)
        return gan_error(GAN_ERR_ARG, "%s: cannot write a %d-dimensional array", path, ndim);
    size_t row_bytes = gan_npy_dtype_bytes(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && row_bytes > SIZE_MAX / 4 / (uint64_t)shape[i]))
            return gan_error(GAN_ERR_ARG, "%s: bad shape (dimension %d is %lld)", path, i, (long long)shape[i]);
        if (i > 0)
            row_bytes *= (size_t)shape[i];
    }
    char header[1024];
    w->header_bytes = format_header(header, sizeof header, dtype, ndim, shape, 0);
    if (!w->header_bytes)
        return gan_error(GAN_ERR_ARG, "%s: shape does not fit a .npy header", path);
    gan_output_kind kind;
    GAN_TRY(gan_output_check(path, &kind, w->path, sizeof w->path));
    w->dtype = dtype;
    w->ndim = ndim;
    memcpy(w->shape, shape, (size_t)ndim * sizeof *shape);
    w->row_bytes = row_bytes;
    if (kind == GAN_OUTPUT_STREAM) {
        snprintf(w->path, sizeof w->path, "%s", path);
        GAN_TRY(gan_output_open_stream(path, &w->stream_fd));
        gan_status status = open_scratch(w);
        if (status != GAN_OK) {
            close(w->stream_fd);
            w->stream_fd = -1;
            return status;
        }
    } else {
        /* a fresh temporary name beside the output (same file system, so rename is atomic) */
        for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
            snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp.%ld.%u", w->path, (long)getpid(),
                     atomic_fetch_add(&temp_counter, 1));
            w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
            if (w->fd < 0 && errno != EEXIST)
                break;
        }
        if (w->fd < 0)
            return gan_error(GAN_ERR_IO, "%s: %s", w->tmp_path, strerror(errno));
    }
    size_t total = w->header_bytes + (size_t)shape[0] * row_bytes;
    gan_status status = GAN_OK;
    GAN_CHECK(reserve(w, total));
    GAN_CHECK(write_fully(w->fd, header, w->header_bytes, 0, w->tmp_path));
    return GAN_OK;
cleanup:
    gan_npy_writer_abort(w);
    return status;
}

gan_status gan_npy_writer_write_rows(gan_npy_writer *w, int64_t row, int64_t rows, const void *data)
{
    if (w->fd < 0 || row < 0 || rows < 0 || row + rows > w->shape[0])
        return gan_error(GAN_ERR_ARG, "%s: rows [%lld, %lld) are outside [0, %lld)", w->path,
                         (long long)row, (long long)(row + rows), (long long)w->shape[0]);
    return write_fully(w->fd, data, (size_t)rows * w->row_bytes,
                       w->header_bytes + (size_t)row * w->row_bytes, w->tmp_path);
}

gan_status gan_npy_writer_drop_rows(gan_npy_writer *w, const bool *keep)
{
    if (w->fd < 0)
        return gan_error(GAN_ERR_ARG, "%s: writer is closed", w->path);
    enum { CHUNK_BYTES = 8 << 20 };
    size_t chunk_rows = w->row_bytes ? (CHUNK_BYTES + w->row_bytes - 1) / w->row_bytes : 1;
    uint8_t *buffer = malloc(chunk_rows * (w->row_bytes ? w->row_bytes : 1));
    if (!buffer)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", w->path);
    int64_t n = w->shape[0], dst = 0;
    gan_status status = GAN_OK;
    for (int64_t i = 0; i < n;) {
        if (!keep[i]) {
            i++;
            continue;
        }
        int64_t run = 1; /* kept rows in a row, moved one chunk at a time */
        while (i + run < n && keep[i + run] && (size_t)run < chunk_rows)
            run++;
        if (dst != i) {
            GAN_CHECK(read_fully(w->fd, buffer, (size_t)run * w->row_bytes,
                                 w->header_bytes + (size_t)i * w->row_bytes, w->tmp_path));
            GAN_CHECK(write_fully(w->fd, buffer, (size_t)run * w->row_bytes,
                                  w->header_bytes + (size_t)dst * w->row_bytes, w->tmp_path));
        }
        i += run;
        dst += run;
    }
    w->shape[0] = dst;
cleanup:
    free(buffer);
    return status;
}

/* Copies the scratch file [0, bytes) into the streamed output, in order. */
static gan_status copy_scratch_to_stream(gan_npy_writer *w, size_t bytes)
{
    enum { CHUNK_BYTES = 1 << 20 };
    uint8_t *buffer = malloc(CHUNK_BYTES);
    if (!buffer)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", w->path);
    gan_status status = GAN_OK;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < CHUNK_BYTES ? bytes - done : CHUNK_BYTES;
        GAN_CHECK(read_fully(w->fd, buffer, n, done, w->tmp_path));
        GAN_CHECK(gan_write_all(w->stream_fd, buffer, n, w->path));
        done += n;
    }
cleanup:
    free(buffer);
    return status;
}

static void sync_parent_directory(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

/* The header again, with the final row count (gan_npy_writer_drop_rows may have lowered it). */
static gan_status rewrite_header(gan_npy_writer *w)
{
    char header[1024];
    if (!format_header(header, sizeof header, w->dtype, w->ndim, w->shape, w->header_bytes))
        return gan_error(GAN_ERR_ARG, "%s: the final shape does not fit the header", w->path);
    return write_fully(w->fd, header, w->header_bytes, 0, w->tmp_path);
}

/* A streamed output's end: the scratch file's `total` bytes copied into the stream, then the stream
 * closed. After a failed copy the stream is left open for gan_npy_writer_abort, which closes it
 * and the scratch file. */
static gan_status finish_stream(gan_npy_writer *w, size_t total)
{
    GAN_TRY(copy_scratch_to_stream(w, total));
    int closed = close(w->stream_fd);
    w->stream_fd = -1;
    if (closed != 0)
        return gan_error(GAN_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    return GAN_OK;
}

/* The temporary file cut to its final `total` bytes and flushed to the disk. */
static gan_status sync_temporary(gan_npy_writer *w, size_t total)
{
    if (ftruncate(w->fd, (off_t)total) != 0)
        return gan_error(GAN_ERR_IO, "%s: %s", w->tmp_path, strerror(errno));
    if (fsync(w->fd) != 0)
        return gan_error(GAN_ERR_IO, "%s: fsync: %s", w->tmp_path, strerror(errno));
    return GAN_OK;
}

gan_status gan_npy_writer_commit(gan_npy_writer *w)
{
    if (w->fd < 0)
        return gan_error(GAN_ERR_ARG, "%s: writer is closed", w->path);
    size_t total = w->header_bytes + (size_t)w->shape[0] * w->row_bytes;
    gan_status status = GAN_OK;
    GAN_CHECK(rewrite_header(w));
    if (w->stream_fd >= 0) {
        status = finish_stream(w, total);
        if (status != GAN_OK && w->stream_fd >= 0)
            goto cleanup; /* the copy failed: abort closes the stream and the scratch file */
        close(w->fd); /* the unnamed scratch file */
        w->fd = -1;
        return status;
    }
    GAN_CHECK(sync_temporary(w, total));
    int close_result = close(w->fd);
    w->fd = -1;
    if (close_result != 0) {
        status = gan_error(GAN_ERR_IO, "%s: close failed: %s", w->tmp_path, strerror(errno));
        unlink(w->tmp_path);
        return status;
    }
    if (rename(w->tmp_path, w->path) != 0) {
        status = gan_error(GAN_ERR_IO, "%s: rename from %s: %s", w->path, w->tmp_path, strerror(errno));
        unlink(w->tmp_path);
        return status;
    }
    sync_parent_directory(w->path); /* make the rename itself durable */
    return GAN_OK;
cleanup:
    gan_npy_writer_abort(w);
    return status;
}

void gan_npy_writer_abort(gan_npy_writer *w)
{
    if (w->stream_fd >= 0) {
        close(w->stream_fd); /* the reader sees an empty output, never a partial one */
        w->stream_fd = -1;
        if (w->fd >= 0)
            close(w->fd); /* the unnamed scratch file */
        w->fd = -1;
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        unlink(w->tmp_path);
    }
}

/* A whole array streamed into a character device or FIFO: the header, then the data. */
static gan_status write_stream(const char *path, gan_npy_dtype dtype, const void *data, int ndim,
                               const int64_t *shape)
{
    size_t bytes = gan_npy_dtype_bytes(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && bytes > SIZE_MAX / 4 / (uint64_t)shape[i]))
            return gan_error(GAN_ERR_ARG, "%s: bad shape (dimension %d is %lld)", path, i, (long long)shape[i]);
        bytes *= (size_t)shape[i];
    }
    char header[1024];
    size_t header_bytes = format_header(header, sizeof header, dtype, ndim, shape, 0);
    if (!header_bytes)
        return gan_error(GAN_ERR_ARG, "%s: shape does not fit a .npy header", path);
    int fd;
    GAN_TRY(gan_output_open_stream(path, &fd));
    gan_status status = GAN_OK;
    GAN_CHECK(gan_write_all(fd, header, header_bytes, path));
    GAN_CHECK(gan_write_all(fd, data, bytes, path));
cleanup:
    if (close(fd) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return status;
}

gan_status gan_npy_write(const char *path, gan_npy_dtype dtype, const void *data, int ndim,
                         const int64_t *shape)
{
    if (ndim == 0)
        return gan_error(GAN_ERR_ARG, "%s: 0-dimensional arrays are not written", path);
    if (ndim < 0 || ndim > GAN_NPY_MAX_DIMS)
        return gan_error(GAN_ERR_ARG, "%s: cannot write a %d-dimensional array", path, ndim);
    gan_output_kind kind;
    char target[4096];
    GAN_TRY(gan_output_check(path, &kind, target, sizeof target));
    if (kind == GAN_OUTPUT_STREAM)
        return write_stream(path, dtype, data, ndim, shape);
    gan_npy_writer w;
    GAN_TRY(gan_npy_writer_open(&w, path, dtype, ndim, shape));
    gan_status status = GAN_OK;
    GAN_CHECK(gan_npy_writer_write_rows(&w, 0, shape[0], data));
    return gan_npy_writer_commit(&w);
cleanup:
    gan_npy_writer_abort(&w);
    return status;
}

gan_status gan_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    return gan_npy_write(path, GAN_NPY_F32, data, ndim, shape);
}

gan_status gan_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape)
{
    return gan_npy_write(path, GAN_NPY_U8, data, ndim, shape);
}
