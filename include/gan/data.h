/* Data sets for training, as torchvision prepares them for the PyTorch DCGAN tutorial:
 *
 *   readers     image folders (CelebA's img_align_celeba), MNIST / Fashion-MNIST IDX, CIFAR-10
 *               binary batches, and the uint8 .npy cache `gan prepare` writes;
 *   transform   Resize(S) with Pillow's antialiased bilinear filter and fixed-point rounding, then
 *               CenterCrop(S), on uint8 pixels (the scaling to [-1, 1] happens on the backend);
 *   dataset     N images of [S, S, C] uint8 by index, decoded and transformed on request;
 *   loader      the trainer's gan_data_source: shuffled epochs from (seed, epoch), fixed-size
 *               batches [B, S, S, C] uint8, prepared by a background thread while the step runs.
 *
 * Images that cannot be decoded are skipped with one warning naming the file and counted; the run
 * fails once more than a set fraction of the data set is bad. */
#ifndef GAN_DATA_H
#define GAN_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "gan/data_source.h"
#include "gan/error.h"
#include "gan/npy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where warnings go (one line each, no newline); NULL means stderr as "gan: warning: ...". May be
 * called from any thread. */
typedef void (*gan_warn_fn)(void *ctx, const char *message);

/* ---- images in memory ------------------------------------------------------------------------ */

/* Images as uint8 NHWC, owned. */
typedef struct gan_image_set {
    uint8_t *pixels; /* [count, height, width, channels] */
    int64_t count;
    int height, width, channels;
} gan_image_set;

void gan_image_set_free(gan_image_set *set);

/* MNIST / Fashion-MNIST images (IDX3, magic 0x00000803), raw or gzip-compressed: [N, rows, cols, 1]. */
gan_status gan_idx_read_images(const char *path, gan_image_set *out);

/* CIFAR-10 binary batches: records of one label byte and 3072 pixel bytes (the R, G and B planes of
 * a 32x32 image, row-major), as [N, 32, 32, 3]. `path` is one .bin file or the folder
 * cifar-10-batches-bin; in a folder, split "all" and "train" read data_batch_1..5.bin (torchvision's
 * CIFAR10(train=True)), "test" reads test_batch.bin. */
gan_status gan_cifar_read(const char *path, const char *split, gan_image_set *out);

/* ---- image folders ---------------------------------------------------------------------------- */

typedef struct gan_file_list {
    char **paths;   /* [count] full paths, sorted by their path below the root (byte order) */
    int64_t count;
    int64_t ignored; /* files skipped for not being .jpg/.jpeg/.png */
} gan_file_list;

/* Every .jpg, .jpeg and .png (any letter case) below `dir`, recursively (following links, at most
 * 64 levels deep). An empty or missing folder, or one without images, is an error naming it. */
gan_status gan_folder_list(const char *dir, gan_file_list *out);
/* The same, stopping with an error as soon as *cancel is non-zero (cancel may be NULL). A folder
 * reached again through a link (a loop, or two links to one folder) is listed once, with one
 * warning on stderr. */
gan_status gan_folder_list_cancellable(const char *dir, volatile int *cancel, gan_file_list *out);
void gan_file_list_free(gan_file_list *list);

/* Keeps the files of one split of CelebA's list_eval_partition.txt ("000001.jpg 0" per line;
 * 0 train, 1 valid, 2 test; commas work as separators too and a header line is skipped); files are
 * matched by their name. split "all" keeps everything. Listed files that are missing and present
 * files that are not listed are reported through `warn` (one line each kind, with counts). */
gan_status gan_split_filter(gan_file_list *list, const char *split_file, const char *split,
                            gan_warn_fn warn, void *warn_ctx);

/* ---- the transform ---------------------------------------------------------------------------- */

/* torchvision's Resize(size) output size for an in_w x in_h image: the shorter side becomes size,
 * the longer int(size * long / short). */
void gan_resize_output_size(int in_w, int in_h, int size, int *out_w, int *out_h);

/* Pillow's Image.resize(..., BILINEAR) of one 8-bit image (antialiased when shrinking, fixed
 * point with 22 fractional bits, horizontal pass then vertical, rounding to 8 bits between). */
gan_status gan_resize_bilinear(const uint8_t *in, int in_w, int in_h, int channels, uint8_t *out,
                               int out_w, int out_h);
/* torchvision Resize(size) + CenterCrop(size) of one image into out [size, size, channels]. */
gan_status gan_resize_center_crop(const uint8_t *in, int in_w, int in_h, int channels, int size,
                                  uint8_t *out);

/* The same transform with its coefficients kept for the last input size and its buffers reused:
 * one per thread. Only the pixels the crop keeps are computed (the result is the same). */
typedef struct gan_transform gan_transform;
gan_status gan_transform_create(int size, gan_transform **out);
void gan_transform_destroy(gan_transform *t);
/* in [in_h, in_w, channels] -> out [size, size, channels] */
gan_status gan_transform_apply(gan_transform *t, const uint8_t *in, int in_w, int in_h, int channels,
                               uint8_t *out);

/* ---- data sets -------------------------------------------------------------------------------- */

typedef enum gan_dataset_kind {
    GAN_DATASET_CACHE,  /* a memory-mapped uint8 .npy [N, S, S, C] from gan prepare */
    GAN_DATASET_MEMORY, /* images in memory (IDX, CIFAR-10), transformed on request */
    GAN_DATASET_FOLDER  /* image files, read, decoded and transformed on request */
} gan_dataset_kind;

typedef struct gan_dataset_options {
    const char *path;
    const char *format;     /* "auto" (or NULL), "folder", "idx", "cifar", "npy" */
    const char *split;      /* "all" (or NULL), "train", "valid", "test" */
    const char *split_file; /* CelebA list_eval_partition.txt; NULL or "": look beside the folder */
    int size;               /* S: images come out [S, S, channels] */
    int channels;           /* 1 (convert('L')) or 3 (convert('RGB')) */
    gan_warn_fn warn;
    void *warn_ctx;
    volatile int *cancel;   /* non-zero stops the folder listing (gan prepare's Ctrl-C); may be NULL */
} gan_dataset_options;

typedef struct gan_dataset gan_dataset;

/* The format "auto" picks: .npy files are caches; folders holding data_batch_1.bin or
 * test_batch.bin are CIFAR-10, other folders image folders; .bin files CIFAR-10 batches; other
 * files IDX (MNIST names them *-ubyte or *-ubyte.gz). A missing path is an error, and so is one
 * that is neither a regular file nor a folder (a FIFO, a device, a socket), here and in
 * gan_dataset_open, before anything opens it. */
gan_status gan_dataset_detect_format(const char *path, const char **format);

gan_status gan_dataset_open(const gan_dataset_options *options, gan_dataset **out);
/* A data set over images already in memory (takes `images`), transformed to size x size x channels
 * on request. `name` names it in messages. */
gan_status gan_dataset_open_images(gan_image_set *images, int size, int channels, const char *name,
                                   gan_dataset **out);
void gan_dataset_close(gan_dataset *ds);

gan_dataset_kind gan_dataset_get_kind(const gan_dataset *ds);
int64_t gan_dataset_count(const gan_dataset *ds);
int gan_dataset_size(const gan_dataset *ds);     /* S */
int gan_dataset_channels(const gan_dataset *ds); /* C */
const char *gan_dataset_name(const gan_dataset *ds); /* its path */
/* What item i is, for messages: the file of a folder image, "path[i]" otherwise. */
const char *gan_dataset_item_name(const gan_dataset *ds, int64_t index, char *buffer, size_t size);

/* Scratch for gan_dataset_get (file buffer, decoder, transform): one per thread. */
typedef struct gan_dataset_worker gan_dataset_worker;
gan_status gan_dataset_worker_create(const gan_dataset *ds, gan_dataset_worker **out);
void gan_dataset_worker_destroy(gan_dataset_worker *w);

/* Item `index` into out [S, S, C]. Thread-safe with one worker per thread. GAN_ERR_FORMAT or
 * GAN_ERR_IO: this image cannot be read or decoded (the message names the file): skip it; any
 * other error is fatal (out of memory). */
gan_status gan_dataset_get(const gan_dataset *ds, gan_dataset_worker *w, int64_t index, uint8_t *out);

/* Checks an opened cache against the config's image shape: uint8 [N, height, width, channels]. */
gan_status gan_cache_check(const gan_npy_header *header, const char *path, int height, int width,
                           int channels);

/* ---- the loader ------------------------------------------------------------------------------- */

/* The permutation of epoch `epoch`: order [n] from Philox (seed, stream = epoch) by Fisher-Yates.
 * Depends on nothing else, so (seed, epoch, index) is a complete position. */
gan_status gan_data_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *order);

typedef struct gan_loader_options {
    int batch_size;          /* B */
    uint64_t seed;
    int prefetch;            /* batches prepared ahead of the trainer (default 2) */
    int threads;             /* decoding threads for folders; 0: one per core, at most 8 */
    double max_bad_fraction; /* fail when more than this fraction of images cannot be decoded */
    gan_warn_fn warn;
    void *warn_ctx;
    /* A data-parallel run: the source hands out part `part` of `parts` of each batch (rows
     * part * B / parts .. (part + 1) * B / parts - 1; parts divides B), one rank's share; the
     * batches, epochs and positions are the whole batch's, the same on every rank. Default 0 of 1.
     * Images of a cache or a set in memory always decode, so only the part's rows are decoded;
     * an image folder's are all decoded on every rank (which images fail decides which fill the
     * batch), and only part 0 warns about the ones skipped. */
    int part, parts;
} gan_loader_options;

void gan_loader_options_default(gan_loader_options *options);

/* The trainer's data source over `ds` (taken: closed with the source). Each epoch visits the
 * permutation of (seed, epoch); a batch is the next B images of it that decode. Batches never
 * span epochs: when fewer than B images are left, the rest of the epoch is dropped (DataLoader's
 * drop_last=True), so an epoch is floor(N / B) batches when every image decodes (fewer when some
 * do not: batches_per_epoch says floor(N / B)). A background thread (plus helpers for folders)
 * fills the next `prefetch` batches while the caller trains; next_batch copies one out.
 * Positions: {seed, epoch, index}, index = entries of the epoch's permutation used by the batches
 * handed out so far. get_position gives it for a checkpoint; set_position (gan_loader_restore)
 * continues from one exactly. close stops the thread wherever it is (mid-epoch) and joins it. */
gan_status gan_loader_open(gan_dataset *ds, const gan_loader_options *options, gan_data_source **out);

/* Continues from a saved position (the same as src->set_position). */
gan_status gan_loader_restore(gan_data_source *src, const gan_data_position *position);

typedef struct gan_loader_stats {
    int64_t bad;        /* images found undecodable so far (each counted once) */
    int64_t batches;    /* batches handed out */
    double wait_ms;     /* total time next_batch waited for the background thread */
} gan_loader_stats;

gan_status gan_loader_get_stats(gan_data_source *src, gan_loader_stats *stats);

/* A data source over images in memory already at their final size (takes `images`). */
gan_status gan_memory_source_open(gan_image_set *images, int batch, uint64_t seed,
                                  gan_data_source **out);

/* ---- the cache -------------------------------------------------------------------------------- */

/* More threads than this are refused (100000 overflowed the OpenMP runtime's stack). */
enum { GAN_PREPARE_MAX_THREADS = 1024 };

typedef struct gan_prepare_options {
    gan_dataset_options data;  /* what to read, and the size and channels to write */
    const char *output;        /* FILE.npy: uint8 [N, S, S, C] */
    int threads;               /* 0: every core; at most GAN_PREPARE_MAX_THREADS */
    double max_bad_fraction;   /* fail when more than this fraction of images is bad */
    /* called now and then from one thread with the images done so far; may be NULL */
    void (*progress)(void *ctx, int64_t done, int64_t total);
    void *progress_ctx;
    volatile int *cancel;      /* set non-zero (e.g. from a signal handler) to stop; may be NULL */
} gan_prepare_options;

typedef struct gan_prepare_result {
    int64_t written;  /* images in the cache */
    int64_t bad;      /* images skipped */
    double seconds;
} gan_prepare_result;

/* `gan prepare`: every image decoded and transformed once, on every core, into a uint8 .npy that
 * numpy.load(mmap_mode='r') opens. The output appears complete or not at all (temporary file
 * OUT.tmp.<pid>.<n> and rename; a character device or FIFO gets the whole file at the end). First,
 * OUT.tmp.<pid>.<n> files of processes that no longer run (killed prepare runs) are removed, each
 * reported through options->data.warn; a live process's file is never touched. */
gan_status gan_prepare_cache(const gan_prepare_options *options, gan_prepare_result *result);

#ifdef __cplusplus
}
#endif
#endif
