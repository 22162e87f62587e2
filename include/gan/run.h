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
    bool fast_math;          /* CUDA: allow TF32 and any algorithm (default: parity math) */
} gan_run_options;

typedef enum gan_run_result {
    GAN_RUN_FINISHED,
    GAN_RUN_INTERRUPTED /* a signal arrived: the step finished and a checkpoint was written */
} gan_run_result;

gan_status gan_run_train(const gan_config *cfg, const gan_run_options *options,
                         gan_run_result *result);

/* Opens the data source a config names (data.format, data.path); the toy set for "toy". */
gan_status gan_data_source_open_for_config(const gan_config *cfg, gan_data_source **out);

/* The newest checkpoint file in DIR/checkpoints (by iteration number in its name). */
gan_status gan_run_latest_checkpoint(const char *run_dir, char *path, size_t path_bytes);

/* Writes a sample grid like torchvision's save_image(make_grid(x, nrow, padding=2,
 * normalize=True)): images [n, C, H, W] scaled by the min and max of all of them. */
gan_status gan_write_sample_grid(const char *path, const float *images, int n, int channels,
                                 int height, int width, int nrow, int padding);
/* The same grid as PNG bytes in memory (always RGB, as the file): *png is malloc'ed [*png_size],
 * the picture *grid_w x *grid_h. */
gan_status gan_sample_grid_png(const float *images, int n, int channels, int height, int width,
                               int nrow, int padding, uint8_t **png, size_t *png_size, int *grid_w,
                               int *grid_h);

#ifdef __cplusplus
}
#endif
#endif
