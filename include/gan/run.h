/* A training run as `gan train` performs it: the run directory, the log, metrics.jsonl, sample
 * grids, checkpoints, resume, SIGINT/SIGTERM and the non-finite stop. */
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
} gan_run_options;

typedef enum gan_run_result {
    GAN_RUN_FINISHED,
    GAN_RUN_INTERRUPTED /* a signal arrived: the step finished and a checkpoint was written */
} gan_run_result;

gan_status gan_run_train(const gan_config *cfg, const gan_run_options *options,
                         gan_run_result *result);

/* The newest checkpoint file in DIR/checkpoints (by iteration number in its name). */
gan_status gan_run_latest_checkpoint(const char *run_dir, char *path, size_t path_bytes);

#ifdef __cplusplus
}
#endif
#endif
