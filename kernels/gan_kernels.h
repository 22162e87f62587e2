/* The launchers of our CUDA kernels: plain C declarations (extern "C"), so that the host C of the
 * CUDA backend (src/backend/cuda_backend.c) calls them like any C function. Each one computes its
 * grid, queues the kernel on `cuda_stream` and checks the launch (kernels/launch.cu); none waits
 * for the kernel to finish. Pointers are device memory; shapes are written next to each buffer.
 * The same launchers compile as host C++ under kernels/cuda_emulation.h, where they run on the
 * CPU (tests/test_emu_kernels.cpp). */
#ifndef GAN_KERNELS_H
#define GAN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "gan/backend.h"

#ifndef GAN_CUDA_EMULATION
#include <cuda_runtime_api.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* dst[count] = value */
gan_status gan_cuda_fill(cudaStream_t cuda_stream, float *dst, float value, size_t count);

/* y[count] = act(x[count]) */
gan_status gan_cuda_activation_forward(cudaStream_t cuda_stream, gan_activation kind, float slope,
                                       size_t count, const float *x, float *y);
/* dx[count] = act'(.) * dy[count]; reads x for lrelu, y for relu/tanh/sigmoid. */
gan_status gan_cuda_activation_backward(cudaStream_t cuda_stream, gan_activation kind,
                                        float slope, size_t count, const float *x,
                                        const float *y, const float *dy, float *dx);
/* The two on BF16 tensors (bit patterns: a model's BF16 NHWC edges), each value widened, the
 * float function applied and rounded to nearest even. */
gan_status gan_cuda_activation_forward_bf16(cudaStream_t cuda_stream, gan_activation kind, float slope, size_t count,
                                            const uint16_t *x, uint16_t *y);
gan_status gan_cuda_activation_backward_bf16(cudaStream_t cuda_stream, gan_activation kind, float slope,
                                             size_t count, const uint16_t *x, const uint16_t *y, const uint16_t *dy,
                                             uint16_t *dx);

/* y[count] = a[count] * b[count] */
gan_status gan_cuda_multiply(cudaStream_t cuda_stream, size_t count, const float *a,
                             const float *b, float *y);

/* mask[count] = keep-scale from the uniforms of Philox elements first + i of (seed, stream)
 * (first read on the device); y = x * mask. */
gan_status gan_cuda_dropout_forward(cudaStream_t cuda_stream, size_t count, float p,
                                    uint64_t seed, uint64_t stream, gan_count first,
                                    const float *x, float *mask, float *y);

/* Mean BCE of logits[n] against `target`: loss[0], prob_mean[0] (may be NULL) and
 * dlogits[n] = grad_scale * (sigmoid(x) - target) / n (may be NULL). One block, fixed-order
 * reduction: the same inputs give the same bits on every run. */
gan_status gan_cuda_bce_logits(cudaStream_t cuda_stream, int n, const float *logits, float target,
                               float grad_scale, float *loss, float *prob_mean, float *dlogits);

/* One Adam step over param/grad/m/v[count], contiguous: one launch for a whole network; update
 * number `step` read on the device. */
gan_status gan_cuda_adam_step(cudaStream_t cuda_stream, size_t count, float *param,
                              const float *grad, float *m, float *v, gan_adam_hyper hyper,
                              gan_count step);

/* ema[count] = decay ema + (1 - decay) param[count], as gan_ema_update: one launch for G's whole
 * contiguous weight buffer. */
gan_status gan_cuda_ema_update(cudaStream_t cuda_stream, size_t count, double decay, const float *param,
                               float *ema);

/* out[count] = mean + std * N(0,1) of Philox element first + i of (seed, stream). */
gan_status gan_cuda_rng_normal(cudaStream_t cuda_stream, size_t count, uint64_t seed,
                               uint64_t stream, gan_count first, float mean, float std,
                               float *out);
/* out[count] = low + (high - low) * U[0,1) of element first + i. */
gan_status gan_cuda_rng_uniform(cudaStream_t cuda_stream, size_t count, uint64_t seed,
                                uint64_t stream, gan_count first, float low, float high,
                                float *out);
/* count[i] += add[i], i < n (one launch of one block). */
gan_status gan_cuda_advance_counts(cudaStream_t cuda_stream, gan_count_advance advance);

/* nhwc [n, h, w, c] uint8 -> nchw [n, c, h, w] float in [-1, 1]. */
gan_status gan_cuda_images_to_float(cudaStream_t cuda_stream, int n, int h, int w, int c,
                                    const uint8_t *nhwc, float *nchw);

/* y[n, c, hw] += bias[c] */
gan_status gan_cuda_bias_forward(cudaStream_t cuda_stream, int n, int c, int hw,
                                 const float *bias, float *y);
/* db[c] = beta * db[c] + sum over n, hw of dy[n, c, hw] (beta == 0: db is not read).
 * One block per channel, fixed-order reduction. */
gan_status gan_cuda_bias_backward(cudaStream_t cuda_stream, int n, int c, int hw,
                                  const float *dy, float beta, float *db);

/* The kernels around the inner convolution of the sub-pixel backward-data of a kernel 4,
 * stride 2, pad 1 convolution (gan/cuda_args.h, "the sub-pixel form"; kernels/subpixel.cuh).
 * w2 [4 ci, co, 2, 2] from w [co, ci, 4, 4]: w2[(a*2 + b)*ci + c, o, i, j] =
 * w[o, c, 3 - a - 2i, 3 - b - 2j]. */
gan_status gan_cuda_subpixel_weights(cudaStream_t cuda_stream, int co, int ci, const float *w,
                                     float *w2);
/* dx [n, ci, 2 h_out, 2 w_out] from y2 [n, 4 ci, h_out + 1, w_out + 1] (h_out, w_out: the
 * convolution's y): dx[m, c, 2p + a, 2q + b] = act(y2[m, (a*2 + b)*ci + c, p + a, q + b]); dx is
 * overwritten entirely. The activation epilogue: `act` is a gan_activation (`slope` for
 * LeakyReLU), applied to each value written, bit for bit as gan_cuda_activation_forward on the
 * plain result, or GAN_FUSED_NONE (-1, below) for none; any other value is GAN_ERR_ARG. */
gan_status gan_cuda_subpixel_gather(cudaStream_t cuda_stream, int n, int ci, int h_out, int w_out,
                                    const float *y2, int act, float slope, float *dx);

/* The im2col form of a backward-filter (gan/cuda_args.h; kernels/im2col.cuh). col [K, P] from
 * x [n, ci, H, W] of g (K = ci kh kw, P = n Ho Wo): col[(c*kh + i)*kw + j, (m*Ho + oh)*Wo + ow] =
 * x[m, c, oh*sh - ph + i, ow*sw - pw + j], 0 in the padding; col is overwritten entirely. */
gan_status gan_cuda_im2col(cudaStream_t cuda_stream, const gan_conv_geom *g, const float *x, float *col);
/* y [c, n hw] from x [n, c, hw]: y[o, m*hw + p] = x[m, o, p]. */
gan_status gan_cuda_channels_first(cudaStream_t cuda_stream, int n, int c, int hw, const float *x, float *y);

/* No activation fused into a kernel: into a batch norm (`act` otherwise holds GAN_ACT_RELU or
 * GAN_ACT_LRELU), or into the epilogue of the sub-pixel gather and of the NHWC widenings (`act`
 * otherwise any gan_activation). */
#define GAN_FUSED_NONE (-1)

/* Batch norm over [n, c, hw] per channel (kernels/norm.cuh), fixed-order reductions. A
 * channel's n hw values are cut into chunks of about GAN_BN_CHUNK_VALUES, one block each: no
 * more chunks than it takes to reach GAN_BN_ENOUGH_BLOCKS blocks in all (about 8 per SM of a
 * Hopper GPU: each chunk past one costs launches), at most GAN_BN_MAX_CHUNKS, and at most what a
 * scratch of `scratch_doubles` doubles holds (2 c chunks); at least 1, which needs no scratch,
 * and 1 where scratch is NULL. gan_cuda_bn_chunks says how many. The chunks depend on the shape and the scratch
 * size alone, so a run repeats bit for bit; a different chunking may round differently.
 * `act` is GAN_ACT_RELU, GAN_ACT_LRELU (slope >= 0) or GAN_FUSED_NONE.
 * Training forward: batch statistics into save_mean/save_invstd [c], running statistics updated
 * (momentum, unbiased variance), y = normalised x, and y_act = act(y) unless act is -1. One
 * launch with one chunk, three with more. */
#define GAN_BN_CHUNK_VALUES 4096
#define GAN_BN_ENOUGH_BLOCKS 1024
#define GAN_BN_MAX_CHUNKS 64
size_t gan_cuda_bn_chunks(int n, int c, int hw, size_t scratch_doubles);
/* The same in words for reports: "16 chunks of 4096 x 64 channels, 1024 blocks; 3 + 2 launches"
 * (forward + backward). */
void gan_cuda_bn_describe(int n, int c, int hw, size_t scratch_doubles, char *out, size_t bytes);
gan_status gan_cuda_bn_forward_train(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                     const float *gamma, const float *beta, float momentum,
                                     float eps, float *running_mean, float *running_var,
                                     float *save_mean, float *save_invstd, float *y, int act,
                                     float slope, float *y_act, double *scratch, size_t scratch_doubles);
/* Eval forward from the running statistics. */
gan_status gan_cuda_bn_forward_eval(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var, float eps,
                                    float *y);
/* Backward from dy at the batch norm's output (GAN_FUSED_NONE), or from the fused activation's output y
 * and output gradient dy: dx overwritten; dgamma, dbeta = param_beta * old + gradient. One launch
 * with one chunk, two with more. */
gan_status gan_cuda_bn_backward(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                const float *y, const float *dy, int act, float slope,
                                const float *gamma, const float *save_mean, const float *save_invstd,
                                float *dx, float param_beta, float *dgamma, float *dbeta, double *scratch,
                                size_t scratch_doubles);

/* Batch norm over tensors in any storage (kernels/norm_nhwc.cuh; gan_storage: x and dx in
 * `in_storage`, y, y_act and dy in `out_storage`), NHWC (BF16 or FP32) where a model keeps its
 * edges so:
 * the same arguments and results as the launchers above, laid out for NHWC (a block is 32
 * channels by 8 row groups over one chunk of the n hw rows). The chunks: ceil(n hw /
 * GAN_BN_NHWC_CHUNK_ROWS), no more than it takes to reach GAN_BN_ENOUGH_BLOCKS blocks, at most
 * GAN_BN_NHWC_MAX_CHUNKS and what the scratch holds (2 c chunks), at least 1; the scratch is
 * required (2 c doubles at least). Two launches forward and two backward, one each with one
 * chunk (n hw up to GAN_BN_NHWC_CHUNK_ROWS rows: [64, c, 4, 4]); one eval. */
#define GAN_BN_NHWC_CHUNK_ROWS 1024
#define GAN_BN_NHWC_MAX_CHUNKS 256
size_t gan_cuda_bn_nhwc_chunks(int n, int c, int hw, size_t scratch_doubles);
gan_status gan_cuda_bn_nhwc_forward_train(cudaStream_t cuda_stream, int n, int c, int hw, int in_storage,
                                          const void *x, const float *gamma, const float *beta, float momentum,
                                          float eps, float *running_mean, float *running_var, float *save_mean,
                                          float *save_invstd, int out_storage, void *y, int act, float slope,
                                          void *y_act, double *scratch, size_t scratch_doubles);
gan_status gan_cuda_bn_nhwc_forward_eval(cudaStream_t cuda_stream, int n, int c, int hw, int in_storage,
                                         const void *x, const float *gamma, const float *beta,
                                         const float *running_mean, const float *running_var, float eps,
                                         int out_storage, void *y);
gan_status gan_cuda_bn_nhwc_backward(cudaStream_t cuda_stream, int n, int c, int hw, int in_storage, const void *x,
                                     int out_storage, const void *y_act, const void *dy, int act, float slope,
                                     const float *gamma, const float *save_mean, const float *save_invstd,
                                     void *dx, float param_beta, float *dgamma, float *dbeta, double *scratch,
                                     size_t scratch_doubles);

/* ---- data-parallel runs ------------------------------------------------------------------- */
/* data[count] *= scale */
gan_status gan_cuda_scale(cudaStream_t cuda_stream, size_t count, float scale, float *data);

/* Batch norm split around the all-reduces of train.sync_bn (kernels/norm.cuh): the same kernels
 * as gan_cuda_bn_forward_train / gan_cuda_bn_backward, with the chunks' sums folded into one double
 * per channel (sums [c], squares [c], the backward's [2c]: sum g, then sum g xhat) for the
 * all-reduce; so with one rank and the same scratch size, the same bits. `count`: values per
 * channel over all ranks. `act` as above (GAN_FUSED_NONE: y, y_act unused). The launches from
 * summed statistics need no scratch (each block reads its channel's totals). */
gan_status gan_cuda_bn_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x, double *scratch,
                            size_t scratch_doubles, double *sums);
gan_status gan_cuda_bn_centered_squares(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                        const double *sums, double count, double *scratch, size_t scratch_doubles,
                                        double *squares);
gan_status gan_cuda_bn_forward_from_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                         const float *gamma, const float *beta, float momentum, float eps,
                                         const double *sums, const double *squares, double count,
                                         float *running_mean, float *running_var, float *save_mean,
                                         float *save_invstd, float *y, int act, float slope, float *y_act);
gan_status gan_cuda_bn_backward_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                     const float *y, const float *dy, int act, float slope,
                                     const float *save_mean, const float *save_invstd, float param_beta,
                                     float *dgamma, float *dbeta, double *scratch, size_t scratch_doubles,
                                     double *sums);
gan_status gan_cuda_bn_backward_from_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                          const float *y, const float *dy, int act, float slope,
                                          const float *gamma, const float *save_mean,
                                          const float *save_invstd, const double *sums, double count,
                                          float *dx);

/* ---- evaluation ops (kernels/eval.cuh): the op table's of the same names, forward only --- */
/* y [n, c, h_out, w_out] = the max over each window of x [n, c, h_in, w_in]. */
gan_status gan_cuda_max_pool_forward(cudaStream_t cuda_stream, const gan_pool2d_geom *g, const float *x,
                                     float *y);
/* The mean of each window (divided by k_h k_w, or by the positions inside x). */
gan_status gan_cuda_avg_pool_forward(cudaStream_t cuda_stream, const gan_pool2d_geom *g,
                                     bool count_include_pad, const float *x, float *y);
/* y[n, c] = mean of x[n, c, hw]: one thread per plane, summed in order. */
gan_status gan_cuda_global_avg_pool(cudaStream_t cuda_stream, int n, int c, int hw, const float *x, float *y);
/* x [n, c, hw] into channels offset.. of y [n, y_channels, hw]. */
gan_status gan_cuda_copy_channels(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                  int y_channels, int offset, float *y);
/* y [n, c, h_out, w_out] = F.interpolate(x [n, c, h_in, w_in], bilinear, align_corners=False). */
gan_status gan_cuda_resize_bilinear(cudaStream_t cuda_stream, int n, int c, int h_in, int w_in, int h_out,
                                    int w_out, const float *x, float *y);
/* y[n, c, hw] = act(y + bias[c]), in place. */
gan_status gan_cuda_bias_act_forward(cudaStream_t cuda_stream, int n, int c, int hw, const float *bias,
                                     gan_activation act, float slope, float *y);

/* ---- BF16 and TF32 precision modes (kernels/convert.cuh) ---------------------------------- */
/* The copies a convolution runs on in the BF16 and TF32 modes: our buffers stay float NCHW, and
 * cuDNN gets its tensors in NHWC (what tensor cores read), with the channels padded to
 * c_nhwc >= c (16 bytes for the tensor cores: a multiple of 8 for BF16, of 4 for TF32; c_nhwc == c
 * for none). Used for a convolution's x [n, c, h w], y [n, c, h w] and filter w [k, c, r s] (k as
 * n: cuDNN's KRSC filter layout). The NHWC side holds BF16 (uint16_t bit patterns: the upper half
 * of a float, sign, 8 exponent bits, 7 mantissa bits) or float (TF32 mode: cuDNN takes float
 * tensors and does the TF32 rounding itself, so the copy only transposes); the float NCHW side has
 * n c hw elements, the NHWC side n hw c_nhwc, and they do not overlap. A negative size or
 * c_nhwc < c is GAN_ERR_ARG; nothing is launched when there is nothing to write (n or hw zero, or
 * c_nhwc zero for the narrowing, c zero for the widening: c == 0 < c_nhwc is a shape like any
 * other, the narrowing writes all of dst as +0). Without padding, c == 1 or hw == 1 is a plain
 * conversion (the layouts agree). The widenings end a convolution pass, and take the activation
 * that follows it as an epilogue: `act` a gan_activation (`slope` for LeakyReLU) applied to each
 * converted value before the beta add, with the activation kernel's per-element code (so at
 * beta 0, bit for bit the plain widening followed by gan_cuda_activation_forward), or
 * GAN_FUSED_NONE for none; any other `act` is GAN_ERR_ARG, even for an empty tensor. */
/* dst [n, hw, c_nhwc] (NHWC, BF16 bit patterns) = src [n, c, hw] (NCHW, float) rounded to nearest even,
 * channels c .. c_nhwc - 1 of every position written as +0 (c_nhwc >= c: padding for the tensor cores).
 * (The largest floats round to infinity; every NaN -> 0x7FFF.) */
gan_status gan_cuda_f32_to_bf16_nhwc(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw, const float *src,
                                     uint16_t *dst);
/* dst [n, c, hw] (NCHW, float) = act(float(src [n, hw, c_nhwc])) for the first c channels (the padding is not
 * read), when beta == 0 (dst not read), else beta * dst + act(float(src)) (product rounded on its own).
 * The widening is exact; beta * dst is rounded before the add (no fused multiply-add), so every
 * device gives the same bits. */
gan_status gan_cuda_bf16_nhwc_to_f32(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw,
                                     const uint16_t *src, float beta, int act, float slope, float *dst);
/* dst [n, hw, c_nhwc] (NHWC, float) = src [n, c, hw] (NCHW, float), channels c .. c_nhwc - 1 of every
 * position written as +0.0f; values moved bit for bit. */
gan_status gan_cuda_f32_to_f32_nhwc(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw, const float *src,
                                    float *dst);
/* One narrowing of a paired launch: src [n, c, hw] float (NCHW) into dst [n, hw, c_nhwc] (NHWC:
 * BF16 bit patterns, or float), as the single launchers above. */
typedef struct gan_nhwc_copy {
    int n, c, c_nhwc, hw;
    const float *src;
    void *dst;
} gan_nhwc_copy;
/* The two input copies of a convolution pass in one launch: the same bits as
 * gan_cuda_f32_to_bf16_nhwc (gan_cuda_f32_to_f32_nhwc) on each, one after the other. The two must
 * not overlap. A bad shape is GAN_ERR_ARG, naming the launcher and which tensor. */
gan_status gan_cuda_f32_to_bf16_nhwc_pair(cudaStream_t cuda_stream, const gan_nhwc_copy *first,
                                          const gan_nhwc_copy *second);
gan_status gan_cuda_f32_to_f32_nhwc_pair(cudaStream_t cuda_stream, const gan_nhwc_copy *first,
                                         const gan_nhwc_copy *second);
/* `count` narrowings to BF16 (a model's convolution weights into their KRSC copies, once per
 * forward), eight per launch: the same bits as gan_cuda_f32_to_bf16_nhwc on each. A bad shape is
 * GAN_ERR_ARG naming the tensor; tensors with nothing to write are skipped. */
gan_status gan_cuda_f32_to_bf16_nhwc_list(cudaStream_t cuda_stream, int count, const gan_nhwc_copy *copies);
/* The same moving FP32 (tf32's weight copies): gan_cuda_f32_to_f32_nhwc's bits on each. */
gan_status gan_cuda_f32_to_f32_nhwc_list(cudaStream_t cuda_stream, int count, const gan_nhwc_copy *copies);
/* The uint8 batch pixels [n, h, w, c] (0..255) straight into a convolution's x copy dst
 * [n, h w, c_nhwc] (NHWC, BF16 bit patterns or float): gan_pixel_to_unit of each pixel, channels
 * c .. c_nhwc - 1 of every position written as +0. The same bits as gan_cuda_images_to_float
 * followed by gan_cuda_f32_to_bf16_nhwc (gan_cuda_f32_to_f32_nhwc), in one pass. A negative size,
 * or c_nhwc < c, is GAN_ERR_ARG; nothing is launched when there is nothing to write. */
gan_status gan_cuda_images_to_bf16_nhwc(cudaStream_t cuda_stream, int n, int h, int w, int c, int c_nhwc,
                                        const uint8_t *pixels, uint16_t *dst);
gan_status gan_cuda_images_to_f32_nhwc(cudaStream_t cuda_stream, int n, int h, int w, int c, int c_nhwc,
                                       const uint8_t *pixels, float *dst);
/* dst [n, c, hw] (NCHW) = act(src [n, hw, c_nhwc] (NHWC, float)) for the first c channels when beta == 0 (dst
 * not read), else beta * dst + act(src) (product rounded on its own, as the bf16 widening). */
gan_status gan_cuda_f32_nhwc_to_f32(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw,
                                    const float *src, float beta, int act, float slope, float *dst);

#ifdef __cplusplus
}
#endif
#endif