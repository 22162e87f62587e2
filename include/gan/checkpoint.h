/* Checkpoint and export files, as safetensors: the file layout, with no knowledge of what a
 * trainer keeps (src/train/checkpoint.c decides that: which models, which counters).
 *
 * A checkpoint holds models' tensors, each model under a prefix ("G.3.weight", ...): every
 * parameter and buffer with PyTorch's name, num_batches_tracked (I64 scalar) after each batch
 * norm's running_var, and optionally the Adam moments "<prefix>.adam.m" and "<prefix>.adam.v"
 * (flat, in the order of the model's trainable parameters); a model stored weights only (the EMA
 * of G, "G_ema.<name>") has its trainable parameters alone, under their PyTorch names. Its metadata
 * (str -> str) holds "format" = gan-checkpoint, "version" (below), "name" (the config's name),
 * "config" (the resolved
 * config as INI text, so `gan sample` and `gan export` need nothing else), the counters the
 * writer passes, each a decimal integer, and "data_crc32c", the CRC-32C of the whole data section
 * (8 hex digits), which every reader checks. Written to a temporary name, fsynced, renamed: a
 * crash never leaves a half-written checkpoint.
 *
 * An export holds one model alone with PyTorch's module names under a prefix ("main.0.weight",
 * "main.1.running_mean", "main.1.num_batches_tracked" as I64, ...), loadable by
 * load_state_dict(strict=True); its metadata carries the same "data_crc32c". */
#ifndef GAN_CHECKPOINT_H
#define GAN_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/error.h"
#include "gan/nn.h"
#include "gan/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GAN_CHECKPOINT_FORMAT "gan-checkpoint"
/* The version rule (issue 12): a change of what a checkpoint may hold bumps the version, and
 * every older version stays readable.
 *   1  no checksum: still read, with a one-line warning;
 *   2  adds "data_crc32c", the CRC-32C of the tensor data;
 *   3  adds a model stored weights only: the EMA of G (train.ema_decay > 0), tensors
 *      "G_ema.<name>" for G's trainable parameters.
 * A checkpoint is written as the lowest version that holds it: 3 with the EMA generator, 2
 * without (so a run without EMA still writes files a gan of version 2 reads). Readers take 1 to 3. */
#define GAN_CHECKPOINT_VERSION "3"
#define GAN_CHECKPOINT_VERSION_PLAIN "2"
/* The metadata key of the CRC-32C of the tensor data (checkpoints from version 2, and exports). */
#define GAN_CHECKPOINT_CRC_KEY "data_crc32c"

/* One model of a checkpoint: its tensors are "<prefix>.<name>". */
typedef struct gan_checkpoint_model {
    const char *prefix;
    gan_model *model;
    bool with_adam;   /* the Adam moments too */
    /* Non-NULL: the model's trainable parameters alone (no buffers, num_batches_tracked or Adam
     * moments), written from and loaded into this backend buffer laid out as model->weights: a
     * copy of the weights such as the EMA of G. Makes the checkpoint version 3. */
    float *weights_only;
} gan_checkpoint_model;

/* An integer counter of a checkpoint's metadata. */
typedef struct gan_checkpoint_counter {
    const char *key;
    bool is_signed;
    union {
        int64_t i64;
        uint64_t u64;
    } value;
} gan_checkpoint_counter;

/* A text of a checkpoint's metadata beyond the fixed ones: "conv_algorithms" (the CUDA
 * backend's algorithm choices, gan/conv_choices.h), absent where there are none; the FID a run
 * tracks ("best_fid", ...: src/train/fid_track.h). At most 8. */
typedef struct gan_checkpoint_text {
    const char *key;
    const char *value;
} gan_checkpoint_text;

/* Writes `models` (downloaded from their backend), `cfg`, `counters` and `texts` to `path`. */
gan_status gan_checkpoint_write(const char *path, const gan_config *cfg,
                                const gan_checkpoint_model *models, int model_count,
                                const gan_checkpoint_counter *counters, int counter_count,
                                const gan_checkpoint_text *texts, int text_count);

/* An open checkpoint: checked to be a gan checkpoint of a version this gan reads, its data
 * checked against its checksum. */
typedef struct gan_checkpoint {
    gan_safetensors st;
    int version;
} gan_checkpoint;

/* Refuses a file that is not a checkpoint (an export is not one), of an unknown version, or whose
 * tensor data does not match its checksum (a damaged file), each with a message naming the file.
 * A version 1 file (no checksum) opens with a one-line warning on stderr. */
gan_status gan_checkpoint_open(const char *path, gan_checkpoint *ck);
void gan_checkpoint_close(gan_checkpoint *ck);
/* The stored config, loaded over the defaults, named as it was when saved. */
gan_status gan_checkpoint_config(const gan_checkpoint *ck, gan_config *cfg);
/* Reads each counter's value (`is_signed` and `key` set by the caller); an absent or non-integer
 * value is refused naming the file and the key. */
gan_status gan_checkpoint_read_counters(const gan_checkpoint *ck, gan_checkpoint_counter *counters,
                                        int count);
/* Checks every tensor of every model against the file (name, dtype, shape; nothing more in the
 * file than these models) and only then uploads them all: a file of another model is refused
 * naming the first tensor that differs, and leaves the models as they were. */
gan_status gan_checkpoint_load_models(const gan_checkpoint *ck, const gan_checkpoint_model *models,
                                      int model_count);

/* The metadata text `key` (see gan_checkpoint_text), or NULL; owned by ck. */
const char *gan_checkpoint_text_of(const gan_checkpoint *ck, const char *key);

/* open + config + close: the config a checkpoint was written with (to build what loads it). */
gan_status gan_checkpoint_read_config(const char *path, gan_config *cfg);

/* Exports `model` (parameters and buffers, no Adam state) with PyTorch's names under `prefix`;
 * `model_name` goes into the metadata. */
gan_status gan_model_export_safetensors(gan_model *model, const char *prefix, const char *model_name,
                                        const char *path);

#ifdef __cplusplus
}
#endif
#endif
