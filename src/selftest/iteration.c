/* `gan selftest`, second part: one whole DCGAN-64 training iteration on two backends from the
 * same weights, real batch and noise, compared value by value. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/selftest.h"
#include "gan/train.h"

/* The largest |a - b| over n values, and whether every |a - b| <= atol + rtol |b|. */
static bool compare_values(const float *a, const float *b, size_t n, double atol, double rtol,
                           double *max_abs)
{
    bool ok = true;
    *max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i])))
            ok = false;
        if (d > *max_abs || isnan(d))
            *max_abs = isnan(d) ? INFINITY : d;
    }
    return ok;
}

static gan_status download_floats(gan_backend *be, const float *src, size_t n, float **out)
{
    *out = malloc(n * sizeof(float));
    if (!*out)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    return be->download(be, *out, src, n * sizeof(float));
}

static gan_status compare_buffers(gan_backend *ref_be, const float *ref, gan_backend *test_be,
                                  const float *test, size_t n, const char *what, double atol,
                                  double rtol, FILE *report, bool *all_ok)
{
    float *a = NULL, *b = NULL;
    gan_status status = download_floats(ref_be, ref, n, &a);
    if (status == GAN_OK)
        status = download_floats(test_be, test, n, &b);
    if (status == GAN_OK) {
        double max_abs;
        bool ok = compare_values(b, a, n, atol, rtol, &max_abs);
        if (report)
            fprintf(report, "  %-28s %10zu values  max abs err %.3g  (atol %.0e rtol %.0e)  %s\n",
                    what, n, max_abs, atol, rtol, ok ? "ok" : "FAIL");
        *all_ok = *all_ok && ok;
    }
    free(a);
    free(b);
    return status;
}

gan_status gan_selftest_iteration(gan_backend *reference, gan_backend *test, const gan_config *cfg,
                                  FILE *report, bool *all_within_tolerance)
{
    *all_within_tolerance = true;
    /* TF32 keeps 10 mantissa bits in convolution products: losses, images and BN statistics are
     * held to 10x looser bounds there. */
    double loose = test->options.precision == GAN_PRECISION_TF32 ? 10.0 : 1.0;
    gan_error_clear();
    gan_trainer *ref = NULL, *tst = NULL;
    GAN_TRY(gan_trainer_create(cfg, reference, NULL, NULL, &ref));
    gan_status status = gan_trainer_create(cfg, test, NULL, NULL, &tst);
    if (status != GAN_OK) {
        gan_trainer_destroy(ref);
        return status;
    }
    size_t batch = (size_t)cfg->batch_size;
    size_t image = gan_shape_count(ref->d->input_shape) * batch;
    size_t noise = (size_t)cfg->nz * batch;
    float *host = malloc((image + noise) * sizeof(float));
    float *weights = malloc(ref->g->trainable_count > ref->d->trainable_count
                                ? ref->g->trainable_count * sizeof(float)
                                : ref->d->trainable_count * sizeof(float));
    if (!host || !weights)
        status = gan_error(GAN_ERR_NOMEM, "out of memory");
    /* The same starting weights on both: the reference's, copied over (the Philox inits agree
     * only up to the last bits of the device's log/sin/cos). */
    gan_model *pairs[2][2] = {{ref->g, tst->g}, {ref->d, tst->d}};
    for (int m = 0; m < 2 && status == GAN_OK; m++) {
        size_t n = pairs[m][0]->trainable_count;
        status = reference->download(reference, weights, pairs[m][0]->weights, n * sizeof(float));
        if (status == GAN_OK)
            status = test->upload(test, pairs[m][1]->weights, weights, n * sizeof(float));
    }
    /* A real batch in [-1, 1] and N(0, 1)-like noise, the same bytes on both. */
    uint64_t state = 0x853c49e6748fea9bull;
    for (size_t i = 0; status == GAN_OK && i < image + noise; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)(state >> 40) * (1.0f / 16777216.0f);
        host[i] = i < image ? 2.0f * u - 1.0f : 3.4641016f * (u - 0.5f);
    }
    if (status == GAN_OK)
        status = reference->upload(reference, ref->real, host, image * sizeof(float));
    if (status == GAN_OK)
        status = reference->upload(reference, ref->z, host + image, noise * sizeof(float));
    if (status == GAN_OK)
        status = test->upload(test, tst->real, host, image * sizeof(float));
    if (status == GAN_OK)
        status = test->upload(test, tst->z, host + image, noise * sizeof(float));
    if (status == GAN_OK)
        status = gan_trainer_step_with(ref, ref->real, ref->z);
    if (status == GAN_OK)
        status = gan_trainer_step_with(tst, tst->real, tst->z);
    if (status == GAN_OK && report)
        fprintf(report, "one training iteration, %s, batch %d (%s vs %s):\n", cfg->name,
                cfg->batch_size, test->name, reference->name);
    gan_step_stats a, b;
    bool finite_a = false, finite_b = false;
    if (status == GAN_OK)
        status = gan_trainer_read_stats(ref, &a, &finite_a);
    if (status == GAN_OK)
        status = gan_trainer_read_stats(tst, &b, &finite_b);
    if (status == GAN_OK) {
        float va[5] = {a.loss_d, a.loss_g, a.d_x, a.d_g_z1, a.d_g_z2};
        float vb[5] = {b.loss_d, b.loss_g, b.d_x, b.d_g_z1, b.d_g_z2};
        const char *names[5] = {"Loss_D", "Loss_G", "D(x)", "D(G(z)) before D step", "D(G(z)) after D step"};
        for (int i = 0; i < 5; i++) {
            double max_abs;
            /* losses of O(1) from sums over the batch of products summed in other orders */
            bool ok = compare_values(&vb[i], &va[i], 1, 1e-4 * loose, 1e-3 * loose, &max_abs) &&
                      finite_a && finite_b;
            if (report)
                fprintf(report, "  %-28s %.6f vs %.6f  abs err %.3g  (atol %.0e rtol %.0e)  %s\n",
                        names[i], vb[i], va[i], max_abs, 1e-4 * loose, 1e-3 * loose, ok ? "ok" : "FAIL");
            *all_within_tolerance = *all_within_tolerance && ok;
        }
        /* The fake batch (G forward, before any step changed G): conv sums in other orders. */
        status = compare_buffers(reference, gan_model_output(ref->g), test, gan_model_output(tst->g),
                                 image, "G(z) images", 1e-4 * loose, 1e-3 * loose, report,
                                 all_within_tolerance);
    }
    /* Weights after one Adam step: at step 1 each update is lr * g / (|g| + eps), so a gradient
     * element near 0 whose sign differs between backends moves its weight by up to 2 lr in
     * opposite directions; the bound is 2 lr + a little, and the typical error is printed. */
    double lr_bound_g = 2.0 * cfg->adam_g.lr + 1e-6, lr_bound_d = 2.0 * cfg->adam_d.lr + 1e-6;
    if (status == GAN_OK)
        status = compare_buffers(reference, ref->g->weights, test, tst->g->weights,
                                 ref->g->trainable_count, "G weights after step", lr_bound_g, 0.0,
                                 report, all_within_tolerance);
    if (status == GAN_OK)
        status = compare_buffers(reference, ref->d->weights, test, tst->d->weights,
                                 ref->d->trainable_count, "D weights after step", lr_bound_d, 0.0,
                                 report, all_within_tolerance);
    if (status == GAN_OK && ref->g->buffer_count)
        status = compare_buffers(reference, ref->g->buffers, test, tst->g->buffers,
                                 ref->g->buffer_count, "G BN running stats", 1e-4 * loose, 1e-3 * loose, report,
                                 all_within_tolerance);
    if (status == GAN_OK && ref->d->buffer_count)
        status = compare_buffers(reference, ref->d->buffers, test, tst->d->buffers,
                                 ref->d->buffer_count, "D BN running stats", 1e-4 * loose, 1e-3 * loose, report,
                                 all_within_tolerance);
    free(host);
    free(weights);
    gan_trainer_destroy(ref);
    gan_trainer_destroy(tst);
    return status;
}
