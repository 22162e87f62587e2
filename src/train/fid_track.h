/* FID during training (private to src/train; run.c drives it): every log.fid_every iterations and
 * at the end, log.fid_samples images of G (and of the EMA of G when train.ema_decay > 0) go
 * through the FID Inception (src/eval) and their statistics are compared with data.fid_stats.
 * The best value so far is what checkpoints/best_fid.safetensors holds (its metadata, below);
 * a resumed run reads it back from that file, so a worse FID after a resume never replaces it.
 *
 * The images: fixed noise, latent vector i from Philox element i * nz of (train.seed,
 * GAN_SAMPLE_NOISE_STREAM), exactly gan sample's (so `gan sample CKPT --n N [--ema] --npy F`
 * followed by `gan fid F STATS` gives the value logged at that checkpoint's iteration); G in eval
 * mode (running batch norm statistics); the float samples go to the network as they are, never
 * rounded to 8 bits.
 *
 * Memory, held for the whole run and taken at start-up (so a run that cannot have it fails
 * before training): the network (87 MB of weights and about 14 MB of activations per image of
 * its batch, min(log.fid_samples, 50), on the run's backend), the noise of one batch on the
 * backend, and on the host the reference statistics with their eigendecomposition (64 MB), one
 * batch of images and the features of every sample (8 KB each: 80 MB for 10,000).
 *
 * Metadata of best_fid.safetensors (a full checkpoint otherwise, written as the others are):
 *   best_fid            the FID that ranks (%.9g)
 *   best_fid_iteration  the iteration it was measured at
 *   best_fid_generator  "G_ema" with train.ema_decay > 0 (the EMA of G ranks), else "G"
 *   fid_of_G            with EMA: G's own FID at that iteration
 *   fid_samples, fid_stats  what it was measured with: a resumed run with other ones starts the
 *                       best afresh (its values are not comparable), saying so. */
#ifndef GAN_TRAIN_FID_TRACK_H
#define GAN_TRAIN_FID_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gan/checkpoint.h"
#include "gan/fid.h"
#include "gan/inception.h"
#include "gan/train.h"

/* The FID batch: pytorch-fid's default, fewer when fewer samples are asked. */
enum { FID_TRACK_MAX_BATCH = 50, FID_TRACK_TEXTS = 6 };

/* One evaluation's results. */
typedef struct fid_track_result {
    int64_t iteration;
    double fid;          /* of G */
    double fid_ema;      /* of the EMA of G; only with has_ema */
    bool has_ema;
    bool eps_added;      /* a product of covariances was singular (pytorch-fid's offset added) */
    bool improved;       /* the ranking value beat the best so far: best_fid.safetensors is due */
    double seconds;      /* generation, network and distance */
} fid_track_result;

typedef struct fid_track {
    bool enabled;        /* log.fid_every > 0 and this process evaluates */
    bool ready;          /* started: the network and buffers are there */
    const gan_config *cfg;
    gan_backend *backend; /* the training backend: G and the noise */
    /* Inception's: the training backend in fp32; in tf32 and bf16 one of its own, of the same kind
     * on the same device, in fp32 (fid_track_start), owned and closed here */
    gan_backend *inception_backend;
    bool owns_inception_backend;
    gan_inception *net;
    int batch;
    gan_fid_stats reference;
    gan_fid_prepared prepared; /* its eigendecomposition, made once (gan_fid_prepare) */
    char weights_path[4096];
    char weights_key[32]; /* where the path came from: log.fid_weights or $GAN_FID_WEIGHTS */
    float *z;            /* backend [batch, nz] */
    float *images;       /* host [batch, C, H, W] */
    float *features;     /* host [fid_samples, 2048] */
    char best_path[4300]; /* checkpoints/best_fid.safetensors */
    bool has_best;
    double best;
    int64_t best_iteration;
    double best_fid_of_g; /* G's FID at the best iteration (with EMA) */
    bool eps_reported;
    /* metadata texts of the best checkpoint (fid_track_texts) */
    char text_values[FID_TRACK_TEXTS][GAN_CONFIG_TEXT];
} fid_track;

/* Start-up, in two parts. Open, before the run directory is taken: when log.fid_every > 0 and
 * `evaluates` (the only process, or rank 0 of several), checks the config, that data.fid_stats and
 * the weights (log.fid_weights, else $GAN_FID_WEIGHTS) can be read, and reads the statistics;
 * otherwise leaves `f` disabled. Start, once the backend is open: the network (a weights file of
 * another network is refused here), the buffers, and with `resume` the best so far from
 * best_fid.safetensors in `checkpoints_dir` when there is one; `report` (may be NULL) gets what was
 * set up. Each failure is one message naming the file and its config key. */
gan_status fid_track_open(fid_track *f, const gan_config *cfg, bool evaluates);
gan_status fid_track_start(fid_track *f, gan_backend *backend, const char *checkpoints_dir, bool resume,
                           FILE *report);
void fid_track_close(fid_track *f);

/* Called after each batch of an evaluation (a long one on the CPU: minutes for 10,000 samples). */
typedef void (*fid_track_progress)(void *ctx, const char *generator, int done, int total);

/* The FID of `t`'s G (and EMA of G) now; updates the best when the ranking value beats it.
 * `progress` may be NULL. */
gan_status fid_track_evaluate(fid_track *f, gan_trainer *t, fid_track_progress progress, void *ctx,
                              fid_track_result *out);

/* The best checkpoint's metadata texts (into texts[FID_TRACK_TEXTS]); returns how many. */
int fid_track_texts(fid_track *f, gan_checkpoint_text *texts);

#endif
