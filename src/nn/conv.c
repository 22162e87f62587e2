/* Conv2d: weight [out, in, k, k] (PyTorch's layout), optional bias [out]; square kernel, one
 * stride and padding for both axes as the config grammar writes them. */
#include <stdlib.h>

#include "nn/layer.h"

typedef struct conv_layer {
    gan_layer base;
    gan_conv_state conv; /* geom: x = this layer's input, y = its output; pass: forward */
} conv_layer;

static gan_status conv_infer_shape(gan_layer *layer, gan_shape in, gan_shape *out)
{
    const gan_layer_spec *s = &layer->spec;
    int padded_h = in.h + 2 * s->pad, padded_w = in.w + 2 * s->pad;
    if (s->kernel > padded_h || s->kernel > padded_w)
        return gan_error(GAN_ERR_SHAPE,
                         "kernel %dx%d is larger than the padded input %dx%d (padding %d): no "
                         "output [N, %d, 0, 0] is possible",
                         s->kernel, s->kernel, padded_h, padded_w, s->pad, s->out);
    *out = (gan_shape){s->out, (padded_h - s->kernel) / s->stride + 1,
                       (padded_w - s->kernel) / s->stride + 1};
    conv_layer *conv = (conv_layer *)layer;
    conv->conv.pass = GAN_CONV_FORWARD;
    conv->conv.geom = (gan_conv_geom){
        .n = layer->batch,
        .c_in = in.c, .h_in = in.h, .w_in = in.w,
        .c_out = out->c, .h_out = out->h, .w_out = out->w,
        .k_h = s->kernel, .k_w = s->kernel,
        .stride_h = s->stride, .stride_w = s->stride,
        .pad_h = s->pad, .pad_w = s->pad,
    };
    return GAN_OK;
}

static gan_status conv_declare_params(gan_layer *layer, gan_model *model)
{
    const gan_layer_spec *s = &layer->spec;
    int64_t dims[4] = {s->out, layer->in.c, s->kernel, s->kernel};
    layer->weight_param = gan_layer_add_param(model, layer, "weight", 4, dims, true);
    if (s->bias)
        layer->bias_param = gan_layer_add_param(model, layer, "bias", 1, &dims[0], true);
    if (layer->weight_param < 0 || (s->bias && layer->bias_param < 0))
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    return GAN_OK;
}

static gan_status conv_plan(gan_layer *layer, gan_model *model, gan_pool *pool)
{
    return gan_conv_layer_plan(layer, &((conv_layer *)layer)->conv, model, pool);
}

static size_t conv_workspace_bytes(gan_layer *layer, gan_model *model)
{
    return gan_conv_layer_workspace_bytes(&((conv_layer *)layer)->conv, model);
}

static size_t conv_side_workspace_bytes(gan_layer *layer, gan_model *model)
{
    return gan_conv_layer_side_workspace_bytes(&((conv_layer *)layer)->conv, model);
}

static gan_status conv_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                               bool training)
{
    return gan_conv_layer_forward(layer, model, &((conv_layer *)layer)->conv, x, y, training);
}

static gan_status conv_backward(gan_layer *layer, gan_model *model, const float *x,
                                const float *y, const float *dy, float *dx, gan_grad_mode mode)
{
    (void)y;
    return gan_conv_layer_backward(layer, model, &((conv_layer *)layer)->conv, x, dy, dx, mode);
}

static gan_status conv_init_weights(gan_layer *layer, gan_model *model, gan_weight_init scheme,
                                    uint64_t seed)
{
    return gan_init_weight_and_bias(model, layer, scheme, seed);
}

static unsigned conv_stored_edges(const gan_layer *layer)
{
    return gan_conv_layer_stored_edges(layer, &((const conv_layer *)layer)->conv);
}

static bool conv_weight_copy(gan_layer *layer, gan_model *model, gan_conv_weight_copy *out)
{
    return gan_conv_layer_weight_copy(layer, model, &((conv_layer *)layer)->conv, out);
}

static gan_status conv_keep_images(gan_layer *layer, gan_model *model, const uint8_t *pixels, const float *x,
                                   bool *taken)
{
    return gan_conv_layer_keep_images(model, &((conv_layer *)layer)->conv, pixels, x, taken);
}

static const gan_layer_vtable conv_vtable = {
    .infer_shape = conv_infer_shape,
    .declare_params = conv_declare_params,
    .plan = conv_plan,
    .workspace_bytes = conv_workspace_bytes,
    .side_workspace_bytes = conv_side_workspace_bytes,
    .forward = conv_forward,
    .backward = conv_backward,
    .init_weights = conv_init_weights,
    .stored_edges = conv_stored_edges,
    .weight_copy = conv_weight_copy,
    .keep_images = conv_keep_images,
};

gan_layer *gan_conv_layer_new(const gan_layer_spec *spec)
{
    conv_layer *conv = calloc(1, sizeof *conv);
    if (!conv)
        return NULL;
    conv->base.vt = &conv_vtable;
    conv->base.spec = *spec;
    return &conv->base;
}
