/* FID during training: see fid_track.h. */
#include "train/fid_track.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/backend_select.h"
#include "gan/clock.h"

#define BEST_NAME "best_fid.safetensors"

static const char *ranking_generator(const gan_config *cfg) { return cfg->ema_decay > 0.0 ? "G_ema" : "G"; }

/* A file the run needs, checked before anything reads it: a clear "no such file" with the key. */
static gan_status check_readable(const char *key, const char *path)
{
    if (access(path, R_OK) == 0)
        return GAN_OK;
    return gan_error(GAN_ERR_IO, "%s = %s: %s", key, path, strerror(errno));
}

/* The best so far from a resumed run's best_fid.safetensors; nothing when there is none, or when
 * it was measured otherwise (then the first evaluation replaces it). */
static gan_status read_best(fid_track *f)
{
    if (access(f->best_path, F_OK) != 0)
        return GAN_OK;
    gan_checkpoint ck;
    gan_status status = gan_checkpoint_open(f->best_path, &ck);
    if (status != GAN_OK)
        return gan_error_prefix(status, "the run's best-FID checkpoint does not read back (move it away and the "
                                        "next evaluation writes a new one): ");
    const char *value = gan_checkpoint_text_of(&ck, "best_fid");
    const char *iteration = gan_checkpoint_text_of(&ck, "best_fid_iteration");
    const char *generator = gan_checkpoint_text_of(&ck, "best_fid_generator");
    const char *samples = gan_checkpoint_text_of(&ck, "fid_samples");
    const char *stats = gan_checkpoint_text_of(&ck, "fid_stats");
    const char *of_g = gan_checkpoint_text_of(&ck, "fid_of_G");
    char *end_value = NULL, *end_iteration = NULL;
    double best = value ? strtod(value, &end_value) : NAN;
    long long best_iteration = iteration ? strtoll(iteration, &end_iteration, 10) : -1;
    if (!value || *end_value || !isfinite(best) || !iteration || *end_iteration || best_iteration < 0 ||
        !generator || !samples || !stats) {
        status = gan_error(GAN_ERR_FORMAT, "%s: not a best-FID checkpoint of gan train (its metadata lacks a valid "
                                           "best_fid, best_fid_iteration, best_fid_generator, fid_samples or "
                                           "fid_stats); move it away and the next evaluation writes a new one",
                           f->best_path);
    } else if (strcmp(generator, ranking_generator(f->cfg)) || atoi(samples) != f->cfg->fid_samples ||
               strcmp(stats, f->cfg->fid_stats)) {
        fprintf(stderr, "gan: note: %s ranks %s's FID over %s samples against %s; this run ranks %s's over %d "
                        "against %s: not comparable, so its first evaluation replaces it\n",
                f->best_path, generator, samples, stats, ranking_generator(f->cfg), f->cfg->fid_samples,
                f->cfg->fid_stats);
    } else {
        f->has_best = true;
        f->best = best;
        f->best_iteration = best_iteration;
        f->best_fid_of_g = of_g ? strtod(of_g, NULL) : NAN;
    }
    gan_checkpoint_close(&ck);
    return status;
}

gan_status fid_track_open(fid_track *f, const gan_config *cfg, bool evaluates)
{
    memset(f, 0, sizeof *f);
    f->cfg = cfg;
    if (!cfg->fid_every || !evaluates)
        return GAN_OK;
    if (!cfg->fid_stats[0])
        return gan_error(GAN_ERR_CONFIG,
                         "log.fid_every = %lld needs data.fid_stats: the FID statistics of the training images, "
                         "made once with gan fid --save-stats DATA -o STATS.npz",
                         (long long)cfg->fid_every);
    const char *weights = cfg->fid_weights[0] ? cfg->fid_weights : getenv("GAN_FID_WEIGHTS");
    if (!weights || !weights[0])
        return gan_error(GAN_ERR_CONFIG,
                         "log.fid_every = %lld needs the FID Inception weights: set log.fid_weights or "
                         "$GAN_FID_WEIGHTS (tools/convert_fid_weights.py makes the file; README: FID)",
                         (long long)cfg->fid_every);
    snprintf(f->weights_key, sizeof f->weights_key, "%s", cfg->fid_weights[0] ? "log.fid_weights" : "$GAN_FID_WEIGHTS");
    snprintf(f->weights_path, sizeof f->weights_path, "%s", weights);
    GAN_TRY(check_readable("data.fid_stats", cfg->fid_stats));
    GAN_TRY(check_readable(f->weights_key, weights));
    gan_status status = gan_fid_stats_read(cfg->fid_stats, GAN_INCEPTION_FEATURES, &f->reference);
    if (status != GAN_OK)
        return gan_error_prefix(status, "data.fid_stats: ");
    /* the reference's half of every distance, once */
    GAN_TRY(gan_fid_prepare(&f->reference, &f->prepared));
    f->enabled = true;
    return GAN_OK;
}

/* The backend Inception runs on. In fp32 the training backend itself. In tf32 and bf16 a second
 * backend of the same kind on the same device, opened in fp32 (deterministic), so that a logged
 * FID is pytorch-fid's FP32 figure, and the same number `gan fid` gives, whatever precision G
 * trains in: the images reach Inception through host memory either way. */
static gan_status open_inception_backend(fid_track *f, gan_backend *be)
{
    f->inception_backend = be;
    f->owns_inception_backend = false;
    if (be->options.precision == GAN_PRECISION_FP32)
        return GAN_OK;
    gan_backend_options options = gan_backend_options_default();
    options.device_index = be->options.device_index;
    gan_backend *own = NULL;
    gan_status status = gan_backend_open(be->kind == GAN_BACKEND_CUDA ? "cuda" : "cpu", &options, &own, NULL, 0);
    if (status != GAN_OK)
        return gan_error_prefix(status, "FID: a %s backend in fp32 for the Inception network (training runs in "
                                        "train.precision = %s): ",
                                be->name, gan_precision_name(be->options.precision));
    f->inception_backend = own;
    f->owns_inception_backend = true;
    return GAN_OK;
}

gan_status fid_track_start(fid_track *f, gan_backend *be, const char *checkpoints_dir, bool resume, FILE *report)
{
    if (!f->enabled)
        return GAN_OK;
    const gan_config *cfg = f->cfg;
    f->backend = be;
    snprintf(f->best_path, sizeof f->best_path, "%s/" BEST_NAME, checkpoints_dir);
    f->batch = cfg->fid_samples < FID_TRACK_MAX_BATCH ? cfg->fid_samples : FID_TRACK_MAX_BATCH;
    GAN_TRY(open_inception_backend(f, be));
    gan_status status = gan_inception_create(f->inception_backend, f->weights_path, f->batch, &f->net);
    if (status != GAN_OK)
        return gan_error_prefix(status, "%s: ", f->weights_key);
    size_t per_image = (size_t)cfg->channels * cfg->image_size * cfg->image_size;
    GAN_TRY(be->alloc(be, (size_t)f->batch * cfg->nz * sizeof(float), (void **)&f->z));
    f->images = malloc((size_t)f->batch * per_image * sizeof(float));
    f->features = malloc((size_t)cfg->fid_samples * GAN_INCEPTION_FEATURES * sizeof(float));
    if (!f->images || !f->features)
        return gan_error(GAN_ERR_NOMEM, "out of host memory for FID's %d samples (%zu MB of features)",
                         cfg->fid_samples, (size_t)cfg->fid_samples * GAN_INCEPTION_FEATURES * sizeof(float) >> 20);
    if (resume)
        GAN_TRY(read_best(f));
    f->ready = true;
    if (report) {
        fprintf(report,
                "FID: every %lld iterations and at the end, %d samples of %s (fixed noise, eval-mode batch norm, "
                "unrounded) against %s; the FID Inception on %s%s, batch %d, %.0f MB\n",
                (long long)cfg->fid_every, cfg->fid_samples, cfg->ema_decay > 0.0 ? "G and the EMA of G" : "G",
                cfg->fid_stats, f->inception_backend->name,
                f->owns_inception_backend ? " (a backend of its own in fp32)" : "", f->batch,
                (double)gan_inception_memory_bytes(f->net) / 1048576.0);
        if (cfg->fid_samples < GAN_INCEPTION_FEATURES)
            fprintf(report, "FID: log.fid_samples = %d is below the %d features: the covariance is singular, the "
                            "values are comparable only with each other (papers use 50000)\n",
                    cfg->fid_samples, GAN_INCEPTION_FEATURES);
        if (f->has_best)
            fprintf(report, "FID: best so far %.4f (%s, iteration %lld), from %s\n", f->best,
                    ranking_generator(cfg), (long long)f->best_iteration, f->best_path);
    }
    return GAN_OK;
}

void fid_track_close(fid_track *f)
{
    if (f->z && f->backend)
        f->backend->free(f->backend, f->z);
    gan_inception_destroy(f->net);
    if (f->owns_inception_backend && f->inception_backend)
        f->inception_backend->destroy(f->inception_backend);
    f->inception_backend = NULL;
    f->owns_inception_backend = false;
    gan_fid_prepared_free(&f->prepared);
    gan_fid_stats_free(&f->reference);
    free(f->images);
    free(f->features);
    f->z = NULL;
    f->net = NULL;
    f->images = NULL;
    f->features = NULL;
    f->enabled = f->ready = false;
}

/* The FID of G (`ema` false) or of the EMA of G over the fixed noise. */
static gan_status fid_of(fid_track *f, gan_trainer *t, bool ema, fid_track_progress progress, void *ctx, double *fid,
                         bool *eps_added)
{
    const gan_config *cfg = f->cfg;
    gan_shape s = t->g->output_shape;
    int n = cfg->fid_samples;
    for (int start = 0; start < n; start += f->batch) {
        int count = n - start < f->batch ? n - start : f->batch;
        GAN_TRY(gan_trainer_draw_noise(t, f->z, count, cfg->seed, GAN_SAMPLE_NOISE_STREAM,
                                       gan_count_of((uint64_t)start * (uint64_t)cfg->nz)));
        if (ema)
            GAN_TRY(gan_trainer_generate_ema(t, f->z, count, f->images));
        else
            GAN_TRY(gan_trainer_generate(t, f->z, count, false, f->images));
        GAN_TRY(gan_inception_features_f32(f->net, f->images, count, s.c, s.h, s.w,
                                           f->features + (size_t)start * GAN_INCEPTION_FEATURES));
        if (progress)
            progress(ctx, ema ? "EMA of G" : "G", start + count, n);
    }
    gan_fid_stats stats = {0};
    gan_fid_result r;
    GAN_TRY(gan_fid_stats_from_features(f->features, n, GAN_INCEPTION_FEATURES, &stats));
    gan_status status = gan_frechet_distance_prepared(&f->prepared, &stats, &r);
    gan_fid_stats_free(&stats);
    GAN_TRY(status);
    *fid = r.fid;
    *eps_added = *eps_added || r.eps_added;
    return GAN_OK;
}

gan_status fid_track_evaluate(fid_track *f, gan_trainer *t, fid_track_progress progress, void *ctx,
                              fid_track_result *out)
{
    memset(out, 0, sizeof *out);
    if (!f->ready)
        return gan_error(GAN_ERR_ARG, "FID: not set up");
    double start_s = gan_now_s();
    out->iteration = t->iteration;
    GAN_TRY(fid_of(f, t, false, progress, ctx, &out->fid, &out->eps_added));
    out->has_ema = t->ema_weights != NULL;
    if (out->has_ema)
        GAN_TRY(fid_of(f, t, true, progress, ctx, &out->fid_ema, &out->eps_added));
    out->seconds = gan_now_s() - start_s;
    double value = out->has_ema ? out->fid_ema : out->fid;
    if (!isfinite(value))
        return gan_error(GAN_ERR_NUMERIC, "the FID at iteration %lld is not finite (%g)", (long long)out->iteration,
                         value);
    out->improved = !f->has_best || value < f->best;
    if (out->improved) {
        f->has_best = true;
        f->best = value;
        f->best_iteration = out->iteration;
        f->best_fid_of_g = out->fid;
    }
    return GAN_OK;
}

int fid_track_texts(fid_track *f, gan_checkpoint_text *texts)
{
    static const char *const keys[FID_TRACK_TEXTS] = {"best_fid",    "best_fid_iteration", "best_fid_generator",
                                                      "fid_samples", "fid_stats",          "fid_of_G"};
    char(*v)[GAN_CONFIG_TEXT] = f->text_values;
    snprintf(v[0], GAN_CONFIG_TEXT, "%.9g", f->best);
    snprintf(v[1], GAN_CONFIG_TEXT, "%lld", (long long)f->best_iteration);
    snprintf(v[2], GAN_CONFIG_TEXT, "%s", ranking_generator(f->cfg));
    snprintf(v[3], GAN_CONFIG_TEXT, "%d", f->cfg->fid_samples);
    snprintf(v[4], GAN_CONFIG_TEXT, "%s", f->cfg->fid_stats);
    snprintf(v[5], GAN_CONFIG_TEXT, "%.9g", f->best_fid_of_g);
    int count = f->cfg->ema_decay > 0.0 ? FID_TRACK_TEXTS : FID_TRACK_TEXTS - 1;
    for (int i = 0; i < count; i++)
        texts[i] = (gan_checkpoint_text){keys[i], v[i]};
    return count;
}
