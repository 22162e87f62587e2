/* Image decoding and encoding: PNG/JPEG round trips, channel conversion as PIL does it, interlaced
 * PNGs, and hostile input (every truncation, byte flips, garbage, decompression bombs): an error
 * naming the file, never a crash (this test also runs under AddressSanitizer in tools/test.sh). */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gan/image.h"
#include "test_util.h"

static void make_pixels(uint8_t *p, int w, int h, int c, unsigned seed)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                p[((size_t)y * w + x) * c + k] = (uint8_t)(x * 5 + y * 3 + k * 70 + seed * 13 + ((x * y) % 7) * 9);
}

static void check_png_round_trip(gan_image_decoder *dec)
{
    enum { W = 19, H = 11 };
    uint8_t rgb[W * H * 3], gray[W * H];
    make_pixels(rgb, W, H, 3, 1);
    make_pixels(gray, W, H, 1, 2);
    uint8_t *png = NULL;
    size_t size = 0;
    const uint8_t *out;
    int w, h;
    CHECK_OK(gan_png_encode(rgb, W, H, 3, &png, &size));
    CHECK(gan_image_sniff(png, size) == GAN_IMAGE_PNG);
    CHECK_OK(gan_image_decode(dec, png, size, "rgb.png", 3, &out, &w, &h));
    CHECK(w == W && h == H && !memcmp(out, rgb, sizeof rgb));
    /* RGB -> L: PIL's (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16 */
    CHECK_OK(gan_image_decode(dec, png, size, "rgb.png", 1, &out, &w, &h));
    bool luma_ok = true;
    for (int i = 0; i < W * H; i++)
        luma_ok &= out[i] == (uint8_t)((rgb[i * 3] * 19595 + rgb[i * 3 + 1] * 38470 + rgb[i * 3 + 2] * 7471 + 0x8000) >> 16);
    CHECK(luma_ok);
    free(png);
    CHECK_OK(gan_png_encode(gray, W, H, 1, &png, &size));
    CHECK_OK(gan_image_decode(dec, png, size, "gray.png", 1, &out, &w, &h));
    CHECK(!memcmp(out, gray, sizeof gray));
    CHECK_OK(gan_image_decode(dec, png, size, "gray.png", 3, &out, &w, &h));
    bool repeated = true; /* L -> RGB repeats the value */
    for (int i = 0; i < W * H; i++)
        repeated &= out[i * 3] == gray[i] && out[i * 3 + 1] == gray[i] && out[i * 3 + 2] == gray[i];
    CHECK(repeated);
    free(png);
    CHECK_FAILS_WITH(gan_png_encode(rgb, W, H, 2, &png, &size), GAN_ERR_ARG, "cannot encode");
    CHECK_FAILS_WITH(gan_image_decode(dec, rgb, 10, "x", 2, &out, &w, &h), GAN_ERR_ARG, "channels");
}

static void check_jpeg_round_trip(gan_image_decoder *dec)
{
    enum { W = 37, H = 29 };
    uint8_t rgb[W * H * 3]; /* smooth: 4:2:0 chroma and the DCT keep it */
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)((i / 3 % W) * 3 + (i / 3 / W) * 2 + (i % 3) * 40); /* <= 244 */
    uint8_t *jpeg = NULL;
    size_t size = 0;
    CHECK_OK(gan_jpeg_encode(rgb, W, H, 3, 95, &jpeg, &size));
    CHECK(gan_image_sniff(jpeg, size) == GAN_IMAGE_JPEG);
    const uint8_t *out;
    int w, h;
    CHECK_OK(gan_image_decode(dec, jpeg, size, "a.jpg", 3, &out, &w, &h));
    CHECK(w == W && h == H);
    double diff = 0;
    for (int i = 0; i < W * H * 3; i++)
        diff += abs((int)out[i] - (int)rgb[i]);
    diff /= W * H * 3;
    printf("JPEG q95 mean |diff| %.2f\n", diff);
    CHECK(diff < 2.0); /* lossy, but the same picture */
    free(jpeg);
    CHECK_FAILS_WITH(gan_jpeg_encode(rgb, W, H, 3, 0, &jpeg, &size), GAN_ERR_ARG, "quality");
}

/* An Adam7-interlaced RGB PNG written with libpng directly. */
typedef struct mem_sink {
    uint8_t data[1 << 16];
    size_t size;
} mem_sink;

static void write_to_buffer(png_structp png, png_bytep data, png_size_t n)
{
    mem_sink *sink = png_get_io_ptr(png);
    if (sink->size + n > sizeof sink->data)
        png_error(png, "test buffer full");
    memcpy(sink->data + sink->size, data, n);
    sink->size += n;
}
static void flush_nothing(png_structp png) { (void)png; }

static void check_interlaced_png(gan_image_decoder *dec)
{
    enum { W = 23, H = 17 };
    uint8_t rgb[W * H * 3];
    make_pixels(rgb, W, H, 3, 4);
    mem_sink *sink = calloc(1, sizeof *sink);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        CHECK_MSG(false, "libpng could not write the interlaced test image");
        png_destroy_write_struct(&png, &info);
        free(sink);
        return;
    }
    png_set_write_fn(png, sink, write_to_buffer, flush_nothing);
    png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_bytep rows[H];
    for (int y = 0; y < H; y++)
        rows[y] = rgb + (size_t)y * W * 3;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    const uint8_t *out;
    int w, h;
    CHECK_OK(gan_image_decode(dec, sink->data, sink->size, "interlaced.png", 3, &out, &w, &h));
    CHECK(w == W && h == H && out && !memcmp(out, rgb, sizeof rgb));
    free(sink);
}

/* Every prefix of a valid file: JPEGs must fail (PIL: "image file is truncated"); PNGs must fail
 * until the image data is complete. Never a crash. */
static void check_truncations(gan_image_decoder *dec)
{
    enum { W = 24, H = 20 };
    uint8_t rgb[W * H * 3];
    make_pixels(rgb, W, H, 3, 5);
    uint8_t *jpeg, *png;
    size_t jpeg_size, png_size;
    CHECK_OK(gan_jpeg_encode(rgb, W, H, 3, 90, &jpeg, &jpeg_size));
    CHECK_OK(gan_png_encode(rgb, W, H, 3, &png, &png_size));
    const uint8_t *out;
    int w, h, jpeg_failures = 0, png_failures = 0;
    for (size_t n = 0; n < jpeg_size; n++) {
        gan_status s = gan_image_decode(dec, jpeg, n, "cut.jpg", 3, &out, &w, &h);
        jpeg_failures += s == GAN_ERR_FORMAT && strstr(gan_error_message(), "cut.jpg") != NULL;
    }
    CHECK_MSG(jpeg_failures == (int)jpeg_size, "%d of %zu truncated JPEGs refused", jpeg_failures, jpeg_size);
    for (size_t n = 0; n + 12 < png_size; n++) /* IEND is the last 12 bytes */
        png_failures += gan_image_decode(dec, png, n, "cut.png", 3, &out, &w, &h) == GAN_ERR_FORMAT;
    CHECK_MSG(png_failures == (int)png_size - 12, "%d of %zu truncated PNGs refused", png_failures, png_size - 12);
    /* the decoder is still good after all that */
    CHECK_OK(gan_image_decode(dec, jpeg, jpeg_size, "whole.jpg", 3, &out, &w, &h));
    CHECK_OK(gan_image_decode(dec, png, png_size, "whole.png", 1, &out, &w, &h));
    CHECK(w == W && h == H);

    /* flipped bytes: either an error or an image, never a crash */
    uint8_t *copy = malloc(jpeg_size > png_size ? jpeg_size : png_size);
    unsigned state = 12345;
    int decoded = 0, refused = 0;
    for (int round = 0; round < 400; round++) {
        bool is_png = round & 1;
        const uint8_t *src = is_png ? png : jpeg;
        size_t n = is_png ? png_size : jpeg_size;
        memcpy(copy, src, n);
        for (int k = 0; k < 1 + round % 4; k++) {
            state = state * 1103515245u + 12345u;
            size_t at = 2 + (state >> 8) % (n - 2);
            copy[at] ^= (uint8_t)(1u << ((state >> 4) % 8));
        }
        gan_status s = gan_image_decode(dec, copy, n, "flipped", 3, &out, &w, &h);
        decoded += s == GAN_OK;
        refused += s == GAN_ERR_FORMAT;
    }
    printf("byte flips: %d decoded, %d refused\n", decoded, refused);
    CHECK(decoded + refused == 400 && refused > 0);
    free(copy);
    free(jpeg);
    free(png);
}

static void check_garbage(gan_image_decoder *dec)
{
    const uint8_t *out;
    int w, h;
    const char *text = "this is a README, not an image\n";
    CHECK_FAILS_WITH(gan_image_decode(dec, (const uint8_t *)text, strlen(text), "notes.jpg", 3, &out, &w, &h),
                     GAN_ERR_FORMAT, "notes.jpg: not a JPEG or PNG");
    CHECK_FAILS_WITH(gan_image_decode(dec, (const uint8_t *)"", 0, "empty.png", 3, &out, &w, &h), GAN_ERR_FORMAT,
                     "empty");
    const uint8_t soi_only[] = {0xff, 0xd8, 0xff};
    CHECK_FAILS_WITH(gan_image_decode(dec, soi_only, 3, "soi.jpg", 3, &out, &w, &h), GAN_ERR_FORMAT, "soi.jpg");
    const uint8_t sig_only[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK_FAILS_WITH(gan_image_decode(dec, sig_only, 8, "sig.png", 3, &out, &w, &h), GAN_ERR_FORMAT, "sig.png");
}

/* Headers that claim 20000 x 20000 pixels are refused before any allocation. */
static void check_bombs(gan_image_decoder *dec)
{
    uint8_t px[8 * 8 * 3];
    make_pixels(px, 8, 8, 3, 6);
    uint8_t *png, *jpeg;
    size_t png_size, jpeg_size;
    CHECK_OK(gan_png_encode(px, 8, 8, 3, &png, &png_size));
    /* IHDR data at 16..28, its CRC at 29..32 */
    const uint32_t big = 20000;
    for (int k = 0; k < 2; k++) {
        png[16 + 4 * k] = (uint8_t)(big >> 24);
        png[17 + 4 * k] = (uint8_t)(big >> 16);
        png[18 + 4 * k] = (uint8_t)(big >> 8);
        png[19 + 4 * k] = (uint8_t)big;
    }
    uint32_t crc = (uint32_t)crc32(0, png + 12, 17);
    png[29] = (uint8_t)(crc >> 24);
    png[30] = (uint8_t)(crc >> 16);
    png[31] = (uint8_t)(crc >> 8);
    png[32] = (uint8_t)crc;
    const uint8_t *out;
    int w, h;
    CHECK_FAILS_WITH(gan_image_decode(dec, png, png_size, "bomb.png", 3, &out, &w, &h), GAN_ERR_FORMAT,
                     "decompression bomb");
    CHECK_OK(gan_jpeg_encode(px, 8, 8, 3, 90, &jpeg, &jpeg_size));
    bool patched = false;
    for (size_t i = 2; i + 9 < jpeg_size; i++)
        if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) { /* SOF0: length, precision, height, width */
            jpeg[i + 5] = (uint8_t)(big >> 8);
            jpeg[i + 6] = (uint8_t)big;
            jpeg[i + 7] = (uint8_t)(big >> 8);
            jpeg[i + 8] = (uint8_t)big;
            patched = true;
            break;
        }
    CHECK(patched);
    CHECK_FAILS_WITH(gan_image_decode(dec, jpeg, jpeg_size, "bomb.jpg", 3, &out, &w, &h), GAN_ERR_FORMAT,
                     "decompression bomb");
    free(png);
    free(jpeg);
}

static void check_files(void)
{
    const char *dir = test_temp_dir("test_data_image");
    char path[4200];
    snprintf(path, sizeof path, "%s/x.png", dir);
    uint8_t px[5 * 4 * 3];
    make_pixels(px, 5, 4, 3, 7);
    CHECK_OK(gan_png_write(path, px, 5, 4, 3));
    uint8_t *back = NULL;
    int w, h;
    CHECK_OK(gan_image_load(path, 3, &back, &w, &h));
    CHECK(back && w == 5 && h == 4 && !memcmp(back, px, sizeof px));
    free(back);
    snprintf(path, sizeof path, "%s/missing.png", dir);
    CHECK_FAILS_WITH(gan_image_load(path, 3, &back, &w, &h), GAN_ERR_IO, "missing.png");
    CHECK_FAILS_WITH(gan_image_load(dir, 3, &back, &w, &h), GAN_ERR_IO, "not a regular file");
}

int main(void)
{
    gan_image_decoder *dec = NULL;
    CHECK_OK(gan_image_decoder_create(&dec));
    if (!dec)
        return test_finish();
    check_png_round_trip(dec);
    check_jpeg_round_trip(dec);
    check_interlaced_png(dec);
    check_truncations(dec);
    check_garbage(dec);
    check_bombs(dec);
    check_files();
    gan_image_decoder_destroy(dec);
    return test_finish();
}
