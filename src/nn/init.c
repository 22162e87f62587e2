/* Weight initialisation of conv, convt and linear layers, drawn on the backend from Philox so
 * that CPU and GPU start from the same weights for the same seed. Each tensor has its own
 * stream: (module index << 8) | slot. */
#include <math.h>

#include "nn/layer.h"

/* PyTorch's _calculate_fan_in_and_fan_out: fan_in = dims[1] * receptive field,
 * fan_out = dims[0] * receptive field (for ConvTranspose2d, whose weight is [in, out, k, k],
 * this makes fan_in the OUTPUT channels times k*k, as PyTorch does). */
static void fans(const gan_param *w, double *fan_in, double *fan_out)
{
    double receptive = 1.0;
    for (int i = 2; i < w->ndim; i++)
        receptive *= (double)w->dims[i];
    *fan_in = (double)w->dims[1] * receptive;
    *fan_out = (double)w->dims[0] * receptive;
}

gan_status gan_init_weight_and_bias(gan_model *model, gan_layer *layer, gan_weight_init scheme,
                                    uint64_t seed)
{
    gan_backend *be = model->backend;
    gan_param *w = gan_layer_param(model, layer->weight_param);
    gan_param *b = gan_layer_param(model, layer->bias_param);
    uint64_t stream = (uint64_t)layer->index << 8;
    double fan_in, fan_out;
    fans(w, &fan_in, &fan_out);
    switch (scheme) {
    case GAN_INIT_DCGAN:
        GAN_TRY(be->rng_normal(be, w->count, seed, stream, gan_count_of(0), 0.0f, 0.02f, w->value));
        if (b)
            GAN_TRY(be->fill(be, b->value, 0.0f, b->count));
        return GAN_OK;
    case GAN_INIT_XAVIER: {
        float bound = (float)sqrt(6.0 / (fan_in + fan_out));
        GAN_TRY(be->rng_uniform(be, w->count, seed, stream, gan_count_of(0), -bound, bound, w->value));
        if (b)
            GAN_TRY(be->fill(be, b->value, 0.0f, b->count));
        return GAN_OK;
    }
    case GAN_INIT_PYTORCH: {
        /* kaiming_uniform_(a = sqrt(5)) gives bound = 1 / sqrt(fan_in); the bias uses the same. */
        float bound = (float)(1.0 / sqrt(fan_in));
        GAN_TRY(be->rng_uniform(be, w->count, seed, stream, gan_count_of(0), -bound, bound, w->value));
        if (b)
            GAN_TRY(be->rng_uniform(be, b->count, seed, stream | 1u, gan_count_of(0), -bound, bound,
                                    b->value));
        return GAN_OK;
    }
    }
    return gan_error(GAN_ERR_ARG, "unknown weight init %d", (int)scheme);
}
