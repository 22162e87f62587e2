/* Data sets: N images of [S, S, C] uint8 by index, from a cache (memory-mapped, nothing to do), from
 * images in memory (IDX, CIFAR-10: channel conversion and the transform on request) or from image
 * files (read, decoded, transformed on request). gan_dataset_get is what the loader's threads and
 * gan prepare's threads call, each with its own worker scratch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/data.h"
#include "gan/image.h"

struct gan_dataset {
    gan_dataset_kind kind;
    char name[4096];
    int size, channels;  /* items are [size, size, channels] */
    int64_t count;
    gan_npy_array cache; /* CACHE: uint8 [count, size, size, channels], memory-mapped */
    gan_image_set images; /* MEMORY: [count, h, w, c] as read */
    gan_file_list files;  /* FOLDER */
};

struct gan_dataset_worker {
    gan_transform *transform;
    gan_image_decoder *decoder;
    uint8_t *file;       /* the file being decoded */
    size_t file_capacity;
    uint8_t *converted;  /* [h, w, channels] a memory image in the wanted channels */
    size_t converted_capacity;
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* A data path that exists must be a regular file or a folder: opening a FIFO waits for a writer
 * forever, and a device or socket is no data set. Checked before anything opens it. */
static gan_status check_data_path(const char *path, const struct stat *st)
{
    if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))
        return GAN_OK;
    const char *what = S_ISFIFO(st->st_mode)  ? "a FIFO"
                       : S_ISCHR(st->st_mode) ? "a character device"
                       : S_ISBLK(st->st_mode) ? "a block device"
                       : S_ISSOCK(st->st_mode) ? "a socket"
                                               : "not a file";
    return gan_error(GAN_ERR_CONFIG, "data set %s: neither a regular file nor a folder (%s); data.path "
                                     "names an image folder, an IDX or CIFAR-10 file, or a .npy cache",
                     path, what);
}

gan_status gan_dataset_detect_format(const char *path, const char **format)
{
    struct stat st;
    if (!path || !path[0])
        return gan_error(GAN_ERR_CONFIG, "data.path is empty: name the data set");
    if (stat(path, &st) != 0)
        return gan_error(GAN_ERR_IO, "data set %s: %s", path, strerror(errno));
    GAN_TRY(check_data_path(path, &st));
    if (S_ISDIR(st.st_mode))
        *format = file_exists(path, "data_batch_1.bin") || file_exists(path, "test_batch.bin") ? "cifar" : "folder";
    else if (ends_with(path, ".npy"))
        *format = "npy";
    else if (ends_with(path, ".bin"))
        *format = "cifar";
    else
        *format = "idx"; /* the IDX reader says so clearly when it is not one */
    return GAN_OK;
}

gan_status gan_cache_check(const gan_npy_header *header, const char *path, int height, int width,
                           int channels)
{
    const int64_t *s = header->shape;
    if (header->dtype != GAN_NPY_U8 || header->ndim != 4 || s[1] != height || s[2] != width || s[3] != channels) {
        char shape[160] = "";
        int len = 0;
        for (int i = 0; i < header->ndim && len < (int)sizeof shape - 24; i++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld", i ? ", " : "", (long long)s[i]);
        return gan_error(GAN_ERR_SHAPE, "cache %s holds %s [%s] but the config wants uint8 [N, %d, %d, %d] "
                                        "(data.image_size = %d, data.channels = %d): run gan prepare again "
                                        "with --size %d --channels %d",
                         path, gan_npy_dtype_name(header->dtype), shape, height, width, channels, height,
                         channels, height, channels);
    }
    if (s[0] < 1)
        return gan_error(GAN_ERR_SHAPE, "cache %s holds no images", path);
    return GAN_OK;
}

/* The split list CelebA keeps beside img_align_celeba, when the config names none. */
static bool find_split_file(const char *dir, char *out, size_t size)
{
    const char *names[] = {"list_eval_partition.txt", "list_eval_partition.csv"};
    for (int up = 0; up < 2; up++)
        for (int i = 0; i < 2; i++) {
            snprintf(out, size, "%s%s/%s", dir, up ? "/.." : "", names[i]);
            if (access(out, R_OK) == 0)
                return true;
        }
    return false;
}

static gan_status dataset_alloc(const char *name, int size, int channels, gan_dataset_kind kind,
                                gan_dataset **out)
{
    *out = NULL;
    if (size < 1 || (channels != 1 && channels != 3))
        return gan_error(GAN_ERR_CONFIG, "%s: images of %dx%d with %d channels (1 or 3) cannot be made",
                         name, size, size, channels);
    gan_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    snprintf(ds->name, sizeof ds->name, "%s", name);
    ds->size = size;
    ds->channels = channels;
    ds->kind = kind;
    *out = ds;
    return GAN_OK;
}

/* Images a data set can be made of: 1 or 3 channels, at least one image. */
static gan_status check_image_set(const gan_image_set *images, const char *name)
{
    if (images->channels != 1 && images->channels != 3)
        return gan_error(GAN_ERR_FORMAT, "%s: images with %d channels", name, images->channels);
    if (images->count < 1)
        return gan_error(GAN_ERR_FORMAT, "%s: no images", name);
    return GAN_OK;
}

gan_status gan_dataset_open_images(gan_image_set *images, int size, int channels, const char *name,
                                   gan_dataset **out)
{
    gan_status status = GAN_OK;
    GAN_CHECK(dataset_alloc(name, size, channels, GAN_DATASET_MEMORY, out));
    GAN_CHECK(check_image_set(images, name));
    (*out)->images = *images;
    (*out)->count = images->count;
    memset(images, 0, sizeof *images);
    return GAN_OK;
cleanup:
    free(*out);
    *out = NULL;
    gan_image_set_free(images);
    return status;
}

/* A cache written by gan prepare: memory-mapped, its shape checked against the config's. */
static gan_status open_cache(const gan_dataset_options *o, gan_dataset **out)
{
    gan_dataset *ds;
    GAN_TRY(dataset_alloc(o->path, o->size, o->channels, GAN_DATASET_CACHE, &ds));
    gan_status status = GAN_OK;
    GAN_CHECK(gan_npy_map(o->path, &ds->cache));
    GAN_CHECK(gan_cache_check(&ds->cache.header, o->path, o->size, o->size, o->channels));
    ds->count = ds->cache.header.shape[0];
    *out = ds;
    return GAN_OK;
cleanup:
    gan_dataset_close(ds);
    return status;
}

/* Keeps the images of `split` in `files`, as data.split_file lists them, or CelebA's split list
 * beside the folder when the config names none. */
static gan_status filter_split(const gan_dataset_options *o, const char *split, gan_file_list *files)
{
    char found[4300];
    const char *split_file = o->split_file;
    if (!split_file || !split_file[0]) {
        if (!find_split_file(o->path, found, sizeof found))
            return gan_error(GAN_ERR_CONFIG, "data.split = %s needs a split list: set data.split_file "
                                             "(CelebA's list_eval_partition.txt)",
                             split);
        split_file = found;
    }
    return gan_split_filter(files, split_file, split, o->warn, o->warn_ctx);
}

/* A folder of image files, the images of `split` alone unless it is "all". */
static gan_status open_folder(const gan_dataset_options *o, const char *split, gan_dataset **out)
{
    gan_dataset *ds;
    GAN_TRY(dataset_alloc(o->path, o->size, o->channels, GAN_DATASET_FOLDER, &ds));
    gan_status status = GAN_OK;
    GAN_CHECK(gan_folder_list_cancellable(o->path, o->cancel, &ds->files));
    if (strcmp(split, "all"))
        GAN_CHECK(filter_split(o, split, &ds->files));
    ds->count = ds->files.count;
    *out = ds;
    return GAN_OK;
cleanup:
    gan_dataset_close(ds);
    return status;
}

gan_status gan_dataset_open(const gan_dataset_options *o, gan_dataset **out)
{
    *out = NULL;
    const char *format = o->format && o->format[0] ? o->format : "auto";
    const char *split = o->split && o->split[0] ? o->split : "all";
    struct stat st;
    if (o->path && stat(o->path, &st) == 0) /* a missing path: each reader says so */
        GAN_TRY(check_data_path(o->path, &st));
    if (!strcmp(format, "auto"))
        GAN_TRY(gan_dataset_detect_format(o->path, &format));
    gan_dataset *ds = NULL;
    if (!strcmp(format, "npy")) {
        GAN_TRY(open_cache(o, &ds));
    } else if (!strcmp(format, "idx") || !strcmp(format, "cifar")) {
        gan_image_set set;
        if (!strcmp(format, "idx")) {
            if (strcmp(split, "all"))
                return gan_error(GAN_ERR_CONFIG, "data.split = %s: an IDX file is one split already (name "
                                                 "t10k-images-idx3-ubyte.gz for the test set) ",
                                 split);
            GAN_TRY(gan_idx_read_images(o->path, &set));
        } else {
            GAN_TRY(gan_cifar_read(o->path, split, &set));
        }
        GAN_TRY(gan_dataset_open_images(&set, o->size, o->channels, o->path, &ds));
    } else if (!strcmp(format, "folder")) {
        GAN_TRY(open_folder(o, split, &ds));
    } else {
        return gan_error(GAN_ERR_CONFIG, "data.format = '%s': use auto, folder, idx, cifar or npy", format);
    }
    *out = ds;
    return GAN_OK;
}

void gan_dataset_close(gan_dataset *ds)
{
    if (!ds)
        return;
    if (ds->cache.data)
        gan_npy_release(&ds->cache);
    gan_image_set_free(&ds->images);
    gan_file_list_free(&ds->files);
    free(ds);
}

gan_dataset_kind gan_dataset_get_kind(const gan_dataset *ds) { return ds->kind; }
int64_t gan_dataset_count(const gan_dataset *ds) { return ds->count; }
int gan_dataset_size(const gan_dataset *ds) { return ds->size; }
int gan_dataset_channels(const gan_dataset *ds) { return ds->channels; }

const char *gan_dataset_name(const gan_dataset *ds) { return ds->name; }

const char *gan_dataset_item_name(const gan_dataset *ds, int64_t index, char *buffer, size_t size)
{
    if (ds->kind == GAN_DATASET_FOLDER && index >= 0 && index < ds->count)
        return ds->files.paths[index];
    snprintf(buffer, size, "%s[%lld]", ds->name, (long long)index);
    return buffer;
}

gan_status gan_dataset_worker_create(const gan_dataset *ds, gan_dataset_worker **out)
{
    *out = NULL;
    gan_dataset_worker *w = calloc(1, sizeof *w);
    if (!w)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = GAN_OK;
    GAN_CHECK(gan_transform_create(ds->size, &w->transform));
    if (ds->kind == GAN_DATASET_FOLDER)
        GAN_CHECK(gan_image_decoder_create(&w->decoder));
    *out = w;
    return GAN_OK;
cleanup:
    gan_dataset_worker_destroy(w);
    return status;
}

void gan_dataset_worker_destroy(gan_dataset_worker *w)
{
    if (!w)
        return;
    gan_transform_destroy(w->transform);
    gan_image_decoder_destroy(w->decoder);
    free(w->file);
    free(w->converted);
    free(w);
}

gan_status gan_dataset_get(const gan_dataset *ds, gan_dataset_worker *w, int64_t index, uint8_t *out)
{
    if (index < 0 || index >= ds->count)
        return gan_error(GAN_ERR_ARG, "%s: item %lld of %lld", ds->name, (long long)index, (long long)ds->count);
    size_t item_bytes = (size_t)ds->size * ds->size * ds->channels;
    switch (ds->kind) {
    case GAN_DATASET_CACHE:
        memcpy(out, (const uint8_t *)ds->cache.data + (size_t)index * item_bytes, item_bytes);
        return GAN_OK;
    case GAN_DATASET_MEMORY: {
        const gan_image_set *set = &ds->images;
        size_t pixels = (size_t)set->height * set->width;
        const uint8_t *src = set->pixels + (size_t)index * pixels * set->channels;
        if (set->channels != ds->channels) {
            size_t needed = pixels * ds->channels;
            if (needed > w->converted_capacity) {
                free(w->converted);
                w->converted = malloc(needed);
                w->converted_capacity = w->converted ? needed : 0;
                if (!w->converted)
                    return gan_error(GAN_ERR_NOMEM, "out of memory");
            }
            gan_pixels_convert(src, set->channels, w->converted, ds->channels, pixels);
            src = w->converted;
        }
        return gan_transform_apply(w->transform, src, set->width, set->height, ds->channels, out);
    }
    case GAN_DATASET_FOLDER: {
        const char *path = ds->files.paths[index];
        size_t size = 0;
        GAN_TRY(gan_file_read(path, &w->file, &w->file_capacity, &size));
        const uint8_t *pixels;
        int width, height;
        GAN_TRY(gan_image_decode(w->decoder, w->file, size, path, ds->channels, &pixels, &width, &height));
        return gan_transform_apply(w->transform, pixels, width, height, ds->channels, out);
    }
    }
    return gan_error(GAN_ERR_ARG, "%s: unknown data set kind", ds->name);
}
