/* PNG files: gan_png_encode (src/io/image.c) into memory, then a temporary file renamed into
 * place, so a sample grid is never half-written. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/image.h"

gan_status gan_png_write(const char *path, const uint8_t *pixels, int width, int height, int channels)
{
    if (width < 1 || height < 1 || (channels != 1 && channels != 3) || !pixels)
        return gan_error(GAN_ERR_ARG, "%s: cannot write a %dx%dx%d PNG", path, width, height, channels);
    uint8_t *png = NULL;
    size_t bytes = 0;
    gan_status status = gan_png_encode(pixels, width, height, channels, &png, &bytes);
    if (status != GAN_OK)
        return gan_error_prefix(status, "%s: ", path);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(png);
        return gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    bool written = fwrite(png, 1, bytes, f) == bytes;
    free(png);
    if (fclose(f) != 0 || !written) {
        unlink(tmp);
        return gan_error(GAN_ERR_IO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    }
    return GAN_OK;
}
