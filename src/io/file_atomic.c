/* Whole-file writes through a temporary name (see gan/file_atomic.h). */
#include "gan/file_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gan_status write_all(int fd, const void *buf, size_t n, const char *path)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return gan_error(GAN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
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
    int fd = open(name, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

gan_status gan_file_write_atomic(const char *path, const gan_file_piece *pieces, int piece_count)
{
    if (!path || piece_count < 0 || (piece_count && !pieces))
        return gan_error(GAN_ERR_ARG, "file write: no path, or a count without pieces");
    char *tmp = malloc(strlen(path) + 5);
    if (!tmp)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
    sprintf(tmp, "%s.tmp", path);
    gan_status status = GAN_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        status = gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    for (int i = 0; i < piece_count && status == GAN_OK; i++)
        if (pieces[i].bytes)
            status = write_all(fd, pieces[i].data, pieces[i].bytes, tmp);
    if (status == GAN_OK && fsync(fd) != 0)
        status = gan_error(GAN_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (status == GAN_OK && rename(tmp, path) != 0)
        status = gan_error(GAN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (status != GAN_OK && fd >= 0)
        unlink(tmp); /* ours: created above */
    if (status == GAN_OK)
        sync_parent_directory(path);
    free(tmp);
    return status;
}
