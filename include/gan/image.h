/* Image files: JPEG (libjpeg-turbo) and PNG (libpng) decoding for the data pipeline, PNG and JPEG
 * encoding for sample grids, test data and benchmarks.
 *
 * Decoding gives what PIL gives for Image.open(f).convert('RGB') (channels 3) or .convert('L')
 * (channels 1), the way torchvision's loaders read images:
 *   - JPEG: libjpeg's default (islow) decoding at full size; gray stays gray, YCbCr/RGB become RGB,
 *     CMYK/YCCK (inverted when an Adobe marker says so, as PIL does) go through PIL's CMYK->RGB;
 *   - PNG: palette -> its RGB colours, 1/2/4-bit gray scaled to 8 bits, alpha dropped (no
 *     compositing: convert('RGB') drops it too), tRNS ignored, gamma ignored (as PIL);
 *     16-bit samples -> their high byte (PIL does that for 16-bit RGB; for 16-bit gray PIL clips the
 *     value to 255 instead, which turns most images white: we scale, on purpose);
 *   - gray -> RGB repeats the value; RGB -> gray is PIL's fixed point
 *     L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16.
 * The format is recognised by content, not by file name. Corrupt, truncated or hostile input is an
 * error (GAN_ERR_FORMAT, naming the file), never a crash: libjpeg and libpng errors come back through
 * setjmp/longjmp; a JPEG that ends early (libjpeg would pad it with gray) is an error, as PIL says
 * "image file is truncated"; images over PIL's decompression-bomb limit are refused. Before any
 * pixel memory is allocated, the dimensions are checked against the file's size: a PNG must be
 * large enough for deflate (at most 1032:1) to unpack its pixels, a Huffman-coded JPEG must hold at
 * least one bit per 8x8 block of its first scan (arithmetic-coded JPEGs and progressive ones that
 * open with an AC scan are bounded by GAN_IMAGE_MAX_PIXELS alone). */
#ifndef GAN_IMAGE_H
#define GAN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PIL's Image.MAX_IMAGE_PIXELS * 2: the size PIL refuses as a decompression bomb. */
#define GAN_IMAGE_MAX_PIXELS 178956970ll

typedef enum gan_image_format { GAN_IMAGE_UNKNOWN, GAN_IMAGE_JPEG, GAN_IMAGE_PNG } gan_image_format;

/* The format by the first bytes of a file. */
gan_image_format gan_image_sniff(const uint8_t *bytes, size_t size);

/* A decoder with its buffers, reused from image to image (one per thread). */
typedef struct gan_image_decoder gan_image_decoder;

gan_status gan_image_decoder_create(gan_image_decoder **out);
void gan_image_decoder_destroy(gan_image_decoder *dec);

/* Decodes `bytes` (a whole JPEG or PNG file) into 8-bit pixels [height, width, channels], channels
 * 1 or 3. *pixels points into the decoder's buffer: valid until its next decode. `name` names the
 * file in messages. */
gan_status gan_image_decode(gan_image_decoder *dec, const uint8_t *bytes, size_t size, const char *name,
                            int channels, const uint8_t **pixels, int *width, int *height);

/* src [count, src_channels] -> dst [count, dst_channels], channels 1 or 3, as PIL's convert('RGB')
 * (gray repeated) and convert('L') (the fixed-point luma above) do. */
void gan_pixels_convert(const uint8_t *src, int src_channels, uint8_t *dst, int dst_channels, size_t count);

/* Reads a whole file into a growing buffer (*buffer, *capacity; *size its length). */
gan_status gan_file_read(const char *path, uint8_t **buffer, size_t *capacity, size_t *size);

/* Reads and decodes an image file; *pixels is malloc'ed [height, width, channels]. */
gan_status gan_image_load(const char *path, int channels, uint8_t **pixels, int *width, int *height);

/* Encodes 8-bit gray (channels 1) or RGB (channels 3) pixels [height, width, channels] as PNG or
 * baseline JPEG (quality 1..100, 4:2:0 chroma for RGB) in memory; *out is malloc'ed. */
gan_status gan_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out,
                          size_t *size);
gan_status gan_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                           uint8_t **out, size_t *size);

/* Writes 8-bit gray (channels 1) or RGB (channels 3) rows, packed, to `path` by the output rule of
 * gan/file_atomic.h: through `path`.tmp and a rename, or in place into a character device or FIFO
 * (src/io/png_write.c). */
gan_status gan_png_write(const char *path, const uint8_t *pixels, int width, int height, int channels);

/* Sample grids (src/io/grid.c): writes a grid like torchvision's save_image(make_grid(x, nrow,
 * padding=2, normalize=True)): images [n, C, H, W] scaled by the min and max of all of them. */
gan_status gan_write_sample_grid(const char *path, const float *images, int n, int channels,
                                 int height, int width, int nrow, int padding);
/* The same grid as PNG bytes in memory (always RGB, as the file): *png is malloc'ed [*png_size],
 * the picture *grid_w x *grid_h. */
gan_status gan_sample_grid_png(const float *images, int n, int channels, int height, int width,
                               int nrow, int padding, uint8_t **png, size_t *png_size, int *grid_w,
                               int *grid_h);

#ifdef __cplusplus
}
#endif
#endif
