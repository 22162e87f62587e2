/* A training run as `gan train` performs it: the run directory (owned by one process through a
 * lock), the log, metrics.jsonl, sample grids, checkpoints (verified, pruned), resume (from the
 * newest checkpoint that verifies), SIGINT/SIGTERM/SIGHUP and the non-finite stop. */
#ifndef GAN_RUN_H
#define GAN_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gan_run_options {
    const char *out_dir;     /* the run directory */
    const char *device;      /* auto | cpu | cuda */
    bool resume;             /* continue from the newest checkpoint in out_dir */
    bool quiet;              /* no start-up report */
    /* The process group (mpirun -np N, gan/dist.h), NULL for one process. Every rank trains its
     * part of each batch; rank 0 alone takes the run directory's lock and writes the log,
     * metrics.jsonl, TensorBoard events, samples and checkpoints; a resume loads rank 0's choice
     * of checkpoint on every rank (so the run directory must be on a file system every machine
     * reads). Failures at start-up are agreed on (gan_dist_agree); SIGUSR1 too stops the run with
     * a checkpoint (mpirun forwards it to every rank). */
    const gan_dist *dist;
} gan_run_options;

typedef enum gan_run_result {
    GAN_RUN_FINISHED,
    GAN_RUN_INTERRUPTED /* a signal arrived: the step finished and a checkpoint was written */
} gan_run_result;

gan_status gan_run_train(const gan_config *cfg, const gan_run_options *options,
                         gan_run_result *result);

/* The newest checkpoint in DIR/checkpoints that verifies (named ckpt_<iteration>.safetensors as gan
 * writes them, its checksum and iteration right); nothing is moved or written. */
gan_status gan_run_latest_checkpoint(const char *run_dir, char *path, size_t path_bytes);
/* GAN_OK when no gan train holds the run directory, else the error naming the holder (the lock is
 * taken for real by gan_run_train; this only lets --resume say so before it reads anything). */
gan_status gan_run_check_available(const char *run_dir);

#ifdef __cplusplus
}
#endif
#endif
