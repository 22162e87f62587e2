/* Internal interface between the model and its layers. Each layer kind lives in its own file
 * (conv.c, convt.c, linear.c, batchnorm.c, activation.c, dropout.c) and embeds gan_layer as its
 * first member. */
#ifndef GAN_NN_LAYER_H
#define GAN_NN_LAYER_H

#include "gan/nn.h"

typedef struct gan_layer_vtable {
    /* Output shape for `in`, or GAN_ERR_SHAPE with a message (the model prefixes the index). */
    gan_status (*infer_shape)(gan_layer *layer, gan_shape in, gan_shape *out);
    /* Declares parameters and buffers (gan_layer_add_param) once shapes are known. */
    gan_status (*declare_params)(gan_layer *layer, gan_model *model);
    /* Requests the layer's own memory beyond its output and output-gradient buffers. */
    gan_status (*plan)(gan_layer *layer, gan_model *model, gan_pool *pool);
    size_t (*workspace_bytes)(gan_layer *layer, gan_model *model);
    /* The workspace of the work the layer queues on the side stream (model->side_stream), NULL
     * for a layer that queues none. */
    size_t (*side_workspace_bytes)(gan_layer *layer, gan_model *model);
    gan_status (*forward)(gan_layer *layer, gan_model *model, const float *x, float *y,
                          bool training);
    /* dx may be NULL (no gradient wanted with respect to the input). */
    gan_status (*backward)(gan_layer *layer, gan_model *model, const float *x, const float *y,
                           const float *dy, float *dx, gan_grad_mode mode);
    gan_status (*init_weights)(gan_layer *layer, gan_model *model, gan_weight_init scheme,
                               uint64_t seed);
    /* Which of the layer's edges its ops take stored NHWC (gan_storage), where the backend keeps
     * such edges (gan_backend.edge_storage): GAN_EDGE_IN, GAN_EDGE_OUT, both, or 0 (NULL:
     * neither). The model decides (model.c: plan_storage). */
    unsigned (*stored_edges)(const gan_layer *layer);
    /* The weight copy the layer's passes read (conv_weight_copies), made by the model at the start
     * of each forward for all its layers in one op: true and *out where the layer has one. */
    bool (*weight_copy)(gan_layer *layer, gan_model *model, gan_conv_weight_copy *out);
    /* The model's input `x` from the uint8 batch `pixels`, written straight into the copy of x the
     * layer's training forward keeps (conv_keep_images), which the next forward on x then reads in
     * place of x: *taken false, and nothing done, where the layer keeps no such copy (NULL: never;
     * gan_model_images_in). `pixels` NULL: nothing done, *taken says whether it would be. */
    gan_status (*keep_images)(gan_layer *layer, gan_model *model, const uint8_t *pixels, const float *x, bool *taken);
} gan_layer_vtable;

enum { GAN_EDGE_IN = 1u, GAN_EDGE_OUT = 2u };

struct gan_layer {
    const gan_layer_vtable *vt;
    gan_layer_spec spec;
    int index;            /* PyTorch module index */
    int position;         /* place in model->layers (views take a place but no index) */
    int batch;
    gan_shape in, out;    /* per sample */
    float *output;        /* [batch, out] */
    float *grad_output;   /* [batch, out]: gradient with respect to output */
    gan_storage storage;  /* of output and grad_output: FP32 NCHW, or NHWC (model.c) */
    int weight_param;     /* index into model->params, -1 if none */
    int bias_param;
    /* Batch norm fused with the activation after it (where the backend has the fused ops): in
     * training mode the batch norm's op writes the activation's output too, and its backward
     * reads the activation's output and output gradient (the gradient between the two is never
     * written); the activation layer does nothing itself. Eval mode runs the two apart. */
    gan_layer *fused_activation;  /* on the batch norm */
    bool fused_into_previous;     /* on the activation */
    /* A convolution (Conv2d, ConvTranspose2d) followed by ReLU, LeakyReLU (slope >= 0), tanh or
     * sigmoid, where the backend has conv_forward_act and conv_backward_data_act: the
     * convolution's op applies the activation on the way out and writes the activation's output
     * (the convolution's own output is not written), in training and in eval mode, whenever the
     * activation is one of the layers the model runs (gan_model_set_logits_output can drop a last
     * sigmoid). The activation does nothing forward; its backward reads its own output where it
     * would read its input (LeakyReLU with slope >= 0: positive exactly where its input is). */
    gan_layer *epilogue;          /* on the convolution */
    bool in_epilogue;             /* on the activation */
};

/* The activation a convolution layer applies on its way out, NULL for none (see
 * gan_layer.epilogue): only while that activation is one of the layers the model runs. */
const gan_layer *gan_layer_epilogue(const gan_layer *layer, const gan_model *model);
/* The storage of the layer's input: the layer before it's, FP32 NCHW for the model's input. */
gan_storage gan_layer_in_storage(const gan_layer *layer, const gan_model *model);
/* The op-table activation of an activation layer (ReLU, LeakyReLU, Tanh, Sigmoid). */
gan_activation gan_layer_activation_kind(const gan_layer *act);

/* The parameter helpers (layer.c), called by the layers while the model is built: adds a
 * parameter or buffer named "<index>.<suffix>" and returns its index in model->params (-1 when
 * out of memory); gan_layer_param finds it again (NULL for -1). */
int gan_layer_add_param(gan_model *model, gan_layer *layer, const char *suffix, int ndim,
                        const int64_t *dims, bool trainable);
gan_param *gan_layer_param(gan_model *model, int param_index);

/* Constructors, one per kind (the spec is copied). */
gan_layer *gan_conv_layer_new(const gan_layer_spec *spec);
gan_layer *gan_convt_layer_new(const gan_layer_spec *spec);
gan_layer *gan_linear_layer_new(const gan_layer_spec *spec);
gan_layer *gan_batchnorm_layer_new(const gan_layer_spec *spec);
gan_layer *gan_activation_layer_new(const gan_layer_spec *spec);
gan_layer *gan_dropout_layer_new(const gan_layer_spec *spec);

/* num_batches_tracked of a BN layer (host counter). */
int64_t *gan_batchnorm_batches_tracked(gan_layer *layer);

/* What Conv2d and ConvTranspose2d share (conv_layer.c). Each runs one convolution `geom` through
 * the op table: a Conv2d's forward is its forward pass and its input gradient its backward-data;
 * a ConvTranspose2d's forward is its backward-data and its input gradient its forward (convt.c).
 * `keep`: the layer's buffer for the copy of its forward's input that the backend makes and its
 * backward-filter reads again (conv_keep_bytes, conv_keep_pass), NULL where the backend makes
 * none or the model is inference-only; `kept_from`: the input the last forward kept it from
 * (NULL after an eval forward or none), so that only a backward on that input reads it. */
typedef struct gan_conv_state {
    gan_conv_geom geom;
    gan_conv_pass pass; /* the layer's forward: GAN_CONV_FORWARD or GAN_CONV_BACKWARD_DATA */
    void *keep;
    const float *kept_from;
    const float *ahead; /* the input whose copy keep already holds, for the next forward (keep_images) */
    void *w_copy; /* the weights as its passes read them (conv_weight_copy_bytes), NULL for none */
} gan_conv_state;
/* g's storage from the layer's edges, and the kept buffer, requested from the pool (plan) */
gan_status gan_conv_layer_plan(gan_layer *layer, gan_conv_state *c, gan_model *model, gan_pool *pool);
/* the edges a convolution takes stored: none for a whole-input kernel (a GEMM on FP32 NCHW), not its
 * output with a bias (bias_forward is FP32 NCHW) */
unsigned gan_conv_layer_stored_edges(const gan_layer *layer, const gan_conv_state *c);
/* its weight copy, for the model's conv_weight_copies (false: none) */
bool gan_conv_layer_weight_copy(gan_layer *layer, gan_model *model, gan_conv_state *c, gan_conv_weight_copy *out);
/* the forward alone for an inference-only model, all three passes for a trained one */
size_t gan_conv_layer_workspace_bytes(const gan_conv_state *c, gan_model *model);
size_t gan_conv_layer_side_workspace_bytes(const gan_conv_state *c, gan_model *model);
/* a Conv2d's input from the images, into its kept copy (gan_layer_vtable.keep_images) */
gan_status gan_conv_layer_keep_images(gan_model *model, gan_conv_state *c, const uint8_t *pixels, const float *x,
                                      bool *taken);
/* y (or the epilogue activation's output) from x, and the bias; in training x's copy kept */
gan_status gan_conv_layer_forward(gan_layer *layer, gan_model *model, gan_conv_state *c, const float *x, float *y,
                                  bool training);
/* dx (may be NULL) and, unless mode is GAN_GRADS_NONE, the weight and bias gradients */
gan_status gan_conv_layer_backward(gan_layer *layer, gan_model *model, gan_conv_state *c, const float *x,
                                   const float *dy, float *dx, gan_grad_mode mode);

/* Weight init helpers shared by conv, convt and linear. fan_in and fan_out as PyTorch's
 * _calculate_fan_in_and_fan_out computes them from the weight's dims. */
gan_status gan_init_weight_and_bias(gan_model *model, gan_layer *layer, gan_weight_init scheme,
                                    uint64_t seed);

#endif
