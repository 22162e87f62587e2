/* Conv2d: weight [out, in, k, k] (PyTorch's layout), optional bias [out]; square kernel, one
 * stride and padding for both axes as the config grammar writes them. */
#include <stdlib.h>

#include "nn/layer.h"

typedef struct conv_layer {
    gan_layer base;
    gan_conv_geom geom; /* x = this layer's input, y = its output */
    /* The backend's copy of x kept from a training forward for the backward-filter (the op
     * table's conv_keep_pass; NULL where the backend makes none), and the x it was made from
     * (NULL: none made since the last forward). */
    void *keep;
    const float *kept_from;
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
    conv->geom = (gan_conv_geom){
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

/* A trained layer keeps its forward's copy of x for its backward-filter where the backend makes
 * one (conv_keep_bytes, gan/backend.h). */
static gan_status conv_plan(gan_layer *layer, gan_model *model, gan_pool *pool)
{
    conv_layer *conv = (conv_layer *)layer;
    gan_backend *be = model->backend;
    size_t bytes = model->inference_only || !be->conv_keep_bytes
                       ? 0
                       : be->conv_keep_bytes(be, &conv->geom, GAN_CONV_FORWARD);
    return bytes ? gan_pool_request_bytes(pool, &conv->keep, bytes, "conv kept copies") : GAN_OK;
}

/* An inference-only model runs the forward alone; a trained one all three passes. */
static size_t conv_workspace_bytes(gan_layer *layer, gan_model *model)
{
    conv_layer *conv = (conv_layer *)layer;
    unsigned passes = model->inference_only ? GAN_CONV_PASS_BIT(GAN_CONV_FORWARD) : GAN_CONV_PASSES_ALL;
    return model->backend->conv_workspace_bytes(model->backend, &conv->geom, passes);
}

static gan_status conv_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                               bool training)
{
    conv_layer *conv = (conv_layer *)layer;
    gan_backend *be = model->backend;
    const gan_param *w = gan_layer_param(model, layer->weight_param);
    const gan_layer *act = gan_layer_epilogue(layer, model);
    conv->kept_from = training && conv->keep ? x : NULL;
    if (conv->kept_from) /* the activation's output (if any) as below, x's copy kept */
        GAN_TRY(be->conv_keep_pass(be, &conv->geom, GAN_CONV_FORWARD, x, w->value,
                                   act ? (int)gan_layer_activation_kind(act) : GAN_CONV_NO_ACT,
                                   act ? act->spec.slope : 0.0f, act ? act->output : y, conv->keep,
                                   model->workspace));
    else if (act) /* the activation's output, written on the way out (no bias: model.c) */
        return be->conv_forward_act(be, &conv->geom, x, w->value, gan_layer_activation_kind(act), act->spec.slope,
                                    act->output, model->workspace);
    else
        GAN_TRY(be->conv_forward(be, &conv->geom, x, w->value, y, model->workspace));
    if (act)
        return GAN_OK;
    if (layer->bias_param >= 0)
        GAN_TRY(be->bias_forward(be, model->batch, layer->out.c, layer->out.h * layer->out.w,
                                 gan_layer_param(model, layer->bias_param)->value, y));
    return GAN_OK;
}

static gan_status conv_backward(gan_layer *layer, gan_model *model, const float *x,
                                const float *y, const float *dy, float *dx, gan_grad_mode mode)
{
    conv_layer *conv = (conv_layer *)layer;
    gan_backend *be = model->backend;
    const gan_param *w = gan_layer_param(model, layer->weight_param);
    if (mode != GAN_GRADS_NONE) {
        float beta = mode == GAN_GRADS_ACCUMULATE ? 1.0f : 0.0f;
        if (layer->bias_param >= 0)
            GAN_TRY(be->bias_backward(be, model->batch, layer->out.c, layer->out.h * layer->out.w,
                                      dy, beta, gan_layer_param(model, layer->bias_param)->grad));
        const void *kept = conv->kept_from == x ? conv->keep : NULL;
        /* both passes read dy; the forward's copy of x, if kept (dx NULL: dw alone, on that copy) */
        if ((dx || kept) && be->conv_grads)
            return be->conv_grads(be, &conv->geom, x, dy, beta, w->grad, GAN_CONV_BACKWARD_DATA, w->value, dx,
                                  kept, model->workspace);
        GAN_TRY(be->conv_backward_filter(be, &conv->geom, x, dy, beta, w->grad, model->workspace));
    }
    if (dx)
        GAN_TRY(be->conv_backward_data(be, &conv->geom, dy, w->value, dx, model->workspace));
    return GAN_OK;
}

static gan_status conv_init_weights(gan_layer *layer, gan_model *model, gan_weight_init scheme,
                                    uint64_t seed)
{
    return gan_init_weight_and_bias(model, layer, scheme, seed);
}

static const gan_layer_vtable conv_vtable = {
    .infer_shape = conv_infer_shape,
    .declare_params = conv_declare_params,
    .plan = conv_plan,
    .workspace_bytes = conv_workspace_bytes,
    .forward = conv_forward,
    .backward = conv_backward,
    .init_weights = conv_init_weights,
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
