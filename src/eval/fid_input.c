/* The image sets `gan fid` reads (see gan/fid.h): a folder of PNG/JPEG files, a .npy of images,
 * or a statistics .npz, and the features of every image of a folder or a .npy through the FID
 * Inception. Images are read as pytorch-fid reads them: PIL's convert('RGB') for files (gray
 * replicated), uint8 -> [-1, 1]; float32 samples (gan sample --npy) go in as they are. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gan/data.h"
#include "gan/fid.h"
#include "gan/image.h"
#include "gan/inception.h"
#include "gan/npy.h"

static bool has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), m = strlen(suffix);
    return n >= m && !strcmp(path + n - m, suffix);
}

gan_status gan_fid_input_kind_of(const char *path, gan_fid_input_kind *kind)
{
    if (!path || !*path || !kind)
        return gan_error(GAN_ERR_ARG, "FID input: no path");
    struct stat st;
    if (stat(path, &st) != 0)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        *kind = GAN_FID_INPUT_FOLDER;
        return GAN_OK;
    }
    if (!S_ISREG(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: neither a folder nor a regular file", path);
    unsigned char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got == sizeof magic && !memcmp(magic, "\x93NUMPY", 6)) {
        *kind = GAN_FID_INPUT_NPY;
        return GAN_OK;
    }
    if ((got >= 4 && !memcmp(magic, "PK\x03\x04", 4)) || has_suffix(path, ".npz")) {
        *kind = GAN_FID_INPUT_STATS;
        return GAN_OK;
    }
    return gan_error(GAN_ERR_FORMAT, "%s: not a folder of images, a .npy of images or a statistics .npz", path);
}

/* ---- .npy --------------------------------------------------------------------------------- */

static void report(gan_fid_progress progress, void *ctx, int64_t done, int64_t total)
{
    if (progress)
        progress(ctx, done, total);
}

/* A .npy of images: uint8 [N, H, W, C] or float32 [N, C, H, W], C 1 or 3, N >= 1 (*u8 says which). */
static gan_status check_npy_images(const char *path, const gan_npy_header *h, bool *u8)
{
    const int64_t *s = h->shape;
    *u8 = h->dtype == GAN_NPY_U8 && h->ndim == 4 && (s[3] == 1 || s[3] == 3);
    bool f32 = h->dtype == GAN_NPY_F32 && h->ndim == 4 && (s[1] == 1 || s[1] == 3);
    if (!*u8 && !f32) {
        char shape[128] = "";
        for (int d = 0, used = 0; d < h->ndim && used < (int)sizeof shape; d++)
            used += snprintf(shape + used, sizeof shape - (size_t)used, "%s%lld", d ? ", " : "", (long long)s[d]);
        return gan_error(GAN_ERR_FORMAT, "%s: %s [%s]: a .npy of images is uint8 [N, H, W, C] (gan prepare) or float32 "
                                         "[N, C, H, W] in [-1, 1] (gan sample --npy), C 1 or 3",
                         path, gan_npy_dtype_name(h->dtype), shape);
    }
    if (s[0] < 1 || s[1] < 1 || s[2] < 1 || s[3] < 1)
        return gan_error(GAN_ERR_FORMAT, "%s: holds no images (shape [%lld, %lld, %lld, %lld])", path, (long long)s[0],
                         (long long)s[1], (long long)s[2], (long long)s[3]);
    if (s[1] > 1 << 20 || s[2] > 1 << 20 || s[3] > 1 << 20)
        return gan_error(GAN_ERR_FORMAT, "%s: images of %lld x %lld are too large", path, (long long)s[1],
                         (long long)s[2]);
    return GAN_OK;
}

/* The counts of gan_fid_input_info for a folder's list: the paths are the folder's path, a '/'
 * unless it ends with one, and the path below it (gan_folder_list). */
static void count_folder(const char *dir, const gan_file_list *list, gan_fid_input_info *info)
{
    size_t dir_len = strlen(dir);
    size_t skip = dir_len + (dir_len > 0 && dir[dir_len - 1] == '/' ? 0 : 1);
    info->images = list->count;
    info->ignored = list->ignored;
    for (int64_t i = 0; i < list->count; i++) {
        const char *p = list->paths[i];
        const char *below = strlen(p) > skip ? p + skip : p;
        if (strchr(below, '/'))
            info->in_subfolders++;
        const char *dot = strrchr(below, '.');
        for (const char *c = dot ? dot : below + strlen(below); *c; c++)
            if (*c >= 'A' && *c <= 'Z') {
                info->upper_case++;
                break;
            }
    }
}

gan_status gan_fid_input_inspect(const char *path, gan_fid_input_kind kind, gan_fid_input_info *info)
{
    if (!path || !info)
        return gan_error(GAN_ERR_ARG, "gan_fid_input_inspect: NULL argument");
    memset(info, 0, sizeof *info);
    if (kind == GAN_FID_INPUT_FOLDER) {
        gan_file_list list = {0};
        GAN_TRY(gan_folder_list(path, &list));
        count_folder(path, &list, info);
        gan_file_list_free(&list);
        return GAN_OK;
    }
    if (kind == GAN_FID_INPUT_NPY) {
        gan_npy_array a;
        GAN_TRY(gan_npy_map(path, &a));
        bool u8 = false;
        gan_status status = check_npy_images(path, &a.header, &u8);
        info->images = a.header.shape[0];
        gan_npy_release(&a);
        return status;
    }
    /* statistics: read and checked whole (shapes against the network's 2048 features, symmetry,
     * finiteness), so that a bad file is refused before the other input goes through the network */
    gan_fid_stats stats = {0};
    GAN_TRY(gan_fid_stats_read(path, GAN_INCEPTION_FEATURES, &stats));
    gan_fid_stats_free(&stats);
    return GAN_OK;
}

gan_status gan_fid_input_check(const char *path, gan_fid_input_kind kind, int64_t *images)
{
    if (!images)
        return gan_error(GAN_ERR_ARG, "gan_fid_input_check: NULL argument");
    gan_fid_input_info info;
    gan_status status = gan_fid_input_inspect(path, kind, &info);
    *images = info.images;
    return status;
}

static gan_status features_of_npy(gan_inception *net, const char *path, float **features, int64_t *count,
                                  gan_fid_progress progress, void *ctx)
{
    gan_npy_array a;
    GAN_TRY(gan_npy_map(path, &a));
    const gan_npy_header *h = &a.header;
    const int64_t *s = h->shape;
    gan_status status = GAN_OK;
    float *out = NULL;
    bool u8 = false;
    GAN_CHECK(check_npy_images(path, h, &u8));
    const int64_t n = s[0];
    const int channels = (int)(u8 ? s[3] : s[1]), height = (int)(u8 ? s[1] : s[2]), width = (int)(u8 ? s[2] : s[3]);
    out = malloc((size_t)n * GAN_INCEPTION_FEATURES * sizeof *out);
    if (!out) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory for the features of %lld images", path, (long long)n);
        goto cleanup;
    }
    const int batch = gan_inception_batch(net);
    const size_t values = (size_t)channels * height * width;
    for (int64_t first = 0; first < n; first += batch) {
        int k = (int)(n - first < batch ? n - first : batch);
        float *f = out + (size_t)first * GAN_INCEPTION_FEATURES;
        if (u8) {
            status = gan_inception_features_u8(net, (const uint8_t *)a.data + (size_t)first * values, k, height, width,
                                               channels, f);
        } else {
            const float *x = (const float *)a.data + (size_t)first * values;
            for (size_t i = 0; i < (size_t)k * values; i++)
                if (!isfinite(x[i])) {
                    status = gan_error(GAN_ERR_FORMAT, "%s: image %lld holds a non-finite value", path,
                                       (long long)(first + (int64_t)(i / values)));
                    goto cleanup;
                }
            status = gan_inception_features_f32(net, x, k, channels, height, width, f);
        }
        if (status != GAN_OK) {
            gan_error_prefix(status, "%s: ", path);
            goto cleanup;
        }
        report(progress, ctx, first + k, n);
    }
    *features = out;
    *count = n;
    gan_npy_release(&a);
    return GAN_OK;
cleanup:
    free(out);
    gan_npy_release(&a);
    return status;
}

/* ---- folders ------------------------------------------------------------------------------ */

typedef struct decoded {
    uint8_t *pixels; /* [h, w, 3] */
    int w, h;
    gan_status status;
    char message[512];
} decoded;

/* Images decoded a batch at a time on every core; each run of equal sizes staged into its slots
 * (the network resizes a run together), then the network run once over the batch. */
static gan_status features_of_folder(gan_inception *net, const char *path, float **features, int64_t *count,
                                     gan_fid_progress progress, void *ctx)
{
    gan_file_list list = {0};
    GAN_TRY(gan_folder_list(path, &list));
    const int batch = gan_inception_batch(net);
    gan_status status = GAN_OK;
    float *out = malloc((size_t)list.count * GAN_INCEPTION_FEATURES * sizeof *out);
    decoded *slots = calloc((size_t)batch, sizeof *slots);
    uint8_t *run = NULL;
    size_t run_capacity = 0;
    if (!out || !slots) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory for %lld images", path, (long long)list.count);
        goto cleanup;
    }
    for (int64_t first = 0; first < list.count; first += batch) {
        int k = (int)(list.count - first < batch ? list.count - first : batch);
#pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < k; i++) {
            decoded *d = &slots[i];
            d->status = gan_image_load(list.paths[first + i], 3, &d->pixels, &d->w, &d->h);
            if (d->status != GAN_OK)
                snprintf(d->message, sizeof d->message, "%s", gan_error_message());
        }
        for (int i = 0; i < k; i++)
            if (slots[i].status != GAN_OK) {
                status = gan_error(slots[i].status, "%s", slots[i].message);
                goto cleanup;
            }
        for (int i = 0; i < k;) {
            int j = i + 1;
            while (j < k && slots[j].w == slots[i].w && slots[j].h == slots[i].h)
                j++;
            size_t image_bytes = (size_t)slots[i].w * slots[i].h * 3;
            if ((size_t)(j - i) * image_bytes > run_capacity) {
                uint8_t *grown = realloc(run, (size_t)(j - i) * image_bytes);
                if (!grown) {
                    status = gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
                    goto cleanup;
                }
                run = grown;
                run_capacity = (size_t)(j - i) * image_bytes;
            }
            for (int m = i; m < j; m++)
                memcpy(run + (size_t)(m - i) * image_bytes, slots[m].pixels, image_bytes);
            status = gan_inception_stage_u8(net, i, run, j - i, slots[i].h, slots[i].w, 3);
            if (status != GAN_OK) {
                gan_error_prefix(status, "%s: ", list.paths[first + i]);
                goto cleanup;
            }
            i = j;
        }
        status = gan_inception_run(net, k, out + (size_t)first * GAN_INCEPTION_FEATURES);
        if (status != GAN_OK) {
            gan_error_prefix(status, "%s: ", path);
            goto cleanup;
        }
        for (int i = 0; i < k; i++) {
            free(slots[i].pixels);
            slots[i].pixels = NULL;
        }
        report(progress, ctx, first + k, list.count);
    }
    *features = out;
    *count = list.count;
    out = NULL;
cleanup:
    if (slots)
        for (int i = 0; i < batch; i++)
            free(slots[i].pixels);
    free(slots);
    free(run);
    free(out);
    gan_file_list_free(&list);
    return status;
}

gan_status gan_fid_features_of(gan_inception *net, const char *path, float **features, int64_t *count,
                               gan_fid_progress progress, void *ctx)
{
    if (!net || !features || !count)
        return gan_error(GAN_ERR_ARG, "gan_fid_features_of: NULL argument");
    *features = NULL;
    *count = 0;
    gan_fid_input_kind kind;
    GAN_TRY(gan_fid_input_kind_of(path, &kind));
    switch (kind) {
    case GAN_FID_INPUT_FOLDER: return features_of_folder(net, path, features, count, progress, ctx);
    case GAN_FID_INPUT_NPY: return features_of_npy(net, path, features, count, progress, ctx);
    case GAN_FID_INPUT_STATS: break;
    }
    return gan_error(GAN_ERR_ARG, "%s: a statistics file holds no images", path);
}
