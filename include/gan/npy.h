/* NumPy .npy files: latent vectors in, samples out, and the packed dataset cache of `gan prepare`
 * (uint8 [N, H, W, C]) that training memory-maps.
 *
 * Written: format version 1.0, little-endian, C order, dtypes '<f4' and '|u1'; the header is padded
 * so that the data starts on a 64-byte boundary, as numpy.save does; by the output rule of
 * gan/file_atomic.h, every file goes to a temporary name in the same folder (`path`.tmp.<pid>.<n>)
 * and is renamed into place once complete (never a half-written output), and a character device
 * or FIFO is written in place, in order.
 * Read: versions 1.0, 2.0 and 3.0, C order, '<f4' (float32) and '|u1'/'<u1' (uint8); anything else
 * (big-endian, Fortran order, other dtypes, a shape that does not match the file size) is refused
 * with a message naming the file. */
#ifndef GAN_NPY_H
#define GAN_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GAN_NPY_MAX_DIMS = 8 };

typedef enum gan_npy_dtype { GAN_NPY_U8, GAN_NPY_F32 } gan_npy_dtype;

size_t gan_npy_dtype_bytes(gan_npy_dtype dtype);
const char *gan_npy_dtype_name(gan_npy_dtype dtype); /* "uint8", "float32" */

/* What a header says. */
typedef struct gan_npy_header {
    gan_npy_dtype dtype;
    int ndim;
    int64_t shape[GAN_NPY_MAX_DIMS];
    size_t data_offset; /* bytes from the start of the file to the data */
    size_t data_bytes;  /* product of the shape times the item size */
} gan_npy_header;

/* Parses the header at the start of `bytes` (`available` bytes of the file; the whole header must
 * be in them). `name` names the file in messages. */
gan_status gan_npy_parse_header(const uint8_t *bytes, size_t available, const char *name,
                                gan_npy_header *out);

/* An array read from a file: memory-mapped read-only (gan_npy_map) or read into memory
 * (gan_npy_read). `data` points to shape's product of dtype items. */
typedef struct gan_npy_array {
    gan_npy_header header;
    void *data;
    void *map_base;   /* the mapping when memory-mapped, else NULL (data is malloc'ed) */
    size_t map_bytes;
} gan_npy_array;

gan_status gan_npy_map(const char *path, gan_npy_array *out);
gan_status gan_npy_read(const char *path, gan_npy_array *out);
void gan_npy_release(gan_npy_array *array);

/* Whole arrays in one call. Writes go through a temporary file and a rename. */
gan_status gan_npy_write(const char *path, gan_npy_dtype dtype, const void *data, int ndim,
                         const int64_t *shape);
gan_status gan_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
gan_status gan_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape);
/* Reads a float32 / uint8 array; *data is malloc'ed (free it). */
gan_status gan_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[GAN_NPY_MAX_DIMS]);
gan_status gan_npy_read_u8(const char *path, uint8_t **data, int *ndim, int64_t shape[GAN_NPY_MAX_DIMS]);

/* A file written piece by piece (the dataset cache): rows of shape[1:] written at any position by
 * any thread (pwrite), rows dropped before the end (images that could not be decoded), then the
 * header rewritten with the final leading dimension, the file synced and renamed into place.
 * Space is reserved up front, so a full disk is an error at open, not a crash later. A character
 * device or FIFO as `path` is opened at once and receives the whole file, in order, at commit; the
 * rows are gathered until then in an unnamed scratch file in $TMPDIR (or /tmp). */
typedef struct gan_npy_writer {
    int fd;                          /* the temporary file (or the scratch file when streaming) */
    int stream_fd;                   /* a character device or FIFO written at commit; else -1 */
    char path[4096];
    char tmp_path[4200];
    gan_npy_dtype dtype;
    int ndim;
    int64_t shape[GAN_NPY_MAX_DIMS]; /* shape[0] shrinks when rows are dropped */
    size_t header_bytes;             /* fixed when opened: the header is rewritten in place */
    size_t row_bytes;                /* bytes of one row: product of shape[1:] times item size */
} gan_npy_writer;

gan_status gan_npy_writer_open(gan_npy_writer *w, const char *path, gan_npy_dtype dtype, int ndim,
                               const int64_t *shape);
/* Writes rows [row, row + rows) from `data`; safe to call from several threads at once. */
gan_status gan_npy_writer_write_rows(gan_npy_writer *w, int64_t row, int64_t rows, const void *data);
/* Keeps only the rows with keep[i] true (in order), moving them down; shape[0] becomes their count. */
gan_status gan_npy_writer_drop_rows(gan_npy_writer *w, const bool *keep);
/* Writes the header, truncates to the final size, syncs, renames to `path` and syncs the folder. */
gan_status gan_npy_writer_commit(gan_npy_writer *w);
/* Removes the temporary file (after a failure); safe after commit (does nothing). */
void gan_npy_writer_abort(gan_npy_writer *w);

#ifdef __cplusplus
}
#endif
#endif
