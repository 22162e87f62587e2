/* NumPy .npz files (src/io/npz.c): a zip archive of .npy members, as numpy.savez (members
 * stored) and numpy.savez_compressed (deflated) write them: pytorch-fid's statistics files hold mu
 * [dims] and sigma [dims, dims] as float64 members mu.npy and sigma.npy.
 *
 * Read: the zip's central directory (ZIP64 sizes and offsets included), members stored or
 * deflated, each checked against its CRC-32; a member's .npy header version 1.0 to 3.0 with dtype
 * '<f8' or '<f4' (returned as double), C or Fortran order (returned in C order). The file is treated
 * as hostile: every offset and size is checked against the file, and anything else (another
 * compression method, encryption, another dtype, a shape that does not match the member's size) is
 * refused with GAN_ERR_FORMAT naming the file and the member.
 * Written: members stored (numpy.savez's layout), .npy version 1.0 '<f8' C order, by the output rule
 * of gan/file_atomic.h. */
#ifndef GAN_NPZ_H
#define GAN_NPZ_H

#include <stdint.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GAN_NPZ_MAX_DIMS = 8 };

/* One float64 array, in C order: data [shape[0] x ... x shape[ndim - 1]] (malloc'ed by the reader). */
typedef struct gan_npz_array {
    const char *name; /* the member's name without ".npy" */
    int ndim;
    int64_t shape[GAN_NPZ_MAX_DIMS];
    double *data;
} gan_npz_array;

/* Reads member `name`.npy of the .npz `path` into *out (out->data malloc'ed; out->name = name).
 * A missing member is GAN_ERR_FORMAT naming the members the file has. */
gan_status gan_npz_read(const char *path, const char *name, gan_npz_array *out);

/* The same for a member of at most `max_values` values: a member larger than that many float64
 * values and a .npy header's room (16 KiB) is refused before it is inflated or any memory is
 * allocated for it (a small deflated file can claim gigabytes), and one whose shape holds more
 * values after its header is read, before it is converted. */
gan_status gan_npz_read_at_most(const char *path, const char *name, uint64_t max_values, gan_npz_array *out);

/* Writes `arrays` as the members name.npy of a new .npz at `path`. */
gan_status gan_npz_write(const char *path, const gan_npz_array *arrays, int count);

#ifdef __cplusplus
}
#endif
#endif
