/* The trainer: one GAN training run as docs/DESIGN.md's iteration (section 7) describes it, step
 * for step as the PyTorch DCGAN tutorial does it:
 *   for each of k D steps: D on a real batch (BCE against the real label), z -> G -> fake, D on
 *   the fake (no gradient into G, BCE against 0), D's Adam step;
 *   then D on the last fake with the updated D (BCE against 1: non-saturating; or the minimax
 *   loss), gradient through D into G (D's weight gradients skipped), G's Adam step.
 * With k = 1 the G step reuses the fake of the D step, as the tutorial does. */
#ifndef GAN_TRAIN_H
#define GAN_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gan/backend.h"
#include "gan/checkpoint.h"
#include "gan/config.h"
#include "gan/data_source.h"
#include "gan/nn.h"
#include "gan/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Losses and D outputs of one iteration (host copies, read at the log interval). */
typedef struct gan_step_stats {
    float loss_d, loss_g;
    float d_x;        /* mean D(x) on the real batch */
    float d_g_z1;     /* mean D(G(z)) before D's step */
    float d_g_z2;     /* mean D(G(z)) after D's step */
} gan_step_stats;

/* The counts a step advances on the backend (gan_trainer.counts), read by the ops through
 * gan_count: Adam's update numbers, the noise stream's position and the dropout positions, the
 * last three in Philox elements. */
enum {
    GAN_COUNT_ADAM_G,
    GAN_COUNT_ADAM_D,
    GAN_COUNT_NOISE,
    GAN_COUNT_DROPOUT_G,
    GAN_COUNT_DROPOUT_D,
    GAN_COUNT_TOTAL
};

typedef struct gan_trainer {
    gan_config cfg;
    gan_backend *backend;
    gan_pool pool;
    gan_model *g, *d;
    gan_model *g_sampler;          /* G at batch `sample_batch`, sharing G's weights */
    int sample_batch;
    gan_data_source *data;         /* not owned */

    /* A data-parallel run (docs/DESIGN.md "Data parallel"), from the backend's process group: this
     * rank trains samples rank * batch .. (rank + 1) * batch - 1 of each global batch of
     * train.batch_size = world_size * batch. One process: world_size 1, rank 0, batch =
     * train.batch_size and data_parallel false (no collective call at all). */
    bool data_parallel;
    int world_size, rank;
    int batch;                     /* samples on this rank per D step */

    /* backend memory */
    float *z;                      /* [b, nz] (b = batch: this rank's part) */
    float *real;                   /* [b, C, H, W] */
    void *real_uploads;            /* [d_steps][b, H, W, C] uint8 or [b, C, H, W] float, as
                                      uploaded: one slot per D step of an iteration */
    size_t upload_slot_bytes;
    float *dlogits;                /* [b] */
    float *step_values;            /* [8] loss_real, d_x, loss_fake, d_g_z1, loss_g, d_g_z2 */
    float *fixed_z;                /* [sample_batch, nz] the sample grid's noise */
    /* The exponential moving average of G's weights (train.ema_decay > 0; NULL without):
     * [G trainable_count], laid out as g->weights, starting as G's initial weights and updated by
     * one ema_update after every G step, inside the iteration (a captured graph replays it).
     * EMA-G is G with these weights and G's own batch norm running statistics. */
    float *ema_weights;
    bool ema_started_from_g;       /* the last load found no EMA in its checkpoint: G's weights
                                      were taken as the average's start (train.ema_decay turned on
                                      at a resume) */
    float *sample_z;               /* [sample_batch, nz] the sampler's input */
    float *buffer_backup;          /* [G buffer_count] running stats kept while sampling */
    float *ones;                   /* [1] the constant 1, for accumulating with gemm */
    float *value_sums;             /* [8] running sums of step_values: non-finite if any was */
    uint64_t *counts;              /* [GAN_COUNT_TOTAL] */
    void *host_batch;              /* host staging for the data source */

    /* The same counts on the host (they go into checkpoints; the backend's are set from them at
     * load), and the rest of the position: all of it goes into checkpoints. */
    int64_t iteration;             /* G steps done */
    int64_t adam_step_g, adam_step_d;
    uint64_t noise_offset;         /* Philox elements of the noise stream used so far */
    uint64_t dropout_offset_g, dropout_offset_d; /* Philox elements of the dropout streams */
    uint64_t noise_seed, init_seed_g, init_seed_d;

    /* What one iteration adds to the counts (the same every iteration: recorded by the first). */
    uint64_t iteration_advance[GAN_COUNT_TOTAL];

    /* The iteration as a graph, where the backend has them (train.graph): captured at the second
     * step, replayed from then on; the batch upload stays outside. */
    bool use_graph;
    gan_graph *graph;
    int64_t eager_steps;           /* steps run op by op so far */
    int64_t *bn_delta;             /* [bn_count of G, then of D]: what one iteration adds to each
                                      batch norm's num_batches_tracked, which a replay must add */
    int bn_count_g, bn_count_d;
} gan_trainer;

/* Builds G and D from the config, plans and allocates all memory (one pool), initialises the
 * weights from the seed. `data` may be NULL for tools that only sample; in a data-parallel run (the
 * backend opened with an active process group) it hands out this rank's part of each global batch
 * (gan_data_source_open_part). `log` gets the start-up report (models, memory); NULL for silence. */
gan_status gan_trainer_create(const gan_config *cfg, gan_backend *backend, gan_data_source *data,
                              FILE *log, gan_trainer **out);
void gan_trainer_destroy(gan_trainer *trainer);
/* A data-parallel run on `ranks` ranks: train.batch_size is the global batch, which each rank
 * takes 1 / ranks of; refused (GAN_ERR_CONFIG, saying so) unless ranks divides it. */
gan_status gan_train_check_batch(const gan_config *cfg, int ranks);

/* One G step with its k D steps. The stats are left in backend memory: read them with
 * gan_trainer_read_stats (a host synchronisation) at the log interval. Made of the three parts
 * below; where the backend has graphs, the second is captured once and replayed. */
gan_status gan_trainer_step(gan_trainer *trainer);
/* 1. The k real batches from the data source, uploaded into their slots (host work). */
gan_status gan_trainer_upload_batches(gan_trainer *trainer);
/* 2. Everything else, on the backend: the region a graph captures. Every call it makes has the
 * same arguments every iteration (tests/test_graph_replay.c checks): what changes from step to
 * step is read on the backend (the counts) or lies in the fixed buffers. */
gan_status gan_trainer_run_iteration(gan_trainer *trainer);
/* 3. The host's copies of the counts advanced by what the iteration added. */
void gan_trainer_finish_iteration(gan_trainer *trainer);
/* Downloads the last step's stats; `all_finite` is false when any step since the previous call
 * produced a non-finite loss or D output. */
gan_status gan_trainer_read_stats(gan_trainer *trainer, gan_step_stats *stats, bool *all_finite);

/* One training step with the real batch and noise given (backend memory), for parity tests
 * against recorded PyTorch steps: real [B, C, H, W] in [-1, 1], z [B, nz]. k must be 1. */
gan_status gan_trainer_step_with(gan_trainer *trainer, const float *real, const float *z);

/* Generates images from `z` (backend memory [n, nz]) into `images` (host, [n, C, H, W]) with G in
 * eval mode (running BN statistics) or, with `batch_stats`, in training mode without updating
 * anything (the tutorial's grids). */
gan_status gan_trainer_generate(gan_trainer *trainer, const float *z, int n, bool batch_stats,
                                float *images);
/* The same from the EMA of G (its averaged weights, G's running statistics, eval mode), G left
 * as it was; refused (GAN_ERR_ARG) when the trainer keeps no EMA. */
gan_status gan_trainer_generate_ema(gan_trainer *trainer, const float *z, int n, float *images);

/* Checkpoints (src/train/checkpoint.c; the file layout is gan/checkpoint.h's): G and D with
 * their Adam state, and every counter a run needs to continue bit for bit on the CPU (iteration,
 * Adam steps, noise and dropout offsets) with `data`'s position and `epoch`, and the EMA of G
 * where the trainer keeps one (version 3: "G_ema.<name>"). Load refuses a file that is not a
 * checkpoint, of another version, or of another model (every tensor's name and shape must match),
 * restores the data position when `data` is given, and changes the trainer only once everything
 * has been checked. A file without EMA loaded into a trainer with one starts the average from the
 * loaded G (ema_started_from_g); a file with EMA loaded into a trainer without one is refused
 * (the averages would be dropped). */
gan_status gan_trainer_save_checkpoint(gan_trainer *trainer, gan_data_source *data, int64_t epoch,
                                       const char *path);
gan_status gan_trainer_load_checkpoint(gan_trainer *trainer, gan_data_source *data,
                                       const char *path, int64_t *epoch);
/* The same with metadata texts of the caller's (the FID a run tracks: gan/checkpoint.h). */
gan_status gan_trainer_save_checkpoint_texts(gan_trainer *trainer, gan_data_source *data, int64_t epoch,
                                             const char *path, const gan_checkpoint_text *texts, int text_count);
/* The generator with PyTorch's names under model.export_prefix (gan export). */
gan_status gan_trainer_export_generator(gan_trainer *trainer, const char *path);
/* G's weights replaced by their EMA (gan sample --ema, gan export --ema): G becomes EMA-G, its
 * batch norm statistics its own. Refused (GAN_ERR_ARG) when the trainer keeps no EMA. */
gan_status gan_trainer_use_ema(gan_trainer *trainer);

/* The Philox stream of gan sample's noise (its seed train.seed unless --seed gives one). FID during
 * training draws its fixed noise from this stream and seed too, latent vector i from element
 * i * nz: `gan sample CKPT --n N` makes the first N images an evaluation embeds. */
enum { GAN_SAMPLE_NOISE_STREAM = 7 };

/* Draws n latent vectors of the config's distribution into backend memory `z` [n, nz], from
 * Philox element `first` of (seed, stream). */
gan_status gan_trainer_draw_noise(gan_trainer *trainer, float *z, int n, uint64_t seed,
                                  uint64_t stream, gan_count first);
/* CRC-32C of G's and D's weights, buffers and Adam moments, downloaded: equal on the ranks of a
 * data-parallel run exactly when their states are the same bits. */
gan_status gan_trainer_state_crc32c(gan_trainer *trainer, uint32_t *crc);
/* Sets the backend's counts from the host's (after a checkpoint changed them). */
gan_status gan_trainer_upload_counts(gan_trainer *trainer);
/* The captured iteration in a few words (the backend's graph_describe: its nodes by kind), or an
 * empty string where none is captured (yet) or the backend cannot say. */
void gan_trainer_describe_graph(gan_trainer *trainer, char *out, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
