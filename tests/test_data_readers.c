/* Readers on files this test writes: IDX (raw and gzip; wrong magic, labels file, truncations),
 * CIFAR-10 batches (one file, the folder's train and test splits, truncation, a missing batch), image
 * folders (recursion, letter case, sorting, other files ignored, empty/missing/imageless folders,
 * a corrupt image), CelebA split lists (space and CSV forms, warnings, malformed lines), and the
 * data sets built on them (format detection, items as the transform makes them). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gan/data.h"
#include "gan/image.h"
#include "test_util.h"

static const char *dir;

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
    gzFile f = gzopen(path, "wb");
    if (!f || gzwrite(f, bytes, (unsigned)n) != (int)n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    gzclose(f);
}

static void join(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", dir, name); }

/* An IDX3 file: magic, count, rows, cols (big endian), then pixel i of image n = n * 10 + i. */
static size_t make_idx(uint8_t *buf, uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols)
{
    uint32_t header[4] = {magic, count, rows, cols};
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 4; b++)
            buf[k * 4 + b] = (uint8_t)(header[k] >> (24 - 8 * b));
    size_t n = (size_t)count * rows * cols;
    for (size_t i = 0; i < n; i++)
        buf[16 + i] = (uint8_t)((i / (rows * cols)) * 10 + i % (rows * cols));
    return 16 + n;
}

static void check_idx(void)
{
    uint8_t buf[16 + 5 * 4 * 3];
    size_t n = make_idx(buf, 0x803, 5, 4, 3);
    char raw[4200], gz[4200];
    join(raw, sizeof raw, "images-idx3-ubyte");
    join(gz, sizeof gz, "images-idx3-ubyte.gz");
    write_bytes(raw, buf, n);
    write_gz(gz, buf, n);
    const char *paths[2] = {raw, gz};
    for (int k = 0; k < 2; k++) {
        gan_image_set set;
        CHECK_OK(gan_idx_read_images(paths[k], &set));
        CHECK(set.count == 5 && set.height == 4 && set.width == 3 && set.channels == 1);
        CHECK(set.pixels && set.pixels[0] == 0 && set.pixels[12 * 3 + 5] == 35 && set.pixels[59] == 51);
        gan_image_set_free(&set);
    }
    gan_image_set set;
    char bad[4200];
    join(bad, sizeof bad, "bad-magic-idx3-ubyte");
    make_idx(buf, 0x804, 5, 4, 3);
    write_bytes(bad, buf, n);
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_FORMAT, "IDX magic is 0x00000804");
    make_idx(buf, 0x801, 5, 4, 3);
    write_bytes(bad, buf, n);
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_FORMAT, "labels file");
    make_idx(buf, 0x803, 5, 4, 3);
    write_bytes(bad, buf, 10);
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_FORMAT, "truncated IDX header");
    write_bytes(bad, buf, n - 7);
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_FORMAT, "truncated: 53 of 60 image bytes");
    join(bad, sizeof bad, "short-idx3-ubyte.gz");
    write_gz(bad, buf, n - 20);
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_FORMAT, "short-idx3-ubyte.gz: truncated");
    /* a gzip file cut in the middle of its compressed stream */
    FILE *f = fopen(gz, "rb");
    uint8_t packed[512];
    size_t packed_n = f ? fread(packed, 1, sizeof packed, f) : 0;
    if (f)
        fclose(f);
    join(bad, sizeof bad, "cut-idx3-ubyte.gz");
    write_bytes(bad, packed, packed_n / 2);
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_FORMAT, "cut-idx3-ubyte.gz");
    join(bad, sizeof bad, "no-such-idx3-ubyte");
    CHECK_FAILS_WITH(gan_idx_read_images(bad, &set), GAN_ERR_IO, "no-such-idx3-ubyte");
}

/* CIFAR-10 record r: label r % 10, R plane = r, G plane = pixel index % 251, B plane = 200 - r. */
static void write_cifar(const char *path, int records, int first)
{
    size_t n = (size_t)records * 3073;
    uint8_t *buf = malloc(n);
    for (int r = 0; r < records; r++) {
        uint8_t *rec = buf + (size_t)r * 3073;
        rec[0] = (uint8_t)((first + r) % 10);
        for (int p = 0; p < 1024; p++) {
            rec[1 + p] = (uint8_t)(first + r);
            rec[1 + 1024 + p] = (uint8_t)(p % 251);
            rec[1 + 2048 + p] = (uint8_t)(200 - first - r);
        }
    }
    write_bytes(path, buf, n);
    free(buf);
}

static void check_cifar(void)
{
    char batches[4200], path[4400];
    join(batches, sizeof batches, "cifar-10-batches-bin");
    mkdir(batches, 0755);
    for (int i = 1; i <= 5; i++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", batches, i);
        write_cifar(path, 2, (i - 1) * 2);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", batches);
    write_cifar(path, 3, 100);
    gan_image_set set;
    CHECK_OK(gan_cifar_read(path, "all", &set)); /* one file */
    CHECK(set.count == 3 && set.height == 32 && set.width == 32 && set.channels == 3);
    /* NHWC: pixel p of image 1 is (101, p % 251, 99) */
    CHECK(set.pixels && set.pixels[(1024 + 700) * 3] == 101 && set.pixels[(1024 + 700) * 3 + 1] == 700 % 251 &&
          set.pixels[(1024 + 700) * 3 + 2] == 99);
    gan_image_set_free(&set);
    CHECK_OK(gan_cifar_read(batches, "train", &set));
    CHECK(set.count == 10 && set.pixels && set.pixels[9 * 3072] == 9); /* batches in order */
    gan_image_set_free(&set);
    CHECK_OK(gan_cifar_read(batches, "test", &set));
    CHECK(set.count == 3);
    gan_image_set_free(&set);
    CHECK_FAILS_WITH(gan_cifar_read(batches, "valid", &set), GAN_ERR_CONFIG, "not 'valid'");
    const char *format = NULL;
    CHECK_OK(gan_dataset_detect_format(batches, &format));
    CHECK(format && !strcmp(format, "cifar"));
    /* truncated, and a missing batch */
    snprintf(path, sizeof path, "%s/data_batch_3.bin", batches);
    write_cifar(path, 2, 4);
    CHECK(truncate(path, 3073 * 2 - 100) == 0);
    CHECK_FAILS_WITH(gan_cifar_read(batches, "all", &set), GAN_ERR_FORMAT, "data_batch_3.bin: 6046 bytes");
    remove(path);
    CHECK_FAILS_WITH(gan_cifar_read(batches, "all", &set), GAN_ERR_IO, "data_batch_3.bin");
}

typedef struct warnings {
    int count;
    char last[4096];
} warnings;

static void collect(void *ctx, const char *message)
{
    warnings *w = ctx;
    w->count++;
    snprintf(w->last, sizeof w->last, "%s", message);
}

/* A small PNG whose pixels are all `value`. */
static void write_png(const char *path, int w, int h, int channels, uint8_t value)
{
    uint8_t *px = malloc((size_t)w * h * channels);
    memset(px, value, (size_t)w * h * channels);
    uint8_t *png;
    size_t size;
    if (gan_png_encode(px, w, h, channels, &png, &size) != GAN_OK)
        exit(1);
    write_bytes(path, png, size);
    free(png);
    free(px);
}

static void write_jpeg(const char *path, int w, int h, uint8_t value)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    memset(px, value, (size_t)w * h * 3);
    uint8_t *jpeg;
    size_t size;
    if (gan_jpeg_encode(px, w, h, 3, 95, &jpeg, &size) != GAN_OK)
        exit(1);
    write_bytes(path, jpeg, size);
    free(jpeg);
    free(px);
}

static void check_folders(void)
{
    char root[4200], path[4400];
    join(root, sizeof root, "faces");
    mkdir(root, 0755);
    snprintf(path, sizeof path, "%s/b", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/b/deep", root);
    mkdir(path, 0755);
    /* names and the order they sort in (byte order of the path below the root) */
    const char *names[] = {"A.PNG", "a1.jpg", "b/deep/z.JPEG", "b/x.png", "c.Jpg"};
    const int values[] = {10, 20, 30, 40, 50};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        if (i % 2)
            write_jpeg(path, 12 + i, 9, (uint8_t)values[i]);
        else
            write_png(path, 9, 12 + i, 3, (uint8_t)values[i]);
    }
    snprintf(path, sizeof path, "%s/README.txt", root);
    write_bytes(path, "not an image", 12);
    snprintf(path, sizeof path, "%s/b/list.csv", root);
    write_bytes(path, "x", 1);
    gan_file_list list;
    CHECK_OK(gan_folder_list(root, &list));
    CHECK(list.count == 5 && list.ignored == 2);
    bool sorted = list.count == 5;
    for (int i = 0; i < list.count && sorted; i++) {
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        sorted = !strcmp(list.paths[i], path);
        if (!sorted)
            printf("entry %d: %s, expected %s\n", i, list.paths[i], path);
    }
    CHECK(sorted);
    gan_file_list_free(&list);

    /* a data set over the folder: [8, 8, 3], each image a flat colour (JPEG: nearly) */
    gan_dataset_options o = {.path = root, .size = 8, .channels = 3};
    gan_dataset *ds = NULL;
    CHECK_OK(gan_dataset_open(&o, &ds));
    if (ds) {
        CHECK(gan_dataset_count(ds) == 5 && gan_dataset_get_kind(ds) == GAN_DATASET_FOLDER);
        gan_dataset_worker *w = NULL;
        CHECK_OK(gan_dataset_worker_create(ds, &w));
        uint8_t item[8 * 8 * 3];
        for (int i = 0; i < 5; i++) {
            CHECK_OK(gan_dataset_get(ds, w, i, item));
            CHECK_MSG(abs(item[0] - values[i]) <= 2 && abs(item[8 * 8 * 3 - 1] - values[i]) <= 2,
                      "item %d is %d, expected about %d", i, item[0], values[i]);
        }
        CHECK_FAILS_WITH(gan_dataset_get(ds, w, 5, item), GAN_ERR_ARG, "item 5 of 5");
        /* a corrupt image: the error names the file, and the data set goes on */
        snprintf(path, sizeof path, "%s/c.Jpg", root);
        write_bytes(path, "\xff\xd8\xff\xe0 broken", 12);
        CHECK_FAILS_WITH(gan_dataset_get(ds, w, 4, item), GAN_ERR_FORMAT, "c.Jpg");
        CHECK_OK(gan_dataset_get(ds, w, 3, item));
        remove(path);
        CHECK_FAILS_WITH(gan_dataset_get(ds, w, 4, item), GAN_ERR_IO, "c.Jpg");
        gan_dataset_worker_destroy(w);
        gan_dataset_close(ds);
    }
    o.channels = 2;
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_CONFIG, "2 channels");

    /* empty, missing, imageless */
    char empty[4200];
    join(empty, sizeof empty, "empty");
    mkdir(empty, 0755);
    CHECK_FAILS_WITH(gan_folder_list(empty, &list), GAN_ERR_IO, "empty");
    o.path = empty;
    o.channels = 3;
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_IO, "is empty");
    join(path, sizeof path, "missing-folder");
    CHECK_FAILS_WITH(gan_folder_list(path, &list), GAN_ERR_IO, "missing-folder");
    o.path = path;
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_IO, "missing-folder");
    snprintf(path, sizeof path, "%s/notes.txt", empty);
    write_bytes(path, "x", 1);
    CHECK_FAILS_WITH(gan_folder_list(empty, &list), GAN_ERR_IO, "holds no .jpg, .jpeg or .png images (1 other");

    /* a set cancel flag (gan prepare's Ctrl-C) stops the listing; a clear one does not */
    volatile int cancel = 1;
    CHECK_FAILS_WITH(gan_folder_list_cancellable(root, &cancel, &list), GAN_ERR_IO, "interrupted while listing");
    cancel = 0;
    CHECK_OK(gan_folder_list_cancellable(root, &cancel, &list));
    CHECK(list.count == 4); /* c.Jpg was removed above */
    gan_file_list_free(&list);
}

static void check_split(void)
{
    char root[4200], path[4400], split[4400];
    join(root, sizeof root, "celeba");
    mkdir(root, 0755);
    snprintf(path, sizeof path, "%s/img_align_celeba", root);
    mkdir(path, 0755);
    for (int i = 1; i <= 6; i++) {
        snprintf(path, sizeof path, "%s/img_align_celeba/%06d.jpg", root, i);
        write_jpeg(path, 10, 12, (uint8_t)(i * 30));
    }
    /* 000007 is listed but absent; 000006 is present but not listed */
    snprintf(split, sizeof split, "%s/list_eval_partition.txt", root);
    const char *text = "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n000005.jpg 0\n000007.jpg 0\n";
    write_bytes(split, text, strlen(text));
    gan_file_list list;
    char folder[4400];
    snprintf(folder, sizeof folder, "%s/img_align_celeba", root);
    warnings warned = {0};
    CHECK_OK(gan_folder_list(folder, &list));
    CHECK_OK(gan_split_filter(&list, split, "train", collect, &warned));
    CHECK(list.count == 3 && strstr(list.paths[0], "000001.jpg") && strstr(list.paths[2], "000005.jpg"));
    CHECK(warned.count == 2 && strstr(warned.last, "000006.jpg") && strstr(warned.last, "1 images in the folder"));
    gan_file_list_free(&list);
    /* the data set finds the list beside the folder by itself */
    warned.count = 0;
    gan_dataset_options o = {.path = folder, .split = "test", .size = 4, .channels = 1, .warn = collect,
                             .warn_ctx = &warned};
    gan_dataset *ds = NULL;
    CHECK_OK(gan_dataset_open(&o, &ds));
    CHECK(ds && gan_dataset_count(ds) == 1 && warned.count == 1);
    gan_dataset_close(ds);
    o.split = "valid";
    CHECK_OK(gan_dataset_open(&o, &ds));
    CHECK(ds && gan_dataset_count(ds) == 1);
    gan_dataset_close(ds);
    o.split = "dev";
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_CONFIG, "'dev'");
    /* the Kaggle CSV form with its header */
    const char *csv = "image_id,partition\n000001.jpg,0\n000002.jpg,1\n000003.jpg,1\n000004.jpg,1\n"
                      "000005.jpg,1\n000006.jpg,2\n";
    snprintf(split, sizeof split, "%s/partition.csv", root);
    write_bytes(split, csv, strlen(csv));
    warned.count = 0;
    CHECK_OK(gan_folder_list(folder, &list));
    CHECK_OK(gan_split_filter(&list, split, "valid", collect, &warned));
    CHECK(list.count == 4 && warned.count == 0);
    gan_file_list_free(&list);
    /* malformed */
    const char *broken = "000001.jpg 0\n000002.jpg train\n";
    write_bytes(split, broken, strlen(broken));
    CHECK_OK(gan_folder_list(folder, &list));
    CHECK_FAILS_WITH(gan_split_filter(&list, split, "train", collect, &warned), GAN_ERR_FORMAT, "partition.csv:2");
    gan_file_list_free(&list);
    /* no list anywhere */
    remove(split);
    snprintf(split, sizeof split, "%s/list_eval_partition.txt", root);
    remove(split);
    o.split = "train";
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_CONFIG, "data.split_file");
    o.split_file = split;
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_IO, "list_eval_partition.txt");
}

/* Data sets over IDX and CIFAR: gray to RGB and RGB to gray as PIL does, and the transform. */
static void check_memory_datasets(void)
{
    char idx[4200], cifar[4200];
    join(idx, sizeof idx, "images-idx3-ubyte.gz");
    join(cifar, sizeof cifar, "cifar-10-batches-bin/test_batch.bin");
    const char *format = NULL;
    CHECK_OK(gan_dataset_detect_format(idx, &format));
    CHECK(format && !strcmp(format, "idx"));
    CHECK_OK(gan_dataset_detect_format(cifar, &format));
    CHECK(format && !strcmp(format, "cifar"));
    gan_dataset_options o = {.path = idx, .size = 3, .channels = 3};
    gan_dataset *ds = NULL;
    CHECK_OK(gan_dataset_open(&o, &ds)); /* 4 rows x 3 cols -> Resize(3) keeps 3x4, crop 3x3 */
    if (ds) {
        gan_dataset_worker *w;
        CHECK_OK(gan_dataset_worker_create(ds, &w));
        uint8_t item[3 * 3 * 3], gray_crop[9];
        CHECK_OK(gan_dataset_get(ds, w, 2, item));
        /* image 2 is 20 + i; rows 0..3; CenterCrop(3) of 4 rows: top = round(0.5) = 0 */
        for (int p = 0; p < 9; p++)
            gray_crop[p] = (uint8_t)(20 + p);
        bool same = true;
        for (int p = 0; p < 9; p++)
            same &= item[p * 3] == gray_crop[p] && item[p * 3 + 1] == gray_crop[p] && item[p * 3 + 2] == gray_crop[p];
        CHECK(same);
        gan_dataset_worker_destroy(w);
        gan_dataset_close(ds);
    }
    o.split = "test";
    CHECK_FAILS_WITH(gan_dataset_open(&o, &ds), GAN_ERR_CONFIG, "one split already");
    gan_dataset_options c = {.path = cifar, .size = 32, .channels = 1};
    CHECK_OK(gan_dataset_open(&c, &ds));
    if (ds) {
        gan_dataset_worker *w;
        CHECK_OK(gan_dataset_worker_create(ds, &w));
        uint8_t item[32 * 32];
        CHECK_OK(gan_dataset_get(ds, w, 0, item));
        int r = 100, g = 700 % 251, b = 100;
        CHECK(item[700] == (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16));
        gan_dataset_worker_destroy(w);
        gan_dataset_close(ds);
    }
    c.format = "tiff";
    CHECK_FAILS_WITH(gan_dataset_open(&c, &ds), GAN_ERR_CONFIG, "'tiff'");
    char missing[4300];
    join(missing, sizeof missing, "nothing-here");
    CHECK_FAILS_WITH(gan_dataset_detect_format(missing, &format), GAN_ERR_IO, "nothing-here");
}

int main(void)
{
    dir = test_temp_dir("test_data_readers");
    check_idx();
    check_cifar();
    check_folders();
    check_split();
    check_memory_datasets();
    return test_finish();
}
