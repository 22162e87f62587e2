/* The launchers of every kernel (extern "C", declared in gan_kernels.h). This is the only file
 * with `<<<...>>>`, and that appears once, in launch(): every kernel goes through it, so the grid
 * computation and the launch check live in one place.
 *
 * Under kernels/cuda_emulation.h (GAN_CUDA_EMULATION) this file compiles as host C++ and launch()
 * runs the kernel on CPU threads instead, so tests/test_emu_kernels.cpp exercises the very code
 * below, grid sizes included. */
#ifndef GAN_CUDA_EMULATION
#include <cuda_runtime.h>
#endif
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "gan_kernels.h"

#include "activation.cuh"
#include "adam.cuh"
#include "common.cuh"
#include "convert.cuh"
#include "elementwise.cuh"
#include "ema.cuh"
#include "eval.cuh"
#include "im2col.cuh"
#include "norm.cuh"
#include "norm_nhwc.cuh"
#include "random.cuh"
#include "reduce.cuh"
#include "subpixel.cuh"

/* Grid-stride kernels never need more blocks than this: 65535 x 256 threads is far more than
 * any GPU keeps resident, and it is a legal grid.x on every architecture. */
static const size_t GAN_MAX_BLOCKS = 65535;

/* The one launch site: queues kernel(args...) on `cuda_stream` and turns a launch failure (bad
 * configuration, no device, a kernel image missing for this GPU's architecture) into a
 * gan_status naming the kernel. Errors raised while the kernel runs surface at the next
 * synchronising call. */
template <typename... Params, typename... Args>
static gan_status launch(const char *kernel_name, void (*kernel)(Params...), unsigned blocks,
                         cudaStream_t cuda_stream, Args... args)
{
#ifdef GAN_CUDA_EMULATION
    gan_emu_launch(kernel, dim3(blocks), dim3(GAN_BLOCK_THREADS), cuda_stream, args...);
#else
    kernel<<<dim3(blocks), dim3(GAN_BLOCK_THREADS), 0, cuda_stream>>>(args...);
#endif
    cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess)
        return gan_error(GAN_ERR_BACKEND, "CUDA kernel %s (%u blocks of %d threads): launch failed: %s",
                         kernel_name, blocks, GAN_BLOCK_THREADS, cudaGetErrorString(error));
    return GAN_OK;
}

/* A grid-stride kernel over `count` elements: enough blocks for one element per thread, capped.
 * Nothing is launched for count == 0 (a zero-block grid is a launch error). */
template <typename... Params, typename... Args>
static gan_status launch_elementwise(const char *kernel_name, void (*kernel)(Params...),
                                     size_t count, cudaStream_t cuda_stream, Args... args)
{
    if (count == 0)
        return GAN_OK;
    size_t blocks = (count + GAN_BLOCK_THREADS - 1) / GAN_BLOCK_THREADS;
    if (blocks > GAN_MAX_BLOCKS)
        blocks = GAN_MAX_BLOCKS;
    return launch(kernel_name, kernel, (unsigned)blocks, cuda_stream, args...);
}

/* A conversion's shape: a negative size or c_nhwc < c is refused, naming the launcher, the shape
 * and `part` ("" for a single conversion, which tensor of a pair otherwise). */
static gan_status check_convert_shape(const char *kernel_name, const char *part, int n, int c, int c_nhwc, int hw)
{
    if (n < 0 || c < 0 || c_nhwc < 0 || hw < 0)
        return gan_error(GAN_ERR_ARG, "%s: negative shape%s [n %d, c %d, c_nhwc %d, hw %d]", kernel_name, part, n,
                         c, c_nhwc, hw);
    if (c_nhwc < c)
        return gan_error(GAN_ERR_ARG, "%s: c_nhwc below c in shape%s [n %d, c %d, c_nhwc %d, hw %d]",
                         kernel_name, part, n, c, c_nhwc, hw);
    return GAN_OK;
}

/* The grid of a layout-changing conversion of a checked shape: one block per 32 x 32 tile of
 * `tile_channels` x hw per image (c_nhwc for the narrowing, which writes the padding; c for the
 * widening, which reads only the first c channels), or, for a plain one (gan_convert_is_plain: no
 * padding and c == 1 or hw == 1), one thread per element, capped either way (the kernels loop);
 * 0 when there is nothing to write (n, hw or tile_channels zero), and nothing is launched. */
static size_t convert_blocks(int n, int c, int c_nhwc, int hw, int tile_channels)
{
    if (n == 0 || hw == 0 || tile_channels == 0)
        return 0;
    size_t tiles_c = ((size_t)tile_channels + GAN_CONVERT_TILE - 1) / GAN_CONVERT_TILE;
    size_t tiles_hw = ((size_t)hw + GAN_CONVERT_TILE - 1) / GAN_CONVERT_TILE;
    size_t count = (size_t)n * (size_t)c * (size_t)hw;
    size_t blocks = gan_convert_is_plain((size_t)c, (size_t)c_nhwc, (size_t)hw)
                        ? (count + GAN_BLOCK_THREADS - 1) / GAN_BLOCK_THREADS
                        : (size_t)n * tiles_c * tiles_hw;
    return blocks > GAN_MAX_BLOCKS ? GAN_MAX_BLOCKS : blocks;
}

template <typename... Params, typename... Args>
static gan_status launch_convert(const char *kernel_name, void (*kernel)(Params...), int n, int c, int c_nhwc,
                                 int hw, int tile_channels, cudaStream_t cuda_stream, Args... args)
{
    GAN_TRY(check_convert_shape(kernel_name, "", n, c, c_nhwc, hw));
    size_t blocks = convert_blocks(n, c, c_nhwc, hw, tile_channels);
    if (blocks == 0)
        return GAN_OK;
    return launch(kernel_name, kernel, (unsigned)blocks, cuda_stream, (size_t)n, (size_t)c, (size_t)c_nhwc,
                  (size_t)hw, args...);
}

/* Two narrowings in one launch of gan_f32_to_nhwc_pair_kernel<T>: each tensor gets the blocks its
 * own launch would have (at most GAN_MAX_BLOCKS each: the sum is a legal grid.x too). A shape is
 * refused as the single launchers refuse it, naming the launcher and which of the two it is. */
template <typename T>
static gan_status launch_narrow_pair(const char *kernel_name, cudaStream_t cuda_stream, const gan_nhwc_copy *first,
                                     const gan_nhwc_copy *second)
{
    const gan_nhwc_copy *parts[2] = {first, second};
    size_t blocks[2];
    for (int i = 0; i < 2; i++) {
        const gan_nhwc_copy *p = parts[i];
        GAN_TRY(check_convert_shape(kernel_name, i == 0 ? " of the first tensor" : " of the second tensor", p->n,
                                    p->c, p->c_nhwc, p->hw));
        blocks[i] = convert_blocks(p->n, p->c, p->c_nhwc, p->hw, p->c_nhwc);
    }
    if (blocks[0] + blocks[1] == 0)
        return GAN_OK;
    return launch(kernel_name, gan_f32_to_nhwc_pair_kernel<T>, (unsigned)(blocks[0] + blocks[1]), cuda_stream,
                  blocks[0], (size_t)first->n, (size_t)first->c, (size_t)first->c_nhwc, (size_t)first->hw,
                  first->src, static_cast<T *>(first->dst), (size_t)second->n, (size_t)second->c,
                  (size_t)second->c_nhwc, (size_t)second->hw, second->src, static_cast<T *>(second->dst));
}

/* The activation of an epilogue (the NHWC widenings, the sub-pixel gather): a gan_activation or
 * GAN_FUSED_NONE; anything else is refused, naming the launcher, before any shape is looked at
 * (an empty tensor too). */
static gan_status check_epilogue_act(const char *op, int act)
{
    if (act != GAN_FUSED_NONE && !gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "%s: unknown activation %d (a gan_activation, or GAN_FUSED_NONE for none)",
                         op, act);
    return GAN_OK;
}

/* Narrowings of a list (the weight copies) into T, GAN_NHWC_LIST_MAX per launch of
 * gan_f32_to_nhwc_list_kernel<T>; a shape is refused naming the tensor. */
template <typename T>
static gan_status launch_list(const char *name, cudaStream_t cuda_stream, int count, const gan_nhwc_copy *copies)
{
    if (count < 0 || (count > 0 && !copies))
        return gan_error(GAN_ERR_ARG, "%s: %d tensors", name, count);
    for (int at = 0; at < count; at += GAN_NHWC_LIST_MAX) {
        gan_nhwc_list list;
        memset(&list, 0, sizeof list);
        int part = count - at < GAN_NHWC_LIST_MAX ? count - at : GAN_NHWC_LIST_MAX;
        for (int i = 0; i < part; i++) {
            const gan_nhwc_copy *p = &copies[at + i];
            char which[48];
            snprintf(which, sizeof which, " of tensor %d", at + i);
            GAN_TRY(check_convert_shape(name, which, p->n, p->c, p->c_nhwc, p->hw));
            list.n[i] = (size_t)p->n, list.c[i] = (size_t)p->c, list.c_nhwc[i] = (size_t)p->c_nhwc;
            list.hw[i] = (size_t)p->hw, list.src[i] = p->src, list.dst[i] = p->dst;
            list.first_block[i + 1] = list.first_block[i] + convert_blocks(p->n, p->c, p->c_nhwc, p->hw, p->c_nhwc);
        }
        list.count = (size_t)part;
        if (list.first_block[part] == 0)
            continue;
        GAN_TRY(launch(name, gan_f32_to_nhwc_list_kernel<T>, (unsigned)list.first_block[part],
                       cuda_stream, list));
    }
    return GAN_OK;
}

/* The uint8 batch into x's NHWC copy: one thread per element of dst (pixels and dst are both NHWC,
 * so there is no tile to transpose). */
template <typename T>
static gan_status launch_images_to_nhwc(const char *kernel_name, cudaStream_t cuda_stream, int n, int h, int w,
                                        int c, int c_nhwc, const uint8_t *pixels, T *dst)
{
    if (h < 0 || w < 0)
        return gan_error(GAN_ERR_ARG, "%s: negative image size %dx%d", kernel_name, h, w);
    size_t hw = (size_t)h * (size_t)w;
    if (hw > INT_MAX)
        return gan_error(GAN_ERR_ARG, "%s: image %dx%d too large", kernel_name, h, w);
    GAN_TRY(check_convert_shape(kernel_name, "", n, c, c_nhwc, (int)hw));
    size_t count = (size_t)n * hw * (size_t)c_nhwc;
    return launch_elementwise(kernel_name, gan_images_to_nhwc_kernel<T>, count, cuda_stream, count, (size_t)c,
                              (size_t)c_nhwc, pixels, dst);
}

extern "C" {

gan_status gan_cuda_fill(cudaStream_t cuda_stream, float *dst, float value, size_t count)
{
    return launch_elementwise("fill", gan_fill_kernel, count, cuda_stream, dst, value, count);
}

gan_status gan_cuda_activation_forward(cudaStream_t cuda_stream, gan_activation kind, float slope,
                                       size_t count, const float *x, float *y)
{
    return launch_elementwise("activation_forward", gan_activation_forward_kernel, count,
                              cuda_stream, (int)kind, slope, count, x, y);
}

gan_status gan_cuda_activation_backward(cudaStream_t cuda_stream, gan_activation kind,
                                        float slope, size_t count, const float *x,
                                        const float *y, const float *dy, float *dx)
{
    return launch_elementwise("activation_backward", gan_activation_backward_kernel, count,
                              cuda_stream, (int)kind, slope, count, x, y, dy, dx);
}

gan_status gan_cuda_activation_forward_bf16(cudaStream_t cuda_stream, gan_activation kind, float slope, size_t count,
                                            const uint16_t *x, uint16_t *y)
{
    if (!gan_activation_known(kind))
        return gan_error(GAN_ERR_ARG, "activation_forward_bf16: unknown activation %d", (int)kind);
    return launch_elementwise("activation_forward_bf16", gan_activation_forward_bf16_kernel, count, cuda_stream,
                              (int)kind, slope, count, (const __nv_bfloat16 *)x, (__nv_bfloat16 *)y);
}

gan_status gan_cuda_activation_backward_bf16(cudaStream_t cuda_stream, gan_activation kind, float slope,
                                             size_t count, const uint16_t *x, const uint16_t *y, const uint16_t *dy,
                                             uint16_t *dx)
{
    if (!gan_activation_known(kind))
        return gan_error(GAN_ERR_ARG, "activation_backward_bf16: unknown activation %d", (int)kind);
    return launch_elementwise("activation_backward_bf16", gan_activation_backward_bf16_kernel, count, cuda_stream,
                              (int)kind, slope, count, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)y,
                              (const __nv_bfloat16 *)dy, (__nv_bfloat16 *)dx);
}

gan_status gan_cuda_multiply(cudaStream_t cuda_stream, size_t count, const float *a,
                             const float *b, float *y)
{
    return launch_elementwise("multiply", gan_multiply_kernel, count, cuda_stream, count, a, b, y);
}

gan_status gan_cuda_dropout_forward(cudaStream_t cuda_stream, size_t count, float p,
                                    uint64_t seed, uint64_t stream, gan_count first,
                                    const float *x, float *mask, float *y)
{
    return launch_elementwise("dropout_forward", gan_dropout_forward_kernel, count, cuda_stream,
                              count, p, seed, stream, first.base, first.offset, x, mask, y);
}

gan_status gan_cuda_bce_logits(cudaStream_t cuda_stream, int n, const float *logits, float target,
                               float grad_scale, float *loss, float *prob_mean, float *dlogits)
{
    if (n <= 0)
        return gan_error(GAN_ERR_ARG, "bce_logits: batch of %d logits (need at least 1)", n);
    /* The CPU backend scales the gradient by grad_scale / n computed the same way in float. */
    float grad_scale_over_n = grad_scale / (float)n;
    return launch("bce_logits", gan_bce_logits_kernel, 1u, cuda_stream, n, logits, target,
                  grad_scale_over_n, loss, prob_mean, dlogits);
}

gan_status gan_cuda_adam_step(cudaStream_t cuda_stream, size_t count, float *param,
                              const float *grad, float *m, float *v, gan_adam_hyper hyper,
                              gan_count step)
{
    return launch_elementwise("adam", gan_adam_kernel, count, cuda_stream, count, param, grad, m,
                              v, hyper, step.base, step.offset);
}

gan_status gan_cuda_ema_update(cudaStream_t cuda_stream, size_t count, double decay, const float *param,
                               float *ema)
{
    if (!(decay >= 0.0 && decay < 1.0))
        return gan_error(GAN_ERR_ARG, "ema_update: decay %g outside [0, 1)", decay);
    return launch_elementwise("ema_update", gan_ema_update_kernel, count, cuda_stream, count,
                              gan_ema_scalars_of(decay), param, ema);
}

gan_status gan_cuda_rng_normal(cudaStream_t cuda_stream, size_t count, uint64_t seed,
                               uint64_t stream, gan_count first, float mean, float std,
                               float *out)
{
    return launch_elementwise("rng_normal", gan_rng_normal_kernel, count, cuda_stream, count,
                              seed, stream, first.base, first.offset, mean, std, out);
}

gan_status gan_cuda_rng_uniform(cudaStream_t cuda_stream, size_t count, uint64_t seed,
                                uint64_t stream, gan_count first, float low, float high,
                                float *out)
{
    return launch_elementwise("rng_uniform", gan_rng_uniform_kernel, count, cuda_stream, count,
                              seed, stream, first.base, first.offset, low, high, out);
}

gan_status gan_cuda_advance_counts(cudaStream_t cuda_stream, gan_count_advance advance)
{
    if (advance.n < 0 || advance.n > GAN_MAX_ADVANCED_COUNTS)
        return gan_error(GAN_ERR_ARG, "advance_counts: %d counts", advance.n);
    for (int i = 0; i < advance.n; i++)
        if (!advance.count[i])
            return gan_error(GAN_ERR_ARG, "advance_counts: count %d is NULL", i);
    if (advance.n == 0)
        return GAN_OK;
    return launch("advance_counts", gan_advance_counts_kernel, 1u, cuda_stream, advance);
}

gan_status gan_cuda_images_to_float(cudaStream_t cuda_stream, int n, int h, int w, int c,
                                    const uint8_t *nhwc, float *nchw)
{
    if (n < 0 || h < 0 || w < 0 || c < 0)
        return gan_error(GAN_ERR_ARG, "images_to_float: negative shape [%d, %d, %d, %d]", n, h, w, c);
    size_t hw = (size_t)h * (size_t)w;
    size_t count = (size_t)n * (size_t)c * hw;
    return launch_elementwise("images_to_float", gan_images_to_float_kernel, count, cuda_stream,
                              count, (size_t)c, hw, nhwc, nchw);
}

gan_status gan_cuda_bias_forward(cudaStream_t cuda_stream, int n, int c, int hw,
                                 const float *bias, float *y)
{
    if (n < 0 || c < 0 || hw < 0)
        return gan_error(GAN_ERR_ARG, "bias_forward: negative shape [%d, %d, %d]", n, c, hw);
    size_t count = (size_t)n * (size_t)c * (size_t)hw;
    return launch_elementwise("bias_forward", gan_bias_forward_kernel, count, cuda_stream, count,
                              (size_t)c, (size_t)hw, bias, y);
}

gan_status gan_cuda_bias_backward(cudaStream_t cuda_stream, int n, int c, int hw,
                                  const float *dy, float beta, float *db)
{
    if (n < 0 || c < 0 || hw < 0)
        return gan_error(GAN_ERR_ARG, "bias_backward: negative shape [%d, %d, %d]", n, c, hw);
    if (c == 0)
        return GAN_OK;
    /* One block per channel (grid.x allows 2^31 - 1 blocks, more than any int c). */
    return launch("bias_backward", gan_bias_backward_kernel, (unsigned)c, cuda_stream, (size_t)n,
                  (size_t)c, (size_t)hw, dy, beta, db);
}

gan_status gan_cuda_subpixel_weights(cudaStream_t cuda_stream, int co, int ci, const float *w,
                                     float *w2)
{
    if (co < 0 || ci < 0)
        return gan_error(GAN_ERR_ARG, "subpixel_weights: negative shape co %d, ci %d", co, ci);
    size_t count = (size_t)16 * (size_t)co * (size_t)ci; /* w2 [4 ci, co, 2, 2] */
    return launch_elementwise("subpixel_weights", gan_subpixel_weights_kernel, count, cuda_stream,
                              count, (size_t)co, (size_t)ci, w, w2);
}

gan_status gan_cuda_subpixel_gather(cudaStream_t cuda_stream, int n, int ci, int h_out, int w_out,
                                    const float *y2, int act, float slope, float *dx)
{
    GAN_TRY(check_epilogue_act("subpixel_gather", act));
    if (n < 0 || ci < 0 || h_out < 0 || w_out < 0)
        return gan_error(GAN_ERR_ARG, "subpixel_gather: negative shape n %d, ci %d, y %dx%d", n, ci,
                         h_out, w_out);
    /* dx [n, ci, 2 h_out, 2 w_out] */
    size_t count = (size_t)n * (size_t)ci * (2 * (size_t)h_out) * (2 * (size_t)w_out);
    return launch_elementwise("subpixel_gather", gan_subpixel_gather_kernel, count, cuda_stream,
                              count, (size_t)ci, (size_t)h_out, (size_t)w_out, y2, act, slope, dx);
}

gan_status gan_cuda_im2col(cudaStream_t cuda_stream, const gan_conv_geom *g, const float *x, float *col)
{
    if (g->n < 0 || g->c_in < 0 || g->h_in < 0 || g->w_in < 0 || g->h_out < 0 || g->w_out < 0 || g->k_h < 0 ||
        g->k_w < 0 || g->stride_h < 1 || g->stride_w < 1 || g->pad_h < 0 || g->pad_w < 0)
        return gan_error(GAN_ERR_ARG, "im2col: bad geometry x [%d, %d, %d, %d], kernel %dx%d, stride %dx%d, pad %dx%d",
                         g->n, g->c_in, g->h_in, g->w_in, g->k_h, g->k_w, g->stride_h, g->stride_w, g->pad_h,
                         g->pad_w);
    gan_im2col_shape s;
    s.ci = (size_t)g->c_in, s.h = (size_t)g->h_in, s.w = (size_t)g->w_in;
    s.kh = (size_t)g->k_h, s.kw = (size_t)g->k_w, s.ho = (size_t)g->h_out, s.wo = (size_t)g->w_out;
    s.sh = (size_t)g->stride_h, s.sw = (size_t)g->stride_w, s.ph = g->pad_h, s.pw = g->pad_w;
    s.p = (size_t)g->n * s.ho * s.wo;
    size_t count = s.ci * s.kh * s.kw * s.p; /* col [K, P] */
    return launch_elementwise("im2col", gan_im2col_kernel, count, cuda_stream, count, s, x, col);
}

gan_status gan_cuda_channels_first(cudaStream_t cuda_stream, int n, int c, int hw, const float *x, float *y)
{
    if (n < 0 || c < 0 || hw < 0)
        return gan_error(GAN_ERR_ARG, "channels_first: negative shape [%d, %d, %d]", n, c, hw);
    size_t count = (size_t)n * (size_t)c * (size_t)hw;
    return launch_elementwise("channels_first", gan_channels_first_kernel, count, cuda_stream, count, (size_t)n,
                              (size_t)c, (size_t)hw, x, y);
}

static gan_status check_bn_shape(const char *op, int n, int c, int hw)
{
    if (n < 1 || c < 1 || hw < 1)
        return gan_error(GAN_ERR_ARG, "%s: bad shape [%d, %d, %d]", op, n, c, hw);
    return GAN_OK;
}

static gan_status check_fused_act(const char *op, int act, float slope)
{
    if (act != GAN_FUSED_NONE && act != GAN_ACT_RELU && !(act == GAN_ACT_LRELU && slope >= 0.0f))
        return gan_error(GAN_ERR_ARG, "%s: activation %d (slope %g) is not ReLU or LeakyReLU with "
                                      "slope >= 0", op, act, (double)slope);
    return GAN_OK;
}

/* `chunks` cut to the fewest of: what reaches GAN_BN_ENOUGH_BLOCKS blocks of `blocks_per_chunk`
 * each, `most`, and what the scratch holds for c channels (2 c per chunk); at least 1. */
static size_t bn_chunks_within(size_t chunks, size_t blocks_per_chunk, size_t most, int c, size_t scratch_doubles)
{
    size_t enough = (GAN_BN_ENOUGH_BLOCKS + blocks_per_chunk - 1) / blocks_per_chunk;
    size_t room = scratch_doubles / (2 * (size_t)c);
    if (chunks > enough)
        chunks = enough;
    if (chunks > most)
        chunks = most;
    if (chunks > room)
        chunks = room;
    return chunks < 1 ? 1 : chunks;
}

size_t gan_cuda_bn_chunks(int n, int c, int hw, size_t scratch_doubles)
{
    if (n < 1 || c < 1 || hw < 1)
        return 1;
    size_t count = (size_t)n * (size_t)hw;
    return bn_chunks_within((count + GAN_BN_CHUNK_VALUES - 1) / GAN_BN_CHUNK_VALUES, (size_t)c, GAN_BN_MAX_CHUNKS, c,
                            scratch_doubles);
}

void gan_cuda_bn_describe(int n, int c, int hw, size_t scratch_doubles, char *out, size_t bytes)
{
    if (!out || bytes == 0)
        return;
    size_t chunks = gan_cuda_bn_chunks(n, c, hw, scratch_doubles);
    size_t count = n > 0 && hw > 0 ? (size_t)n * (size_t)hw : 0;
    snprintf(out, bytes, "%zu chunk%s of %zu x %d channels, %zu blocks; %d + %d launches", chunks,
             chunks == 1 ? "" : "s", (count + chunks - 1) / chunks, c, chunks * (size_t)(c > 0 ? c : 0),
             chunks == 1 ? 1 : 3, chunks == 1 ? 1 : 2);
}

/* The chunks of a launcher given `scratch`: one without any. */
static size_t bn_scratch_chunks(int n, int c, int hw, const double *scratch, size_t scratch_doubles)
{
    return scratch ? gan_cuda_bn_chunks(n, c, hw, scratch_doubles) : 1;
}

/* The blocks of a batch-norm launch: chunks per channel times c (at most 2^31 - 1, grid.x's
 * limit: c is an int, and above one chunk c chunks is bounded by the scratch). */
static unsigned bn_blocks(int c, size_t chunks) { return (unsigned)((size_t)c * chunks); }

gan_status gan_cuda_bn_forward_train(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                     const float *gamma, const float *beta, float momentum,
                                     float eps, float *running_mean, float *running_var,
                                     float *save_mean, float *save_invstd, float *y, int act,
                                     float slope, float *y_act, double *scratch, size_t scratch_doubles)
{
    GAN_TRY(check_bn_shape("bn forward (training)", n, c, hw));
    GAN_TRY(check_fused_act("bn forward (training)", act, slope));
    if ((size_t)n * (size_t)hw < 2)
        return gan_error(GAN_ERR_ARG, "bn forward (training): one value per channel has no variance");
    size_t chunks = bn_scratch_chunks(n, c, hw, scratch, scratch_doubles);
    if (chunks == 1)
        return launch("bn_forward_train", gan_bn_forward_train_kernel, (unsigned)c, cuda_stream, (size_t)n,
                      (size_t)c, (size_t)hw, x, gamma, beta, momentum, eps, running_mean, running_var,
                      save_mean, save_invstd, y, act, slope, y_act);
    /* scratch: sums [c][chunks], then squares [c][chunks] */
    double *sums = scratch, *squares = scratch + (size_t)c * chunks, count = (double)n * (double)hw;
    GAN_TRY(launch("bn_chunk_sums", gan_bn_chunk_sums_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                   (size_t)c, (size_t)hw, chunks, x, sums));
    GAN_TRY(launch("bn_chunk_squares", gan_bn_chunk_squares_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                   (size_t)c, (size_t)hw, chunks, x, (const double *)sums, chunks, count, squares));
    return launch("bn_chunk_forward", gan_bn_chunk_forward_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                  (size_t)c, (size_t)hw, chunks, x, gamma, beta, momentum, eps, (const double *)sums,
                  (const double *)squares, chunks, count, running_mean, running_var, save_mean, save_invstd, y,
                  act, slope, y_act);
}

gan_status gan_cuda_bn_forward_eval(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var, float eps,
                                    float *y)
{
    GAN_TRY(check_bn_shape("bn forward (eval)", n, c, hw));
    size_t count = (size_t)n * (size_t)c * (size_t)hw;
    return launch_elementwise("bn_forward_eval", gan_bn_forward_eval_kernel, count, cuda_stream, count,
                              (size_t)c, (size_t)hw, x, gamma, beta, running_mean, running_var, eps, y);
}

gan_status gan_cuda_bn_backward(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                const float *y, const float *dy, int act, float slope,
                                const float *gamma, const float *save_mean, const float *save_invstd,
                                float *dx, float param_beta, float *dgamma, float *dbeta, double *scratch,
                                size_t scratch_doubles)
{
    GAN_TRY(check_bn_shape("bn backward", n, c, hw));
    GAN_TRY(check_fused_act("bn backward", act, slope));
    size_t chunks = bn_scratch_chunks(n, c, hw, scratch, scratch_doubles);
    if (chunks == 1)
        return launch("bn_backward", gan_bn_backward_kernel, (unsigned)c, cuda_stream, (size_t)n, (size_t)c,
                      (size_t)hw, x, y, dy, act, slope, gamma, save_mean, save_invstd, dx, param_beta, dgamma,
                      dbeta);
    /* scratch: (sum g, sum g xhat) [2c][chunks] */
    GAN_TRY(launch("bn_chunk_grad_sums", gan_bn_chunk_grad_sums_kernel, bn_blocks(c, chunks), cuda_stream,
                   (size_t)n, (size_t)c, (size_t)hw, chunks, x, y, dy, act, slope, save_mean, save_invstd, 0.0f,
                   (float *)NULL, (float *)NULL, scratch));
    return launch("bn_chunk_backward", gan_bn_chunk_backward_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                  (size_t)c, (size_t)hw, chunks, x, y, dy, act, slope, gamma, save_mean, save_invstd,
                  (const double *)scratch, chunks, (double)n * (double)hw, param_beta, dgamma, dbeta, dx);
}

/* ---- batch norm over stored tensors (NHWC edges, BF16 or FP32) -------------------------- */

size_t gan_cuda_bn_nhwc_chunks(int n, int c, int hw, size_t scratch_doubles)
{
    if (n < 1 || c < 1 || hw < 1)
        return 1;
    size_t rows = (size_t)n * (size_t)hw, tiles = ((size_t)c + GAN_BN_NHWC_LANES - 1) / GAN_BN_NHWC_LANES;
    return bn_chunks_within((rows + GAN_BN_NHWC_CHUNK_ROWS - 1) / GAN_BN_NHWC_CHUNK_ROWS, tiles, GAN_BN_NHWC_MAX_CHUNKS,
                            c, scratch_doubles);
}

static gan_status check_storage(const char *op, const char *which, int storage)
{
    if (storage != GAN_STORAGE_F32_NCHW && storage != GAN_STORAGE_BF16_NHWC && storage != GAN_STORAGE_F32_NHWC)
        return gan_error(GAN_ERR_ARG, "%s: unknown storage %d of %s", op, storage, which);
    return GAN_OK;
}

/* The checks every stored batch-norm launcher makes, and its chunks (the scratch must hold the
 * sums of at least one: 2 c doubles). */
static gan_status bn_nhwc_prepare(const char *op, int n, int c, int hw, int in_storage, int out_storage, int act,
                                  float slope, const double *scratch, size_t scratch_doubles, size_t *chunks)
{
    GAN_TRY(check_bn_shape(op, n, c, hw));
    GAN_TRY(check_fused_act(op, act, slope));
    GAN_TRY(check_storage(op, "the input", in_storage));
    GAN_TRY(check_storage(op, "the output", out_storage));
    if (!scratch || scratch_doubles < 2 * (size_t)c)
        return gan_error(GAN_ERR_ARG, "%s: a scratch of %zu doubles cannot hold the sums of %d channels", op,
                         scratch ? scratch_doubles : 0, c);
    *chunks = gan_cuda_bn_nhwc_chunks(n, c, hw, scratch_doubles);
    return GAN_OK;
}

static unsigned bn_nhwc_blocks(int c, size_t chunks)
{
    return (unsigned)(((size_t)c + GAN_BN_NHWC_LANES - 1) / GAN_BN_NHWC_LANES * chunks);
}

gan_status gan_cuda_bn_nhwc_forward_train(cudaStream_t cuda_stream, int n, int c, int hw, int in_storage,
                                          const void *x, const float *gamma, const float *beta, float momentum,
                                          float eps, float *running_mean, float *running_var, float *save_mean,
                                          float *save_invstd, int out_storage, void *y, int act, float slope,
                                          void *y_act, double *scratch, size_t scratch_doubles)
{
    const char *op = "bn forward (training, stored)";
    size_t chunks = 1;
    GAN_TRY(bn_nhwc_prepare(op, n, c, hw, in_storage, out_storage, act, slope, scratch, scratch_doubles, &chunks));
    if ((size_t)n * (size_t)hw < 2)
        return gan_error(GAN_ERR_ARG, "%s: one value per channel has no variance", op);
    size_t rows = (size_t)n * (size_t)hw;
    unsigned blocks = bn_nhwc_blocks(c, chunks);
    /* scratch: sums [c][chunks], then squares [c][chunks] */
    double *sums = scratch, *squares = scratch + (size_t)c * chunks;
    if (chunks == 1)
        return launch("bn_nhwc_train_one", gan_bn_nhwc_train_one_kernel, blocks, cuda_stream, rows, (size_t)c,
                      (size_t)hw, in_storage, x, gamma, beta, momentum, eps, sums, squares, running_mean, running_var,
                      save_mean, save_invstd, out_storage, y, act, slope, y_act);
    GAN_TRY(launch("bn_nhwc_stats", gan_bn_nhwc_stats_kernel, blocks, cuda_stream, rows, (size_t)c, (size_t)hw,
                   chunks, in_storage, x, sums, squares));
    return launch("bn_nhwc_forward", gan_bn_nhwc_forward_kernel, blocks, cuda_stream, rows, (size_t)c, (size_t)hw,
                  chunks, in_storage, x, gamma, beta, momentum, eps, (const double *)sums, (const double *)squares,
                  running_mean, running_var, save_mean, save_invstd, out_storage, y, act, slope, y_act);
}

gan_status gan_cuda_bn_nhwc_forward_eval(cudaStream_t cuda_stream, int n, int c, int hw, int in_storage,
                                         const void *x, const float *gamma, const float *beta,
                                         const float *running_mean, const float *running_var, float eps,
                                         int out_storage, void *y)
{
    const char *op = "bn forward (eval, stored)";
    GAN_TRY(check_bn_shape(op, n, c, hw));
    GAN_TRY(check_storage(op, "the input", in_storage));
    GAN_TRY(check_storage(op, "the output", out_storage));
    size_t rows = (size_t)n * (size_t)hw;
    return launch_elementwise("bn_nhwc_forward_eval", gan_bn_nhwc_forward_eval_kernel, rows * (size_t)c, cuda_stream,
                              rows, (size_t)c, (size_t)hw, in_storage, x, gamma, beta, running_mean, running_var,
                              eps, out_storage, y);
}

gan_status gan_cuda_bn_nhwc_backward(cudaStream_t cuda_stream, int n, int c, int hw, int in_storage, const void *x,
                                     int out_storage, const void *y_act, const void *dy, int act, float slope,
                                     const float *gamma, const float *save_mean, const float *save_invstd,
                                     void *dx, float param_beta, float *dgamma, float *dbeta, double *scratch,
                                     size_t scratch_doubles)
{
    const char *op = "bn backward (stored)";
    size_t chunks = 1;
    GAN_TRY(bn_nhwc_prepare(op, n, c, hw, in_storage, out_storage, act, slope, scratch, scratch_doubles, &chunks));
    size_t rows = (size_t)n * (size_t)hw;
    unsigned blocks = bn_nhwc_blocks(c, chunks);
    /* scratch: (sum g, sum g xhat) [2c][chunks] */
    if (chunks == 1)
        return launch("bn_nhwc_backward_one", gan_bn_nhwc_backward_one_kernel, blocks, cuda_stream, rows, (size_t)c,
                      (size_t)hw, in_storage, x, out_storage, y_act, dy, act, slope, gamma, save_mean, save_invstd,
                      scratch, param_beta, dgamma, dbeta, dx);
    GAN_TRY(launch("bn_nhwc_grad_sums", gan_bn_nhwc_grad_sums_kernel, blocks, cuda_stream, rows, (size_t)c,
                   (size_t)hw, chunks, in_storage, x, out_storage, y_act, dy, act, slope, save_mean, save_invstd,
                   scratch));
    return launch("bn_nhwc_backward", gan_bn_nhwc_backward_kernel, blocks, cuda_stream, rows, (size_t)c, (size_t)hw,
                  chunks, in_storage, x, out_storage, y_act, dy, act, slope, gamma, save_mean, save_invstd,
                  (const double *)scratch, param_beta, dgamma, dbeta, dx);
}

/* ---- data-parallel runs ------------------------------------------------------------------- */

gan_status gan_cuda_scale(cudaStream_t cuda_stream, size_t count, float scale, float *data)
{
    return launch_elementwise("scale", gan_scale_kernel, count, cuda_stream, count, scale, data);
}

static gan_status check_sums_count(const char *op, double count, double least)
{
    if (!(count >= least))
        return gan_error(GAN_ERR_ARG, "%s: %g values per channel", op, count);
    return GAN_OK;
}

/* The rows of the partials of `chunks` chunks (in scratch) folded into out[rows], or, with one
 * chunk, nothing to do (the kernel wrote out itself). */
static gan_status bn_fold(cudaStream_t cuda_stream, size_t rows, size_t chunks, const double *partials, double *out)
{
    if (chunks == 1)
        return GAN_OK;
    return launch_elementwise("bn_fold", gan_bn_fold_kernel, rows, cuda_stream, rows, chunks, partials, out);
}

gan_status gan_cuda_bn_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x, double *scratch,
                            size_t scratch_doubles, double *sums)
{
    GAN_TRY(check_bn_shape("bn sums", n, c, hw));
    size_t chunks = bn_scratch_chunks(n, c, hw, scratch, scratch_doubles);
    double *partials = chunks == 1 ? sums : scratch;
    GAN_TRY(launch("bn_chunk_sums", gan_bn_chunk_sums_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                   (size_t)c, (size_t)hw, chunks, x, partials));
    return bn_fold(cuda_stream, (size_t)c, chunks, partials, sums);
}

gan_status gan_cuda_bn_centered_squares(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                        const double *sums, double count, double *scratch, size_t scratch_doubles,
                                        double *squares)
{
    GAN_TRY(check_bn_shape("bn centered squares", n, c, hw));
    GAN_TRY(check_sums_count("bn centered squares", count, 2.0));
    size_t chunks = bn_scratch_chunks(n, c, hw, scratch, scratch_doubles);
    double *partials = chunks == 1 ? squares : scratch;
    GAN_TRY(launch("bn_chunk_squares", gan_bn_chunk_squares_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                   (size_t)c, (size_t)hw, chunks, x, sums, (size_t)1, count, partials));
    return bn_fold(cuda_stream, (size_t)c, chunks, partials, squares);
}

/* The launches from summed statistics write each value from the channel's totals alone, so their
 * chunks change only how many blocks share a channel: as many as the shape asks for. */
static size_t bn_output_chunks(int n, int c, int hw) { return gan_cuda_bn_chunks(n, c, hw, SIZE_MAX); }

gan_status gan_cuda_bn_forward_from_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                         const float *gamma, const float *beta, float momentum, float eps,
                                         const double *sums, const double *squares, double count,
                                         float *running_mean, float *running_var, float *save_mean,
                                         float *save_invstd, float *y, int act, float slope, float *y_act)
{
    GAN_TRY(check_bn_shape("bn forward from sums", n, c, hw));
    GAN_TRY(check_fused_act("bn forward from sums", act, slope));
    GAN_TRY(check_sums_count("bn forward from sums", count, 2.0));
    size_t chunks = bn_output_chunks(n, c, hw);
    return launch("bn_chunk_forward", gan_bn_chunk_forward_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                  (size_t)c, (size_t)hw, chunks, x, gamma, beta, momentum, eps, sums, squares, (size_t)1, count,
                  running_mean, running_var, save_mean, save_invstd, y, act, slope, y_act);
}

gan_status gan_cuda_bn_backward_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                     const float *y, const float *dy, int act, float slope,
                                     const float *save_mean, const float *save_invstd, float param_beta,
                                     float *dgamma, float *dbeta, double *scratch, size_t scratch_doubles,
                                     double *sums)
{
    GAN_TRY(check_bn_shape("bn backward sums", n, c, hw));
    GAN_TRY(check_fused_act("bn backward sums", act, slope));
    size_t chunks = bn_scratch_chunks(n, c, hw, scratch, scratch_doubles);
    if (chunks == 1)
        return launch("bn_chunk_grad_sums", gan_bn_chunk_grad_sums_kernel, (unsigned)c, cuda_stream, (size_t)n,
                      (size_t)c, (size_t)hw, chunks, x, y, dy, act, slope, save_mean, save_invstd, param_beta,
                      dgamma, dbeta, sums);
    GAN_TRY(launch("bn_chunk_grad_sums", gan_bn_chunk_grad_sums_kernel, bn_blocks(c, chunks), cuda_stream,
                   (size_t)n, (size_t)c, (size_t)hw, chunks, x, y, dy, act, slope, save_mean, save_invstd, 0.0f,
                   (float *)NULL, (float *)NULL, scratch));
    return launch_elementwise("bn_fold_grad", gan_bn_fold_grad_kernel, (size_t)c, cuda_stream, (size_t)c, chunks,
                              (const double *)scratch, param_beta, dgamma, dbeta, sums);
}

gan_status gan_cuda_bn_backward_from_sums(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                          const float *y, const float *dy, int act, float slope,
                                          const float *gamma, const float *save_mean,
                                          const float *save_invstd, const double *sums, double count,
                                          float *dx)
{
    GAN_TRY(check_bn_shape("bn backward from sums", n, c, hw));
    GAN_TRY(check_fused_act("bn backward from sums", act, slope));
    GAN_TRY(check_sums_count("bn backward from sums", count, 1.0));
    size_t chunks = bn_output_chunks(n, c, hw);
    return launch("bn_chunk_backward", gan_bn_chunk_backward_kernel, bn_blocks(c, chunks), cuda_stream, (size_t)n,
                  (size_t)c, (size_t)hw, chunks, x, y, dy, act, slope, gamma, save_mean, save_invstd, sums,
                  (size_t)1, count, 0.0f, (float *)NULL, (float *)NULL, dx);
}

/* ---- evaluation ops (kernels/eval.cuh) ---------------------------------------------------- */

static gan_status check_pool_geom(const char *op, const gan_pool2d_geom *g)
{
    const char *problem = gan_pool2d_geom_problem(g);
    if (problem && g)
        return gan_error(GAN_ERR_ARG, "%s: %s: [%d, %d, %d, %d] -> %dx%d, window %dx%d, stride %d,%d, padding %d,%d",
                         op, problem, g->n, g->c, g->h_in, g->w_in, g->h_out, g->w_out, g->k_h, g->k_w,
                         g->stride_h, g->stride_w, g->pad_h, g->pad_w);
    if (problem)
        return gan_error(GAN_ERR_ARG, "%s: %s", op, problem);
    return GAN_OK;
}

gan_status gan_cuda_max_pool_forward(cudaStream_t cuda_stream, const gan_pool2d_geom *g, const float *x,
                                     float *y)
{
    GAN_TRY(check_pool_geom("max pool", g));
    size_t count = (size_t)g->n * g->c * g->h_out * g->w_out;
    return launch_elementwise("max_pool", gan_max_pool_kernel, count, cuda_stream, *g, count, x, y);
}

gan_status gan_cuda_avg_pool_forward(cudaStream_t cuda_stream, const gan_pool2d_geom *g,
                                     bool count_include_pad, const float *x, float *y)
{
    GAN_TRY(check_pool_geom("average pool", g));
    size_t count = (size_t)g->n * g->c * g->h_out * g->w_out;
    return launch_elementwise("avg_pool", gan_avg_pool_kernel, count, cuda_stream, *g,
                              count_include_pad ? 1 : 0, count, x, y);
}

gan_status gan_cuda_global_avg_pool(cudaStream_t cuda_stream, int n, int c, int hw, const float *x, float *y)
{
    if (n < 1 || c < 1 || hw < 1)
        return gan_error(GAN_ERR_ARG, "global average pool: bad shape [%d, %d, %d]", n, c, hw);
    size_t planes = (size_t)n * (size_t)c;
    return launch_elementwise("global_avg_pool", gan_global_avg_pool_kernel, planes, cuda_stream, planes, hw,
                              x, y);
}

gan_status gan_cuda_copy_channels(cudaStream_t cuda_stream, int n, int c, int hw, const float *x,
                                  int y_channels, int offset, float *y)
{
    if (n < 0 || c < 0 || hw < 0 || offset < 0 || y_channels < 0 || (long long)offset + c > y_channels)
        return gan_error(GAN_ERR_ARG, "copy channels: %d channels at %d do not fit %d", c, offset, y_channels);
    size_t block = (size_t)c * (size_t)hw, count = (size_t)n * block;
    return launch_elementwise("copy_channels", gan_copy_channels_kernel, count, cuda_stream, count, block,
                              (size_t)y_channels * (size_t)hw, (size_t)offset * (size_t)hw, x, y);
}

gan_status gan_cuda_resize_bilinear(cudaStream_t cuda_stream, int n, int c, int h_in, int w_in, int h_out,
                                    int w_out, const float *x, float *y)
{
    if (n < 1 || c < 1 || h_in < 1 || w_in < 1 || h_out < 1 || w_out < 1)
        return gan_error(GAN_ERR_ARG, "bilinear resize: bad shape [%d, %d, %d, %d] -> %dx%d", n, c, h_in, w_in,
                         h_out, w_out);
    size_t count = (size_t)n * (size_t)c * (size_t)h_out * (size_t)w_out;
    return launch_elementwise("resize_bilinear", gan_resize_bilinear_kernel, count, cuda_stream, count, h_in,
                              w_in, h_out, w_out, x, y);
}

gan_status gan_cuda_bias_act_forward(cudaStream_t cuda_stream, int n, int c, int hw, const float *bias,
                                     gan_activation act, float slope, float *y)
{
    if (n < 0 || c < 0 || hw < 0)
        return gan_error(GAN_ERR_ARG, "bias + activation: negative shape [%d, %d, %d]", n, c, hw);
    if (!gan_activation_known(act))
        return gan_error(GAN_ERR_ARG, "bias + activation: unknown activation %d", (int)act);
    size_t count = (size_t)n * (size_t)c * (size_t)hw;
    return launch_elementwise("bias_act", gan_bias_act_kernel, count, cuda_stream, count, (size_t)c,
                              (size_t)hw, bias, (int)act, slope, y);
}

/* ---- BF16 and TF32 precision modes: the NHWC copies around cuDNN (kernels/convert.cuh) ------ */

/* The C side passes bf16 buffers as uint16_t bit patterns; the kernels take CUDA's type, which
 * is the same 16 bits with the same alignment, so the pointers are reinterpreted, not copied. */
static_assert(sizeof(__nv_bfloat16) == sizeof(uint16_t) && alignof(__nv_bfloat16) == alignof(uint16_t),
              "__nv_bfloat16 must be a 16-bit pattern, as uint16_t");

/* The narrowing's tiles span c_nhwc channels (it writes the padding: with c == 0 < c_nhwc, all of
 * dst is zeros); the widening's span c (the padding is not read). The kernels are templates over
 * the NHWC element type; naming an instantiation here is what makes nvcc compile it for the
 * device (and the emulation run it). */
gan_status gan_cuda_f32_to_bf16_nhwc(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw, const float *src,
                                     uint16_t *dst)
{
    return launch_convert("f32_to_bf16_nhwc", gan_f32_to_nhwc_kernel<__nv_bfloat16>, n, c, c_nhwc, hw, c_nhwc,
                          cuda_stream, src, reinterpret_cast<__nv_bfloat16 *>(dst));
}

gan_status gan_cuda_bf16_nhwc_to_f32(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw,
                                     const uint16_t *src, float beta, int act, float slope, float *dst)
{
    GAN_TRY(check_epilogue_act("bf16_nhwc_to_f32", act));
    return launch_convert("bf16_nhwc_to_f32", gan_nhwc_to_f32_kernel<__nv_bfloat16>, n, c, c_nhwc, hw, c,
                          cuda_stream, reinterpret_cast<const __nv_bfloat16 *>(src), beta, act, slope, dst);
}

gan_status gan_cuda_f32_to_f32_nhwc(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw, const float *src,
                                    float *dst)
{
    return launch_convert("f32_to_f32_nhwc", gan_f32_to_nhwc_kernel<float>, n, c, c_nhwc, hw, c_nhwc, cuda_stream,
                          src, dst);
}

gan_status gan_cuda_images_to_bf16_nhwc(cudaStream_t cuda_stream, int n, int h, int w, int c, int c_nhwc,
                                        const uint8_t *pixels, uint16_t *dst)
{
    return launch_images_to_nhwc("images_to_bf16_nhwc", cuda_stream, n, h, w, c, c_nhwc, pixels,
                                 reinterpret_cast<__nv_bfloat16 *>(dst));
}

gan_status gan_cuda_images_to_f32_nhwc(cudaStream_t cuda_stream, int n, int h, int w, int c, int c_nhwc,
                                       const uint8_t *pixels, float *dst)
{
    return launch_images_to_nhwc("images_to_f32_nhwc", cuda_stream, n, h, w, c, c_nhwc, pixels, dst);
}

gan_status gan_cuda_f32_to_bf16_nhwc_pair(cudaStream_t cuda_stream, const gan_nhwc_copy *first,
                                          const gan_nhwc_copy *second)
{
    return launch_narrow_pair<__nv_bfloat16>("f32_to_bf16_nhwc_pair", cuda_stream, first, second);
}

gan_status gan_cuda_f32_to_bf16_nhwc_list(cudaStream_t cuda_stream, int count, const gan_nhwc_copy *copies)
{
    return launch_list<__nv_bfloat16>("f32_to_bf16_nhwc_list", cuda_stream, count, copies);
}

gan_status gan_cuda_f32_to_f32_nhwc_list(cudaStream_t cuda_stream, int count, const gan_nhwc_copy *copies)
{
    return launch_list<float>("f32_to_f32_nhwc_list", cuda_stream, count, copies);
}

gan_status gan_cuda_f32_to_f32_nhwc_pair(cudaStream_t cuda_stream, const gan_nhwc_copy *first,
                                         const gan_nhwc_copy *second)
{
    return launch_narrow_pair<float>("f32_to_f32_nhwc_pair", cuda_stream, first, second);
}

gan_status gan_cuda_f32_nhwc_to_f32(cudaStream_t cuda_stream, int n, int c, int c_nhwc, int hw,
                                    const float *src, float beta, int act, float slope, float *dst)
{
    GAN_TRY(check_epilogue_act("f32_nhwc_to_f32", act));
    return launch_convert("f32_nhwc_to_f32", gan_nhwc_to_f32_kernel<float>, n, c, c_nhwc, hw, c, cuda_stream, src,
                          beta, act, slope, dst);
}

} /* extern "C" */
