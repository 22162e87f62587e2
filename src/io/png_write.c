/* PNG files: gan_png_encode (src/io/image.c) into memory, then written by the output rule of
 * gan/file_atomic.h (a temporary file renamed into place, so a sample grid is never half-written;
 * a character device or FIFO written in place). No fsync: grids and --dir images are written by
 * the thousand and are remade from a checkpoint. */
#include <stdlib.h>

#include "gan/file_atomic.h"
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
    gan_file_piece piece = {png, bytes};
    status = gan_file_write_replace(path, &piece, 1, false);
    free(png);
    return status;
}
