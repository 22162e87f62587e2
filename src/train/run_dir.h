/* The run directory's files (private to src/train): the directories, the checkpoint file names
 * (listed, the newest, pruned), the resolved config. run.c drives the run through these. */
#ifndef GAN_TRAIN_RUN_DIR_H
#define GAN_TRAIN_RUN_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/error.h"

/* Paths under a run directory. */
typedef struct run_paths {
    char root[4096];
    char checkpoints[4200]; /* root/checkpoints */
    char samples[4200];     /* root/samples */
} run_paths;

void run_paths_init(run_paths *paths, const char *root);

/* mkdir -p of root, samples and checkpoints. */
gan_status run_dir_create(const run_paths *paths);

/* checkpoints/ckpt_<iteration, 10 digits>.safetensors */
void run_dir_checkpoint_path(const run_paths *paths, int64_t iteration, char *path, size_t bytes);

/* Whether the checkpoints folder holds at least one checkpoint file. */
bool run_dir_has_checkpoints(const run_paths *paths);

/* Deletes all but the newest `keep` checkpoints. */
void run_dir_prune_checkpoints(const run_paths *paths, int keep);

/* root/config.ini: the resolved config (every key), written through a temporary file. */
gan_status run_dir_write_config(const run_paths *paths, const gan_config *cfg);

#endif
