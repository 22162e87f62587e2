/* Readers check the sizes a header claims against the file before allocating: an IDX header that
 * claims 16 GiB (raw or gzip), a .npy shape far past its data (float32 and uint8 readers, and the
 * memory map), PNG and JPEG headers (baseline and progressive) that claim 144 million pixels in a
 * file of a few hundred bytes, a CIFAR batch cut short, a safetensors header length past the file.
 * Each is refused with GAN_ERR_FORMAT and a message naming the file, while the address space is
 * limited (RLIMIT_AS) to what the test uses plus 256 MiB: a reader that allocated what the header
 * claims would fail with "out of memory" instead. (Under AddressSanitizer the limit cannot be set:
 * the messages are checked alone.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

#include "gan/data.h"
#include "gan/image.h"
#include "gan/npy.h"
#include "gan/safetensors.h"
#include "test_util.h"

static const char *dir;

static const char *in_dir(const char *name)
{
    static char paths[8][4200];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void write_gz(const char *path, const void *bytes, size_t n)
{
    gzFile f = gzopen(path, "wb9");
    if (!f || (n && gzwrite(f, bytes, (unsigned)n) != (int)n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    gzclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    if (b && fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#ifndef GAN_SANITIZE_BUILD
/* The address space in use now (VmSize), from /proc/self/status; 0 when unknown. */
static size_t address_space_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}
#endif

static void check_idx(void)
{
    gan_image_set set;
    /* raw: 65536 images of 512x512 (16 GiB) claimed, 100 bytes there */
    uint8_t buf[16 + 100] = {0};
    put_be32(buf, 0x803);
    put_be32(buf + 4, 65536);
    put_be32(buf + 8, 512);
    put_be32(buf + 12, 512);
    const char *raw = in_dir("huge-idx3-ubyte");
    write_bytes(raw, buf, sizeof buf);
    CHECK_FAILS_WITH(gan_idx_read_images(raw, &set), GAN_ERR_FORMAT, raw);
    CHECK_FAILS_WITH(gan_idx_read_images(raw, &set), GAN_ERR_FORMAT, "truncated: 100 of 17179869184 image bytes");
    /* gzip: the same, compressed */
    const char *gz = in_dir("huge-idx3-ubyte.gz");
    write_gz(gz, buf, sizeof buf);
    CHECK_FAILS_WITH(gan_idx_read_images(gz, &set), GAN_ERR_FORMAT, gz);
    CHECK_FAILS_WITH(gan_idx_read_images(gz, &set), GAN_ERR_FORMAT, "truncated");
    /* gzip: 4 MiB of zeros (a few KB compressed) claimed as 64 MiB: more than those compressed
     * bytes can hold (deflate packs at most 1032:1) */
    size_t zeros_bytes = 16 + (4u << 20);
    uint8_t *zeros = calloc(zeros_bytes, 1);
    memcpy(zeros, buf, 16);
    put_be32(zeros + 4, 256);
    put_be32(zeros + 8, 512);
    put_be32(zeros + 12, 512);
    const char *gz_zeros = in_dir("zeros-idx3-ubyte.gz");
    write_gz(gz_zeros, zeros, zeros_bytes);
    CHECK_FAILS_WITH(gan_idx_read_images(gz_zeros, &set), GAN_ERR_FORMAT, "truncated");
    /* honest: 16 images of 512x512 zeros (4 MiB, compressed about 1000:1) load */
    put_be32(zeros + 4, 16);
    write_gz(gz_zeros, zeros, zeros_bytes);
    CHECK_OK(gan_idx_read_images(gz_zeros, &set));
    CHECK(set.count == 16 && set.height == 512 && set.width == 512);
    gan_image_set_free(&set);
    free(zeros);
}

static void check_npy(void)
{
    /* a v1.0 header claiming [100000, 100000] (40 GB of float32, 10 GB of uint8), 16 bytes of data */
    const char *names[2] = {"huge_f32.npy", "huge_u8.npy"};
    const char *descr[2] = {"<f4", "|u1"};
    for (int k = 0; k < 2; k++) {
        char header[128];
        int len = snprintf(header, sizeof header,
                           "\x93NUMPY\x01%c%c%c{'descr': '%s', 'fortran_order': False, 'shape': (100000, 100000), }",
                           0, 0, 0, descr[k]);
        while ((len + 1) % 64)
            header[len++] = ' ';
        header[len++] = '\n';
        header[8] = (char)((len - 10) & 0xff);
        header[9] = (char)((len - 10) >> 8);
        uint8_t file[256] = {0};
        memcpy(file, header, (size_t)len);
        const char *path = in_dir(names[k]);
        write_bytes(path, file, (size_t)len + 16);
        float *f32 = NULL;
        uint8_t *u8 = NULL;
        int ndim;
        int64_t shape[GAN_NPY_MAX_DIMS];
        if (k == 0)
            CHECK_FAILS_WITH(gan_npy_read_f32(path, &f32, &ndim, shape), GAN_ERR_FORMAT, path);
        else
            CHECK_FAILS_WITH(gan_npy_read_u8(path, &u8, &ndim, shape), GAN_ERR_FORMAT, path);
        CHECK(!f32 && !u8);
        gan_npy_array array;
        CHECK_FAILS_WITH(gan_npy_map(path, &array), GAN_ERR_FORMAT, "truncated");
        CHECK_FAILS_WITH(gan_npy_read(path, &array), GAN_ERR_FORMAT, "truncated");
    }
    /* a v2.0 header length of 4 GiB - 16 */
    uint8_t v2[64] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xf0, 0xff, 0xff, 0xff};
    const char *path = in_dir("long_header.npy");
    write_bytes(path, v2, sizeof v2);
    gan_npy_array array;
    CHECK_FAILS_WITH(gan_npy_read(path, &array), GAN_ERR_FORMAT, path);
}

/* The 12000 x 12000 version of a small image file: PNG IHDR (CRC recomputed) or JPEG SOF. */
static size_t patch_dimensions(uint8_t *b, size_t n, uint32_t width, uint32_t height)
{
    if (n > 33 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4)) {
        put_be32(b + 16, width);
        put_be32(b + 20, height);
        put_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
        return n;
    }
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xff && (b[i + 1] == 0xc0 || b[i + 1] == 0xc1 || b[i + 1] == 0xc2)) {
            b[i + 5] = (uint8_t)(height >> 8);
            b[i + 6] = (uint8_t)height;
            b[i + 7] = (uint8_t)(width >> 8);
            b[i + 8] = (uint8_t)width;
            return n;
        }
    return 0;
}

static void check_images(void)
{
    const char *sources[3] = {"cifar_like_32x32.png", "landscape_151x97.jpg", "progressive_120x80.jpg"};
    gan_image_decoder *dec = NULL;
    CHECK_OK(gan_image_decoder_create(&dec));
    for (int k = 0; k < 3 && dec; k++) {
        char src[4200];
        snprintf(src, sizeof src, "%s/tests/data/transform/%s", test_source_dir(), sources[k]);
        size_t n = 0;
        uint8_t *bytes = read_bytes(src, &n);
        CHECK_MSG(bytes != NULL, "cannot read %s", src);
        if (!bytes)
            continue;
        CHECK_MSG(patch_dimensions(bytes, n, 12000, 12000) == n, "%s: no header to patch", src);
        char name[128];
        snprintf(name, sizeof name, "lying_%s", sources[k]);
        const uint8_t *pixels;
        int w, h;
        for (int channels = 1; channels <= 3; channels += 2) {
            CHECK_FAILS_WITH(gan_image_decode(dec, bytes, n, name, channels, &pixels, &w, &h), GAN_ERR_FORMAT,
                             name);
        }
        /* through a file and gan_image_load, as gan prepare and the loader read them */
        const char *path = in_dir(name);
        write_bytes(path, bytes, n);
        uint8_t *loaded = NULL;
        CHECK_FAILS_WITH(gan_image_load(path, 3, &loaded, &w, &h), GAN_ERR_FORMAT, path);
        free(loaded);
        free(bytes);
    }
    gan_image_decoder_destroy(dec);
}

static void check_cifar_and_safetensors(void)
{
    size_t n = 3073 * 2 + 5;
    uint8_t *b = calloc(n, 1);
    const char *path = in_dir("cut_batch.bin");
    write_bytes(path, b, n);
    gan_image_set set;
    CHECK_FAILS_WITH(gan_cifar_read(path, "all", &set), GAN_ERR_FORMAT, path);
    free(b);
    /* a safetensors header length of 1 TiB in a 64-byte file */
    uint8_t st_bytes[64] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
    path = in_dir("huge_header.safetensors");
    write_bytes(path, st_bytes, sizeof st_bytes);
    gan_safetensors st;
    CHECK_FAILS_WITH(gan_safetensors_open(path, &st), GAN_ERR_FORMAT, path);
}

int main(void)
{
    dir = test_temp_dir("test_reader_bounds");
#ifndef GAN_SANITIZE_BUILD
    size_t in_use = address_space_bytes();
    struct rlimit limit;
    getrlimit(RLIMIT_AS, &limit);
    if (in_use) {
        limit.rlim_cur = in_use + (256u << 20);
        CHECK(setrlimit(RLIMIT_AS, &limit) == 0);
        printf("address space limited to %zu MiB (%zu MiB in use)\n", (size_t)limit.rlim_cur >> 20, in_use >> 20);
    }
#endif
    check_idx();
    check_npy();
    check_images();
    check_cifar_and_safetensors();
    return test_finish();
}
