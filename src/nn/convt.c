/* ConvTranspose2d: weight [in, out, k, k] (PyTorch's layout), optional bias [out].
 * A transposed convolution is the backward-data pass of the convolution that maps this layer's
 * output back to its input: geom.x is this layer's OUTPUT [n, out, H, W] and geom.y its INPUT
 * [n, in, h, w], geom.c_out = in, geom.c_in = out, so the weight [in, out, k, k] is exactly that
 * convolution's [c_out, c_in, k, k]. Forward = conv backward-data; backward-data = conv forward;
 * backward-filter = conv backward-filter with x = dy and dy = x. */
#include <stdlib.h>

#include "nn/layer.h"

typedef struct convt_layer {
    gan_layer base;
    gan_conv_state conv; /* geom: the convolution whose backward-data this layer is; pass: backward-data */
} convt_layer;

static gan_status convt_infer_shape(gan_layer *layer, gan_shape in, gan_shape *out)
{
    const gan_layer_spec *s = &layer->spec;
    /* PyTorch: H = (h - 1) * stride - 2 * pad + kernel (no output_padding, dilation 1), in 64 bits:
     * a large stride on a large input must be refused, not wrap around. */
    int64_t h = ((int64_t)in.h - 1) * s->stride - 2 * (int64_t)s->pad + s->kernel;
    int64_t w = ((int64_t)in.w - 1) * s->stride - 2 * (int64_t)s->pad + s->kernel;
    if (h < 1 || w < 1)
        return gan_error(GAN_ERR_SHAPE,
                         "padding %d removes the whole output: (%d - 1) * %d - 2 * %d + %d = %lld "
                         "gives output [N, %d, %lld, %lld]",
                         s->pad, in.h, s->stride, s->pad, s->kernel, (long long)h, s->out, (long long)h,
                         (long long)w);
    if (h > (1 << 24) || w > (1 << 24))
        return gan_error(GAN_ERR_SHAPE, "output [N, %d, %lld, %lld]: more than 2^24 rows or columns",
                         s->out, (long long)h, (long long)w);
    *out = (gan_shape){s->out, (int)h, (int)w};
    convt_layer *convt = (convt_layer *)layer;
    convt->conv.pass = GAN_CONV_BACKWARD_DATA;
    convt->conv.geom = (gan_conv_geom){
        .n = layer->batch,
        .c_in = s->out, .h_in = (int)h, .w_in = (int)w,
        .c_out = in.c, .h_out = in.h, .w_out = in.w,
        .k_h = s->kernel, .k_w = s->kernel,
        .stride_h = s->stride, .stride_w = s->stride,
        .pad_h = s->pad, .pad_w = s->pad,
    };
    return GAN_OK;
}

static gan_status convt_declare_params(gan_layer *layer, gan_model *model)
{
    const gan_layer_spec *s = &layer->spec;
    int64_t dims[4] = {layer->in.c, s->out, s->kernel, s->kernel};
    int64_t bias_dims[1] = {s->out};
    layer->weight_param = gan_layer_add_param(model, layer, "weight", 4, dims, true);
    if (s->bias)
        layer->bias_param = gan_layer_add_param(model, layer, "bias", 1, bias_dims, true);
    if (layer->weight_param < 0 || (s->bias && layer->bias_param < 0))
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    return GAN_OK;
}

static gan_status convt_plan(gan_layer *layer, gan_model *model, gan_pool *pool)
{
    return gan_conv_layer_plan(layer, &((convt_layer *)layer)->conv, model, pool);
}

static size_t convt_workspace_bytes(gan_layer *layer, gan_model *model)
{
    return gan_conv_layer_workspace_bytes(&((convt_layer *)layer)->conv, model);
}

static size_t convt_side_workspace_bytes(gan_layer *layer, gan_model *model)
{
    return gan_conv_layer_side_workspace_bytes(&((convt_layer *)layer)->conv, model);
}

static gan_status convt_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                                bool training)
{
    return gan_conv_layer_forward(layer, model, &((convt_layer *)layer)->conv, x, y, training);
}

static gan_status convt_backward(gan_layer *layer, gan_model *model, const float *x,
                                 const float *y, const float *dy, float *dx, gan_grad_mode mode)
{
    (void)y;
    return gan_conv_layer_backward(layer, model, &((convt_layer *)layer)->conv, x, dy, dx, mode);
}

static gan_status convt_init_weights(gan_layer *layer, gan_model *model, gan_weight_init scheme,
                                     uint64_t seed)
{
    return gan_init_weight_and_bias(model, layer, scheme, seed);
}

static unsigned convt_stored_edges(const gan_layer *layer)
{
    return gan_conv_layer_stored_edges(layer, &((const convt_layer *)layer)->conv);
}

static bool convt_weight_copy(gan_layer *layer, gan_model *model, gan_conv_weight_copy *out)
{
    return gan_conv_layer_weight_copy(layer, model, &((convt_layer *)layer)->conv, out);
}

static const gan_layer_vtable convt_vtable = {
    .infer_shape = convt_infer_shape,
    .declare_params = convt_declare_params,
    .plan = convt_plan,
    .workspace_bytes = convt_workspace_bytes,
    .side_workspace_bytes = convt_side_workspace_bytes,
    .forward = convt_forward,
    .backward = convt_backward,
    .init_weights = convt_init_weights,
    .stored_edges = convt_stored_edges,
    .weight_copy = convt_weight_copy,
};

gan_layer *gan_convt_layer_new(const gan_layer_spec *spec)
{
    convt_layer *convt = calloc(1, sizeof *convt);
    if (!convt)
        return NULL;
    convt->base.vt = &convt_vtable;
    convt->base.spec = *spec;
    return &convt->base;
}
