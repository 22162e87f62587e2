/* pytorch-fid's FID Inception-v3 (src/eval/inception.c): the 2015-12-05 TensorFlow Inception as
 * pytorch-fid ports it (torchvision's Inception3 with FIDInceptionA, C, E_1 and E_2: average
 * pools that do not count the padding, a max pool in the last block's pool branch), up to the
 * 2048-d pool3 features FID is computed from. Inference only, on the backend's ops: each of its 94
 * BasicConv2d blocks is a convolution with its batch norm (eps 0.001, no gamma in these weights)
 * folded into the weights and a bias at load, then bias + ReLU (bias_act_forward); branches are
 * concatenated with copy_channels.
 *
 * Input as pytorch-fid preprocesses it: images in [-1, 1] (uint8 x -> x / 255 * 2 - 1; float
 * samples as gan sample writes them, already in [-1, 1], go in as they are), resized to 299x299
 * by F.interpolate(bilinear, align_corners=False) on floats (resize_bilinear), gray replicated to
 * RGB.
 *
 * Weights: a safetensors file made by tools/convert_fid_weights.py, metadata format
 * "gan-fid-inception" version "1", holding for every block NAME (pytorch-fid's module names:
 * Conv2d_1a_3x3, Mixed_5b.branch1x1, ..., Mixed_7c.branch_pool) the tensors NAME.conv.weight
 * [c_out, c_in, k_h, k_w], NAME.bn.bias, NAME.bn.running_mean, NAME.bn.running_var [c_out] and
 * optionally NAME.bn.weight (gamma) -- exactly these, F32: anything else is refused by name.
 *
 * Memory is planned once (gan_pool) for a fixed batch: the network always runs full batches
 * (a short last batch is padded), so every convolution keeps one geometry and one plan. */
#ifndef GAN_INCEPTION_H
#define GAN_INCEPTION_H

#include <stddef.h>
#include <stdint.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    GAN_INCEPTION_FEATURES = 2048, /* pool3 */
    GAN_INCEPTION_SIZE = 299,      /* the input the network sees, after the resize */
    GAN_INCEPTION_BLOCKS = 94      /* BasicConv2d blocks (convolutions) */
};

/* The metadata format and version of the weights file. */
#define GAN_INCEPTION_WEIGHTS_FORMAT "gan-fid-inception"
#define GAN_INCEPTION_WEIGHTS_VERSION "1"

typedef struct gan_inception gan_inception;

/* Reads and checks `weights_path`, folds the batch norms (in double), uploads the weights to
 * `be` and plans every buffer for `batch` images. Fails with GAN_ERR_FORMAT naming the file and
 * the first tensor that is missing, unexpected or of the wrong shape (another network's file). */
gan_status gan_inception_create(gan_backend *be, const char *weights_path, int batch, gan_inception **out);
/* The same network with random weights of the same shapes (He-normal from Philox stream (seed,
 * block), zero biases), drawn on the backend: for speed measurements on machines the 87 MB
 * weights file cannot be carried to (gan bench fid --random-weights). Its features mean nothing. */
gan_status gan_inception_create_random(gan_backend *be, uint64_t seed, int batch, gan_inception **out);
void gan_inception_destroy(gan_inception *net);

int gan_inception_batch(const gan_inception *net);
/* Backend memory the network holds (weights, activations, workspace), in bytes. */
size_t gan_inception_memory_bytes(const gan_inception *net);
/* FLOPs of one image's pass (2 per multiply-add of the convolutions: about 11.4 G), for speed
 * reports. */
double gan_inception_flops_per_image(const gan_inception *net);

/* The largest input image (height x width x channels values) one call takes: inputs are staged
 * whole on the backend, batch x the network's largest activation. */
size_t gan_inception_max_input_values(const gan_inception *net);

/* features [count, 2048] (host) of `count` images, 1 <= count <= batch, given in host memory:
 *   _u8:  uint8 NHWC [count, height, width, channels], values 0..255;
 *   _f32: float NCHW [count, channels, height, width] in [-1, 1];
 * channels 1 (replicated to RGB) or 3, any height and width (resized to 299). */
gan_status gan_inception_features_u8(gan_inception *net, const uint8_t *images, int count, int height,
                                     int width, int channels, float *features);
gan_status gan_inception_features_f32(gan_inception *net, const float *images, int count, int channels,
                                      int height, int width, float *features);

/* The same in two steps, for a batch gathered from images of several sizes: each stage call
 * converts and resizes `count` images of one size into the input slots first .. first + count - 1
 * (first + count <= batch; a slot staged twice keeps the last); gan_inception_run then runs the
 * network once over the whole batch (slots from `count` on padded with zeros, so slots 0 .. count - 1
 * must all be staged) and downloads features [count, 2048]. The features of an image do not
 * depend on its slot or its neighbours: staging runs of sizes and running once gives what one
 * features call per run gives. */
gan_status gan_inception_stage_u8(gan_inception *net, int first, const uint8_t *images, int count, int height,
                                  int width, int channels);
gan_status gan_inception_stage_f32(gan_inception *net, int first, const float *images, int count, int channels,
                                   int height, int width);
gan_status gan_inception_run(gan_inception *net, int count, float *features);

/* Where a pass's time goes, for gan bench fid --profile: seconds per kind of op, each op timed
 * between two synchronize calls (which slows the pass: on a GPU, much). */
typedef enum gan_inception_op {
    GAN_INCEPTION_OP_INPUT,    /* upload, uint8 -> float, resize to 299, gray -> RGB */
    GAN_INCEPTION_OP_CONV,     /* the 94 convolutions */
    GAN_INCEPTION_OP_BIAS_RELU,/* their folded batch norm's bias and ReLU */
    GAN_INCEPTION_OP_POOL,     /* max and average pools */
    GAN_INCEPTION_OP_CONCAT,   /* copy_channels */
    GAN_INCEPTION_OP_AVERAGE,  /* the global average (pool3) and the features' download */
    GAN_INCEPTION_OP_COUNT
} gan_inception_op;

typedef struct gan_inception_profile {
    double seconds[GAN_INCEPTION_OP_COUNT];
    int64_t calls[GAN_INCEPTION_OP_COUNT];
} gan_inception_profile;

/* Starts (profile non-NULL, accumulated into) or stops (NULL) the per-op timing. */
void gan_inception_set_profile(gan_inception *net, gan_inception_profile *profile);
const char *gan_inception_op_name(gan_inception_op op);

/* A batch norm (eval mode) folded into the bias-free convolution before it, in double:
 * scale = gamma / sqrt(var + eps) (gamma NULL: 1), w_out = w scale, b_out = beta - mean scale,
 * for w [c_out, per_output]. A var + eps that is not positive and finite is refused (GAN_ERR_NUMERIC)
 * naming the channel. */
gan_status gan_fold_batch_norm(int c_out, size_t per_output, const float *w, const float *gamma,
                               const float *beta, const float *mean, const float *var, double eps,
                               float *w_out, float *b_out);

#ifdef __cplusplus
}
#endif
#endif
