/* The parameter helpers every layer calls while the model is built: a layer declares its
 * parameters and buffers here and finds them again by index. They sit apart from model.c so that
 * the calls run one way: model.c -> layers -> these helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layer.h"

int gan_layer_add_param(gan_model *model, gan_layer *layer, const char *suffix, int ndim,
                        const int64_t *dims, bool trainable)
{
    gan_param *grown = realloc(model->params, (size_t)(model->param_count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    model->params = grown;
    gan_param *p = &model->params[model->param_count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%d.%s", layer->index, suffix);
    p->module_index = layer->index;
    p->ndim = ndim;
    p->count = 1;
    for (int i = 0; i < ndim; i++) {
        p->dims[i] = dims[i];
        p->count *= (size_t)dims[i];
    }
    p->trainable = trainable;
    if (trainable)
        model->trainable_count += p->count;
    else
        model->buffer_count += p->count;
    return model->param_count++;
}

gan_param *gan_layer_param(gan_model *model, int param_index)
{
    return param_index >= 0 ? &model->params[param_index] : NULL;
}

const gan_layer *gan_layer_epilogue(const gan_layer *layer, const gan_model *model)
{
    return layer->epilogue && layer->epilogue->position < model->active_layers ? layer->epilogue : NULL;
}

gan_storage gan_layer_in_storage(const gan_layer *layer, const gan_model *model)
{
    return layer->position > 0 ? model->layers[layer->position - 1]->storage : GAN_STORAGE_F32_NCHW;
}

gan_activation gan_layer_activation_kind(const gan_layer *act)
{
    gan_activation kind = GAN_ACT_RELU;
    gan_layer_kind_activation(act->spec.kind, &kind);
    return kind;
}
