/* Writing a whole file so that a crash or an error never leaves it half-written: the bytes go to
 * `path`.tmp, which is fsynced, closed and renamed over `path`, then the directory is fsynced so
 * the rename itself is durable. On failure `path` is untouched and the .tmp is removed. Used by
 * the safetensors writer (checkpoints, exports) and the ONNX export. */
#ifndef GAN_FILE_ATOMIC_H
#define GAN_FILE_ATOMIC_H

#include <stddef.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One contiguous run of the file's bytes (host memory). */
typedef struct gan_file_piece {
    const void *data;
    size_t bytes;
} gan_file_piece;

/* Writes `pieces` one after the other as the new contents of `path`. */
gan_status gan_file_write_atomic(const char *path, const gan_file_piece *pieces, int piece_count);

#ifdef __cplusplus
}
#endif
#endif
