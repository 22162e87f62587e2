/* Checkpoints and exports, as safetensors files.
 *
 * A checkpoint holds everything a run needs to continue bit for bit on the CPU: G and D
 * (parameters, BN running statistics, num_batches_tracked), both Adam states and step counts,
 * the iteration, the noise generator's position, the dropout offsets and the data position,
 * plus the resolved config (metadata "config") so `gan sample` and `gan export` need nothing
 * else. Tensors: "G.<i>.weight", ..., "G.<i>.num_batches_tracked" (I64 scalar), "G.adam.m",
 * "G.adam.v" (flat, in the order of the model's trainable parameters), the same for "D."; the
 * counters are metadata strings (safetensors metadata is str -> str). Written to a temporary
 * name, fsynced, renamed: a crash never leaves a half-written checkpoint.
 *
 * An export holds the generator alone with PyTorch's module names ("main.0.weight",
 * "main.1.running_mean", "main.1.num_batches_tracked" as I64, ...), loadable by
 * load_state_dict(strict=True). */
#ifndef GAN_CHECKPOINT_H
#define GAN_CHECKPOINT_H

#include "gan/error.h"
#include "gan/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GAN_CHECKPOINT_FORMAT "gan-checkpoint"
#define GAN_CHECKPOINT_VERSION "1"

gan_status gan_checkpoint_save(gan_trainer *trainer, gan_data_source *data, int64_t epoch,
                               const char *path);
/* Reads the resolved config stored in a checkpoint (to build the trainer that loads it). */
gan_status gan_checkpoint_read_config(const char *path, gan_config *cfg);
/* Loads a checkpoint into a trainer built from that config; restores the data position when
 * `data` is given. Refuses a file that is not a checkpoint, of another version, or of another
 * model (every tensor's name and shape must match). */
gan_status gan_checkpoint_load(gan_trainer *trainer, gan_data_source *data, const char *path,
                               int64_t *epoch);

/* The generator with PyTorch's names under `prefix` (model.export_prefix). */
gan_status gan_export_generator_safetensors(gan_trainer *trainer, const char *prefix,
                                            const char *path);

#ifdef __cplusplus
}
#endif
#endif
