/* Output paths and whole-file writes (see gan/file_atomic.h for the rule). */
#include "gan/file_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *refused_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "is a directory";
    if (S_ISBLK(mode))
        return "is a block device";
    if (S_ISSOCK(mode))
        return "is a socket";
    return "is not a regular file";
}

static gan_status copy_path(char *target, size_t target_bytes, const char *path)
{
    if (strlen(path) >= target_bytes)
        return gan_error(GAN_ERR_ARG, "%s: path too long", path);
    memcpy(target, path, strlen(path) + 1);
    return GAN_OK;
}

gan_status gan_output_check(const char *path, gan_output_kind *kind, char *target, size_t target_bytes)
{
    *kind = GAN_OUTPUT_FILE;
    if (!path || !path[0])
        return gan_error(GAN_ERR_ARG, "an output path is empty");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return copy_path(target, target_bytes, path); /* a new file */
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    }
    bool link = S_ISLNK(st.st_mode);
    if (link && stat(path, &st) != 0) {
        if (errno == ENOENT)
            return gan_error(GAN_ERR_IO, "%s: is a symbolic link to nothing; an output replaces only a "
                                         "regular file (remove the link or make its file)",
                             path);
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        *kind = GAN_OUTPUT_STREAM;
        return GAN_OK;
    }
    if (!S_ISREG(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: %s; outputs replace only regular files (written to a "
                                     "temporary file renamed over them) and write character devices "
                                     "and FIFOs in place",
                         path, refused_kind(st.st_mode));
    if (!link)
        return copy_path(target, target_bytes, path);
    char *resolved = realpath(path, NULL); /* the file the link names is the one replaced */
    if (!resolved)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    gan_status status = copy_path(target, target_bytes, resolved);
    free(resolved);
    return status;
}

gan_status gan_output_open_stream(const char *path, int *fd)
{
    *fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (*fd < 0)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        close(*fd);
        *fd = -1;
        return gan_error(GAN_ERR_IO, "%s: changed while it was opened (no longer a character device "
                                     "or FIFO)",
                         path);
    }
    return GAN_OK;
}

gan_status gan_write_all(int fd, const void *data, size_t bytes, const char *name)
{
    const char *p = data;
    while (bytes) {
        ssize_t w = write(fd, p, bytes > (1u << 30) ? (1u << 30) : bytes);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return gan_error(GAN_ERR_IO, "%s: write failed: %s", name, strerror(errno));
        if (w == 0)
            return gan_error(GAN_ERR_IO, "%s: write failed: no progress", name);
        p += w;
        bytes -= (size_t)w;
    }
    return GAN_OK;
}

/* fsync the directory holding `path`, so that the rename itself survives a crash. */
static void sync_parent_directory(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    const char *name = dir;
    if (!slash)
        name = ".";
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

static atomic_uint temp_counter;

/* Creates a temporary file beside `target` that is this write's alone: `target`.tmp.<pid>.<n>
 * (the npy writer's names), created with O_EXCL, so two writers of one target (two processes, or
 * two threads) never share one and cannot rename each other's half-written file into place; a
 * name that exists (anything: a file, a FIFO, a link) is never opened or removed, the next is
 * tried. Leftovers of a killed writer are removed by whoever owns the folder (run_dir.c). */
static gan_status create_temporary(const char *target, char *tmp, size_t tmp_bytes, int *fd)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        if ((size_t)snprintf(tmp, tmp_bytes, "%s.tmp.%ld.%u", target, (long)getpid(),
                             atomic_fetch_add(&temp_counter, 1)) >= tmp_bytes)
            return gan_error(GAN_ERR_ARG, "%s: path too long", target);
        *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (*fd >= 0)
            return GAN_OK;
        if (errno != EEXIST)
            break;
    }
    return gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
}

static gan_status write_pieces(int fd, const gan_file_piece *pieces, int piece_count, const char *name)
{
    for (int i = 0; i < piece_count; i++)
        if (pieces[i].bytes)
            GAN_TRY(gan_write_all(fd, pieces[i].data, pieces[i].bytes, name));
    return GAN_OK;
}

/* The pieces into the temporary file, and onto the disk when `durable`; the caller closes fd. */
static gan_status write_temporary(int fd, const gan_file_piece *pieces, int piece_count, bool durable,
                                  const char *tmp)
{
    GAN_TRY(write_pieces(fd, pieces, piece_count, tmp));
    if (durable && fsync(fd) != 0)
        return gan_error(GAN_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    return GAN_OK;
}

static gan_status write_stream(const char *path, const gan_file_piece *pieces, int piece_count)
{
    int fd;
    GAN_TRY(gan_output_open_stream(path, &fd));
    gan_status status = write_pieces(fd, pieces, piece_count, path);
    if (close(fd) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return status;
}

gan_status gan_file_write_replace(const char *path, const gan_file_piece *pieces, int piece_count,
                                  bool durable)
{
    if (!path || piece_count < 0 || (piece_count && !pieces))
        return gan_error(GAN_ERR_ARG, "file write: no path, or a count without pieces");
    gan_output_kind kind;
    char target[4096];
    GAN_TRY(gan_output_check(path, &kind, target, sizeof target));
    if (kind == GAN_OUTPUT_STREAM)
        return write_stream(path, pieces, piece_count);
    char tmp[sizeof target + 32];
    int fd;
    GAN_TRY(create_temporary(target, tmp, sizeof tmp, &fd));
    gan_status status = write_temporary(fd, pieces, piece_count, durable, tmp);
    if (close(fd) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    GAN_CHECK(status);
    if (rename(tmp, target) != 0) {
        status = gan_error(GAN_ERR_IO, "%s: cannot rename to %s: %s", tmp, target, strerror(errno));
        goto cleanup;
    }
    if (durable)
        sync_parent_directory(target);
    return GAN_OK;
cleanup:
    unlink(tmp); /* ours: created above */
    return status;
}

gan_status gan_file_write_atomic(const char *path, const gan_file_piece *pieces, int piece_count)
{
    return gan_file_write_replace(path, pieces, piece_count, true);
}

gan_status gan_input_open_regular(const char *path, int *fd_out, size_t *size)
{
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gan_error(GAN_ERR_IO, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return GAN_OK;
}

gan_status gan_input_fopen_regular(const char *path, FILE **out)
{
    *out = NULL;
    int fd;
    size_t size;
    GAN_TRY(gan_input_open_regular(path, &fd, &size));
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int why = errno;
        close(fd);
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(why));
    }
    *out = f;
    return GAN_OK;
}
