/* Linear: y[n, out] = x[n, in] W^T + b with W [out, in] (PyTorch's layout), optional bias [out].
 * Its input must be flat ([N, F, 1, 1]): write `flatten` before it, as PyTorch's forward would. */
#include <stdlib.h>

#include "nn/layer.h"

static gan_status linear_infer_shape(gan_layer *layer, gan_shape in, gan_shape *out)
{
    if (in.h != 1 || in.w != 1)
        return gan_error(GAN_ERR_SHAPE,
                         "linear needs a flat input [N, F]; write `flatten` before it "
                         "(it would see [N, %d] after flatten)",
                         (int)gan_shape_count(in));
    *out = (gan_shape){layer->spec.out, 1, 1};
    return GAN_OK;
}

static gan_status linear_declare_params(gan_layer *layer, gan_model *model)
{
    int64_t dims[2] = {layer->spec.out, layer->in.c};
    layer->weight_param = gan_layer_add_param(model, layer, "weight", 2, dims, true);
    if (layer->spec.bias)
        layer->bias_param = gan_layer_add_param(model, layer, "bias", 1, &dims[0], true);
    if (layer->weight_param < 0 || (layer->spec.bias && layer->bias_param < 0))
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    return GAN_OK;
}

static gan_status linear_forward(gan_layer *layer, gan_model *model, const float *x, float *y,
                                 bool training)
{
    gan_backend *be = model->backend;
    int batch = model->batch, in = layer->in.c, out = layer->out.c;
    const gan_param *w = gan_layer_param(model, layer->weight_param);
    /* y[batch, out] = x[batch, in] * W[out, in]^T */
    GAN_TRY(be->gemm(be, false, true, batch, out, in, 1.0f, x, in, w->value, in, 0.0f, y, out));
    if (layer->bias_param >= 0)
        GAN_TRY(be->bias_forward(be, batch, out, 1, gan_layer_param(model, layer->bias_param)->value, y));
    return GAN_OK;
}

static gan_status linear_backward(gan_layer *layer, gan_model *model, const float *x,
                                  const float *y, const float *dy, float *dx, gan_grad_mode mode)
{
    gan_backend *be = model->backend;
    int batch = model->batch, in = layer->in.c, out = layer->out.c;
    const gan_param *w = gan_layer_param(model, layer->weight_param);
    if (mode != GAN_GRADS_NONE) {
        float beta = mode == GAN_GRADS_ACCUMULATE ? 1.0f : 0.0f;
        /* dW[out, in] = beta dW + dy[batch, out]^T x[batch, in] */
        GAN_TRY(be->gemm(be, true, false, out, in, batch, 1.0f, dy, out, x, in, beta, w->grad, in));
        if (layer->bias_param >= 0)
            GAN_TRY(be->bias_backward(be, batch, out, 1, dy, beta,
                                      gan_layer_param(model, layer->bias_param)->grad));
    }
    /* dx[batch, in] = dy[batch, out] W[out, in] */
    if (dx)
        GAN_TRY(be->gemm(be, false, false, batch, in, out, 1.0f, dy, out, w->value, in, 0.0f, dx, in));
    return GAN_OK;
}

static gan_status linear_init_weights(gan_layer *layer, gan_model *model, gan_weight_init scheme,
                                      uint64_t seed)
{
    return gan_init_weight_and_bias(model, layer, scheme, seed);
}

static const gan_layer_vtable linear_vtable = {
    .infer_shape = linear_infer_shape,
    .declare_params = linear_declare_params,
    .forward = linear_forward,
    .backward = linear_backward,
    .init_weights = linear_init_weights,
};

gan_layer *gan_linear_layer_new(const gan_layer_spec *spec)
{
    gan_layer *layer = calloc(1, sizeof *layer);
    if (!layer)
        return NULL;
    layer->vt = &linear_vtable;
    layer->spec = *spec;
    return layer;
}
