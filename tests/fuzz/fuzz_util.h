/* Shared by the fuzz targets: the readers under test take paths, so each input is written to a
 * file of this process's own ($TMPDIR or /tmp, removed at exit) and read back from there. */
#ifndef GAN_FUZZ_UTIL_H
#define GAN_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_path_[512];

static void fuzz_remove_file_(void) { unlink(fuzz_path_); }

/* The input as a file named gan-fuzz-<pid>-<name>; its path, or NULL when it cannot be written
 * (which is the machine's problem, not an input's: the caller aborts). */
static const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    if (!fuzz_path_[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path_, sizeof fuzz_path_, "%s/gan-fuzz-%ld-%s", dir && dir[0] ? dir : "/tmp",
                 (long)getpid(), name);
        atexit(fuzz_remove_file_);
    }
    FILE *f = fopen(fuzz_path_, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(fuzz_path_);
        abort();
    }
    return fuzz_path_;
}

#endif
