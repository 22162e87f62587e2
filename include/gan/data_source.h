/* What the trainer reads its real batches from: a data source, its position (saved in checkpoints
 * so that a resumed run continues an epoch exactly), and the sources a config can name. The
 * readers, transforms and the loader behind them are in gan/data.h. */
#ifndef GAN_DATA_SOURCE_H
#define GAN_DATA_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a data source is: enough to continue an epoch exactly after a resume. */
typedef struct gan_data_position {
    uint64_t seed;
    int64_t epoch;
    int64_t index; /* samples of this epoch already handed out */
} gan_data_position;

/* Real batches for the trainer. A source hands out uint8 NHWC images ([B, H, W, C]) or, for
 * non-image data (the 2-d toy set), float NCHW values ([B, C, H, W]), in host memory. */
typedef struct gan_data_source gan_data_source;
struct gan_data_source {
    void *impl;
    int height, width, channels;
    bool is_float;
    int64_t samples;             /* per epoch */
    int64_t batches_per_epoch;   /* full batches (a last partial batch is dropped) */
    /* Fills `host_batch` with the next batch; crosses into the next epoch when one ends. */
    gan_status (*next_batch)(gan_data_source *src, void *host_batch);
    gan_status (*get_position)(gan_data_source *src, gan_data_position *pos);
    gan_status (*set_position)(gan_data_source *src, const gan_data_position *pos);
    void (*close)(gan_data_source *src);
};

/* The data source a config names (data.format, data.path, data.split, data.split_file,
 * data.image_size, data.channels, data.max_bad_fraction; train.batch_size and train.seed): the
 * loader over the data set (gan/data.h), or the toy set for data.format = toy. */
gan_status gan_data_source_open_for_config(const gan_config *cfg, gan_data_source **out);
/* The same source as rank `part` of `parts` of a data-parallel run sees it: next_batch hands out
 * that rank's train.batch_size / parts samples of each global batch (rows part * b .. of the batch
 * one process would get); positions, epochs and batches_per_epoch are the global batch's, so a
 * checkpoint's position means the same on any number of ranks. parts must divide the batch. */
gan_status gan_data_source_open_part(const gan_config *cfg, int part, int parts, gan_data_source **out);

/* The built-in 2-d toy set: 8 Gaussians (std `std`) on a ring of radius `radius`, float samples
 * [B, 2, 1, 1], sample i of epoch e drawn from Philox (seed, stream = e, i) (src/data/toy.c). */
gan_status gan_toy_ring_source_open(int batch, uint64_t seed, double radius, double std,
                                    int64_t samples_per_epoch, gan_data_source **out);
/* The toy set's part `part` of `parts` of each batch (see gan_data_source_open_part). */
gan_status gan_toy_ring_source_open_part(int batch, int part, int parts, uint64_t seed, double radius,
                                         double std, int64_t samples_per_epoch, gan_data_source **out);
/* Mode centre m of the ring (m = 0..7). */
void gan_toy_ring_mode(int m, double radius, double *x, double *y);

#ifdef __cplusplus
}
#endif
#endif
