/* Stored convolution algorithm choices.
 *
 * The CUDA backend chooses the algorithm of each pass of each convolution geometry by timing the
 * candidates when the models are planned (src/backend/cuda_conv.c). Timings are noisy: two runs
 * could choose differently and, in deterministic mode, compute different bits. So the choices
 * are kept as text and given back to the backend before it plans (the op table's
 * conv_choices_import): `gan train` keeps them in the run directory (conv_algorithms.txt), in
 * every checkpoint (metadata key "conv_algorithms") and in the user's cache, so that a resumed
 * run and a rerun of the same config on the same kind of GPU and cuDNN choose as before.
 *
 * The text: lines starting with '#' and empty lines are comments; every other line is one choice,
 * fields `key=value` separated by single spaces, in this order, all of them present (but stored
 * and layout, see below):
 *   gpu="NVIDIA H200" cc=9.0 cudnn=91000 precision=fp32 deterministic=true
 *   n=64 x=128x16x16 y=256x8x8 k=4x4 s=2x2 p=1x1 pass=backward-data
 *   algo=1 math=fma workspace=0 ms=0.0213
 * (on one line). The first eleven fields are the key: GPU name (cudaDeviceProp.name, no '"'),
 * compute capability, cudnnGetVersion(), the backend's precision and determinism, the geometry
 * (gan_conv_geom: n, then c x h x w of its x and y, kernel, stride, padding) and the pass; and,
 * after the pass, `stored=true` for a geometry with a tensor stored NHWC between layers
 * (gan_conv_geom.x_storage, y_storage, w_storage: its passes run cuDNN in NHWC alone, tf32 and
 * bf16), absent (false) for one of FP32 NCHW tensors, so that the two keep choices of their own.
 * The rest is the choice: cuDNN's algorithm number for that pass (its enum value), `subpixel` for
 * the backward-data of ours or `im2col` for the backward-filter of ours; cuDNN's math type
 * (default, tensor-op, tensor-op-allow-conversion, fma: cudnnMathType_t's values 0..3); the
 * layout cuDNN runs on (gan_conv_layout: nchw, or nhwc in tf32 and bf16; always nchw for the
 * forms of ours, whose inner convolution has a choice of its own); the workspace it needed and
 * the milliseconds it measured, for reports. The layout field came later than the others: a line
 * without it (written before) means nhwc in bf16 and nchw otherwise, the only layouts those
 * precisions had then. A choice is reused only where every key field is equal (a line without
 * stored, as every line was before it existed, is the FP32 NCHW tensors' key). */
#ifndef GAN_CONV_CHOICES_H
#define GAN_CONV_CHOICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    GAN_CONV_CHOICE_GPU_CHARS = 96,
    /* algo of the sub-pixel backward-data of ours (kernels/subpixel.cuh), not a cuDNN algorithm */
    GAN_CONV_ALGO_SUBPIXEL = 1000,
    /* algo of the im2col + GEMM backward-filter of ours (kernels/im2col.cuh) */
    GAN_CONV_ALGO_IM2COL = 1001
};

/* cudnnMathType_t's values, under names of ours (the text's spelling is math_names[]). */
typedef enum gan_conv_math {
    GAN_CONV_MATH_DEFAULT = 0,
    GAN_CONV_MATH_TENSOR_OP = 1,
    GAN_CONV_MATH_TENSOR_OP_ALLOW_CONVERSION = 2,
    GAN_CONV_MATH_FMA = 3
} gan_conv_math;

/* The layout of the tensors cuDNN runs a pass on: the op table's own FP32 NCHW buffers, or copies
 * of them in NHWC (filters KRSC), the layout tensor cores read (src/backend/cuda_conv.c). */
typedef enum gan_conv_layout { GAN_CONV_LAYOUT_NCHW = 0, GAN_CONV_LAYOUT_NHWC = 1 } gan_conv_layout;

typedef struct gan_conv_choice {
    /* the key */
    char gpu[GAN_CONV_CHOICE_GPU_CHARS];
    int cc_major, cc_minor;
    long cudnn_version;
    gan_precision precision;
    bool deterministic;
    gan_conv_geom geom; /* its shape; the storages are not read (`stored` says what matters) */
    gan_conv_pass pass;
    bool stored; /* the geometry has a tensor stored NHWC (cuDNN's NHWC passes only) */
    /* the choice */
    int algo;
    gan_conv_math math;
    gan_conv_layout layout;
    size_t workspace_bytes;
    double ms;
} gan_conv_choice;

typedef struct gan_conv_choices {
    gan_conv_choice *items;
    int count, capacity;
} gan_conv_choices;

/* Appends the choices of `text` to `list` (a line whose key is already there replaces it). A
 * malformed line fails with GAN_ERR_FORMAT naming `source`, the line number and the field;
 * `list` then holds the lines before it. */
gan_status gan_conv_choices_parse(const char *text, const char *source, gan_conv_choices *list);

/* The text of `list` (a header comment, then one line per choice), malloc'd into *text. */
gan_status gan_conv_choices_format(const gan_conv_choices *list, char **text);

/* The index of the choice whose key equals `key`'s, or -1. */
int gan_conv_choices_find(const gan_conv_choices *list, const gan_conv_choice *key);

/* Adds `choice`, replacing the one with the same key. */
gan_status gan_conv_choices_put(gan_conv_choices *list, const gan_conv_choice *choice);

void gan_conv_choices_free(gan_conv_choices *list);

/* "forward", "backward-data", "backward-filter". */
const char *gan_conv_pass_name(gan_conv_pass pass);
/* "default", "tensor-op", "tensor-op-allow-conversion", "fma", or "?" */
const char *gan_conv_math_name(gan_conv_math math);
/* "nchw", "nhwc", or "?" */
const char *gan_conv_layout_name(gan_conv_layout layout);

/* ---- the user's cache: <dir>/conv_algorithms.txt -------------------------------------------- *
 * <dir> is $GAN_CACHE_DIR, else $XDG_CACHE_HOME/gan, else $HOME/.cache/gan. GAN_CACHE_DIR=off
 * (or an empty one) turns the cache off. */

/* The cache file's path into `path`; false when the cache is off or no directory is known. */
bool gan_conv_choices_cache_path(char *path, size_t bytes);

/* Appends the choices stored in `path` to `list`. A missing file adds nothing; an unreadable or
 * malformed one fails naming it. */
gan_status gan_conv_choices_load(const char *path, gan_conv_choices *list);

/* Merges `list` into the file at `path` (the file's other choices are kept, equal keys take
 * `list`'s), making its directory, and replaces the file by a rename of a temporary file of this
 * process: a crash never leaves half a file, and two processes writing at once leave one's. */
gan_status gan_conv_choices_store(const char *path, const gan_conv_choices *list);

/* Gives backend `be` the cache's choices (a no-op for a backend without conv_choices_import,
 * the CPU's). Call it before models are planned. Any trouble with the cache (unreadable,
 * damaged) is a warning on `log`, and the run goes on without it. */
void gan_conv_choices_reuse_cache(gan_backend *be, FILE *log);

/* Merges `be`'s choices into the cache (a no-op without conv_choices_export, or without any
 * choice); a cache that cannot be written is a warning on `log`. Call it after planning. */
void gan_conv_choices_update_cache(gan_backend *be, FILE *log);

#ifdef __cplusplus
}
#endif
#endif
