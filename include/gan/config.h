/* Run configuration: INI files with sections [model], [data], [train], [log] (see configs/ and
 * docs/DESIGN.md), read with inih. Every key has a default, a type and a meaning in one table
 * (src/config.c), which `gan train --help` prints; any key can be overridden on the command line
 * as `section.key=value`. Unknown keys and bad values are refused, naming the key. */
#ifndef GAN_CONFIG_H
#define GAN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gan/error.h"
#include "gan/precision.h"
#include "gan/weight_init.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GAN_CONFIG_TEXT = 4096, GAN_CONFIG_NAME = 256 };

typedef enum gan_noise_kind { GAN_NOISE_NORMAL, GAN_NOISE_UNIFORM } gan_noise_kind;
typedef enum gan_g_loss { GAN_G_LOSS_NONSATURATING, GAN_G_LOSS_MINIMAX } gan_g_loss;
typedef enum gan_d_loss { GAN_D_LOSS_SUM, GAN_D_LOSS_MEAN } gan_d_loss;
typedef enum gan_sample_bn { GAN_SAMPLE_BN_EVAL, GAN_SAMPLE_BN_BATCH } gan_sample_bn;

typedef struct gan_adam_config {
    double lr, beta1, beta2, eps;
} gan_adam_config;

typedef struct gan_config {
    char name[GAN_CONFIG_NAME];      /* the config file's base name without .ini */
    /* [model] */
    int nz;
    gan_noise_kind noise;
    char generator[GAN_CONFIG_TEXT];
    char discriminator[GAN_CONFIG_TEXT];
    char export_prefix[64];
    gan_weight_init init;
    /* [data] */
    char data_path[GAN_CONFIG_TEXT];
    char data_format[32];            /* auto | folder | idx | cifar | npy | toy */
    char data_split[32];             /* all | train | valid | test */
    char data_split_file[GAN_CONFIG_TEXT];
    int image_size, channels;
    double max_bad_fraction;
    char fid_stats[GAN_CONFIG_TEXT]; /* FID reference statistics (.npz, gan fid --save-stats) */
    /* [train] */
    int64_t iterations;              /* 0: use epochs */
    int epochs;
    int batch_size;
    uint64_t seed;
    gan_adam_config adam_g, adam_d;
    int d_steps;                     /* k: D steps per G step */
    gan_g_loss g_loss;
    gan_d_loss d_loss;
    double label_smoothing;          /* real target = 1 - label_smoothing (one-sided) */
    gan_precision precision;         /* GEMM and convolution arithmetic (the backend's options) */
    bool deterministic;              /* only algorithms that repeat bit for bit */
    bool graph;                      /* capture the iteration as a graph where the backend can */
    bool sync_bn;                    /* several ranks: batch norm statistics over the global batch */
    double ema_decay;                /* EMA of G's weights; 0: none */
    /* [log] */
    int64_t log_every;
    int64_t sample_every;
    int64_t checkpoint_every;
    int keep_checkpoints;
    gan_sample_bn sample_bn;
    int64_t fid_every;               /* FID of G (and EMA-G) every N iterations; 0: never */
    int fid_samples;                 /* generated images per FID */
    char fid_weights[GAN_CONFIG_TEXT]; /* the FID Inception weights (empty: $GAN_FID_WEIGHTS) */
} gan_config;

void gan_config_defaults(gan_config *cfg);
/* Reads `path` over the defaults. Errors name the file, the line and the key. Refused: a key
 * given twice in a section (adjacent or not; both lines named), an indented continuation line
 * of a key that takes one value, a NUL byte, a line longer than inih's 200-byte buffer. Indented
 * lines continue the value of a layer sequence or path above them (appended with a space). */
gan_status gan_config_load(gan_config *cfg, const char *path);
/* Reads INI text (for tests and embedded configs); `origin` names it in messages. */
gan_status gan_config_load_string(gan_config *cfg, const char *text, const char *origin);
/* The same for `bytes` bytes of text, which may hold a NUL (refused, naming its line). */
gan_status gan_config_load_text(gan_config *cfg, const char *text, size_t bytes, const char *origin);
/* Applies one `section.key=value` override. */
gan_status gan_config_override(gan_config *cfg, const char *assignment);
/* Checks values that depend on each other (e.g. some knob combinations). */
gan_status gan_config_validate(const gan_config *cfg);
/* Refuses, naming the key and why, a value that would not read back unchanged from the INI text
 * gan_config_write makes (a line break, surrounding spaces, " ;" read as a comment, a stretch
 * without spaces longer than the reader's line): gan train stores the config so in config.ini and
 * every checkpoint, and --resume, gan sample and gan export read it back. gan train calls it
 * before it makes the run directory; readers of stored configs need not. */
gan_status gan_config_check_storable(const gan_config *cfg);
/* Writes the fully resolved config as INI (every key, with its meaning as a comment). */
gan_status gan_config_write(const gan_config *cfg, FILE *out);
/* The key table for `gan train --help`: key, default, meaning. */
void gan_config_print_help(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
