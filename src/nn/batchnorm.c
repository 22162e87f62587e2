/* BatchNorm2d over [N, C, H, W] per channel, or BatchNorm1d over [N, F] (H = W = 1): PyTorch's
 * defaults (momentum 0.1, eps 1e-5, affine, tracking running statistics). Parameters weight and
 * bias [C]; buffers running_mean [C] (starts at 0), running_var [C] (starts at 1) and the host
 * counter num_batches_tracked (exported as an I64 scalar). */
#include <stdlib.h>

#include "nn/layer.h"

static const float BN_MOMENTUM = GAN_BN_MOMENTUM;
static const float BN_EPS = GAN_BN_EPSILON;

typedef struct batchnorm_layer {
    gan_layer base;
    int running_mean_param, running_var_param;
    float *save_mean, *save_invstd; /* [C] batch statistics of the last training forward */
    float *scratch_grads;           /* [2C] where dgamma/dbeta go when they are not wanted */
    float *scratch_dx;              /* [N, C, H, W], only when BN is the first layer */
    /* train.sync_bn on several ranks (model->sync_bn): the statistics' sums, summed over ranks */
    double *sums, *squares;         /* [C] sum of x, sum of (x - mean)^2 */
    double *grad_sums;              /* [2C] sum of g, sum of g xhat */
    bool last_forward_training;
    int64_t num_batches_tracked;
} batchnorm_layer;

static gan_status batchnorm_infer_shape(gan_layer *layer, gan_shape in, gan_shape *out)
{
    if (layer->batch < 2 && in.h * in.w < 2)
        return gan_error(GAN_ERR_SHAPE, "batch norm needs more than one value per channel "
                                        "(batch 1 of [N, %d, 1, 1])", in.c);
    *out = in;
    return GAN_OK;
}

static gan_status batchnorm_declare_params(gan_layer *layer, gan_model *model)
{
    batchnorm_layer *bn = (batchnorm_layer *)layer;
    int64_t dims[1] = {layer->in.c};
    layer->weight_param = gan_layer_add_param(model, layer, "weight", 1, dims, true);
    layer->bias_param = gan_layer_add_param(model, layer, "bias", 1, dims, true);
    bn->running_mean_param = gan_layer_add_param(model, layer, "running_mean", 1, dims, false);
    bn->running_var_param = gan_layer_add_param(model, layer, "running_var", 1, dims, false);
    if (layer->weight_param < 0 || layer->bias_param < 0 || bn->running_mean_param < 0 ||
        bn->running_var_param < 0)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    return GAN_OK;
}

static gan_status batchnorm_plan(gan_layer *layer, gan_model *model, gan_pool *pool)
{
    batchnorm_layer *bn = (batchnorm_layer *)layer;
    GAN_TRY(gan_pool_request_floats(pool, &bn->save_mean, layer->in.c, "BN batch stats"));
    GAN_TRY(gan_pool_request_floats(pool, &bn->save_invstd, layer->in.c, "BN batch stats"));
    GAN_TRY(gan_pool_request_floats(pool, &bn->scratch_grads, 2 * (size_t)layer->in.c, "BN batch stats"));
    if (model->sync_bn) {
        size_t c = (size_t)layer->in.c;
        GAN_TRY(gan_pool_request_bytes(pool, (void **)&bn->sums, c * sizeof(double), "BN batch stats"));
        GAN_TRY(gan_pool_request_bytes(pool, (void **)&bn->squares, c * sizeof(double), "BN batch stats"));
        GAN_TRY(gan_pool_request_bytes(pool, (void **)&bn->grad_sums, 2 * c * sizeof(double), "BN batch stats"));
    }
    if (model->layers[0] == layer)
        GAN_TRY(gan_pool_request_floats(pool, &bn->scratch_dx,
                                        (size_t)model->batch * gan_shape_count(layer->in),
                                        "activations+grads"));
    return GAN_OK;
}

/* The activation run inside this batch norm's training passes (model.c: fuse_bn_activations),
 * or NULL. */
static const gan_layer *fused_activation(const gan_layer *layer, const gan_model *model)
{
    const gan_layer *act = layer->fused_activation;
    return act && act->position < model->active_layers ? act : NULL;
}

/* The training forward with the statistics of the global batch: this rank's sums, summed over
 * the ranks, twice (the mean first, then the squares about it: the two passes one process makes). */
static gan_status sync_forward(batchnorm_layer *bn, gan_model *model, const float *x, float *y,
                               const gan_layer *act)
{
    gan_layer *layer = &bn->base;
    gan_backend *be = model->backend;
    int c = layer->in.c, hw = layer->in.h * layer->in.w;
    double count = (double)model->global_batch * hw;
    GAN_TRY(be->bn_sums(be, model->batch, c, hw, x, bn->sums));
    GAN_TRY(be->allreduce_sum_f64(be, bn->sums, (size_t)c));
    GAN_TRY(be->bn_centered_squares(be, model->batch, c, hw, x, bn->sums, count, bn->squares));
    GAN_TRY(be->allreduce_sum_f64(be, bn->squares, (size_t)c));
    return be->bn_forward_from_sums(be, model->batch, c, hw, x,
                                    gan_layer_param(model, layer->weight_param)->value,
                                    gan_layer_param(model, layer->bias_param)->value, BN_MOMENTUM, BN_EPS,
                                    bn->sums, bn->squares, count,
                                    gan_layer_param(model, bn->running_mean_param)->value,
                                    gan_layer_param(model, bn->running_var_param)->value, bn->save_mean,
                                    bn->save_invstd, y, act ? gan_layer_activation_kind(act) : GAN_ACT_RELU,
                                    act ? act->spec.slope : 0.0f, act ? act->output : NULL);
}

static gan_status batchnorm_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                                    bool training)
{
    batchnorm_layer *bn = (batchnorm_layer *)layer;
    gan_backend *be = model->backend;
    int c = layer->in.c, hw = layer->in.h * layer->in.w;
    const float *gamma = gan_layer_param(model, layer->weight_param)->value;
    const float *beta = gan_layer_param(model, layer->bias_param)->value;
    float *running_mean = gan_layer_param(model, bn->running_mean_param)->value;
    float *running_var = gan_layer_param(model, bn->running_var_param)->value;
    bn->last_forward_training = training;
    gan_storage in = gan_layer_in_storage(layer, model), out = layer->storage;
    bool stored = in != GAN_STORAGE_F32_NCHW || out != GAN_STORAGE_F32_NCHW;
    if (!training && stored)
        return be->bn_stored_forward_eval(be, model->batch, c, hw, in, x, gamma, beta, running_mean, running_var,
                                          BN_EPS, out, y);
    if (!training)
        return be->bn_forward_eval(be, model->batch, c, hw, x, gamma, beta, running_mean,
                                   running_var, BN_EPS, y);
    bn->num_batches_tracked++;
    const gan_layer *act = fused_activation(layer, model);
    if (stored) /* (never with sync_bn: model.c) the activation's output is stored as y is */
        return be->bn_stored_forward_train(be, model->batch, c, hw, in, x, gamma, beta, BN_MOMENTUM, BN_EPS,
                                           running_mean, running_var, bn->save_mean, bn->save_invstd, out, y,
                                           act ? (int)gan_layer_activation_kind(act) : GAN_CONV_NO_ACT,
                                           act ? act->spec.slope : 0.0f, act ? act->output : NULL);
    if (model->sync_bn)
        return sync_forward(bn, model, x, y, act);
    if (act) /* writes the activation's output too */
        return be->bn_act_forward_train(be, model->batch, c, hw, x, gamma, beta, BN_MOMENTUM,
                                        BN_EPS, running_mean, running_var, bn->save_mean,
                                        bn->save_invstd, y, gan_layer_activation_kind(act), act->spec.slope,
                                        act->output);
    return be->bn_forward_train(be, model->batch, c, hw, x, gamma, beta, BN_MOMENTUM, BN_EPS,
                                running_mean, running_var, bn->save_mean, bn->save_invstd, y);
}

static gan_status batchnorm_backward(gan_layer *layer, gan_model *model, const float *x,
                                     const float *y, const float *dy, float *dx,
                                     gan_grad_mode mode)
{
    batchnorm_layer *bn = (batchnorm_layer *)layer;
    gan_backend *be = model->backend;
    if (!bn->last_forward_training)
        return gan_error(GAN_ERR_ARG, "backward after an eval-mode forward is not supported");
    int c = layer->in.c, hw = layer->in.h * layer->in.w;
    gan_param *gamma = gan_layer_param(model, layer->weight_param);
    gan_param *beta = gan_layer_param(model, layer->bias_param);
    float *dgamma = gamma->grad, *dbeta = beta->grad;
    float param_beta = mode == GAN_GRADS_ACCUMULATE ? 1.0f : 0.0f;
    if (mode == GAN_GRADS_NONE) {
        dgamma = bn->scratch_grads;
        dbeta = bn->scratch_grads + c;
    }
    if (!dx) {
        if (mode == GAN_GRADS_NONE)
            return GAN_OK;
        dx = bn->scratch_dx; /* first layer, no input gradient wanted: dx is discarded */
    }
    const gan_layer *act = fused_activation(layer, model);
    gan_storage in = gan_layer_in_storage(layer, model), out = layer->storage;
    if (in != GAN_STORAGE_F32_NCHW || out != GAN_STORAGE_F32_NCHW)
        return be->bn_stored_backward(be, model->batch, c, hw, in, x, out, act ? y : NULL, dy,
                                      act ? (int)gan_layer_activation_kind(act) : GAN_CONV_NO_ACT,
                                      act ? act->spec.slope : 0.0f, gamma->value, bn->save_mean, bn->save_invstd, dx,
                                      param_beta, dgamma, dbeta);
    if (model->sync_bn) {
        /* dgamma, dbeta from this rank's sums (the gradient all-reduce adds the ranks'); dx
         * from the sums over all ranks */
        double count = (double)model->global_batch * hw;
        gan_activation kind = act ? gan_layer_activation_kind(act) : GAN_ACT_RELU;
        float slope = act ? act->spec.slope : 0.0f;
        const float *y_act = act ? y : NULL;
        GAN_TRY(be->bn_backward_sums(be, model->batch, c, hw, x, y_act, dy, kind, slope, bn->save_mean,
                                     bn->save_invstd, param_beta, dgamma, dbeta, bn->grad_sums));
        if (dx == bn->scratch_dx)
            return GAN_OK; /* no input gradient wanted: nothing needs the other ranks' sums */
        GAN_TRY(be->allreduce_sum_f64(be, bn->grad_sums, 2 * (size_t)c));
        return be->bn_backward_from_sums(be, model->batch, c, hw, x, y_act, dy, kind, slope, gamma->value,
                                         bn->save_mean, bn->save_invstd, bn->grad_sums, count, dx);
    }
    if (act) /* y and dy: the activation's output and the gradient there (model.c) */
        return be->bn_act_backward(be, model->batch, c, hw, x, y, dy, gan_layer_activation_kind(act),
                                   act->spec.slope, gamma->value, bn->save_mean, bn->save_invstd,
                                   dx, param_beta, dgamma, dbeta);
    return be->bn_backward(be, model->batch, c, hw, x, dy, gamma->value, bn->save_mean,
                           bn->save_invstd, dx, param_beta, dgamma, dbeta);
}

static gan_status batchnorm_init_weights(gan_layer *layer, gan_model *model,
                                         gan_weight_init scheme, uint64_t seed)
{
    batchnorm_layer *bn = (batchnorm_layer *)layer;
    gan_backend *be = model->backend;
    gan_param *gamma = gan_layer_param(model, layer->weight_param);
    size_t c = gamma->count;
    if (scheme == GAN_INIT_DCGAN)
        GAN_TRY(be->rng_normal(be, c, seed, (uint64_t)layer->index << 8, gan_count_of(0), 1.0f, 0.02f,
                               gamma->value));
    else
        GAN_TRY(be->fill(be, gamma->value, 1.0f, c));
    GAN_TRY(be->fill(be, gan_layer_param(model, layer->bias_param)->value, 0.0f, c));
    GAN_TRY(be->fill(be, gan_layer_param(model, bn->running_mean_param)->value, 0.0f, c));
    GAN_TRY(be->fill(be, gan_layer_param(model, bn->running_var_param)->value, 1.0f, c));
    bn->num_batches_tracked = 0;
    return GAN_OK;
}

static unsigned batchnorm_stored_edges(const gan_layer *layer)
{
    (void)layer;
    return GAN_EDGE_IN | GAN_EDGE_OUT;
}

static const gan_layer_vtable batchnorm_vtable = {
    .infer_shape = batchnorm_infer_shape,
    .declare_params = batchnorm_declare_params,
    .plan = batchnorm_plan,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .init_weights = batchnorm_init_weights,
    .stored_edges = batchnorm_stored_edges,
};

gan_layer *gan_batchnorm_layer_new(const gan_layer_spec *spec)
{
    batchnorm_layer *bn = calloc(1, sizeof *bn);
    if (!bn)
        return NULL;
    bn->base.vt = &batchnorm_vtable;
    bn->base.spec = *spec;
    return &bn->base;
}

int64_t *gan_batchnorm_batches_tracked(gan_layer *layer)
{
    return &((batchnorm_layer *)layer)->num_batches_tracked;
}
