/* The training iteration (see include/gan/train.h for the order of the passes). */
#include "gan/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Slots of trainer->step_values [8]. */
enum {
    VALUE_LOSS_REAL,
    VALUE_D_X,
    VALUE_LOSS_FAKE,
    VALUE_D_G_Z1,
    VALUE_LOSS_G,
    VALUE_D_G_Z2,
    VALUE_COUNT = 8
};

/* Philox streams of the run's random draws (the seeds are derived from train.seed). */
enum { NOISE_STREAM = 1, FIXED_NOISE_STREAM = 2 };
enum { SAMPLE_GRID_IMAGES = 64 };

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static gan_weight_init init_scheme(const gan_config *cfg) { return cfg->init; }

gan_status gan_trainer_draw_noise(gan_trainer *t, float *z, int n, uint64_t seed, uint64_t stream,
                                  uint64_t offset)
{
    gan_backend *be = t->backend;
    size_t count = (size_t)n * (size_t)t->cfg.nz;
    if (t->cfg.noise == GAN_NOISE_UNIFORM)
        return be->rng_uniform(be, count, seed, stream, offset, 0.0f, 1.0f, z);
    return be->rng_normal(be, count, seed, stream, offset, 0.0f, 1.0f, z);
}

static gan_status plan_trainer_buffers(gan_trainer *t)
{
    gan_pool *pool = &t->pool;
    const gan_config *cfg = &t->cfg;
    size_t batch = (size_t)cfg->batch_size;
    size_t image = gan_shape_count(t->d->input_shape);
    GAN_TRY(gan_pool_request_floats(pool, &t->z, batch * (size_t)cfg->nz, "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->real, batch * image, "noise and batches"));
    GAN_TRY(gan_pool_request_bytes(pool, &t->real_upload, batch * image * sizeof(float),
                                   "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->dlogits, batch, "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->step_values, VALUE_COUNT, "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->value_sums, VALUE_COUNT, "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->ones, 1, "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->fixed_z, (size_t)t->sample_batch * (size_t)cfg->nz,
                                    "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->sample_z, (size_t)t->sample_batch * (size_t)cfg->nz,
                                    "noise and batches"));
    if (t->g->buffer_count)
        GAN_TRY(gan_pool_request_floats(pool, &t->buffer_backup, t->g->buffer_count, "BN running stats"));
    return GAN_OK;
}

/* G, D and the sampler (G at the grid's batch, forward only), with every shape checked: G's
 * output against D's input and the data, D's output one value per sample (its logits: the final
 * sigmoid is fused into the loss). */
static gan_status create_models(gan_trainer *t, const gan_data_source *data)
{
    const gan_config *cfg = &t->cfg;
    gan_backend *be = t->backend;
    gan_shape z_shape = {cfg->nz, 1, 1};
    gan_shape image = {cfg->channels, cfg->image_size, cfg->image_size};
    GAN_TRY(gan_model_create("G", cfg->generator, z_shape, cfg->batch_size, be, &t->g));
    GAN_TRY(gan_model_create("D", cfg->discriminator, image, cfg->batch_size, be, &t->d));
    GAN_TRY(gan_model_create("G(samples)", cfg->generator, z_shape, t->sample_batch, be, &t->g_sampler));
    t->g_sampler->inference_only = true;
    gan_shape g_out = t->g->output_shape;
    if (g_out.c != image.c || g_out.h != image.h || g_out.w != image.w)
        return gan_error(GAN_ERR_SHAPE,
                         "G's output [N, %d, %d, %d] does not match D's input [N, %d, %d, %d] "
                         "(data.channels, data.image_size)",
                         g_out.c, g_out.h, g_out.w, image.c, image.h, image.w);
    if (gan_shape_count(t->d->output_shape) != 1)
        return gan_error(GAN_ERR_SHAPE, "D must give one value per sample; it gives [N, %d, %d, %d]",
                         t->d->output_shape.c, t->d->output_shape.h, t->d->output_shape.w);
    GAN_TRY(gan_model_set_logits_output(t->d, true));
    if (!data)
        return GAN_OK;
    if (data->batches_per_epoch < 1)
        return gan_error(GAN_ERR_CONFIG, "the data set has %lld samples: fewer than one batch of %d",
                         (long long)data->samples, cfg->batch_size);
    if (data->channels != image.c || data->height != image.h || data->width != image.w)
        return gan_error(GAN_ERR_SHAPE,
                         "the data gives [%d, %d, %d] (C, H, W) samples but the config wants "
                         "[%d, %d, %d] (data.channels, data.image_size)",
                         data->channels, data->height, data->width, image.c, image.h, image.w);
    return GAN_OK;
}

/* One pool: both networks, their Adam state, activations, workspaces and the batches. */
static gan_status plan_and_bind(gan_trainer *t)
{
    GAN_TRY(gan_model_plan(t->g, &t->pool));
    GAN_TRY(gan_model_plan(t->d, &t->pool));
    GAN_TRY(gan_model_plan(t->g_sampler, &t->pool));
    GAN_TRY(plan_trainer_buffers(t));
    GAN_TRY(gan_pool_commit(&t->pool));
    GAN_TRY(gan_model_bind(t->g));
    GAN_TRY(gan_model_bind(t->d));
    GAN_TRY(gan_model_bind(t->g_sampler));
    return gan_model_share_weights(t->g_sampler, t->g);
}

/* Weights from the seed, the fixed noise of the sample grids, the constants and counters. */
static gan_status init_state(gan_trainer *t)
{
    const gan_config *cfg = &t->cfg;
    gan_backend *be = t->backend;
    GAN_TRY(gan_model_init_weights(t->g, init_scheme(cfg), t->init_seed_g));
    GAN_TRY(gan_model_init_weights(t->d, init_scheme(cfg), t->init_seed_d));
    t->g->dropout_seed = splitmix64(cfg->seed ^ 0x4744726F70ull);
    t->d->dropout_seed = splitmix64(cfg->seed ^ 0x4444726F70ull);
    GAN_TRY(gan_trainer_draw_noise(t, t->fixed_z, t->sample_batch, t->noise_seed, FIXED_NOISE_STREAM, 0));
    GAN_TRY(be->fill(be, t->ones, 1.0f, 1));
    GAN_TRY(be->fill(be, t->value_sums, 0.0f, VALUE_COUNT));
    return be->fill(be, t->step_values, 0.0f, VALUE_COUNT);
}

/* Host staging for one batch of the data source. */
static gan_status allocate_host_batch(gan_trainer *t, const gan_data_source *data)
{
    size_t sample_bytes = (size_t)data->channels * data->height * data->width *
                          (data->is_float ? sizeof(float) : 1);
    t->host_batch = malloc((size_t)t->cfg.batch_size * sample_bytes);
    if (!t->host_batch)
        return gan_error(GAN_ERR_NOMEM, "out of host memory for a batch");
    return GAN_OK;
}

gan_status gan_trainer_create(const gan_config *cfg, gan_backend *backend, gan_data_source *data,
                              FILE *log, gan_trainer **out)
{
    *out = NULL;
    GAN_TRY(gan_config_validate(cfg));
    gan_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    t->backend = backend;
    t->data = data;
    t->sample_batch = SAMPLE_GRID_IMAGES;
    t->noise_seed = splitmix64(cfg->seed ^ 0x6E6F697365ull);  /* "noise" */
    t->init_seed_g = splitmix64(cfg->seed ^ 0x47ull);          /* "G" */
    t->init_seed_d = splitmix64(cfg->seed ^ 0x44ull);          /* "D" */
    gan_pool_init(&t->pool, backend);
    gan_status status = GAN_OK;
    GAN_CHECK(create_models(t, data));
    GAN_CHECK(plan_and_bind(t));
    GAN_CHECK(init_state(t));
    if (data)
        GAN_CHECK(allocate_host_batch(t, data));
    if (log) {
        gan_model_print(t->g, log);
        gan_model_print(t->d, log);
        fprintf(log, "memory (planned once, backend %s):\n", backend->name);
        gan_pool_report(&t->pool, log);
    }
    *out = t;
    return GAN_OK;
cleanup:
    gan_trainer_destroy(t);
    return status;
}

void gan_trainer_destroy(gan_trainer *t)
{
    if (!t)
        return;
    gan_model_destroy(t->g);
    gan_model_destroy(t->d);
    gan_model_destroy(t->g_sampler);
    gan_pool_release(&t->pool);
    free(t->host_batch);
    free(t);
}

/* Adam's per-step scalars, in double as torch.optim.Adam's Python code computes them. */
static gan_adam_scalars adam_scalars(const gan_adam_config *a, int64_t step)
{
    double bias_correction1 = 1.0 - pow(a->beta1, (double)step);
    double bias_correction2 = 1.0 - pow(a->beta2, (double)step);
    gan_adam_scalars s;
    s.beta1 = (float)a->beta1;
    s.one_minus_beta1 = (float)(1.0 - a->beta1);
    s.beta2 = (float)a->beta2;
    s.one_minus_beta2 = (float)(1.0 - a->beta2);
    s.eps = (float)a->eps;
    s.step_size = (float)(a->lr / bias_correction1);
    s.bias_correction2_sqrt = (float)sqrt(bias_correction2);
    return s;
}

static gan_status adam_step(gan_trainer *t, gan_model *m, const gan_adam_config *a, int64_t *step)
{
    (*step)++;
    return t->backend->adam_step(t->backend, m->trainable_count, m->weights, m->grads, m->adam_m,
                                 m->adam_v, adam_scalars(a, *step));
}

/* BCE of D's logits against `target`; loss and mean probability land in step_values. */
static gan_status d_loss(gan_trainer *t, float target, float grad_scale, int loss_slot, int prob_slot)
{
    gan_backend *be = t->backend;
    return be->bce_logits(be, t->cfg.batch_size, gan_model_output(t->d), target, grad_scale,
                          &t->step_values[loss_slot], &t->step_values[prob_slot], t->dlogits);
}

static gan_status next_real_batch(gan_trainer *t)
{
    gan_backend *be = t->backend;
    gan_data_source *src = t->data;
    if (!src)
        return gan_error(GAN_ERR_ARG, "the trainer has no data source");
    GAN_TRY(src->next_batch(src, t->host_batch));
    int b = t->cfg.batch_size;
    size_t count = (size_t)b * src->channels * src->height * src->width;
    if (src->is_float)
        return be->upload(be, t->real, t->host_batch, count * sizeof(float));
    GAN_TRY(be->upload(be, t->real_upload, t->host_batch, count));
    return be->images_to_float(be, b, src->height, src->width, src->channels, t->real_upload, t->real);
}

/* D's step: real batch and noise are in t->real and t->z. */
static gan_status discriminator_step(gan_trainer *t)
{
    const gan_config *cfg = &t->cfg;
    float real_target = (float)(1.0 - cfg->label_smoothing);
    float scale = cfg->d_loss == GAN_D_LOSS_MEAN ? 0.5f : 1.0f;
    /* 1. D on the real batch. */
    GAN_TRY(gan_model_forward(t->d, t->real, true));
    GAN_TRY(d_loss(t, real_target, scale, VALUE_LOSS_REAL, VALUE_D_X));
    GAN_TRY(gan_model_backward(t->d, t->dlogits, GAN_GRADS_OVERWRITE, false));
    /* 2. z -> G -> fake; D on the fake, no gradient into G. */
    GAN_TRY(gan_model_forward(t->g, t->z, true));
    GAN_TRY(gan_model_forward(t->d, gan_model_output(t->g), true));
    GAN_TRY(d_loss(t, 0.0f, scale, VALUE_LOSS_FAKE, VALUE_D_G_Z1));
    GAN_TRY(gan_model_backward(t->d, t->dlogits, GAN_GRADS_ACCUMULATE, false));
    return adam_step(t, t->d, &cfg->adam_d, &t->adam_step_d);
}

/* G's step through the updated D, on the fake of the last D step. */
static gan_status generator_step(gan_trainer *t)
{
    const gan_config *cfg = &t->cfg;
    GAN_TRY(gan_model_forward(t->d, gan_model_output(t->g), true));
    if (cfg->g_loss == GAN_G_LOSS_NONSATURATING) {
        /* -log D(G(z)) = BCE(logits, 1) */
        GAN_TRY(d_loss(t, 1.0f, 1.0f, VALUE_LOSS_G, VALUE_D_G_Z2));
    } else {
        /* log(1 - D(G(z))) = -BCE(logits, 0): the gradient is -(sigmoid(x) - 0) / n. The logged
         * Loss_G is this value (it decreases as G improves, towards -inf). */
        GAN_TRY(d_loss(t, 0.0f, -1.0f, VALUE_LOSS_G, VALUE_D_G_Z2));
    }
    GAN_TRY(gan_model_backward(t->d, t->dlogits, GAN_GRADS_NONE, true));
    GAN_TRY(gan_model_backward(t->g, t->d->grad_input, GAN_GRADS_OVERWRITE, false));
    return adam_step(t, t->g, &cfg->adam_g, &t->adam_step_g);
}

/* value_sums += step_values, on the backend: a 1 x 8 x 1 GEMM. A non-finite value makes its
 * sum non-finite, so one read at the log interval finds any non-finite step in between. */
static gan_status accumulate_values(gan_trainer *t)
{
    gan_backend *be = t->backend;
    return be->gemm(be, false, false, 1, VALUE_COUNT, 1, 1.0f, t->ones, 1, t->step_values,
                    VALUE_COUNT, 1.0f, t->value_sums, VALUE_COUNT);
}

gan_status gan_trainer_step(gan_trainer *t)
{
    const gan_config *cfg = &t->cfg;
    for (int k = 0; k < cfg->d_steps; k++) {
        GAN_TRY(next_real_batch(t));
        GAN_TRY(gan_trainer_draw_noise(t, t->z, cfg->batch_size, t->noise_seed, NOISE_STREAM,
                                       t->noise_offset));
        t->noise_offset += gan_philox_blocks((size_t)cfg->batch_size * (size_t)cfg->nz);
        GAN_TRY(discriminator_step(t));
    }
    GAN_TRY(generator_step(t));
    GAN_TRY(accumulate_values(t));
    t->iteration++;
    return GAN_OK;
}

gan_status gan_trainer_step_with(gan_trainer *t, const float *real, const float *z)
{
    gan_backend *be = t->backend;
    if (t->cfg.d_steps != 1)
        return gan_error(GAN_ERR_ARG, "a step with given batches needs train.d_steps = 1");
    size_t image = gan_shape_count(t->d->input_shape) * (size_t)t->cfg.batch_size;
    GAN_TRY(be->copy(be, t->real, real, image * sizeof(float)));
    GAN_TRY(be->copy(be, t->z, z, (size_t)t->cfg.batch_size * t->cfg.nz * sizeof(float)));
    GAN_TRY(discriminator_step(t));
    GAN_TRY(generator_step(t));
    GAN_TRY(accumulate_values(t));
    t->iteration++;
    return GAN_OK;
}

gan_status gan_trainer_read_stats(gan_trainer *t, gan_step_stats *stats, bool *all_finite)
{
    gan_backend *be = t->backend;
    float values[VALUE_COUNT], sums[VALUE_COUNT];
    GAN_TRY(be->download(be, values, t->step_values, sizeof values));
    GAN_TRY(be->download(be, sums, t->value_sums, sizeof sums));
    GAN_TRY(be->fill(be, t->value_sums, 0.0f, VALUE_COUNT));
    bool finite = true;
    for (int i = 0; i < VALUE_COUNT; i++)
        finite = finite && isfinite(values[i]) && isfinite(sums[i]);
    float loss_d = values[VALUE_LOSS_REAL] + values[VALUE_LOSS_FAKE];
    if (t->cfg.d_loss == GAN_D_LOSS_MEAN)
        loss_d *= 0.5f;
    stats->loss_d = loss_d;
    stats->loss_g = t->cfg.g_loss == GAN_G_LOSS_MINIMAX ? -values[VALUE_LOSS_G] : values[VALUE_LOSS_G];
    stats->d_x = values[VALUE_D_X];
    stats->d_g_z1 = values[VALUE_D_G_Z1];
    stats->d_g_z2 = values[VALUE_D_G_Z2];
    *all_finite = finite;
    return GAN_OK;
}

gan_status gan_trainer_generate(gan_trainer *t, const float *z, int n, bool batch_stats,
                                float *images)
{
    gan_backend *be = t->backend;
    gan_model *g = t->g_sampler;
    size_t per_image = gan_shape_count(g->output_shape);
    size_t z_bytes = (size_t)t->cfg.nz * sizeof(float);
    int chunk = t->sample_batch;
    if (batch_stats && n % chunk)
        return gan_error(GAN_ERR_ARG,
                         "samples with batch statistics come in batches of %d (their BN statistics "
                         "depend on the batch); %d asked",
                         chunk, n);
    for (int start = 0; start < n; start += chunk) {
        int count = n - start < chunk ? n - start : chunk;
        /* The sampler's batch is fixed: a short last chunk is padded with copies of its first
         * row; in eval mode samples do not depend on each other, so padding changes nothing. */
        const float *z_chunk = z + (size_t)start * t->cfg.nz;
        GAN_TRY(be->copy(be, t->sample_z, z_chunk, (size_t)count * z_bytes));
        for (int r = count; r < chunk; r++)
            GAN_TRY(be->copy(be, t->sample_z + (size_t)r * t->cfg.nz, z_chunk, z_bytes));
        if (batch_stats) {
            /* Training-mode BN (batch statistics, as the tutorial's grids), with G's running
             * statistics put back afterwards: sampling must not change the model. */
            if (g->buffer_count)
                GAN_TRY(be->copy(be, t->buffer_backup, t->g->buffers, g->buffer_count * sizeof(float)));
            gan_status status = gan_model_forward(g, t->sample_z, true);
            if (g->buffer_count)
                GAN_TRY(be->copy(be, t->g->buffers, t->buffer_backup, g->buffer_count * sizeof(float)));
            GAN_TRY(status);
        } else {
            GAN_TRY(gan_model_forward(g, t->sample_z, false));
        }
        GAN_TRY(be->download(be, images + (size_t)start * per_image, gan_model_output(g),
                             (size_t)count * per_image * sizeof(float)));
    }
    return GAN_OK;
}
