/* ReLU, LeakyReLU(slope), Tanh, Sigmoid: no parameters; backward reads the input (lrelu) or
 * the output (relu, tanh, sigmoid), as PyTorch's backward functions do. */
#include <stdlib.h>

#include "nn/layer.h"

static gan_status activation_infer_shape(gan_layer *layer, gan_shape in, gan_shape *out)
{
    *out = in;
    return GAN_OK;
}

static gan_status activation_declare_params(gan_layer *layer, gan_model *model) { return GAN_OK; }

static gan_status activation_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                                     bool training)
{
    gan_backend *be = model->backend;
    size_t count = (size_t)model->batch * gan_shape_count(layer->in);
    /* (its input and output stored alike: model.c; FP32 NHWC is FP32 elementwise) */
    if (layer->storage == GAN_STORAGE_BF16_NHWC)
        return be->activation_bf16_forward(be, gan_layer_activation_kind(layer), layer->spec.slope, count, x, y);
    return be->activation_forward(be, gan_layer_activation_kind(layer), layer->spec.slope, count, x, y);
}

static gan_status activation_backward(gan_layer *layer, gan_model *model, const float *x,
                                      const float *y, const float *dy, float *dx,
                                      gan_grad_mode mode)
{
    if (!dx)
        return GAN_OK;
    gan_backend *be = model->backend;
    size_t count = (size_t)model->batch * gan_shape_count(layer->in);
    if (layer->storage == GAN_STORAGE_BF16_NHWC)
        return be->activation_bf16_backward(be, gan_layer_activation_kind(layer), layer->spec.slope, count, x, y,
                                            dy, dx);
    return be->activation_backward(be, gan_layer_activation_kind(layer), layer->spec.slope, count,
                                   x, y, dy, dx);
}

/* Elementwise, so any storage, the input's and the output's the same (model.c). */
static unsigned activation_stored_edges(const gan_layer *layer)
{
    (void)layer;
    return GAN_EDGE_IN | GAN_EDGE_OUT;
}

static const gan_layer_vtable activation_vtable = {
    .infer_shape = activation_infer_shape,
    .declare_params = activation_declare_params,
    .forward = activation_forward,
    .backward = activation_backward,
    .stored_edges = activation_stored_edges,
};

gan_layer *gan_activation_layer_new(const gan_layer_spec *spec)
{
    gan_layer *layer = calloc(1, sizeof *layer);
    if (!layer)
        return NULL;
    layer->vt = &activation_vtable;
    layer->spec = *spec;
    return layer;
}
