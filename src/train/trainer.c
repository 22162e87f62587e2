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
                                  gan_count first)
{
    gan_backend *be = t->backend;
    size_t count = (size_t)n * (size_t)t->cfg.nz;
    if (t->cfg.noise == GAN_NOISE_UNIFORM)
        return be->rng_uniform(be, count, seed, stream, first, 0.0f, 1.0f, z);
    return be->rng_normal(be, count, seed, stream, first, 0.0f, 1.0f, z);
}

static gan_status plan_trainer_buffers(gan_trainer *t)
{
    gan_pool *pool = &t->pool;
    const gan_config *cfg = &t->cfg;
    size_t batch = (size_t)t->batch;
    size_t image = gan_shape_count(t->d->input_shape);
    GAN_TRY(gan_pool_request_floats(pool, &t->z, batch * (size_t)cfg->nz, "noise and batches"));
    GAN_TRY(gan_pool_request_floats(pool, &t->real, batch * image, "noise and batches"));
    /* One upload slot per D step: a step's batches are all uploaded before its backend part. */
    const gan_data_source *data = t->data;
    t->upload_slot_bytes = batch * image * (data && !data->is_float ? 1 : sizeof(float));
    size_t slots = data ? (size_t)cfg->d_steps : 1;
    GAN_TRY(gan_pool_request_bytes(pool, &t->real_uploads, slots * t->upload_slot_bytes,
                                   "noise and batches"));
    GAN_TRY(gan_pool_request_bytes(pool, (void **)&t->counts, GAN_COUNT_TOTAL * sizeof(uint64_t),
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
    if (cfg->ema_decay > 0.0)
        GAN_TRY(gan_pool_request_floats(pool, &t->ema_weights, t->g->trainable_count ? t->g->trainable_count : 1,
                                        "EMA of G"));
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
    GAN_TRY(gan_model_create("G", cfg->generator, z_shape, t->batch, be, &t->g));
    GAN_TRY(gan_model_create("D", cfg->discriminator, image, t->batch, be, &t->d));
    GAN_TRY(gan_model_create("G(samples)", cfg->generator, z_shape, t->sample_batch, be, &t->g_sampler));
    if (t->data_parallel) {
        int offset = t->rank * t->batch;
        bool sync_bn = cfg->sync_bn;
        GAN_TRY(gan_model_set_data_parallel(t->g, cfg->batch_size, offset, sync_bn));
        GAN_TRY(gan_model_set_data_parallel(t->d, cfg->batch_size, offset, sync_bn));
    }
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

gan_status gan_train_check_batch(const gan_config *cfg, int ranks)
{
    if (ranks > 1 && cfg->batch_size % ranks)
        return gan_error(GAN_ERR_CONFIG,
                         "train.batch_size = %d is the global batch, which the %d ranks share out evenly: "
                         "choose a multiple of %d (or run on a number of ranks that divides %d)",
                         cfg->batch_size, ranks, ranks, cfg->batch_size);
    return GAN_OK;
}

/* A data-parallel run needs the backend's all-reduces and a global batch the ranks share out
 * evenly. */
static gan_status check_data_parallel(const gan_trainer *t)
{
    if (!t->data_parallel)
        return GAN_OK;
    const gan_backend *be = t->backend;
    if (!be->allreduce_sum || !be->allreduce_sum_f64)
        return gan_error(GAN_ERR_UNSUPPORTED, "the %s backend was opened without the run's process group: it "
                                              "has no all-reduce", be->name);
    return gan_train_check_batch(&t->cfg, t->world_size);
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
    /* the average starts as G's initial weights (a copy of G before training) */
    if (t->ema_weights)
        GAN_TRY(be->copy(be, t->ema_weights, t->g->weights, t->g->trainable_count * sizeof(float)));
    t->g->dropout_seed = splitmix64(cfg->seed ^ 0x4744726F70ull);
    t->d->dropout_seed = splitmix64(cfg->seed ^ 0x4444726F70ull);
    t->g->dropout_count = &t->counts[GAN_COUNT_DROPOUT_G];
    t->d->dropout_count = &t->counts[GAN_COUNT_DROPOUT_D];
    GAN_TRY(gan_trainer_upload_counts(t));
    t->bn_count_g = gan_model_bn_counts(t->g, NULL, 0);
    t->bn_count_d = gan_model_bn_counts(t->d, NULL, 0);
    t->use_graph = cfg->graph && t->data && be->capture_begin && be->capture_end && be->graph_launch &&
                   be->graph_destroy;
    GAN_TRY(gan_trainer_draw_noise(t, t->fixed_z, t->sample_batch, t->noise_seed, FIXED_NOISE_STREAM,
                                   gan_count_of(0)));
    GAN_TRY(be->fill(be, t->ones, 1.0f, 1));
    GAN_TRY(be->fill(be, t->value_sums, 0.0f, VALUE_COUNT));
    return be->fill(be, t->step_values, 0.0f, VALUE_COUNT);
}

/* Host staging for one batch of the data source. */
static gan_status allocate_host_batch(gan_trainer *t, const gan_data_source *data)
{
    size_t sample_bytes = (size_t)data->channels * data->height * data->width *
                          (data->is_float ? sizeof(float) : 1);
    t->host_batch = malloc((size_t)t->batch * sample_bytes);
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
    const gan_dist *dist = backend->options.dist;
    t->data_parallel = dist && dist->active;
    t->world_size = t->data_parallel ? dist->world_size : 1;
    t->rank = t->data_parallel ? dist->rank : 0;
    t->batch = cfg->batch_size / t->world_size;
    t->sample_batch = SAMPLE_GRID_IMAGES;
    t->noise_seed = splitmix64(cfg->seed ^ 0x6E6F697365ull);  /* "noise" */
    t->init_seed_g = splitmix64(cfg->seed ^ 0x47ull);          /* "G" */
    t->init_seed_d = splitmix64(cfg->seed ^ 0x44ull);          /* "D" */
    gan_pool_init(&t->pool, backend);
    gan_status status = GAN_OK;
    GAN_CHECK(check_data_parallel(t));
    if (cfg->ema_decay > 0.0 && !backend->ema_update)
        GAN_CHECK(gan_error(GAN_ERR_UNSUPPORTED, "train.ema_decay: the %s backend has no ema_update", backend->name));
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
    if (t->graph)
        t->backend->graph_destroy(t->backend, t->graph);
    free(t->bn_delta);
    gan_model_destroy(t->g);
    gan_model_destroy(t->d);
    gan_model_destroy(t->g_sampler);
    gan_pool_release(&t->pool);
    free(t->host_batch);
    free(t);
}

static gan_adam_hyper adam_hyper(const gan_adam_config *a)
{
    return (gan_adam_hyper){a->lr, a->beta1, a->beta2, a->eps};
}

/* Update number *counts[which] + step_in_iteration (1-based) of model m. */
static gan_status adam_step(gan_trainer *t, gan_model *m, const gan_adam_config *a, int which,
                            uint64_t step_in_iteration)
{
    gan_count step = {&t->counts[which], step_in_iteration};
    return t->backend->adam_step(t->backend, m->trainable_count, m->weights, m->grads, m->adam_m,
                                 m->adam_v, adam_hyper(a), step);
}

/* BCE of D's logits against `target`; loss and mean probability land in step_values. */
static gan_status d_loss(gan_trainer *t, float target, float grad_scale, int loss_slot, int prob_slot)
{
    gan_backend *be = t->backend;
    /* Each rank's loss is the mean over its own samples; scaled by 1 / ranks, its gradient is
     * the gradient of the global batch's mean loss (exactly, for a power of two), so the ranks'
     * gradients add up to one process's. */
    return be->bce_logits(be, t->batch, gan_model_output(t->d), target, grad_scale / (float)t->world_size,
                          &t->step_values[loss_slot], &t->step_values[prob_slot], t->dlogits);
}

static void *upload_slot(const gan_trainer *t, int k)
{
    return (uint8_t *)t->real_uploads + (size_t)k * t->upload_slot_bytes;
}

gan_status gan_trainer_upload_batches(gan_trainer *t)
{
    gan_backend *be = t->backend;
    gan_data_source *src = t->data;
    if (!src)
        return gan_error(GAN_ERR_ARG, "the trainer has no data source");
    for (int k = 0; k < t->cfg.d_steps; k++) {
        GAN_TRY(src->next_batch(src, t->host_batch));
        GAN_TRY(be->upload(be, upload_slot(t, k), t->host_batch, t->upload_slot_bytes));
    }
    return GAN_OK;
}

/* The real batch of D step k, from its upload slot into t->real [B, C, H, W] in [-1, 1], or
 * straight into the copy of it that D's first layer keeps (gan_model_images_in: t->real is then
 * not written, and only D's forward on it and its backward read it). */
static gan_status real_batch(gan_trainer *t, int k)
{
    gan_backend *be = t->backend;
    const gan_data_source *src = t->data;
    if (src->is_float)
        return be->copy(be, t->real, upload_slot(t, k), t->upload_slot_bytes);
    return gan_model_images_in(t->d, src->height, src->width, src->channels, upload_slot(t, k), t->real);
}

/* A data-parallel run: the network's gradient buffer (contiguous: one all-reduce) summed over
 * the ranks before its Adam step. Each rank's is already 1 / ranks of its part (d_loss), so the
 * sum is the global batch's gradient, the same bits on every rank: so are the Adam steps. */
static gan_status sum_gradients(gan_trainer *t, gan_model *m)
{
    if (!t->data_parallel)
        return GAN_OK;
    return t->backend->allreduce_sum(t->backend, m->grads, m->trainable_count, 1.0f);
}

/* A data-parallel run without train.sync_bn: each rank's batch norms updated their running
 * statistics from its own batch statistics; their average over the ranks (one all-reduce of each
 * network's buffers, once an iteration) keeps them equal on every rank. The update is linear, so
 * this is the running statistics updated with the ranks' mean batch statistics. With sync_bn every
 * rank already updated them from the same global statistics. */
static gan_status average_running_statistics(gan_trainer *t)
{
    gan_backend *be = t->backend;
    if (!t->data_parallel || t->cfg.sync_bn)
        return GAN_OK;
    float scale = 1.0f / (float)t->world_size;
    if (t->g->buffer_count)
        GAN_TRY(be->allreduce_sum(be, t->g->buffers, t->g->buffer_count, scale));
    if (t->d->buffer_count)
        GAN_TRY(be->allreduce_sum(be, t->d->buffers, t->d->buffer_count, scale));
    return GAN_OK;
}

/* D step k (0-based) of the iteration: real batch and noise are in t->real and t->z. */
static gan_status discriminator_step(gan_trainer *t, int k)
{
    const gan_config *cfg = &t->cfg;
    float real_target = (float)(1.0 - cfg->label_smoothing);
    float scale = cfg->d_loss == GAN_D_LOSS_MEAN ? 0.5f : 1.0f;
    gan_backend *be = t->backend;
    /* z -> G -> fake on the side stream, beside D on the real batch: the two share nothing they write
     * (z was drawn before the fork, D reads the fake after the join). Not where G's batch norms may
     * all-reduce (a data-parallel run): the all-reduces stay on the first stream. */
    bool g_beside = t->g->side_stream && !be->allreduce_sum;
    if (g_beside) {
        GAN_TRY(be->side_fork(be));
        gan_status status = gan_model_forward(t->g, t->z, true);
        gan_status back = be->side_return(be);
        GAN_TRY(status);
        GAN_TRY(back);
    }
    /* 1. D on the real batch. */
    GAN_TRY(gan_model_forward(t->d, t->real, true));
    GAN_TRY(d_loss(t, real_target, scale, VALUE_LOSS_REAL, VALUE_D_X));
    GAN_TRY(gan_model_backward(t->d, t->dlogits, GAN_GRADS_OVERWRITE, false));
    /* 2. z -> G -> fake (or the side's, joined); D on the fake, no gradient into G. */
    if (g_beside)
        GAN_TRY(be->side_join(be));
    else
        GAN_TRY(gan_model_forward(t->g, t->z, true));
    GAN_TRY(gan_model_forward(t->d, gan_model_output(t->g), true));
    GAN_TRY(d_loss(t, 0.0f, scale, VALUE_LOSS_FAKE, VALUE_D_G_Z1));
    GAN_TRY(gan_model_backward(t->d, t->dlogits, GAN_GRADS_ACCUMULATE, false));
    GAN_TRY(sum_gradients(t, t->d));
    return adam_step(t, t->d, &cfg->adam_d, GAN_COUNT_ADAM_D, (uint64_t)k + 1);
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
    GAN_TRY(sum_gradients(t, t->g));
    return adam_step(t, t->g, &cfg->adam_g, GAN_COUNT_ADAM_G, 1);
}

/* The EMA of G's weights after G's step: one launch over the contiguous weights, its decay fixed
 * for the run (the same call every iteration). On several ranks every rank holds the same
 * weights, so every rank's average is the same bits too. */
static gan_status update_ema(gan_trainer *t)
{
    if (!t->ema_weights)
        return GAN_OK;
    return t->backend->ema_update(t->backend, t->g->trainable_count, t->cfg.ema_decay, t->g->weights,
                                  t->ema_weights);
}

/* value_sums += step_values, on the backend: a 1 x 8 x 1 GEMM. A non-finite value makes its
 * sum non-finite, so one read at the log interval finds any non-finite step in between. */
static gan_status accumulate_values(gan_trainer *t)
{
    gan_backend *be = t->backend;
    return be->gemm(be, false, false, 1, VALUE_COUNT, 1, 1.0f, t->ones, 1, t->step_values,
                    VALUE_COUNT, 1.0f, t->value_sums, VALUE_COUNT);
}

/* The counts on the backend advanced by what this iteration drew and stepped (the same amounts
 * every iteration; recorded for the host's copies), the dropout positions back to 0. */
static gan_status advance_counts(gan_trainer *t, uint64_t noise_elements, int d_steps)
{
    uint64_t *add = t->iteration_advance;
    add[GAN_COUNT_ADAM_G] = 1;
    add[GAN_COUNT_ADAM_D] = (uint64_t)d_steps;
    add[GAN_COUNT_NOISE] = noise_elements;
    add[GAN_COUNT_DROPOUT_G] = t->g->dropout_position;
    add[GAN_COUNT_DROPOUT_D] = t->d->dropout_position;
    t->g->dropout_position = 0;
    t->d->dropout_position = 0;
    gan_count_advance advance = {.n = GAN_COUNT_TOTAL};
    for (int i = 0; i < GAN_COUNT_TOTAL; i++) {
        advance.count[i] = &t->counts[i];
        advance.add[i] = add[i];
    }
    return t->backend->advance_counts(t->backend, advance);
}

gan_status gan_trainer_run_iteration(gan_trainer *t)
{
    const gan_config *cfg = &t->cfg;
    /* z of global sample s is noise elements s * nz.. of the D step's draw: this rank's part
     * starts at its first sample (inside a Philox block where rank * batch * nz is not a multiple
     * of 4), and the stream advances by the global batch's. */
    const uint64_t noise = gan_philox_advance((size_t)cfg->batch_size * (size_t)cfg->nz);
    const uint64_t rank_offset = (uint64_t)t->rank * (uint64_t)t->batch * (uint64_t)cfg->nz;
    for (int k = 0; k < cfg->d_steps; k++) {
        GAN_TRY(real_batch(t, k));
        gan_count first = {&t->counts[GAN_COUNT_NOISE], (uint64_t)k * noise + rank_offset};
        GAN_TRY(gan_trainer_draw_noise(t, t->z, t->batch, t->noise_seed, NOISE_STREAM, first));
        GAN_TRY(discriminator_step(t, k));
    }
    GAN_TRY(generator_step(t));
    GAN_TRY(update_ema(t));
    GAN_TRY(accumulate_values(t));
    GAN_TRY(average_running_statistics(t));
    return advance_counts(t, (uint64_t)cfg->d_steps * noise, cfg->d_steps);
}

void gan_trainer_finish_iteration(gan_trainer *t)
{
    const uint64_t *add = t->iteration_advance;
    t->adam_step_g += (int64_t)add[GAN_COUNT_ADAM_G];
    t->adam_step_d += (int64_t)add[GAN_COUNT_ADAM_D];
    t->noise_offset += add[GAN_COUNT_NOISE];
    t->dropout_offset_g += add[GAN_COUNT_DROPOUT_G];
    t->dropout_offset_d += add[GAN_COUNT_DROPOUT_D];
    t->iteration++;
}

gan_status gan_trainer_upload_counts(gan_trainer *t)
{
    uint64_t counts[GAN_COUNT_TOTAL];
    counts[GAN_COUNT_ADAM_G] = (uint64_t)t->adam_step_g;
    counts[GAN_COUNT_ADAM_D] = (uint64_t)t->adam_step_d;
    counts[GAN_COUNT_NOISE] = t->noise_offset;
    counts[GAN_COUNT_DROPOUT_G] = t->dropout_offset_g;
    counts[GAN_COUNT_DROPOUT_D] = t->dropout_offset_d;
    return t->backend->upload(t->backend, t->counts, counts, sizeof counts);
}

/* The batch norms' num_batches_tracked of G then D. */
static void read_bn_counts(gan_trainer *t, int64_t *out)
{
    gan_model_bn_counts(t->g, out, t->bn_count_g);
    gan_model_bn_counts(t->d, out + t->bn_count_g, t->bn_count_d);
}

/* Runs the iteration as the captured graph, capturing it first: the host's own side of the
 * iteration (the batch norms' counters) is recorded then and replayed with the graph. */
static gan_status run_as_graph(gan_trainer *t)
{
    gan_backend *be = t->backend;
    if (!t->graph) {
        int n = t->bn_count_g + t->bn_count_d;
        int64_t *before = calloc((size_t)n + 1, sizeof *before);
        free(t->bn_delta); /* an earlier capture that failed */
        t->bn_delta = calloc((size_t)n + 1, sizeof *t->bn_delta);
        if (!before || !t->bn_delta) {
            free(before);
            return gan_error(GAN_ERR_NOMEM, "out of memory");
        }
        read_bn_counts(t, before);
        GAN_TRY(be->capture_begin(be));
        gan_status status = gan_trainer_run_iteration(t);
        gan_graph *graph = NULL;
        gan_status ended = be->capture_end(be, &graph);
        read_bn_counts(t, t->bn_delta);
        for (int i = 0; i < n; i++)
            t->bn_delta[i] -= before[i];
        free(before);
        if (status == GAN_OK && ended != GAN_OK)
            status = ended;
        if (status != GAN_OK) {
            if (graph)
                be->graph_destroy(be, graph);
            return gan_error_prefix(status, "capturing the iteration as a graph (train.graph = false runs "
                                            "it op by op): ");
        }
        t->graph = graph;
        /* the capture ran the host's side already: only the backend's remains */
        return be->graph_launch(be, t->graph);
    }
    GAN_TRY(be->graph_launch(be, t->graph));
    gan_model_add_bn_counts(t->g, t->bn_delta, t->bn_count_g);
    gan_model_add_bn_counts(t->d, t->bn_delta + t->bn_count_g, t->bn_count_d);
    return GAN_OK;
}

void gan_trainer_describe_graph(gan_trainer *t, char *out, size_t bytes)
{
    if (!out || bytes == 0)
        return;
    out[0] = '\0';
    if (t->graph && t->backend->graph_describe)
        t->backend->graph_describe(t->backend, t->graph, out, bytes);
}

gan_status gan_trainer_step(gan_trainer *t)
{
    GAN_TRY(gan_trainer_upload_batches(t));
    /* The first step runs op by op: it plans what the backend plans lazily, outside a capture. */
    if (t->use_graph && t->eager_steps > 0)
        GAN_TRY(run_as_graph(t));
    else {
        GAN_TRY(gan_trainer_run_iteration(t));
        t->eager_steps++;
    }
    gan_trainer_finish_iteration(t);
    return GAN_OK;
}

gan_status gan_trainer_step_with(gan_trainer *t, const float *real, const float *z)
{
    gan_backend *be = t->backend;
    if (t->cfg.d_steps != 1)
        return gan_error(GAN_ERR_ARG, "a step with given batches needs train.d_steps = 1");
    size_t image = gan_shape_count(t->d->input_shape) * (size_t)t->batch;
    GAN_TRY(be->copy(be, t->real, real, image * sizeof(float)));
    GAN_TRY(be->copy(be, t->z, z, (size_t)t->batch * t->cfg.nz * sizeof(float)));
    GAN_TRY(discriminator_step(t, 0));
    GAN_TRY(generator_step(t));
    GAN_TRY(update_ema(t));
    GAN_TRY(accumulate_values(t));
    GAN_TRY(advance_counts(t, 0, 1)); /* the noise was given: its stream does not move */
    gan_trainer_finish_iteration(t);
    return GAN_OK;
}

gan_status gan_trainer_read_stats(gan_trainer *t, gan_step_stats *stats, bool *all_finite)
{
    gan_backend *be = t->backend;
    float values[VALUE_COUNT], sums[VALUE_COUNT];
    if (t->data_parallel) {
        /* the ranks' means over their parts averaged: the means over the global batch; a
         * non-finite value on any rank makes every rank's sum non-finite */
        GAN_TRY(be->allreduce_sum(be, t->step_values, VALUE_COUNT, 1.0f / (float)t->world_size));
        GAN_TRY(be->allreduce_sum(be, t->value_sums, VALUE_COUNT, 1.0f));
    }
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

gan_status gan_trainer_generate_ema(gan_trainer *t, const float *z, int n, float *images)
{
    if (!t->ema_weights)
        return gan_error(GAN_ERR_ARG, "no EMA of G: the run has train.ema_decay = 0");
    /* The sampler's trainable parameters point into the average for these images, then back at
     * G's: nothing is copied, G is not touched. */
    GAN_TRY(gan_model_share_weights_at(t->g_sampler, t->g, t->ema_weights));
    gan_status status = gan_trainer_generate(t, z, n, false, images);
    gan_status restored = gan_model_share_weights(t->g_sampler, t->g);
    return status != GAN_OK ? status : restored;
}
