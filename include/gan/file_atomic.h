/* Writing a whole output file, and the rule every gan writer follows for what an output path may
 * name. Outputs never replace anything but a regular file:
 *
 *   - missing, or a regular file: the bytes go to a temporary name beside it that is this
 *     write's alone (`path`.tmp.<pid>.<n>, created with O_EXCL; the npy writer uses the same
 *     names), which is closed and renamed over `path`: two concurrent writers never share one; a crash
 *     or an error never leaves a half-written output, and on failure `path` is untouched and the
 *     temporary file is removed. gan_file_write_atomic also fsyncs the file and its directory so
 *     the rename is durable. A symbolic link to a regular file stays a link: the file it names is
 *     the one replaced.
 *   - a character device or a FIFO (/dev/stdout, /dev/null, a pipe made with mkfifo): written in
 *     place, in order, with no temporary file and no rename, so the node stays what it is. A FIFO
 *     blocks until a reader opens it, as a shell redirection does.
 *   - anything else (a directory, a block device, a socket, a symbolic link to nothing) and the
 *     empty path: refused with one message naming the path; nothing is written.
 *
 * Every write error names the file and the OS reason (strerror of the failing call's errno).
 * Used by the safetensors writer (checkpoints, exports), the ONNX export, PNG files (sample grids,
 * gan sample --dir) and the .npy writer (gan sample --npy, gan prepare). */
#ifndef GAN_FILE_ATOMIC_H
#define GAN_FILE_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One contiguous run of the file's bytes (host memory). */
typedef struct gan_file_piece {
    const void *data;
    size_t bytes;
} gan_file_piece;

/* How an output path is written, by the rule above. */
typedef enum gan_output_kind {
    GAN_OUTPUT_FILE,  /* missing or a regular file: temporary name, then rename */
    GAN_OUTPUT_STREAM /* a character device or a FIFO: written in place */
} gan_output_kind;

/* Decides how `path` is written, or refuses it. For GAN_OUTPUT_FILE, `target` (`target_bytes`
 * long) receives the path the temporary name and the rename work on: `path` itself, or the
 * regular file a symbolic link `path` names. */
gan_status gan_output_check(const char *path, gan_output_kind *kind, char *target, size_t target_bytes);

/* Opens a GAN_OUTPUT_STREAM target for writing (no truncation: devices and FIFOs have none) and
 * checks again that what was opened is a character device or a FIFO. */
gan_status gan_output_open_stream(const char *path, int *fd);

/* write(2) until all `bytes` are written (EINTR retried); a failure says
 * "`name`: write failed: <reason>". */
gan_status gan_write_all(int fd, const void *data, size_t bytes, const char *name);

/* Writes `pieces` one after the other as the new contents of `path`, by the rule above, with
 * fsync of the file and its directory. */
gan_status gan_file_write_atomic(const char *path, const gan_file_piece *pieces, int piece_count);

/* The same, with `durable` false skipping the two fsyncs (images written by the thousand). */
gan_status gan_file_write_replace(const char *path, const gan_file_piece *pieces, int piece_count,
                                  bool durable);

/* The reading side's rule: an input file is a regular file. Opens `path` for reading without
 * waiting (O_NONBLOCK, so a FIFO cannot block the open), refuses anything but a regular file
 * ("PATH: not a regular file"), then clears O_NONBLOCK; *fd is the open descriptor and *size the
 * file's size in bytes. Errors name the path and the OS reason. */
gan_status gan_input_open_regular(const char *path, int *fd, size_t *size);

/* The same, as a stdio stream for reading (the text readers: configs, split lists). */
gan_status gan_input_fopen_regular(const char *path, FILE **out);

#ifdef __cplusplus
}
#endif
#endif
