/* Dropout(p): in training, y = x * mask with mask[i] = 0 or 1/(1-p) drawn from Philox
 * (seed = model->dropout_seed, stream = module index, from element *model->dropout_count +
 * model->dropout_position, which every forward advances: see gan_model; in a data-parallel run
 * by global sample index); in eval, y = x. The
 * mask [N, features] is kept for backward: dx = dy * mask. */
#include <stdlib.h>

#include "nn/layer.h"

typedef struct dropout_layer {
    gan_layer base;
    float *mask;                /* [N, C, H, W] */
    const float *mask_override; /* a mask given from outside (PyTorch fixtures), or NULL */
    bool last_forward_training;
} dropout_layer;

static gan_status dropout_infer_shape(gan_layer *layer, gan_shape in, gan_shape *out)
{
    *out = in;
    return GAN_OK;
}

static gan_status dropout_declare_params(gan_layer *layer, gan_model *model) { return GAN_OK; }

static gan_status dropout_plan(gan_layer *layer, gan_model *model, gan_pool *pool)
{
    dropout_layer *dropout = (dropout_layer *)layer;
    return gan_pool_request_floats(pool, &dropout->mask,
                                   (size_t)model->batch * gan_shape_count(layer->in), "dropout masks");
}

static gan_status dropout_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                                  bool training)
{
    dropout_layer *dropout = (dropout_layer *)layer;
    gan_backend *be = model->backend;
    size_t count = (size_t)model->batch * gan_shape_count(layer->in);
    dropout->last_forward_training = training;
    if (!training)
        return be->copy(be, y, x, count * sizeof(float));
    if (dropout->mask_override) {
        GAN_TRY(be->copy(be, dropout->mask, dropout->mask_override, count * sizeof(float)));
        return be->multiply(be, count, x, dropout->mask, y);
    }
    /* Element (global sample s, feature f) of the draw is s * features + f, so a rank holding
     * samples sample_offset.. of the global batch draws its part of the one process's mask. */
    size_t features = gan_shape_count(layer->in);
    gan_count first = {model->dropout_count,
                       model->dropout_position + (uint64_t)model->sample_offset * features};
    model->dropout_position += gan_philox_advance((size_t)model->global_batch * features);
    return be->dropout_forward(be, count, layer->spec.drop_p, model->dropout_seed,
                               (uint64_t)layer->index, first, x, dropout->mask, y);
}

static gan_status dropout_backward(gan_layer *layer, gan_model *model, const float *x,
                                   const float *y, const float *dy, float *dx, gan_grad_mode mode)
{
    dropout_layer *dropout = (dropout_layer *)layer;
    if (!dx)
        return GAN_OK;
    gan_backend *be = model->backend;
    size_t count = (size_t)model->batch * gan_shape_count(layer->in);
    if (!dropout->last_forward_training)
        return be->copy(be, dx, dy, count * sizeof(float));
    return be->multiply(be, count, dy, dropout->mask, dx);
}

static const gan_layer_vtable dropout_vtable = {
    .infer_shape = dropout_infer_shape,
    .declare_params = dropout_declare_params,
    .plan = dropout_plan,
    .forward = dropout_forward,
    .backward = dropout_backward,
};

gan_layer *gan_dropout_layer_new(const gan_layer_spec *spec)
{
    dropout_layer *dropout = calloc(1, sizeof *dropout);
    if (!dropout)
        return NULL;
    dropout->base.vt = &dropout_vtable;
    dropout->base.spec = *spec;
    return &dropout->base;
}

gan_status gan_model_set_dropout_mask(gan_model *model, int module_index, const float *mask)
{
    for (int i = 0; i < model->layer_count; i++) {
        gan_layer *layer = model->layers[i];
        if (layer->index == module_index && layer->spec.kind == GAN_LAYER_DROPOUT) {
            ((dropout_layer *)layer)->mask_override = mask;
            return GAN_OK;
        }
    }
    return gan_error(GAN_ERR_ARG, "%s: module %d is not a dropout layer", model->name, module_index);
}
