/* The run directory's files (private to src/train): its lock, the directories, the checkpoint
 * file names (listed, the newest that verifies, pruned), stale temporary files, metrics.jsonl on
 * resume, the resolved config. run.c drives the run through these. */
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

/* mkdir -p of root; of root, samples and checkpoints. */
gan_status run_dir_create_root(const run_paths *paths);
gan_status run_dir_create(const run_paths *paths);

/* checkpoints/ckpt_<iteration, 10 digits>.safetensors */
void run_dir_checkpoint_path(const run_paths *paths, int64_t iteration, char *path, size_t bytes);

/* Whether the checkpoints folder holds at least one checkpoint file (by name). */
bool run_dir_has_checkpoints(const run_paths *paths);

/* The newest checkpoint that verifies (it opens, its checksum matches, its iteration is its
 * name's) into `path`. Newer ones that do not are reported on stderr with the reason and, with
 * `move_damaged` (the run holds the lock), renamed to <name>.corrupt so that the resumed run can
 * write its own file of that iteration. */
gan_status run_dir_select_checkpoint(const run_paths *paths, bool move_damaged, char *path, size_t bytes);

/* Deletes all but the newest `keep` checkpoints of iterations up to `current` (a file named past
 * the run's own iteration is not the run's: it is left alone). */
void run_dir_prune_checkpoints(const run_paths *paths, int64_t current, int keep);

/* The run directory is owned by one process: an advisory lock (flock) on root/lock, which holds
 * the owner's pid and host. Taken before anything else is written; a second gan train (or a
 * resume) refuses at once, naming the holder. *fd keeps the lock until run_dir_unlock. */
gan_status run_dir_lock(const run_paths *paths, int *fd);
void run_dir_unlock(int fd);

/* Removes what a killed run left half-written: checkpoints/ *.safetensors.tmp, samples/ *.tmp,
 * config.ini.tmp, conv_algorithms.txt.tmp (only ever called by the lock's holder). */
void run_dir_remove_stale_temporaries(const run_paths *paths);

/* metrics.jsonl without the lines of iterations after `iteration` (the ones a resumed run makes
 * again) nor a last line cut short, rewritten through a temporary file. */
gan_status run_dir_truncate_metrics(const run_paths *paths, int64_t iteration);

/* root/config.ini: the resolved config (every key), written through a temporary file. */
gan_status run_dir_write_config(const run_paths *paths, const gan_config *cfg);

#endif
