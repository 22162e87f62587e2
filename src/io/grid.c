/* Sample grids laid out as torchvision's make_grid(x, nrow, padding, normalize=True) and saved as
 * save_image does: every image is scaled by the min and max over all of them, placed on a black
 * canvas with `padding` pixels around each, 1-channel images repeated to RGB, and converted to
 * uint8 as x * 255 + 0.5 clamped to [0, 255]. The grid goes to a PNG file, or to PNG bytes in memory
 * (for TensorBoard). */
#include <math.h>
#include <stdlib.h>

#include "gan/image.h"

/* The grid's RGB pixels: *rgb is malloc'ed [*grid_h, *grid_w, 3]. `name` names the output in
 * messages. */
static gan_status layout_grid(const char *name, const float *images, int n, int channels, int height,
                              int width, int nrow, int padding, uint8_t **rgb_out, int *grid_w_out,
                              int *grid_h_out)
{
    *rgb_out = NULL;
    if (n < 1 || (channels != 1 && channels != 3) || height < 1 || width < 1 || nrow < 1)
        return gan_error(GAN_ERR_ARG, "%s: cannot lay out %d images of [%d, %d, %d] as a grid",
                         name, n, channels, height, width);
    size_t count = (size_t)n * channels * height * width;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        if (images[i] < lo)
            lo = images[i];
        if (images[i] > hi)
            hi = images[i];
    }
    /* make_grid's norm_ip: clamp(min, max), then (x - min) / max(max - min, 1e-5) */
    float range = fmaxf(hi - lo, 1e-5f);
    int xmaps = n < nrow ? n : nrow;
    int ymaps = (n + xmaps - 1) / xmaps;
    int cell_h = height + padding, cell_w = width + padding;
    int grid_h = ymaps * cell_h + padding, grid_w = xmaps * cell_w + padding;
    uint8_t *rgb = calloc((size_t)grid_h * grid_w * 3, 1);
    if (!rgb)
        return gan_error(GAN_ERR_NOMEM, "out of memory for a %dx%d grid", grid_w, grid_h);
    for (int k = 0; k < n; k++) {
        int top = (k / xmaps) * cell_h + padding, left = (k % xmaps) * cell_w + padding;
        for (int c = 0; c < 3; c++) {
            const float *plane = images + ((size_t)k * channels + (channels == 1 ? 0 : c)) * height * width;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++) {
                    float v = fminf(fmaxf(plane[(size_t)y * width + x], lo), hi);
                    float u = (v - lo) / range * 255.0f + 0.5f;
                    u = fminf(fmaxf(u, 0.0f), 255.0f);
                    rgb[((size_t)(top + y) * grid_w + left + x) * 3 + c] = (uint8_t)u;
                }
        }
    }
    *rgb_out = rgb;
    *grid_w_out = grid_w;
    *grid_h_out = grid_h;
    return GAN_OK;
}

gan_status gan_write_sample_grid(const char *path, const float *images, int n, int channels,
                                 int height, int width, int nrow, int padding)
{
    uint8_t *rgb;
    int grid_w, grid_h;
    GAN_TRY(layout_grid(path, images, n, channels, height, width, nrow, padding, &rgb, &grid_w, &grid_h));
    gan_status status = gan_png_write(path, rgb, grid_w, grid_h, 3);
    free(rgb);
    return status;
}

gan_status gan_sample_grid_png(const float *images, int n, int channels, int height, int width,
                               int nrow, int padding, uint8_t **png, size_t *png_size, int *grid_w,
                               int *grid_h)
{
    *png = NULL;
    *png_size = 0;
    uint8_t *rgb;
    GAN_TRY(layout_grid("sample grid", images, n, channels, height, width, nrow, padding, &rgb, grid_w,
                        grid_h));
    gan_status status = gan_png_encode(rgb, *grid_w, *grid_h, 3, png, png_size);
    free(rgb);
    return status;
}
