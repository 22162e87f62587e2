/* JPEG and PNG decoding (and encoding) for the data pipeline; see gan/image.h for what each kind of
 * image becomes. libjpeg and libpng report fatal errors by calling our handlers, which longjmp back
 * to the decode call with the library's message; every buffer belongs to the decoder (grown and
 * reused), so a longjmp leaks nothing. */
#include "gan/image.h"
#include "gan/file_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* libjpeg-turbo's TurboJPEG stops progressive JPEGs after this many scans: more is an attack
 * (each scan re-runs the whole image), not a photograph. */
enum { MAX_JPEG_SCANS = 500 };

gan_image_format gan_image_sniff(const uint8_t *bytes, size_t size)
{
    if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
        return GAN_IMAGE_JPEG;
    if (size >= 8 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8))
        return GAN_IMAGE_PNG;
    return GAN_IMAGE_UNKNOWN;
}

/* ---- buffers ----------------------------------------------------------------------------------- */

static bool grow(uint8_t **buffer, size_t *capacity, size_t needed)
{
    if (needed <= *capacity)
        return true;
    size_t size = *capacity ? *capacity : 4096;
    while (size < needed)
        size = size > SIZE_MAX / 2 ? needed : size * 2;
    uint8_t *p = realloc(*buffer, size);
    if (!p)
        return false;
    *buffer = p;
    *capacity = size;
    return true;
}

typedef struct jpeg_error_context {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64];
} jpeg_error_context;

struct gan_image_decoder {
    struct jpeg_decompress_struct jpeg;
    jpeg_error_context jpeg_error;
    struct jpeg_progress_mgr jpeg_progress;
    bool jpeg_created;
    uint8_t *pixels;      /* [height, width, channels] the result */
    size_t pixels_capacity;
    uint8_t *raw;         /* [height, width, decoded components] before channel conversion */
    size_t raw_capacity;
    uint8_t *rows;        /* [height] row pointers for libpng */
    size_t rows_capacity;
};

/* ---- channel conversion as PIL's convert() does it --------------------------------------------- */

static inline uint8_t luma(const uint8_t *rgb)
{
    return (uint8_t)((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

/* PIL's cmyk2rgb: nk = 255 - k; out = nk - nk * c / 255 with its MULDIV255 rounding. */
static inline uint8_t cmyk_channel(int c, int nk)
{
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* src [count, src_c] (1 gray, 3 RGB, 4 CMYK) -> dst [count, dst_c] (1 or 3). */
static void convert_pixels(const uint8_t *src, int src_c, bool cmyk_inverted, uint8_t *dst, int dst_c,
                           size_t count)
{
    if (src_c == dst_c) {
        memcpy(dst, src, count * (size_t)dst_c);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const uint8_t *s = src + i * (size_t)src_c;
        uint8_t rgb[3];
        if (src_c == 1) {
            rgb[0] = rgb[1] = rgb[2] = s[0];
        } else if (src_c == 3) {
            rgb[0] = s[0];
            rgb[1] = s[1];
            rgb[2] = s[2];
        } else {
            int c = s[0], m = s[1], y = s[2], k = s[3];
            if (cmyk_inverted) { /* PIL reads Adobe CMYK as "CMYK;I" */
                c = 255 - c;
                m = 255 - m;
                y = 255 - y;
                k = 255 - k;
            }
            int nk = 255 - k;
            rgb[0] = cmyk_channel(c, nk);
            rgb[1] = cmyk_channel(m, nk);
            rgb[2] = cmyk_channel(y, nk);
        }
        if (dst_c == 1) {
            dst[i] = src_c == 1 ? s[0] : luma(rgb);
        } else {
            dst[i * 3 + 0] = rgb[0];
            dst[i * 3 + 1] = rgb[1];
            dst[i * 3 + 2] = rgb[2];
        }
    }
}

void gan_pixels_convert(const uint8_t *src, int src_channels, uint8_t *dst, int dst_channels, size_t count)
{
    convert_pixels(src, src_channels, false, dst, dst_channels, count);
}

static gan_status check_size(const char *name, long long width, long long height)
{
    if (width < 1 || height < 1)
        return gan_error(GAN_ERR_FORMAT, "%s: image has no pixels (%lldx%lld)", name, width, height);
    if (width * height > GAN_IMAGE_MAX_PIXELS)
        return gan_error(GAN_ERR_FORMAT, "%s: %lldx%lld pixels is over the limit of %lld (a "
                                         "decompression bomb, as PIL calls it)",
                         name, width, height, GAN_IMAGE_MAX_PIXELS);
    return GAN_OK;
}

/* ---- JPEG -------------------------------------------------------------------------------------- */

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_error_context *ctx = (jpeg_error_context *)cinfo->err;
    cinfo->err->format_message(cinfo, ctx->message);
    longjmp(ctx->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return; /* trace messages */
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        /* the data ended before the image did: libjpeg would pad it with gray; PIL refuses it */
        jpeg_error_context *ctx = (jpeg_error_context *)cinfo->err;
        snprintf(ctx->message, sizeof ctx->message, "truncated JPEG (the data ends before the image)");
        longjmp(ctx->jump, 1);
    }
    cinfo->err->num_warnings++; /* other corrupt-data warnings: PIL decodes on, so do we */
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; /* never print */ }

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > MAX_JPEG_SCANS) {
        jpeg_error_context *ctx = (jpeg_error_context *)cinfo->err;
        snprintf(ctx->message, sizeof ctx->message, "progressive JPEG with more than %d scans",
                 MAX_JPEG_SCANS);
        longjmp(ctx->jump, 1);
    }
}

/* A Huffman-coded scan that codes DC coefficients (every sequential scan, and progressive DC
 * scans) spends at least one bit on each 8x8 block of its components, so the file must hold
 * (blocks of the first scan) / 8 bytes: a header that claims more pixels than that is refused
 * before any pixel memory is allocated. (Arithmetic-coded JPEGs, and progressive ones that start
 * with an AC scan, which can code long runs of empty blocks in a few bits, are bounded by
 * GAN_IMAGE_MAX_PIXELS alone.) Called after jpeg_read_header, which has read the first scan's
 * header and sized the components. */
static gan_status check_jpeg_data_size(const struct jpeg_decompress_struct *cinfo, size_t size,
                                       const char *name)
{
    if (cinfo->arith_code || cinfo->Ss != 0)
        return GAN_OK;
    uint64_t blocks = 0;
    for (int i = 0; i < cinfo->comps_in_scan; i++)
        blocks += (uint64_t)cinfo->cur_comp_info[i]->width_in_blocks * cinfo->cur_comp_info[i]->height_in_blocks;
    uint64_t min_bytes = blocks / 8;
    if (min_bytes > size)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated: a %ux%u JPEG codes %llu blocks in its first scan, at "
                                         "least %llu bytes, and the file holds %zu",
                         name, cinfo->image_width, cinfo->image_height, (unsigned long long)blocks,
                         (unsigned long long)min_bytes, size);
    return GAN_OK;
}

/* What jpeg_read_header told of the image, checked before its pixels are allocated. */
static gan_status check_jpeg(const struct jpeg_decompress_struct *cinfo, size_t size, const char *name)
{
    GAN_TRY(check_size(name, cinfo->image_width, cinfo->image_height));
    return check_jpeg_data_size(cinfo, size, name);
}

static gan_status decode_jpeg(gan_image_decoder *dec, const uint8_t *bytes, size_t size, const char *name,
                              int channels, int *width, int *height)
{
    struct jpeg_decompress_struct *cinfo = &dec->jpeg;
    if (setjmp(dec->jpeg_error.jump)) {
        jpeg_abort_decompress(cinfo); /* leaves the object ready for the next image */
        return gan_error(GAN_ERR_FORMAT, "%s: %s", name, dec->jpeg_error.message);
    }
    jpeg_mem_src(cinfo, bytes, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);
    gan_status status = check_jpeg(cinfo, size, name);
    if (status != GAN_OK) {
        jpeg_abort_decompress(cinfo);
        return status;
    }
    bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cinfo->jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(cinfo);
    int w = (int)cinfo->output_width, h = (int)cinfo->output_height, comps = cinfo->output_components;
    if (comps != 1 && comps != 3 && comps != 4) {
        jpeg_abort_decompress(cinfo);
        return gan_error(GAN_ERR_FORMAT, "%s: JPEG with %d components", name, comps);
    }
    size_t out_bytes = (size_t)w * h * channels, raw_row = (size_t)w * comps;
    if (!grow(&dec->pixels, &dec->pixels_capacity, out_bytes) ||
        (comps != channels && !grow(&dec->raw, &dec->raw_capacity, raw_row))) {
        jpeg_abort_decompress(cinfo);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %dx%d pixels", name, w, h);
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        size_t y = cinfo->output_scanline;
        uint8_t *out_row = dec->pixels + y * (size_t)w * channels;
        JSAMPROW row = comps == channels ? out_row : dec->raw;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
            continue; /* cannot happen with a memory source; libjpeg errors longjmp */
        if (comps != channels)
            convert_pixels(dec->raw, comps, cinfo->saw_Adobe_marker, out_row, channels, (size_t)w);
    }
    jpeg_finish_decompress(cinfo);
    *width = w;
    *height = h;
    return GAN_OK;
}

/* ---- PNG --------------------------------------------------------------------------------------- */

typedef struct png_context {
    const uint8_t *bytes;
    size_t size, offset;
    char message[256];
} png_context;

static void png_on_error(png_structp png, png_const_charp message)
{
    png_context *ctx = png_get_error_ptr(png);
    snprintf(ctx->message, sizeof ctx->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message; /* benign (an ancillary chunk was bad and skipped): never print */
}

static void png_read_memory(png_structp png, png_bytep out, png_size_t bytes)
{
    png_context *ctx = png_get_io_ptr(png);
    if (bytes > ctx->size - ctx->offset)
        png_error(png, "truncated PNG (the data ends before the image)");
    memcpy(out, ctx->bytes + ctx->offset, bytes);
    ctx->offset += bytes;
}

/* What png_read_info told of the image, checked before its pixels are allocated. */
static gan_status check_png(png_structp png, png_infop info, size_t size, const char *name)
{
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    GAN_TRY(check_size(name, (long long)w, (long long)h));
    /* deflate unpacks at most 1032 bytes from one: a file too small for the image's pixel data is
     * cut short (or lying), and is refused before the pixels are allocated */
    uint64_t pixel_bits = (uint64_t)png_get_channels(png, info) * png_get_bit_depth(png, info);
    uint64_t packed_bytes = ((uint64_t)w * h * pixel_bits + 7) / 8;
    uint64_t can_hold = (uint64_t)size * 1032 + 1024;
    if (packed_bytes > can_hold)
        return gan_error(GAN_ERR_FORMAT, "%s: truncated: a %ux%u PNG holds %llu bytes of pixels, more than "
                                         "its %zu bytes can unpack to",
                         name, w, h, (unsigned long long)packed_bytes, size);
    return GAN_OK;
}

static gan_status decode_png(gan_image_decoder *dec, const uint8_t *bytes, size_t size, const char *name,
                             int channels, int *width, int *height)
{
    png_context ctx = {bytes, size, 0, "libpng failed"};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return gan_error(GAN_ERR_NOMEM, "%s: libpng could not start", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return gan_error(GAN_ERR_FORMAT, "%s: %s", name, ctx.message);
    }
    png_set_read_fn(png, &ctx, png_read_memory);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    gan_status status = check_png(png, info, size, name);
    if (status != GAN_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return status;
    }
    int color_type = png_get_color_type(png, info), bit_depth = png_get_bit_depth(png, info);
    if (bit_depth == 16)
        png_set_strip_16(png); /* the high byte: what PIL's "RGB;16B" gives */
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color_type & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png); /* palette expansion adds tRNS as alpha: drop that too */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int comps = png_get_channels(png, info);
    if ((comps != 1 && comps != 3) || png_get_rowbytes(png, info) != (size_t)w * comps) {
        png_destroy_read_struct(&png, &info, NULL);
        return gan_error(GAN_ERR_FORMAT, "%s: unexpected PNG layout (%d channels)", name, comps);
    }
    size_t raw_bytes = (size_t)w * h * comps;
    uint8_t **rows;
    uint8_t *target;
    if (!grow(&dec->pixels, &dec->pixels_capacity, (size_t)w * h * channels) ||
        (comps != channels && !grow(&dec->raw, &dec->raw_capacity, raw_bytes)) ||
        !grow(&dec->rows, &dec->rows_capacity, (size_t)h * sizeof(uint8_t *))) {
        png_destroy_read_struct(&png, &info, NULL);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %ux%u pixels", name, w, h);
    }
    target = comps == channels ? dec->pixels : dec->raw;
    rows = (uint8_t **)(void *)dec->rows;
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = target + (size_t)y * w * comps;
    png_read_image(png, rows);
    /* the chunks after the image data are not read (PIL does not read them either) */
    png_destroy_read_struct(&png, &info, NULL);
    if (comps != channels)
        convert_pixels(dec->raw, comps, false, dec->pixels, channels, (size_t)w * h);
    *width = (int)w;
    *height = (int)h;
    return GAN_OK;
}

/* ---- the decoder ------------------------------------------------------------------------------- */

gan_status gan_image_decoder_create(gan_image_decoder **out)
{
    *out = NULL;
    gan_image_decoder *dec = calloc(1, sizeof *dec);
    if (!dec)
        return gan_error(GAN_ERR_NOMEM, "out of memory for an image decoder");
    dec->jpeg.err = jpeg_std_error(&dec->jpeg_error.pub);
    dec->jpeg_error.pub.error_exit = jpeg_on_error;
    dec->jpeg_error.pub.emit_message = jpeg_on_message;
    dec->jpeg_error.pub.output_message = jpeg_on_output;
    if (setjmp(dec->jpeg_error.jump)) {
        gan_status status = gan_error(GAN_ERR_NOMEM, "libjpeg could not start: %s", dec->jpeg_error.message);
        free(dec);
        return status;
    }
    jpeg_create_decompress(&dec->jpeg);
    dec->jpeg_created = true;
    dec->jpeg_progress.progress_monitor = jpeg_on_progress;
    dec->jpeg.progress = &dec->jpeg_progress;
    *out = dec;
    return GAN_OK;
}

void gan_image_decoder_destroy(gan_image_decoder *dec)
{
    if (!dec)
        return;
    if (dec->jpeg_created)
        jpeg_destroy_decompress(&dec->jpeg);
    free(dec->pixels);
    free(dec->raw);
    free(dec->rows);
    free(dec);
}

gan_status gan_image_decode(gan_image_decoder *dec, const uint8_t *bytes, size_t size, const char *name,
                            int channels, const uint8_t **pixels, int *width, int *height)
{
    *pixels = NULL;
    *width = *height = 0;
    if (channels != 1 && channels != 3)
        return gan_error(GAN_ERR_ARG, "%s: decoding to %d channels (1 or 3)", name, channels);
    switch (gan_image_sniff(bytes, size)) {
    case GAN_IMAGE_JPEG:
        GAN_TRY(decode_jpeg(dec, bytes, size, name, channels, width, height));
        break;
    case GAN_IMAGE_PNG:
        GAN_TRY(decode_png(dec, bytes, size, name, channels, width, height));
        break;
    default:
        return gan_error(GAN_ERR_FORMAT, "%s: not a JPEG or PNG image (%s)", name,
                         size == 0 ? "the file is empty" : "unknown first bytes");
    }
    *pixels = dec->pixels;
    return GAN_OK;
}

gan_status gan_file_read(const char *path, uint8_t **buffer, size_t *capacity, size_t *size)
{
    *size = 0;
    int fd;
    size_t expected;
    GAN_TRY(gan_input_open_regular(path, &fd, &expected));
    if (!grow(buffer, capacity, expected + 1)) {
        close(fd);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, expected);
    }
    size_t done = 0;
    for (;;) {
        if (done == *capacity && !grow(buffer, capacity, done + 1)) { /* the file grew */
            close(fd);
            return gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
        }
        ssize_t n = read(fd, *buffer + done, *capacity - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gan_status status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
            close(fd);
            return status;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    *size = done;
    return GAN_OK;
}

gan_status gan_image_load(const char *path, int channels, uint8_t **pixels, int *width, int *height)
{
    *pixels = NULL;
    uint8_t *file = NULL;
    size_t capacity = 0, size = 0;
    gan_image_decoder *dec = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(gan_file_read(path, &file, &capacity, &size));
    GAN_CHECK(gan_image_decoder_create(&dec));
    const uint8_t *decoded = NULL;
    GAN_CHECK(gan_image_decode(dec, file, size, path, channels, &decoded, width, height));
    size_t bytes = (size_t)*width * *height * channels;
    *pixels = malloc(bytes);
    if (!*pixels) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    memcpy(*pixels, decoded, bytes);
cleanup:
    gan_image_decoder_destroy(dec);
    free(file);
    return status;
}

/* ---- encoding ---------------------------------------------------------------------------------- */

typedef struct png_sink {
    uint8_t *data;
    size_t size, capacity;
    bool failed;
    char message[256];
} png_sink;

static void png_write_memory(png_structp png, png_bytep bytes, png_size_t n)
{
    png_sink *sink = png_get_io_ptr(png);
    if (!grow(&sink->data, &sink->capacity, sink->size + n)) {
        sink->failed = true;
        png_error(png, "out of memory");
    }
    memcpy(sink->data + sink->size, bytes, n);
    sink->size += n;
}

static void png_flush_memory(png_structp png) { (void)png; }

static void png_on_write_error(png_structp png, png_const_charp message)
{
    png_sink *sink = png_get_error_ptr(png);
    snprintf(sink->message, sizeof sink->message, "%s", message);
    png_longjmp(png, 1);
}

gan_status gan_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out,
                          size_t *size)
{
    *out = NULL;
    *size = 0;
    if (width < 1 || height < 1 || (channels != 1 && channels != 3) || !pixels)
        return gan_error(GAN_ERR_ARG, "cannot encode a %dx%dx%d PNG", width, height, channels);
    png_sink sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_write_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return gan_error(GAN_ERR_NOMEM, "libpng could not start");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(sink.data);
        return gan_error(sink.failed ? GAN_ERR_NOMEM : GAN_ERR_ARG, "PNG encoding failed: %s", sink.message);
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = sink.data;
    *size = sink.size;
    return GAN_OK;
}

gan_status gan_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                           uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    if (width < 1 || height < 1 || width > 65500 || height > 65500 || (channels != 1 && channels != 3) ||
        !pixels || quality < 1 || quality > 100)
        return gan_error(GAN_ERR_ARG, "cannot encode a %dx%dx%d JPEG at quality %d", width, height,
                         channels, quality);
    struct jpeg_compress_struct cinfo;
    jpeg_error_context err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.output_message = jpeg_on_output;
    unsigned char *volatile buffer = NULL; /* jpeg_mem_dest's: freed by us on success and failure */
    unsigned long buffer_size = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return gan_error(GAN_ERR_ARG, "JPEG encoding failed: %s", err.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, &buffer_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *size = buffer_size;
    return GAN_OK;
}
