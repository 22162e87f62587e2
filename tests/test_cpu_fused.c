/* The CPU backend's fused batch norm + ReLU/LeakyReLU (bn_act_forward_train, bn_act_backward)
 * against the ops run apart: the same values bit for bit, op by op and through whole models
 * (a model built on a backend without the fused ops runs them apart). The models also check the
 * convolutions that apply the activation after them on the way out (conv_forward_act,
 * conv_backward_data_act; their ops are checked in test_conv_act.c): which layers are fused, and
 * the same bits as apart, a logits D (its last sigmoid dropped, so not fused) included. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend.h"
#include "gan/nn.h"
#include "gan/pool.h"
#include "nn/layer.h" /* which layers the model fused */
#include "test_util.h"

static gan_backend *be;

static bool same_bits(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

/* One geometry, one activation: forward then backward, fused and apart. */
static void check_ops(int n, int c, int hw, gan_activation act, float slope)
{
    const size_t count = (size_t)n * c * hw;
    float *x = malloc(count * 4), *dy = malloc(count * 4), *gamma = malloc(c * 4), *beta = malloc(c * 4);
    float *y[2], *y_act[2], *dx[2], *stats[2], *grads[2];
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(count * 4);
        y_act[k] = malloc(count * 4);
        dx[k] = malloc(count * 4);
        stats[k] = malloc(4 * c * 4); /* running mean, running var, save mean, save invstd */
        grads[k] = malloc(2 * c * 4);
        for (int i = 0; i < c; i++) {
            stats[k][i] = 0.1f * i;
            stats[k][c + i] = 1.0f + 0.01f * i;
        }
    }
    test_fill_uniform(x, count, 11, -2, 3);
    test_fill_uniform(dy, count, 12, -1, 1);
    test_fill_uniform(gamma, c, 13, 0.5f, 1.5f);
    test_fill_uniform(beta, c, 14, -0.5f, 0.5f);
    x[0] = 0.0f; /* a zero, and a value that lands exactly on the kink after normalising is rare */
    char name[128];
    snprintf(name, sizeof name, "n%d c%d hw%d %s slope %g", n, c, hw, act == GAN_ACT_RELU ? "relu" : "lrelu",
             (double)slope);

    /* apart */
    CHECK_OK(be->bn_forward_train(be, n, c, hw, x, gamma, beta, 0.1f, 1e-5f, stats[0], stats[0] + c,
                                  stats[0] + 2 * c, stats[0] + 3 * c, y[0]));
    CHECK_OK(be->activation_forward(be, act, slope, count, y[0], y_act[0]));
    /* fused */
    CHECK_OK(be->bn_act_forward_train(be, n, c, hw, x, gamma, beta, 0.1f, 1e-5f, stats[1],
                                      stats[1] + c, stats[1] + 2 * c, stats[1] + 3 * c, y[1], act,
                                      slope, y_act[1]));
    CHECK_MSG(same_bits(y[0], y[1], count), "%s: fused forward's batch norm output differs", name);
    CHECK_MSG(same_bits(y_act[0], y_act[1], count), "%s: fused forward's activation output differs", name);
    CHECK_MSG(same_bits(stats[0], stats[1], 4 * (size_t)c), "%s: fused forward's statistics differ", name);

    for (int accumulate = 0; accumulate <= 1; accumulate++) {
        float param_beta = accumulate ? 1.0f : 0.0f;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 2 * c; i++)
                grads[k][i] = 0.25f * i;
        /* apart: the activation's gradient (LeakyReLU from its input, as the layer does), then
         * batch norm's */
        float *dy_bn = malloc(count * 4);
        CHECK_OK(be->activation_backward(be, act, slope, count, y[0], y_act[0], dy, dy_bn));
        CHECK_OK(be->bn_backward(be, n, c, hw, x, dy_bn, gamma, stats[0] + 2 * c, stats[0] + 3 * c,
                                 dx[0], param_beta, grads[0], grads[0] + c));
        free(dy_bn);
        CHECK_OK(be->bn_act_backward(be, n, c, hw, x, y_act[1], dy, act, slope, gamma,
                                     stats[1] + 2 * c, stats[1] + 3 * c, dx[1], param_beta, grads[1],
                                     grads[1] + c));
        CHECK_MSG(same_bits(dx[0], dx[1], count), "%s: fused backward's dx differs (param_beta %g)",
                  name, (double)param_beta);
        CHECK_MSG(same_bits(grads[0], grads[1], 2 * (size_t)c),
                  "%s: fused backward's dgamma/dbeta differ (param_beta %g)", name, (double)param_beta);
    }
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(y_act[k]);
        free(dx[k]);
        free(stats[k]);
        free(grads[k]);
    }
    free(x);
    free(dy);
    free(gamma);
    free(beta);
}

static void check_arguments(void)
{
    float v[8] = {0};
    CHECK_FAILS_WITH(be->bn_act_forward_train(be, 2, 1, 4, v, v, v, 0.1f, 1e-5f, v, v, v, v, v,
                                              GAN_ACT_TANH, 0.0f, v),
                     GAN_ERR_ARG, "not ReLU or LeakyReLU");
    CHECK_FAILS_WITH(be->bn_act_forward_train(be, 2, 1, 4, v, v, v, 0.1f, 1e-5f, v, v, v, v, v,
                                              GAN_ACT_LRELU, -0.5f, v),
                     GAN_ERR_ARG, "slope >= 0");
    CHECK_FAILS_WITH(be->bn_act_backward(be, 2, 1, 4, v, v, v, GAN_ACT_SIGMOID, 0.0f, v, v, v, v,
                                         0.0f, v, v),
                     GAN_ERR_ARG, "not ReLU or LeakyReLU");
    CHECK_FAILS_WITH(be->bn_act_forward_train(be, 2, 1, 4, v, v, v, 0.1f, 1e-5f, v, v, v, v, v,
                                              GAN_ACT_RELU, 0.0f, NULL),
                     GAN_ERR_ARG, "NULL");
}

/* A model on `backend` with weights from a fixed seed. */
static gan_model *model_on(gan_backend *backend, const char *layers, gan_shape input, int batch,
                           gan_pool *pool)
{
    gan_model *m = NULL;
    CHECK_OK(gan_model_create_allocated("m", layers, input, batch, backend, pool, &m));
    if (m)
        CHECK_OK(gan_model_init_weights(m, GAN_INIT_DCGAN, 7));
    return m;
}

/* The layers of m fused as `want` says, one letter per layer: 'b' a batch norm with its activation
 * (fused_activation), 'c' a convolution with its activation (epilogue), 'a' an activation in
 * either, '.' none. */
static void check_fusion(const char *layers, const gan_model *m, const char *want)
{
    char got[64] = "";
    for (int i = 0; i < m->layer_count && i < 63; i++) {
        const gan_layer *l = m->layers[i];
        got[i] = l->fused_activation ? 'b' : l->epilogue ? 'c' : (l->fused_into_previous || l->in_epilogue) ? 'a' : '.';
    }
    CHECK_MSG(!strcmp(got, want), "%s: fused %s, want %s", layers, got, want);
}

/* Two training-mode passes (overwrite, then accumulate, as D's real and fake passes), the second
 * with the input gradient, and one eval-mode forward: outputs, input gradients, parameter
 * gradients and running statistics of the fused model equal the unfused one's. `fusion`: what
 * check_fusion wants of the fused model; `logits`: the model outputs logits (its last sigmoid
 * dropped). */
static void check_model(const char *layers, gan_shape input, int batch, const char *fusion, bool logits)
{
    gan_backend apart = *be;
    apart.bn_act_forward_train = NULL;
    apart.bn_act_backward = NULL;
    apart.conv_forward_act = NULL;
    apart.conv_backward_data_act = NULL;
    gan_pool pools[2];
    gan_model *m[2] = {model_on(be, layers, input, batch, &pools[0]),
                       model_on(&apart, layers, input, batch, &pools[1])};
    if (!m[0] || !m[1])
        return;
    check_fusion(layers, m[0], fusion);
    char none[64];
    snprintf(none, sizeof none, "%.*s", m[1]->layer_count, "...............................................");
    check_fusion(layers, m[1], none);
    for (int k = 0; k < 2 && logits; k++)
        CHECK_OK(gan_model_set_logits_output(m[k], true));
    const size_t in_count = gan_shape_count(input) * batch;
    const size_t out_count = gan_shape_count(m[0]->output_shape) * batch; /* logits: as many */
    float *x = malloc(in_count * 4), *dy = malloc(out_count * 4);
    test_fill_uniform(x, in_count, 21, -1, 1);
    test_fill_uniform(dy, out_count, 22, -1, 1);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 2; k++) {
            CHECK_OK(gan_model_forward(m[k], x, true));
            CHECK_OK(gan_model_backward(m[k], dy, pass ? GAN_GRADS_ACCUMULATE : GAN_GRADS_OVERWRITE,
                                        pass == 1));
        }
    CHECK_MSG(same_bits(gan_model_output(m[0]), gan_model_output(m[1]), out_count),
              "%s: training output differs fused", layers);
    CHECK_MSG(same_bits(m[0]->grad_input, m[1]->grad_input, in_count), "%s: input gradient differs fused",
              layers);
    CHECK_MSG(same_bits(m[0]->grads, m[1]->grads, m[0]->trainable_count),
              "%s: parameter gradients differ fused", layers);
    if (m[0]->buffer_count)
        CHECK_MSG(same_bits(m[0]->buffers, m[1]->buffers, m[0]->buffer_count),
                  "%s: running statistics differ fused", layers);
    for (int k = 0; k < 2; k++)
        CHECK_OK(gan_model_forward(m[k], x, false));
    CHECK_MSG(same_bits(gan_model_output(m[0]), gan_model_output(m[1]), out_count),
              "%s: eval output differs fused", layers);
    free(x);
    free(dy);
    for (int k = 0; k < 2; k++) {
        gan_model_destroy(m[k]);
        gan_pool_release(&pools[k]);
    }
}

int main(void)
{
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    CHECK(be->bn_act_forward_train && be->bn_act_backward && be->conv_forward_act && be->conv_backward_data_act);
    check_ops(3, 4, 10, GAN_ACT_RELU, 0.0f);
    check_ops(3, 4, 10, GAN_ACT_LRELU, 0.2f);
    check_ops(3, 4, 10, GAN_ACT_LRELU, 0.0f);
    check_ops(5, 3, 1, GAN_ACT_RELU, 0.0f);   /* BatchNorm1d */
    check_ops(8, 64, 64, GAN_ACT_LRELU, 0.2f); /* a whole vector width and more per plane, parallel */
    check_ops(16, 160, 37, GAN_ACT_RELU, 0.0f);
    check_arguments();
    /* DCGAN-shaped G and D (BN then ReLU / LeakyReLU), a BN as last layer before a fused
     * activation at the end of the stack, and a first-layer BN */
    check_model("convt(8,4,1,0) bn relu convt(4,4,2,1) bn relu convt(1,4,2,1) tanh", (gan_shape){6, 1, 1}, 5,
                ".ba.baca", false);
    check_model("conv(4,4,2,1) lrelu(0.2) conv(8,4,2,1) bn lrelu(0.2) conv(1,4,1,0) sigmoid",
                (gan_shape){1, 16, 16}, 4, "ca.baca", false);
    /* D as the trainer runs it: logits out, its last convolution unfused (the sigmoid is dropped) */
    check_model("conv(4,4,2,1) lrelu(0.2) conv(8,4,2,1) bn lrelu(0.2) conv(1,4,1,0) sigmoid",
                (gan_shape){1, 16, 16}, 4, "ca.baca", true);
    /* a bias between convolution and activation (apart), and ReLU / sigmoid after a transposed
     * convolution and after a whole-input one */
    check_model("conv(4,3,1,1,bias) relu conv(4,3,1,1) bn relu convt(3,4,2,1) relu conv(2,16,1,0) sigmoid",
                (gan_shape){2, 8, 8}, 3, "...bacaca", false);
    check_model("linear(12) bn relu linear(7) bn lrelu(0.1)", (gan_shape){9, 1, 1}, 6, ".ba.ba", false);
    check_model("bn relu linear(3)", (gan_shape){5, 1, 1}, 4, "ba.", false);
    be->destroy(be);
    return test_finish();
}
