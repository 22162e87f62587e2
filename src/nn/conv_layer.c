/* What Conv2d (conv.c) and ConvTranspose2d (convt.c) share: both run one convolution g through
 * the op table, the transposed layer with the passes' roles exchanged (its forward is g's
 * backward-data, its input gradient g's forward; g's x is the layer's dy and g's dy its x). */
#include "gan/cuda_args.h"
#include "nn/layer.h"

unsigned gan_conv_layer_stored_edges(const gan_layer *layer, const gan_conv_state *c)
{
    if (gan_conv_is_whole_input(&c->geom))
        return 0;
    return GAN_EDGE_IN | (layer->spec.bias ? 0u : GAN_EDGE_OUT);
}

gan_status gan_conv_layer_plan(gan_layer *layer, gan_conv_state *c, gan_model *model, gan_pool *pool)
{
    gan_backend *be = model->backend;
    /* g's x and y are the layer's input and output, or (transposed) its output and input; with an
     * epilogue the activation's output is written, stored as the layer's own (model.c) */
    gan_storage in = gan_layer_in_storage(layer, model), out = layer->storage;
    bool transposed = c->pass == GAN_CONV_BACKWARD_DATA;
    c->geom.x_storage = transposed ? out : in;
    c->geom.y_storage = transposed ? in : out;
    c->geom.w_storage = GAN_STORAGE_F32_NCHW;
    /* the weights as the passes read them, copied at each forward (model.c), where the backend
     * keeps such copies */
    size_t w_bytes = be->conv_weight_copy_bytes && be->conv_weight_copies ? be->conv_weight_copy_bytes(be, &c->geom) : 0;
    if (w_bytes) {
        GAN_TRY(gan_pool_request_bytes(pool, &c->w_copy, w_bytes, "conv weight copies"));
        c->geom.w_storage = be->edge_storage;
        model->weight_copies++;
    }
    size_t bytes = model->inference_only || !be->conv_keep_bytes ? 0 : be->conv_keep_bytes(be, &c->geom, c->pass);
    return bytes ? gan_pool_request_bytes(pool, &c->keep, bytes, "conv kept copies") : GAN_OK;
}

bool gan_conv_layer_weight_copy(gan_layer *layer, gan_model *model, gan_conv_state *c, gan_conv_weight_copy *out)
{
    if (!c->w_copy)
        return false;
    *out = (gan_conv_weight_copy){&c->geom, gan_layer_param(model, layer->weight_param)->value, c->w_copy};
    return true;
}

/* The weights a pass reads: the copy made at this forward, or the FP32 ones. */
static const float *pass_weights(gan_layer *layer, gan_model *model, const gan_conv_state *c)
{
    return c->w_copy ? (const float *)c->w_copy : gan_layer_param(model, layer->weight_param)->value;
}

size_t gan_conv_layer_workspace_bytes(const gan_conv_state *c, gan_model *model)
{
    unsigned passes = model->inference_only ? GAN_CONV_PASS_BIT(c->pass) : GAN_CONV_PASSES_ALL;
    return model->backend->conv_workspace_bytes(model->backend, &c->geom, passes);
}

/* The weight gradient's pass, which runs on the side stream where the model has one. */
size_t gan_conv_layer_side_workspace_bytes(const gan_conv_state *c, gan_model *model)
{
    if (!model->side_stream)
        return 0;
    return model->backend->conv_workspace_bytes(model->backend, &c->geom, GAN_CONV_PASS_BIT(GAN_CONV_BACKWARD_FILTER));
}

gan_status gan_conv_layer_keep_images(gan_model *model, gan_conv_state *c, const uint8_t *pixels, const float *x,
                                      bool *taken)
{
    gan_backend *be = model->backend;
    *taken = false;
    if (!c->keep || c->pass != GAN_CONV_FORWARD || !be->conv_keep_images)
        return GAN_OK;
    if (!pixels) { /* the question alone */
        *taken = true;
        return GAN_OK;
    }
    GAN_TRY(be->conv_keep_images(be, &c->geom, pixels, c->keep));
    c->ahead = x;
    *taken = true;
    return GAN_OK;
}

gan_status gan_conv_layer_forward(gan_layer *layer, gan_model *model, gan_conv_state *c, const float *x, float *y,
                                  bool training)
{
    gan_backend *be = model->backend;
    const float *w = pass_weights(layer, model, c);
    /* with an epilogue, the activation's output, written on the way out (no bias: model.c) */
    const gan_layer *act = gan_layer_epilogue(layer, model);
    float *out = act ? act->output : y;
    /* x's copy made into keep already, from the images (keep_images): read, not made again */
    bool ahead = training && c->keep && c->ahead == x;
    c->ahead = NULL;
    c->kept_from = training && c->keep ? x : NULL;
    if (c->kept_from) /* x's copy left in keep for the backward-filter */
        GAN_TRY(be->conv_keep_pass(be, &c->geom, c->pass, ahead ? NULL : x, w,
                                   act ? (int)gan_layer_activation_kind(act) : GAN_CONV_NO_ACT,
                                   act ? act->spec.slope : 0.0f, out, c->keep, model->workspace));
    else if (act && c->pass == GAN_CONV_FORWARD)
        GAN_TRY(be->conv_forward_act(be, &c->geom, x, w, gan_layer_activation_kind(act), act->spec.slope, out,
                                     model->workspace));
    else if (act)
        GAN_TRY(be->conv_backward_data_act(be, &c->geom, x, w, gan_layer_activation_kind(act),
                                           act->spec.slope, out, model->workspace));
    else if (c->pass == GAN_CONV_FORWARD)
        GAN_TRY(be->conv_forward(be, &c->geom, x, w, out, model->workspace));
    else
        GAN_TRY(be->conv_backward_data(be, &c->geom, x, w, out, model->workspace));
    if (!act && layer->bias_param >= 0)
        GAN_TRY(be->bias_forward(be, model->batch, layer->out.c, layer->out.h * layer->out.w,
                                 gan_layer_param(model, layer->bias_param)->value, y));
    return GAN_OK;
}

gan_status gan_conv_layer_backward(gan_layer *layer, gan_model *model, gan_conv_state *c, const float *x,
                                   const float *dy, float *dx, gan_grad_mode mode)
{
    gan_backend *be = model->backend;
    const float *w = pass_weights(layer, model, c);
    float *dw = gan_layer_param(model, layer->weight_param)->grad;
    bool transposed = c->pass == GAN_CONV_BACKWARD_DATA;
    /* g's x and dy, and the pass that makes the layer's dx */
    const float *conv_x = transposed ? dy : x, *conv_dy = transposed ? x : dy;
    gan_conv_pass other = transposed ? GAN_CONV_FORWARD : GAN_CONV_BACKWARD_DATA;
    if (mode != GAN_GRADS_NONE) {
        float beta = mode == GAN_GRADS_ACCUMULATE ? 1.0f : 0.0f;
        if (layer->bias_param >= 0)
            GAN_TRY(be->bias_backward(be, model->batch, layer->out.c, layer->out.h * layer->out.w, dy, beta,
                                      gan_layer_param(model, layer->bias_param)->grad));
        /* both passes in one op (they read g's dy, or g's x, in common), on the forward's copy of
         * x if it was kept from this x; no dx wanted: the backward-filter alone, on that copy */
        const void *kept = c->kept_from == x ? c->keep : NULL;
        /* with a side stream, the backward-filter there (alone, on the kept copy if there is one)
         * and dx here, at once; not when there is no dx (nothing to run beside it) */
        if (dx && model->side_stream) {
            GAN_TRY(be->side_fork(be));
            gan_status status =
                kept && be->conv_grads
                    ? be->conv_grads(be, &c->geom, conv_x, conv_dy, beta, dw, other, w, NULL, kept, model->side_workspace)
                    : be->conv_backward_filter(be, &c->geom, conv_x, conv_dy, beta, dw, model->side_workspace);
            gan_status back = be->side_return(be);
            GAN_TRY(status);
            GAN_TRY(back);
        } else if ((dx || kept) && be->conv_grads) {
            return be->conv_grads(be, &c->geom, conv_x, conv_dy, beta, dw, other, w, dx, kept,
                                  model->workspace);
        } else {
            GAN_TRY(be->conv_backward_filter(be, &c->geom, conv_x, conv_dy, beta, dw, model->workspace));
        }
    }
    if (dx && transposed)
        return be->conv_forward(be, &c->geom, conv_x, w, dx, model->workspace);
    if (dx)
        return be->conv_backward_data(be, &c->geom, conv_dy, w, dx, model->workspace);
    return GAN_OK;
}
