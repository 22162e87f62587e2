/* TensorBoard event files: CRC-32C against the published check values (RFC 3720 B.4 and the
 * CRC catalogue's "123456789"), the TFRecord mask against values computed by TensorBoard's own
 * record_writer.masked_crc32c, records written and parsed back by hand, the events file's name and
 * first record, Event encodings, the in-memory sample grid, and the errors. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/image.h"
#include "gan/tb_events.h"
#include "test_util.h"

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads a whole file; *size its length. */
static uint8_t *slurp(const char *path, size_t *size)
{
    uint8_t *buffer = NULL;
    size_t capacity = 0;
    *size = 0;
    if (gan_file_read(path, &buffer, &capacity, size) != GAN_OK) {
        free(buffer);
        return NULL;
    }
    return buffer;
}

/* Parses the record at bytes[*offset]: checks both CRCs and returns its data (NULL on a bad frame). */
static const uint8_t *parse_record(const uint8_t *bytes, size_t size, size_t *offset, size_t *data_size)
{
    size_t at = *offset;
    if (size - at < 16)
        return NULL;
    uint64_t length = get_le64(bytes + at);
    CHECK_MSG(get_le32(bytes + at + 8) == gan_tb_masked_crc(gan_crc32c(bytes + at, 8)),
              "record at %zu: length CRC", at);
    if (length > size - at - 16)
        return NULL;
    const uint8_t *data = bytes + at + 12;
    CHECK_MSG(get_le32(data + length) == gan_tb_masked_crc(gan_crc32c(data, length)),
              "record at %zu: data CRC", at);
    *offset = at + 16 + length;
    *data_size = length;
    return data;
}

static void test_crc(void)
{
    CHECK(gan_crc32c("123456789", 9) == 0xE3069283u);
    uint8_t block[32];
    memset(block, 0, sizeof block);
    CHECK(gan_crc32c(block, 32) == 0x8A9136AAu); /* RFC 3720 B.4: 32 bytes of zeros */
    memset(block, 0xFF, sizeof block);
    CHECK(gan_crc32c(block, 32) == 0x62A8AB43u); /* 32 bytes of ones */
    for (int i = 0; i < 32; i++)
        block[i] = (uint8_t)i;
    CHECK(gan_crc32c(block, 32) == 0x46DD794Eu); /* incrementing */
    for (int i = 0; i < 32; i++)
        block[i] = (uint8_t)(31 - i);
    CHECK(gan_crc32c(block, 32) == 0x113FDB5Cu); /* decrementing */
    CHECK(gan_crc32c("", 0) == 0);
    CHECK(gan_crc32c_extend(gan_crc32c("1234", 4), "56789", 5) == 0xE3069283u);

    /* masked_crc32c(b"123456789"), masked_crc32c(bytes(32)), masked_crc32c(b"hello") and
     * masked_crc32c(struct.pack("<Q", 5)) from tensorboard.summary.writer.record_writer */
    CHECK(gan_tb_masked_crc(0xE3069283u) == 0xC78AB0E5u);
    CHECK(gan_tb_masked_crc(0x8A9136AAu) == 0x0FD7FFFAu);
    CHECK(gan_tb_masked_crc(gan_crc32c("hello", 5)) == 0x191C1FBBu);
    const uint8_t five[8] = {5, 0, 0, 0, 0, 0, 0, 0};
    CHECK(gan_tb_masked_crc(gan_crc32c(five, 8)) == 0x3E04B2EAu);
}

static void test_record(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/records.bin", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_OK(gan_tb_write_record(f, path, "hello", 5));
    CHECK_OK(gan_tb_write_record(f, path, "", 0));
    fclose(f);
    size_t size;
    uint8_t *bytes = slurp(path, &size);
    CHECK(bytes && size == 21 + 16);
    if (!bytes || size != 37) {
        free(bytes);
        return;
    }
    /* the first record byte for byte: 05 00.. | masked crc of the length | "hello" | masked crc */
    CHECK(get_le64(bytes) == 5);
    CHECK(get_le32(bytes + 8) == 0x3E04B2EAu);
    CHECK(!memcmp(bytes + 12, "hello", 5));
    CHECK(get_le32(bytes + 17) == 0x191C1FBBu);
    size_t offset = 0, data_size = 0;
    const uint8_t *data = parse_record(bytes, size, &offset, &data_size);
    CHECK(data && data_size == 5 && offset == 21);
    data = parse_record(bytes, size, &offset, &data_size);
    CHECK(data && data_size == 0 && offset == size);
    /* a flipped byte is caught by the data CRC (the check the reader does) */
    bytes[13] ^= 1;
    CHECK(get_le32(bytes + 17) != gan_tb_masked_crc(gan_crc32c(bytes + 12, 5)));
    free(bytes);

    /* errors name the file: /dev/full fails on the flush with ENOSPC */
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        CHECK_FAILS_WITH(gan_tb_write_record(full, "/dev/full", "hello", 5), GAN_ERR_IO, "/dev/full");
        fclose(full);
    }
}

/* The events files in dir, sorted by name as TensorBoard reads them; returns how many. */
static int find_events(const char *dir, char names[][256], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "events.out.tfevents.", 20) && n < max)
            snprintf(names[n++], 256, "%s", e->d_name);
    if (d)
        closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char tmp[256];
            memcpy(tmp, names[j], 256);
            memcpy(names[j], names[j - 1], 256);
            memcpy(names[j - 1], tmp, 256);
        }
    return n;
}

static void test_writer(const char *dir)
{
    char events_dir[4200];
    snprintf(events_dir, sizeof events_dir, "%s/run", dir);
    mkdir(events_dir, 0755);
    gan_tb_writer *w = NULL;
    CHECK_OK(gan_tb_writer_open(events_dir, &w));
    if (!w)
        return;
    char path[4200];
    snprintf(path, sizeof path, "%s", gan_tb_writer_path(w));
    const char *tags[] = {"Loss_D", "D(x)"};
    const float values[] = {1.5f, -0.25f};
    CHECK_OK(gan_tb_add_scalars(w, 7, 2, tags, values));
    const uint8_t png[] = {0x89, 'P', 'N', 'G'};
    CHECK_OK(gan_tb_add_png(w, 300, "g", png, sizeof png, 2, 1, 3));
    CHECK_FAILS_WITH(gan_tb_add_png(w, 1, "g", png, sizeof png, 2, 1, 2), GAN_ERR_ARG, "colorspace");

    /* TensorBoard reads while training runs: every record is on disk before the writer closes */
    size_t size;
    uint8_t *bytes = slurp(path, &size);
    CHECK(bytes != NULL);
    size_t offset = 0, n = 0;
    const uint8_t *data = bytes ? parse_record(bytes, size, &offset, &n) : NULL;
    /* Event{wall_time (field 1, fixed64): 09 + 8 bytes, file_version (field 3): 1a 0d "brain.Event:2"} */
    CHECK(data && n == 9 + 15 && data[0] == 0x09 && data[9] == 0x1a && data[10] == 13 &&
          !memcmp(data + 11, "brain.Event:2", 13));
    if (data) {
        double wall;
        memcpy(&wall, data + 1, 8);
        CHECK(wall > 1.6e9 && wall < 4.1e9);
    }
    data = bytes ? parse_record(bytes, size, &offset, &n) : NULL;
    /* Event{wall_time, step: 10 07, summary (field 5): 2a len Summary{value (field 1): 0a len
     * Value{tag: 0a 06 "Loss_D", simple_value (field 2, fixed32): 15 + float}, ...}} */
    const uint8_t value0[] = {0x0a, 0x0d, 0x0a, 0x06, 'L', 'o', 's', 's', '_', 'D', 0x15, 0x00, 0x00, 0xc0, 0x3f};
    const uint8_t value1[] = {0x0a, 0x0b, 0x0a, 0x04, 'D', '(', 'x', ')', 0x15, 0x00, 0x00, 0x80, 0xbe};
    CHECK(data && n == 9 + 2 + 2 + sizeof value0 + sizeof value1);
    if (data && n == 9 + 2 + 2 + sizeof value0 + sizeof value1) {
        CHECK(data[9] == 0x10 && data[10] == 7);
        CHECK(data[11] == 0x2a && data[12] == sizeof value0 + sizeof value1);
        CHECK(!memcmp(data + 13, value0, sizeof value0));
        CHECK(!memcmp(data + 13 + sizeof value0, value1, sizeof value1));
    }
    data = bytes ? parse_record(bytes, size, &offset, &n) : NULL;
    /* step 300 = ac 02; Value{tag "g", image (field 4): 22 len Image{height 08 01, width 10 02,
     * colorspace 18 03, encoded_image_string 22 04 <png>}} */
    const uint8_t image_value[] = {0x0a, 0x01, 'g', 0x22, 0x0c, 0x08, 0x01, 0x10, 0x02, 0x18, 0x03, 0x22,
                                   0x04, 0x89, 'P', 'N', 'G'};
    CHECK(data && n == 9 + 3 + 2 + 2 + sizeof image_value);
    if (data && n == 9 + 3 + 2 + 2 + sizeof image_value) {
        CHECK(data[9] == 0x10 && data[10] == 0xac && data[11] == 0x02);
        CHECK(data[12] == 0x2a && data[13] == 2 + sizeof image_value);
        CHECK(data[14] == 0x0a && data[15] == sizeof image_value);
        CHECK(!memcmp(data + 16, image_value, sizeof image_value));
    }
    CHECK(offset == size); /* nothing else, no partial record */
    free(bytes);

    /* a second writer in the same directory (a resume, maybe within the same second) never
     * touches the first file: a new name that sorts after it */
    gan_tb_writer *second = NULL;
    CHECK_OK(gan_tb_writer_open(events_dir, &second));
    if (second)
        CHECK(strcmp(gan_tb_writer_path(second), path) != 0);
    CHECK_OK(gan_tb_writer_close(second));
    CHECK_OK(gan_tb_writer_close(w));
    CHECK_OK(gan_tb_writer_close(NULL));

    char names[4][256];
    CHECK(find_events(events_dir, names, 4) == 2);
    /* events.out.tfevents.<10 digits>.<hostname> */
    char host[256] = "";
    gethostname(host, sizeof host);
    const char *name = strrchr(path, '/') + 1;
    CHECK(!strcmp(names[0], name));
    CHECK_MSG(strlen(name) == 20 + 10 + 1 + strlen(host) && name[30] == '.' && !strcmp(name + 31, host),
              "events file name %s (host %s)", name, host);
    for (int i = 20; i < 30; i++)
        CHECK(name[i] >= '0' && name[i] <= '9');

    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
    gan_tb_writer *none = NULL;
    CHECK_FAILS_WITH(gan_tb_writer_open(missing, &none), GAN_ERR_IO, missing);
    CHECK(none == NULL);
}

/* The in-memory grid is the PNG file byte for byte. */
static void test_grid_png(const char *dir)
{
    enum { N = 10, C = 1, H = 5, W = 4 };
    float images[N * C * H * W];
    test_fill_uniform(images, N * C * H * W, 3, -1.0f, 1.0f);
    uint8_t *png = NULL;
    size_t png_size = 0;
    int grid_w = 0, grid_h = 0;
    CHECK_OK(gan_sample_grid_png(images, N, C, H, W, 8, 2, &png, &png_size, &grid_w, &grid_h));
    CHECK(grid_w == 8 * (W + 2) + 2 && grid_h == 2 * (H + 2) + 2);
    CHECK(png && png_size > 33 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8));
    if (png && png_size > 33) {
        /* IHDR: width and height big endian, 8-bit, colour type 2 (RGB) */
        CHECK(!memcmp(png + 12, "IHDR", 4));
        CHECK(get_be32(png + 16) == (uint32_t)grid_w && get_be32(png + 20) == (uint32_t)grid_h);
        CHECK(png[24] == 8 && png[25] == 2);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    CHECK_OK(gan_write_sample_grid(path, images, N, C, H, W, 8, 2));
    size_t size;
    uint8_t *file = slurp(path, &size);
    CHECK(file && png && size == png_size && !memcmp(file, png, size));
    free(file);
    free(png);
    CHECK_FAILS_WITH(gan_sample_grid_png(images, N, 2, H, W, 8, 2, &png, &png_size, &grid_w, &grid_h),
                     GAN_ERR_ARG, "grid");
    CHECK(png == NULL);
}

int main(void)
{
    const char *dir = test_temp_dir("test_tb_events");
    test_crc();
    test_record(dir);
    test_writer(dir);
    test_grid_png(dir);
    return test_finish();
}
