/* A model: a layer sequence with inferred shapes, its parameters in contiguous buffers, and the
 * forward and backward passes that walk it. */
#include <stdlib.h>
#include <string.h>

#include "nn/layer.h"

static gan_layer *layer_new(const gan_layer_spec *spec)
{
    switch (spec->kind) {
    case GAN_LAYER_CONV: return gan_conv_layer_new(spec);
    case GAN_LAYER_CONVT: return gan_convt_layer_new(spec);
    case GAN_LAYER_LINEAR: return gan_linear_layer_new(spec);
    case GAN_LAYER_BN: return gan_batchnorm_layer_new(spec);
    case GAN_LAYER_RELU:
    case GAN_LAYER_LRELU:
    case GAN_LAYER_TANH:
    case GAN_LAYER_SIGMOID: return gan_activation_layer_new(spec);
    case GAN_LAYER_DROPOUT: return gan_dropout_layer_new(spec);
    case GAN_LAYER_FLATTEN:
    case GAN_LAYER_RESHAPE: return NULL; /* views are not layers */
    }
    return NULL;
}

/* Whether a layer's output is small enough for int indexing per sample (the backends' kernels)
 * and for size_t arithmetic over the batch: 2^31 values per sample, 2^40 in a batch. */
static bool shape_fits(gan_shape s, int batch)
{
    double per_sample = (double)s.c * (double)s.h * (double)s.w;
    return s.c >= 1 && s.h >= 1 && s.w >= 1 && per_sample <= 2147483648.0 &&
           per_sample * (double)batch <= 1099511627776.0;
}

static void format_shape(char *buf, size_t bytes, int batch, gan_shape s)
{
    snprintf(buf, bytes, "[%d, %d, %d, %d]", batch, s.c, s.h, s.w);
}

/* Batch norm followed by ReLU or LeakyReLU (slope >= 0, so that its output's sign is its
 * input's) runs as one op where the backend has it: see gan_layer.fused_activation. */
static void fuse_bn_activations(gan_model *model)
{
    const gan_backend *be = model->backend;
    if (!be || !be->bn_act_forward_train || !be->bn_act_backward)
        return;
    for (int i = 0; i + 1 < model->layer_count; i++) {
        gan_layer *bn = model->layers[i], *act = model->layers[i + 1];
        if (bn->spec.kind != GAN_LAYER_BN || act->fused_into_previous)
            continue;
        if (act->spec.kind == GAN_LAYER_RELU ||
            (act->spec.kind == GAN_LAYER_LRELU && act->spec.slope >= 0.0f)) {
            bn->fused_activation = act;
            act->fused_into_previous = true;
        }
    }
}

/* A Conv2d or ConvTranspose2d without bias followed by ReLU, LeakyReLU (slope >= 0, so that its
 * output's sign is its input's: its backward then reads the output), tanh or sigmoid runs as one
 * op where the backend has the two conv + activation ops: see gan_layer.epilogue. */
static void fuse_conv_activations(gan_model *model)
{
    const gan_backend *be = model->backend;
    if (!be || !be->conv_forward_act || !be->conv_backward_data_act)
        return;
    for (int i = 0; i + 1 < model->layer_count; i++) {
        gan_layer *conv = model->layers[i], *act = model->layers[i + 1];
        gan_layer_kind kind = act->spec.kind;
        /* (with a bias the activation would come after it: those run apart) */
        if ((conv->spec.kind != GAN_LAYER_CONV && conv->spec.kind != GAN_LAYER_CONVT) || conv->spec.bias ||
            act->fused_into_previous)
            continue;
        if (kind == GAN_LAYER_RELU || kind == GAN_LAYER_TANH || kind == GAN_LAYER_SIGMOID ||
            (kind == GAN_LAYER_LRELU && act->spec.slope >= 0.0f)) {
            conv->epilogue = act;
            act->in_epilogue = true;
        }
    }
}

/* Appends the layer `spec` describes (a view only changes `shape`), inferring its output shape
 * and declaring its parameters; `module_index` counts the layers as the layer text numbers them. */
static gan_status add_layer(gan_model *model, const char *name, const gan_layer_spec *spec,
                            int *module_index, gan_shape *shape)
{
    int batch = model->batch;
    char in_text[64], want_text[64];
    format_shape(in_text, sizeof in_text, batch, *shape);
    if (spec->kind == GAN_LAYER_FLATTEN) {
        *shape = (gan_shape){(int)gan_shape_count(*shape), 1, 1};
        return GAN_OK;
    }
    if (spec->kind == GAN_LAYER_RESHAPE) {
        if (gan_shape_count(spec->reshape) != gan_shape_count(*shape)) {
            format_shape(want_text, sizeof want_text, batch, spec->reshape);
            return gan_error(GAN_ERR_SHAPE,
                             "%s layer %d (reshape): cannot view input %s as %s: %zu vs %zu "
                             "values per sample",
                             name, *module_index, in_text, want_text,
                             gan_shape_count(*shape), gan_shape_count(spec->reshape));
        }
        *shape = spec->reshape;
        return GAN_OK;
    }
    gan_layer *layer = layer_new(spec);
    if (!layer)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", name);
    layer->index = (*module_index)++;
    layer->position = model->layer_count;
    layer->batch = batch;
    layer->in = *shape;
    layer->weight_param = layer->bias_param = -1;
    model->layers[model->layer_count++] = layer;
    gan_status status = layer->vt->infer_shape(layer, *shape, &layer->out);
    if (status == GAN_OK && !shape_fits(layer->out, batch))
        status = gan_error(GAN_ERR_SHAPE, "the output [%d, %d, %d, %d] has more than 2^31 values per "
                                          "sample or 2^40 in the batch", batch, layer->out.c, layer->out.h,
                           layer->out.w);
    if (status != GAN_OK)
        return gan_error_prefix(status, "%s layer %d (%s) on input %s: ", name, layer->index,
                                gan_layer_kind_name(spec->kind), in_text);
    status = layer->vt->declare_params(layer, model);
    if (status != GAN_OK)
        return gan_error_prefix(status, "%s layer %d (%s): ", name, layer->index,
                                gan_layer_kind_name(spec->kind));
    *shape = layer->out;
    return GAN_OK;
}

/* The layers of `specs` in order, from the model's input shape to its output shape. */
static gan_status add_layers(gan_model *model, const char *name, const gan_layer_spec *specs,
                             int spec_count, gan_shape *shape)
{
    int module_index = 0;
    for (int i = 0; i < spec_count; i++)
        GAN_TRY(add_layer(model, name, &specs[i], &module_index, shape));
    if (model->layer_count == 0)
        return gan_error(GAN_ERR_CONFIG, "%s: the layer sequence has only views, no layers", name);
    return GAN_OK;
}

gan_status gan_model_create(const char *name, const char *layers_text, gan_shape input_shape,
                            int batch, gan_backend *backend, gan_model **out)
{
    *out = NULL;
    if (batch < 1)
        return gan_error(GAN_ERR_ARG, "%s: batch size must be >= 1, got %d", name, batch);
    if (input_shape.c < 1 || input_shape.h < 1 || input_shape.w < 1)
        return gan_error(GAN_ERR_ARG, "%s: input shape [%d, %d, %d] is empty", name,
                         input_shape.c, input_shape.h, input_shape.w);
    gan_layer_spec *specs = NULL;
    int spec_count = 0;
    gan_status status = gan_layers_parse(layers_text, &specs, &spec_count);
    if (status != GAN_OK)
        return gan_error_prefix(status, "%s: ", name);

    gan_model *model = calloc(1, sizeof *model);
    if (!model || !(model->layers = calloc((size_t)spec_count, sizeof *model->layers))) {
        free(model);
        free(specs);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", name);
    }
    snprintf(model->name, sizeof model->name, "%s", name);
    model->backend = backend;
    model->batch = batch;
    model->global_batch = batch;
    model->input_shape = input_shape;

    gan_shape shape = input_shape;
    status = add_layers(model, name, specs, spec_count, &shape);
    free(specs);
    if (status != GAN_OK) {
        gan_model_destroy(model);
        return status;
    }
    model->output_shape = shape;
    model->active_layers = model->layer_count;
    fuse_bn_activations(model);
    fuse_conv_activations(model);
    *out = model;
    return GAN_OK;
}

gan_status gan_model_set_data_parallel(gan_model *model, int global_batch, int sample_offset, bool sync_bn)
{
    if (global_batch < model->batch || sample_offset < 0 || sample_offset > global_batch - model->batch)
        return gan_error(GAN_ERR_ARG, "%s: samples %d..%d are not part of a global batch of %d", model->name,
                         sample_offset, sample_offset + model->batch - 1, global_batch);
    const gan_backend *be = model->backend;
    if (sync_bn && (!be->allreduce_sum_f64 || !be->bn_sums || !be->bn_centered_squares ||
                    !be->bn_forward_from_sums || !be->bn_backward_sums || !be->bn_backward_from_sums))
        return gan_error(GAN_ERR_UNSUPPORTED,
                         "%s: the %s backend cannot sum batch norm statistics over ranks (train.sync_bn = "
                         "false keeps each rank's own)",
                         model->name, be->name);
    model->global_batch = global_batch;
    model->sample_offset = sample_offset;
    model->sync_bn = sync_bn;
    return GAN_OK;
}

/* Whether the backend keeps NHWC edges and has every op one needs (the BF16 activations for BF16
 * ones; FP32 NHWC is FP32 elementwise). */
static bool backend_stores(const gan_backend *be)
{
    if (!be || be->edge_storage == GAN_STORAGE_F32_NCHW || !be->bn_stored_forward_train ||
        !be->bn_stored_forward_eval || !be->bn_stored_backward)
        return false;
    return be->edge_storage != GAN_STORAGE_BF16_NHWC ||
           (be->activation_bf16_forward && be->activation_bf16_backward);
}

/* The storage of each layer's output (and output gradient): the backend's NHWC storage where it
 * keeps such edges (gan_backend.edge_storage: BF16 or FP32) and the edge lies between two layers
 * whose ops take it (gan_layer_vtable.stored_edges), with its channels in whole groups of 16
 * bytes (8 BF16 or 4 FP32 values: cuDNN's NHWC without padding),
 * no view between (a reshape or flatten reads NCHW order), inside the layers the model runs (its
 * input and output stay FP32 NCHW: the data, the loss, the samples and the other network), and
 * not with train.sync_bn (its split batch norm is FP32 NCHW). An activation reads and writes its
 * two edges alike (elementwise; and a batch norm or convolution it is fused into writes both), so
 * where one of the two cannot be stored neither is. FP32 NCHW everywhere else. */
void gan_model_plan_storage(gan_model *model)
{
    for (int i = 0; i < model->layer_count; i++)
        model->layers[i]->storage = GAN_STORAGE_F32_NCHW;
    if (!backend_stores(model->backend) || model->sync_bn)
        return;
    gan_storage stored = model->backend->edge_storage;
    int group = gan_storage_channel_group(stored);
    for (int i = 0; i + 1 < model->active_layers; i++) {
        gan_layer *from = model->layers[i], *to = model->layers[i + 1];
        unsigned out = from->vt->stored_edges ? from->vt->stored_edges(from) : 0;
        unsigned in = to->vt->stored_edges ? to->vt->stored_edges(to) : 0;
        bool no_view = from->out.c == to->in.c && from->out.h == to->in.h && from->out.w == to->in.w;
        if ((out & GAN_EDGE_OUT) && (in & GAN_EDGE_IN) && no_view && from->out.c % group == 0)
            from->storage = stored;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < model->layer_count; i++) {
            gan_layer *act = model->layers[i];
            gan_storage in = gan_layer_in_storage(act, model);
            gan_activation kind;
            if (!gan_layer_kind_activation(act->spec.kind, &kind) || in == act->storage)
                continue;
            act->storage = GAN_STORAGE_F32_NCHW;
            if (i > 0)
                model->layers[i - 1]->storage = GAN_STORAGE_F32_NCHW;
            changed = true;
        }
    }
}

int gan_model_stored_edges(const gan_model *model)
{
    int n = 0;
    for (int i = 0; i < model->layer_count; i++)
        n += model->layers[i]->storage != GAN_STORAGE_F32_NCHW;
    return n;
}

gan_status gan_model_plan(gan_model *model, gan_pool *pool)
{
    bool grads = !model->inference_only;
    gan_model_plan_storage(model);
    model->weight_copies = 0; /* counted by the convolutions' plans */
    if (grads) {
        size_t trainable = model->trainable_count ? model->trainable_count : 1;
        GAN_TRY(gan_pool_request_floats(pool, &model->weights, trainable, "weights"));
        GAN_TRY(gan_pool_request_floats(pool, &model->grads, trainable, "gradients"));
        GAN_TRY(gan_pool_request_floats(pool, &model->adam_m, trainable, "Adam state"));
        GAN_TRY(gan_pool_request_floats(pool, &model->adam_v, trainable, "Adam state"));
        if (model->buffer_count)
            GAN_TRY(gan_pool_request_floats(pool, &model->buffers, model->buffer_count, "BN running stats"));
        size_t input_count = (size_t)model->batch * gan_shape_count(model->input_shape);
        GAN_TRY(gan_pool_request_floats(pool, &model->grad_input, input_count, "activations+grads"));
    }
    /* the convolutions' workspace, and their weight gradients' on the side stream (conv_layer.c) */
    gan_backend *be = model->backend;
    model->side_stream = grads && be->side_fork && be->side_return && be->side_join;
    size_t workspace = 0, side = 0;
    for (int i = 0; i < model->layer_count; i++) {
        gan_layer *layer = model->layers[i];
        size_t out_bytes = (size_t)model->batch * gan_shape_count(layer->out) *
                           gan_storage_element_bytes(layer->storage);
        GAN_TRY(gan_pool_request_bytes(pool, (void **)&layer->output, out_bytes, "activations+grads"));
        if (grads)
            GAN_TRY(gan_pool_request_bytes(pool, (void **)&layer->grad_output, out_bytes, "activations+grads"));
        if (layer->vt->plan)
            GAN_TRY(layer->vt->plan(layer, model, pool));
        if (layer->vt->workspace_bytes) {
            size_t bytes = layer->vt->workspace_bytes(layer, model);
            if (bytes > workspace)
                workspace = bytes;
        }
        if (model->side_stream && layer->vt->side_workspace_bytes) {
            size_t bytes = layer->vt->side_workspace_bytes(layer, model);
            if (bytes > side)
                side = bytes;
        }
    }
    model->workspace_bytes = workspace;
    if (workspace)
        GAN_TRY(gan_pool_request_bytes(pool, &model->workspace, workspace, "conv workspace"));
    model->side_workspace_bytes = side;
    if (side)
        GAN_TRY(gan_pool_request_bytes(pool, &model->side_workspace, side, "conv side workspace"));
    return GAN_OK;
}

gan_status gan_model_bind(gan_model *model)
{
    if (model->inference_only)
        return GAN_OK; /* its weights come from gan_model_share_weights */
    if (!model->weights)
        return gan_error(GAN_ERR_ARG, "%s: bind before the pool was committed", model->name);
    size_t weight_offset = 0, buffer_offset = 0;
    for (int i = 0; i < model->param_count; i++) {
        gan_param *p = &model->params[i];
        if (p->trainable) {
            p->value = model->weights + weight_offset;
            p->grad = model->grads + weight_offset;
            weight_offset += p->count;
        } else {
            p->value = model->buffers + buffer_offset;
            p->grad = NULL;
            buffer_offset += p->count;
        }
    }
    gan_backend *be = model->backend;
    size_t trainable = model->trainable_count;
    if (trainable) {
        GAN_TRY(be->fill(be, model->grads, 0.0f, trainable));
        GAN_TRY(be->fill(be, model->adam_m, 0.0f, trainable));
        GAN_TRY(be->fill(be, model->adam_v, 0.0f, trainable));
    }
    return GAN_OK;
}

gan_status gan_model_create_allocated(const char *name, const char *layers_text,
                                      gan_shape input_shape, int batch, gan_backend *backend,
                                      gan_pool *pool, gan_model **out)
{
    gan_model *model = NULL;
    GAN_TRY(gan_model_create(name, layers_text, input_shape, batch, backend, &model));
    gan_pool_init(pool, backend);
    gan_status status = GAN_OK;
    GAN_CHECK(gan_model_plan(model, pool));
    GAN_CHECK(gan_pool_commit(pool));
    GAN_CHECK(gan_model_bind(model));
    GAN_CHECK(gan_model_init_weights(model, GAN_INIT_PYTORCH, 0));
    *out = model;
    return GAN_OK;
cleanup:
    gan_model_destroy(model);
    gan_pool_release(pool);
    return status;
}

void gan_model_destroy(gan_model *model)
{
    if (!model)
        return;
    for (int i = 0; i < model->layer_count; i++)
        free(model->layers[i]);
    free(model->layers);
    free(model->params);
    free(model);
}

gan_status gan_model_set_logits_output(gan_model *model, bool logits)
{
    if (!logits) {
        model->active_layers = model->layer_count;
        return GAN_OK;
    }
    gan_layer *last = model->layers[model->layer_count - 1];
    if (last->spec.kind != GAN_LAYER_SIGMOID)
        return gan_error(GAN_ERR_CONFIG,
                         "%s: the last layer must be sigmoid for the loss to take logits "
                         "(it is layer %d, %s)",
                         model->name, last->index, gan_layer_kind_name(last->spec.kind));
    if (model->layer_count < 2)
        return gan_error(GAN_ERR_CONFIG, "%s: a sigmoid alone has no logits to output", model->name);
    model->active_layers = model->layer_count - 1;
    return GAN_OK;
}

/* The weight copies of every convolution that reads one, in one op (conv_weight_copies): at the
 * start of each forward, so that they hold the weights this forward and its backward use. */
static gan_status copy_weights(gan_model *model)
{
    enum { MOST = 64 };
    gan_conv_weight_copy copies[MOST];
    int n = 0;
    for (int i = 0; i < model->layer_count && n < MOST; i++) {
        gan_layer *layer = model->layers[i];
        if (layer->vt->weight_copy && layer->vt->weight_copy(layer, model, &copies[n]))
            n++;
    }
    if (n != model->weight_copies)
        return gan_error(GAN_ERR_ARG, "%d found, %d planned", n, model->weight_copies);
    return model->backend->conv_weight_copies(model->backend, n, copies);
}

gan_status gan_model_forward(gan_model *model, const float *input, bool training)
{
    model->input = input;
    if (model->weight_copies) {
        gan_status status = copy_weights(model);
        if (status != GAN_OK)
            return gan_error_prefix(status, "%s weight copies: ", model->name);
    }
    const float *x = input;
    for (int i = 0; i < model->active_layers; i++) {
        gan_layer *layer = model->layers[i];
        if ((training && layer->fused_into_previous) || /* computed by the batch norm before it */
            layer->in_epilogue) {                        /* by the convolution before it */
            x = layer->output;
            continue;
        }
        gan_status status = layer->vt->forward(layer, model, x, layer->output, training);
        if (status != GAN_OK)
            return gan_error_prefix(status, "%s layer %d (%s) forward: ", model->name,
                                    layer->index, gan_layer_kind_name(layer->spec.kind));
        x = layer->output;
    }
    return GAN_OK;
}

gan_status gan_model_images_in(gan_model *model, int h, int w, int c, const uint8_t *pixels, float *input)
{
    if (!pixels || !input)
        return gan_error(GAN_ERR_ARG, "%s: no images, or no input buffer", model->name);
    gan_shape in = model->input_shape;
    if (in.c != c || in.h != h || in.w != w)
        return gan_error(GAN_ERR_SHAPE, "%s: images of %dx%d with %d channels for an input [%d, %d, %d]", model->name,
                         h, w, c, in.c, in.h, in.w);
    gan_layer *first = model->layers[0];
    bool taken = false;
    if (!model->inference_only && first->vt->keep_images) {
        gan_status status = first->vt->keep_images(first, model, pixels, input, &taken);
        if (status != GAN_OK)
            return gan_error_prefix(status, "%s layer %d (%s) input from the images: ", model->name, first->index,
                                    gan_layer_kind_name(first->spec.kind));
    }
    gan_backend *be = model->backend;
    return taken ? GAN_OK : be->images_to_float(be, model->batch, h, w, c, pixels, input);
}

bool gan_model_takes_images(gan_model *model)
{
    gan_layer *first = model->layers[0];
    bool taken = false;
    return !model->inference_only && first->vt->keep_images &&
           first->vt->keep_images(first, model, NULL, NULL, &taken) == GAN_OK && taken;
}

float *gan_model_output(gan_model *model)
{
    return model->layers[model->active_layers - 1]->output;
}

gan_status gan_model_backward(gan_model *model, const float *grad_output, gan_grad_mode mode,
                              bool want_grad_input)
{
    if (model->inference_only)
        return gan_error(GAN_ERR_ARG, "%s runs forward only", model->name);
    const float *dy = grad_output;
    gan_status status = GAN_OK;
    for (int i = model->active_layers - 1; i >= 0 && status == GAN_OK; i--) {
        gan_layer *layer = model->layers[i];
        /* A fused activation's backward runs inside the batch norm's: dy stays the gradient at
         * the activation's output, which the batch norm reads with the activation's output. */
        if (layer->fused_into_previous)
            continue;
        /* An activation the convolution before it applied reads its own output (that convolution's
         * output was never written). */
        const float *x = layer->in_epilogue ? layer->output : i > 0 ? model->layers[i - 1]->output : model->input;
        float *dx = i > 0 ? model->layers[i - 1]->grad_output
                          : (want_grad_input ? model->grad_input : NULL);
        const float *y = layer->fused_activation && layer->fused_activation->position < model->active_layers
                             ? layer->fused_activation->output
                             : layer->output;
        status = layer->vt->backward(layer, model, x, y, dy, dx, mode);
        if (status != GAN_OK)
            status = gan_error_prefix(status, "%s layer %d (%s) backward: ", model->name, layer->index,
                                      gan_layer_kind_name(layer->spec.kind));
        dy = dx;
    }
    /* the weight gradients queued on the side stream are done before anything after this backward
     * (the next forward overwrites what they read; Adam reads what they write); a join with
     * nothing queued since the last one costs nothing */
    if (model->side_stream) {
        gan_status joined = model->backend->side_join(model->backend);
        if (status == GAN_OK && joined != GAN_OK)
            status = gan_error_prefix(joined, "%s backward, joining the side stream: ", model->name);
    }
    return status;
}

gan_status gan_model_init_weights(gan_model *model, gan_weight_init scheme, uint64_t seed)
{
    for (int i = 0; i < model->layer_count; i++) {
        gan_layer *layer = model->layers[i];
        if (layer->vt->init_weights)
            GAN_TRY(layer->vt->init_weights(layer, model, scheme, seed));
    }
    return GAN_OK;
}

gan_status gan_model_zero_grads(gan_model *model)
{
    if (!model->trainable_count)
        return GAN_OK;
    return model->backend->fill(model->backend, model->grads, 0.0f, model->trainable_count);
}

gan_status gan_model_share_weights(gan_model *dst, const gan_model *src)
{
    if (dst->param_count != src->param_count || dst->trainable_count != src->trainable_count ||
        dst->buffer_count != src->buffer_count)
        return gan_error(GAN_ERR_ARG, "%s cannot share the weights of %s: different layers",
                         dst->name, src->name);
    for (int i = 0; i < dst->param_count; i++) {
        if (strcmp(dst->params[i].name, src->params[i].name) ||
            dst->params[i].count != src->params[i].count)
            return gan_error(GAN_ERR_ARG, "%s cannot share the weights of %s: %s differs",
                             dst->name, src->name, dst->params[i].name);
        dst->params[i].value = src->params[i].value;
    }
    dst->weights = src->weights;
    dst->buffers = src->buffers;
    return GAN_OK;
}

gan_status gan_model_share_weights_at(gan_model *dst, const gan_model *src, float *weights)
{
    GAN_TRY(gan_model_share_weights(dst, src));
    if (!weights)
        return gan_error(GAN_ERR_ARG, "%s: no weights to point at", dst->name);
    for (int i = 0; i < dst->param_count; i++)
        if (dst->params[i].trainable)
            dst->params[i].value = weights + (src->params[i].value - src->weights);
    dst->weights = weights;
    return GAN_OK;
}

gan_param *gan_model_find_param(gan_model *model, const char *name)
{
    for (int i = 0; i < model->param_count; i++)
        if (!strcmp(model->params[i].name, name))
            return &model->params[i];
    return NULL;
}

static gan_layer *find_bn(const gan_model *model, int module_index)
{
    for (int i = 0; i < model->layer_count; i++)
        if (model->layers[i]->index == module_index && model->layers[i]->spec.kind == GAN_LAYER_BN)
            return model->layers[i];
    return NULL;
}

int gan_model_bn_counts(const gan_model *model, int64_t *out, int max)
{
    int n = 0;
    for (int i = 0; i < model->layer_count; i++)
        if (model->layers[i]->spec.kind == GAN_LAYER_BN) {
            if (n < max)
                out[n] = *gan_batchnorm_batches_tracked(model->layers[i]);
            n++;
        }
    return n;
}

void gan_model_add_bn_counts(gan_model *model, const int64_t *delta, int n)
{
    int k = 0;
    for (int i = 0; i < model->layer_count && k < n; i++)
        if (model->layers[i]->spec.kind == GAN_LAYER_BN)
            *gan_batchnorm_batches_tracked(model->layers[i]) += delta[k++];
}

int64_t gan_model_bn_batches_tracked(const gan_model *model, int module_index)
{
    gan_layer *bn = find_bn(model, module_index);
    return bn ? *gan_batchnorm_batches_tracked(bn) : -1;
}

gan_status gan_model_set_bn_batches_tracked(gan_model *model, int module_index, int64_t value)
{
    gan_layer *bn = find_bn(model, module_index);
    if (!bn)
        return gan_error(GAN_ERR_ARG, "%s: module %d is not a batch norm", model->name, module_index);
    *gan_batchnorm_batches_tracked(bn) = value;
    return GAN_OK;
}

int gan_model_layer_count(const gan_model *model) { return model->layer_count; }

gan_status gan_model_layer_info(const gan_model *model, int position, gan_layer_info *out)
{
    if (position < 0 || position >= model->layer_count)
        return gan_error(GAN_ERR_ARG, "%s has %d layers, no layer at position %d", model->name,
                         model->layer_count, position);
    const gan_layer *layer = model->layers[position];
    bool bn = layer->spec.kind == GAN_LAYER_BN;
    *out = (gan_layer_info){
        .spec = layer->spec,
        .index = layer->index,
        .position = position,
        .batch = layer->batch,
        .in = layer->in,
        .out = layer->out,
        .active = position < model->active_layers,
        .fused = layer->fused_into_previous,
        .in_epilogue = layer->in_epilogue,
        .bn_epsilon = bn ? GAN_BN_EPSILON : 0.0f,
        .bn_momentum = bn ? GAN_BN_MOMENTUM : 0.0f,
        .storage = layer->storage,
    };
    return GAN_OK;
}

void gan_model_print(const gan_model *model, FILE *out)
{
    fprintf(out, "%s: input [%d, %d, %d, %d]\n", model->name, model->batch, model->input_shape.c,
            model->input_shape.h, model->input_shape.w);
    for (int i = 0; i < model->layer_count; i++) {
        const gan_layer *layer = model->layers[i];
        size_t params = 0;
        for (int p = 0; p < model->param_count; p++)
            if (model->params[p].module_index == layer->index && model->params[p].trainable)
                params += model->params[p].count;
        fprintf(out, "  %2d %-8s -> [%d, %d, %d, %d] %10zu params\n", layer->index,
                gan_layer_kind_name(layer->spec.kind), model->batch, layer->out.c, layer->out.h,
                layer->out.w, params);
    }
}
