/* FID during training runs its Inception network in FP32 whatever precision G trains in
 * (src/train/fid_track.c): on the training backend itself in fp32, on a backend of its own in
 * fp32 otherwise. Without a GPU the CPU backend stands in for a tf32 one: a copy of its op table
 * that says train.precision = tf32 (the CPU backend cannot be opened in tf32, so the tracker
 * opens a second CPU backend in fp32). Checks which backend the network is on and in which
 * precision, that features from either are the same bits (both are the CPU's FP32), and the
 * start-up report's words. Needs the converted weights ($GAN_FID_WEIGHTS, else
 * .whl/fid_inception_v3.safetensors); skipped (77) without. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/backend_select.h"
#include "gan/config.h"
#include "gan/inception.h"
#include "test_util.h"
#include "train/fid_track.h"

/* Starts a tracker on `be` with 2 samples of 32x32 gray images; the start-up report into `report`. */
static gan_status start(fid_track *f, gan_config *cfg, gan_backend *be, const char *weights, char **report)
{
    memset(f, 0, sizeof *f);
    gan_config_defaults(cfg);
    cfg->fid_every = 10;
    cfg->fid_samples = 2;
    cfg->channels = 1;
    cfg->image_size = 32;
    snprintf(cfg->fid_stats, sizeof cfg->fid_stats, "%s", "stats.npz");
    f->cfg = cfg;
    f->enabled = true;
    snprintf(f->weights_path, sizeof f->weights_path, "%s", weights);
    snprintf(f->weights_key, sizeof f->weights_key, "%s", "log.fid_weights");
    size_t bytes = 0;
    FILE *out = open_memstream(report, &bytes);
    gan_status status = fid_track_start(f, be, "/nonexistent", false, out);
    fclose(out);
    return status;
}

/* The features of two fixed images through the tracker's network. */
static void features_of(fid_track *f, float *features)
{
    float images[2 * 32 * 32];
    for (int i = 0; i < 2 * 32 * 32; i++)
        images[i] = (float)((i * 37) % 255) / 127.5f - 1.0f;
    CHECK_OK(gan_inception_features_f32(f->net, images, 2, 1, 32, 32, features));
}

int main(void)
{
    char weights[4096];
    if (!test_fid_weights_path(weights, sizeof weights)) {
        printf("skipped: no FID Inception weights at %s (tools/setup.sh makes them; or set GAN_FID_WEIGHTS)\n",
               weights);
        return TEST_SKIP_EXIT_CODE;
    }
    gan_backend *cpu = NULL;
    CHECK_OK(gan_backend_open("cpu", NULL, &cpu, NULL, 0));
    if (!cpu)
        return test_finish();
    static float fp32_features[2 * GAN_INCEPTION_FEATURES], tf32_features[2 * GAN_INCEPTION_FEATURES];

    /* fp32: the training backend itself */
    fid_track f;
    gan_config cfg;
    char *report = NULL;
    CHECK_OK(start(&f, &cfg, cpu, weights, &report));
    CHECK_MSG(f.inception_backend == cpu && !f.owns_inception_backend, "fp32: Inception not on the training backend");
    CHECK_MSG(report && strstr(report, "the FID Inception on cpu, batch 2") != NULL, "fp32 report: %s", report);
    if (f.net)
        features_of(&f, fp32_features);
    fid_track_close(&f);
    free(report);

    /* tf32 (the CPU's op table, saying tf32): a backend of its own, in fp32, closed with the tracker */
    gan_backend tf32 = *cpu;
    tf32.options.precision = GAN_PRECISION_TF32;
    report = NULL;
    CHECK_OK(start(&f, &cfg, &tf32, weights, &report));
    CHECK_MSG(f.owns_inception_backend && f.inception_backend && f.inception_backend != &tf32 &&
                  f.inception_backend != cpu && f.inception_backend->options.precision == GAN_PRECISION_FP32 &&
                  f.inception_backend->options.deterministic,
              "tf32: Inception not on a backend of its own in deterministic fp32");
    CHECK_MSG(report && strstr(report, "the FID Inception on cpu (a backend of its own in fp32), batch 2") != NULL,
              "tf32 report: %s", report);
    if (f.net)
        features_of(&f, tf32_features);
    fid_track_close(&f);
    CHECK_MSG(f.inception_backend == NULL && !f.owns_inception_backend, "the tracker kept its backend after close");
    free(report);
    CHECK_MSG(!memcmp(fp32_features, tf32_features, sizeof fp32_features),
              "the features differ between the training backend and the tracker's own fp32 one");

    cpu->destroy(cpu);
    return test_finish();
}
