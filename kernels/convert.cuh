/* The layout changes around cuDNN's NHWC convolutions, in the two precision modes that use them:
 * BF16 (float <-> bfloat16, converting on the way) and TF32 (float <-> float, a pure transpose).
 * Our buffers stay float NCHW; cuDNN gets its tensor-core convolution tensors in NHWC (and
 * filters in KRSC: the same layout with k as n), which its tensor-core kernels read without a
 * transpose of their own. Those kernels want channels in whole groups of 16 bytes (8 BF16 or 4
 * float values; the caller picks c_nhwc), which the image layers (c = 1 or 3) do not have: the
 * NHWC side then carries c_nhwc >= c channels, the last c_nhwc - c of them padding (zeros). The
 * NHWC element type T is __nv_bfloat16 or float; the kernels are templates over it, and the two
 * pairs of helpers below are all that differs. Shapes, per convolution tensor [n, c, hw] (hw = h w;
 * for a filter w [k, c, r s], k as n):
 *   narrowing:  src [n, c, hw] float (NCHW)      -> dst [n, hw, c_nhwc] T (NHWC),
 *               channels c .. c_nhwc - 1 of every position written as +0 (bits all zero)
 *   widening:   src [n, hw, c_nhwc] T (NHWC)     -> dst [n, c, hw] float (NCHW),
 *               dst = beta dst + act(src), from the first c channels only (the padding is never read)
 * ("narrowing" and "widening" name the directions; with T = float neither changes a value, but
 * for the widening's activation epilogue.) The widening ends a convolution pass of cuDNN's, so
 * the activation after the convolution (ReLU, LeakyReLU, tanh, sigmoid: gan_act_or_none of
 * kernels/activation.cuh, the activation kernel's own per-element code) is applied to each value
 * on its way out, before the beta add, instead of by one more pass over dst.
 * Per image, one layout is the transpose of the other: [c, hw] against [hw, c] (padded to
 * [hw, c_nhwc]). c == 0 is a shape like any other: the narrowing then fills dst with zeros, the
 * widening has nothing to write.
 *
 * The transpose goes through shared memory, so that the global reads and the global writes are
 * both coalesced: a block of GAN_BLOCK_THREADS threads takes one 32 x 32 tile of one image's
 * matrix at a time (a grid-stride loop over the tiles), reads it along the source's contiguous
 * dimension into a __shared__ float tile, synchronises, and writes it along the destination's.
 * The tiles span the channels the kernel writes: the narrowing's n * ceil(c_nhwc / 32) *
 * ceil(hw / 32) tiles cover the padding too (its channels are put into the tile as zeros, never
 * read from src), the widening's n * ceil(c / 32) * ceil(hw / 32) tiles only the first c channels
 * (a row of the source is then c of the c_nhwc values of one position). Each thread moves 4
 * elements per tile: the block is 32 columns x 8 rows, stepped 4 times down the tile. Partial
 * tiles at the edges (c_nhwc = 4 or 8, c = 3: the image layers) read and write only what lies
 * inside the matrix. The tile is [32][33]: the column read in the second half then falls in 32
 * different banks.
 *
 * When there is no padding (c_nhwc == c) and c == 1 or hw == 1, the two layouts are the same
 * bytes (a plain conversion, for T = float a plain copy), and a tile would be at most 1/32 full:
 * the kernel then converts one element per thread, grid-stride, as a plain elementwise kernel.
 * With padding the layouts differ even then (a position of [hw, c_nhwc] has zeros after its c
 * values), so those shapes take the tiles. The choice depends only on the shape, so it is the
 * same for every thread of the grid.
 *
 * The bf16 conversions are CUDA's own (<cuda_bf16.h> under nvcc, kernels/cuda_emulation.h's
 * bit-exact copies on the CPU): rounding to nearest, ties to even (the largest floats round to
 * infinity), every NaN becomes the quiet NaN 0x7FFF, widening is exact. With T = float a value is
 * only loaded and stored (the tile, the padding select), never computed on, so every bit pattern
 * arrives as it left, NaN payloads, subnormals and -0 included; only the widening's activation
 * and beta != 0 do arithmetic. Index math in size_t. */
#ifndef GAN_KERNELS_CONVERT_CUH
#define GAN_KERNELS_CONVERT_CUH

#include "activation.cuh"
#include "common.cuh"

#ifndef GAN_CUDA_EMULATION
#include <cuda_bf16.h>
#endif

/* The side of a transpose tile, and the rows of it a block covers in one step. */
#define GAN_CONVERT_TILE 32
#define GAN_CONVERT_TILE_ROWS (GAN_BLOCK_THREADS / GAN_CONVERT_TILE)
static_assert(GAN_BLOCK_THREADS % GAN_CONVERT_TILE == 0, "a block must cover whole tile rows");

/* Whether the two layouts are the same bytes: no padding, and one channel or one position. The
 * launchers size the grid by the same test. */
__host__ __device__ __forceinline__ bool gan_convert_is_plain(size_t c, size_t c_nhwc, size_t hw)
{
    return c == c_nhwc && (c == 1 || hw == 1);
}

/* Where tile number `tile` of the n * ceil(channels / 32) * ceil(hw / 32) lies: its image, and
 * its first channel and first position within that image's [channels, hw]. `channels` is what
 * the tiles span: c_nhwc for the narrowing, c for the widening. */
struct gan_convert_tile {
    size_t image, c0, p0;
};
__host__ __device__ __forceinline__ gan_convert_tile gan_convert_tile_at(size_t tile, size_t channels, size_t hw)
{
    size_t tiles_c = (channels + GAN_CONVERT_TILE - 1) / GAN_CONVERT_TILE;
    size_t tiles_hw = (hw + GAN_CONVERT_TILE - 1) / GAN_CONVERT_TILE;
    gan_convert_tile t;
    t.image = tile / (tiles_c * tiles_hw);
    size_t in_image = tile % (tiles_c * tiles_hw);
    t.c0 = in_image / tiles_hw * GAN_CONVERT_TILE;
    t.p0 = in_image % tiles_hw * GAN_CONVERT_TILE;
    return t;
}

__host__ __device__ __forceinline__ size_t gan_convert_tile_count(size_t n, size_t channels, size_t hw)
{
    size_t tiles_c = (channels + GAN_CONVERT_TILE - 1) / GAN_CONVERT_TILE;
    size_t tiles_hw = (hw + GAN_CONVERT_TILE - 1) / GAN_CONVERT_TILE;
    return n * tiles_c * tiles_hw;
}

/* The element type's two conversions, the only place the kernels differ by it: float -> T where
 * the narrowing stores, T -> float where the widening loads. bf16 rounds to nearest even (NaN ->
 * 0x7FFF) and widens exactly; float is the value itself both ways, every bit kept. */
__device__ __forceinline__ void gan_convert_store(__nv_bfloat16 *dst, float value)
{
    *dst = __float2bfloat16_rn(value);
}
__device__ __forceinline__ void gan_convert_store(float *dst, float value) { *dst = value; }
__device__ __forceinline__ float gan_convert_load(__nv_bfloat16 value) { return __bfloat162float(value); }
__device__ __forceinline__ float gan_convert_load(float value) { return value; }

/* dst [n, hw, c_nhwc] = T(src [n, c, hw]), channels c .. c_nhwc - 1 = +0, by block `block` of
 * `blocks` (the grid, or its share of a paired launch below). The tiles span c_nhwc channels.
 * Reads along hw (row `row` of the tile is channel c0 + row, column `col` position p0 + col; a
 * padding channel is put in as 0 without reading src), writes along the channels (row: position,
 * column: channel). T is __nv_bfloat16 or float. */
template <typename T>
__device__ void gan_f32_to_nhwc_blocks(size_t block, size_t blocks, size_t n, size_t c, size_t c_nhwc, size_t hw,
                                       const float *src, T *dst)
{
    if (gan_convert_is_plain(c, c_nhwc, hw)) {
        size_t count = n * c * hw;
        for (size_t i = block * blockDim.x + threadIdx.x; i < count; i += blocks * blockDim.x)
            gan_convert_store(&dst[i], src[i]);
        return;
    }
    __shared__ float tile[GAN_CONVERT_TILE][GAN_CONVERT_TILE + 1]; /* [channel][position] */
    const size_t col = threadIdx.x % GAN_CONVERT_TILE, first_row = threadIdx.x / GAN_CONVERT_TILE;
    const size_t tiles = gan_convert_tile_count(n, c_nhwc, hw);
    /* The same trip count for every thread of the block: each reaches both barriers. */
    for (size_t t = block; t < tiles; t += blocks) {
        gan_convert_tile at = gan_convert_tile_at(t, c_nhwc, hw);
        const float *image_src = src + at.image * c * hw; /* [c, hw] */
        T *image_dst = dst + at.image * hw * c_nhwc;      /* [hw, c_nhwc] */
        for (size_t row = first_row; row < GAN_CONVERT_TILE; row += GAN_CONVERT_TILE_ROWS) {
            size_t channel = at.c0 + row, position = at.p0 + col;
            if (channel < c_nhwc && position < hw)
                tile[row][col] = channel < c ? image_src[channel * hw + position] : 0.0f;
        }
        __syncthreads();
        for (size_t row = first_row; row < GAN_CONVERT_TILE; row += GAN_CONVERT_TILE_ROWS) {
            size_t position = at.p0 + row, channel = at.c0 + col;
            if (position < hw && channel < c_nhwc)
                gan_convert_store(&image_dst[position * c_nhwc + channel], tile[col][row]);
        }
        __syncthreads(); /* the next tile overwrites `tile` */
    }
}

template <typename T>
__global__ void gan_f32_to_nhwc_kernel(size_t n, size_t c, size_t c_nhwc, size_t hw, const float *src, T *dst)
{
    gan_f32_to_nhwc_blocks<T>(blockIdx.x, gridDim.x, n, c, c_nhwc, hw, src, dst);
}

/* The two input copies of a convolution pass in one launch (one launch fewer per pass, which in
 * a CUDA graph is one node fewer): blocks 0 .. first_blocks - 1 narrow the first tensor as
 * gan_f32_to_nhwc_kernel would with that grid, the other blocks the second. The branch is on the
 * block index, so each block's threads all take it. */
template <typename T>
__global__ void gan_f32_to_nhwc_pair_kernel(size_t first_blocks, size_t n1, size_t c1, size_t c_nhwc1, size_t hw1,
                                            const float *src1, T *dst1, size_t n2, size_t c2, size_t c_nhwc2,
                                            size_t hw2, const float *src2, T *dst2)
{
    if (blockIdx.x < first_blocks)
        gan_f32_to_nhwc_blocks<T>(blockIdx.x, first_blocks, n1, c1, c_nhwc1, hw1, src1, dst1);
    else
        gan_f32_to_nhwc_blocks<T>(blockIdx.x - first_blocks, gridDim.x - first_blocks, n2, c2, c_nhwc2, hw2, src2,
                                  dst2);
}

/* Up to GAN_NHWC_LIST_MAX narrowings in one launch (a model's convolution weights, copied once per
 * forward): tensor i gets blocks first_block[i] .. first_block[i + 1] - 1, as its own launch would
 * (the pair kernel's split, over more tensors). Passed by value. */
#define GAN_NHWC_LIST_MAX 8
struct gan_nhwc_list {
    size_t count;
    size_t first_block[GAN_NHWC_LIST_MAX + 1];
    size_t n[GAN_NHWC_LIST_MAX], c[GAN_NHWC_LIST_MAX], c_nhwc[GAN_NHWC_LIST_MAX], hw[GAN_NHWC_LIST_MAX];
    const float *src[GAN_NHWC_LIST_MAX];
    void *dst[GAN_NHWC_LIST_MAX];
};
template <typename T>
__global__ void gan_f32_to_nhwc_list_kernel(gan_nhwc_list list)
{
    size_t i = 0;
    while (i + 1 < list.count && blockIdx.x >= list.first_block[i + 1])
        i++;
    gan_f32_to_nhwc_blocks<T>(blockIdx.x - list.first_block[i], list.first_block[i + 1] - list.first_block[i],
                              list.n[i], list.c[i], list.c_nhwc[i], list.hw[i], list.src[i], static_cast<T *>(list.dst[i]));
}

/* The widening's write of one element: *out = act(value) when beta == 0 (*out not read), else
 * beta * *out + act(value); `act` a gan_activation or GAN_FUSED_NONE (gan_act_or_none). Both the
 * product and the sum are rounded on their own: LeakyReLU's value is itself a product (x slope),
 * which nvcc could otherwise contract with the add into one fused multiply-add. */
__device__ __forceinline__ void gan_convert_write(float *out, float value, float beta, int act, float slope)
{
    float activated = gan_act_or_none(act, slope, value);
#ifdef __CUDA_ARCH__
    *out = beta == 0.0f ? activated : __fadd_rn(gan_mul_rn(beta, *out), activated);
#else
    *out = beta == 0.0f ? activated : gan_mul_rn(beta, *out) + activated;
#endif
}

/* dst [n, c, hw] = act(float(src [n, hw, c_nhwc])) for the first c channels when beta == 0 (dst
 * is not read: it may hold NaN), else beta * dst + act(float(src)). `act` is a gan_activation or
 * GAN_FUSED_NONE (none), with the activation kernel's per-element code, so the fused result is
 * bit for bit the plain widening followed by gan_activation_forward_kernel. The product is
 * rounded on its own (gan_mul_rn: no fused multiply-add), so the device gives the same bits as
 * the emulation and as a float loop on the host. The mirror of the narrowing, over tiles spanning
 * c channels (the padding is neither read nor has a place in dst): reads along the channels (row:
 * position, column: channel), writes along hw (row: channel, column: position). T is
 * __nv_bfloat16 or float. */
template <typename T>
__global__ void gan_nhwc_to_f32_kernel(size_t n, size_t c, size_t c_nhwc, size_t hw, const T *src, float beta,
                                       int act, float slope, float *dst)
{
    if (gan_convert_is_plain(c, c_nhwc, hw)) {
        size_t count = n * c * hw;
        for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
            gan_convert_write(&dst[i], gan_convert_load(src[i]), beta, act, slope);
        return;
    }
    __shared__ float tile[GAN_CONVERT_TILE][GAN_CONVERT_TILE + 1]; /* [position][channel] */
    const size_t col = threadIdx.x % GAN_CONVERT_TILE, first_row = threadIdx.x / GAN_CONVERT_TILE;
    const size_t tiles = gan_convert_tile_count(n, c, hw);
    for (size_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        gan_convert_tile at = gan_convert_tile_at(t, c, hw);
        const T *image_src = src + at.image * hw * c_nhwc; /* [hw, c_nhwc] */
        float *image_dst = dst + at.image * c * hw;        /* [c, hw] */
        for (size_t row = first_row; row < GAN_CONVERT_TILE; row += GAN_CONVERT_TILE_ROWS) {
            size_t position = at.p0 + row, channel = at.c0 + col;
            if (position < hw && channel < c)
                tile[row][col] = gan_convert_load(image_src[position * c_nhwc + channel]);
        }
        __syncthreads();
        for (size_t row = first_row; row < GAN_CONVERT_TILE; row += GAN_CONVERT_TILE_ROWS) {
            size_t channel = at.c0 + row, position = at.p0 + col;
            if (channel < c && position < hw)
                gan_convert_write(&image_dst[channel * hw + position], tile[col][row], beta, act, slope);
        }
        __syncthreads(); /* the next tile overwrites `tile` */
    }
}

/* The uint8 batch straight into the NHWC copy of a convolution's x: dst [n, hw, c_nhwc] T =
 * gan_pixel_to_unit(pixels [n, hw, c]) for channels below c, +0 for the padding (c_nhwc >= c).
 * Both are NHWC, so no transpose: thread i writes element i of dst (coalesced) and reads the
 * pixel at the same position and channel. Each value is computed as gan_images_to_float computes
 * it and stored as the narrowing stores it: the same bits as images_to_float followed by
 * gan_f32_to_nhwc_kernel<T>, one pass and one launch fewer. */
template <typename I, typename T>
__device__ __forceinline__ void gan_images_to_nhwc_body(I count, I c, I c_nhwc, const uint8_t *pixels, T *dst)
{
    for (I i = (I)gan_thread_index(); i < count; i += (I)gan_thread_stride()) {
        I position = i / c_nhwc, channel = i % c_nhwc;
        gan_convert_store(&dst[i], channel < c ? gan_pixel_to_unit(pixels[position * c + channel]) : 0.0f);
    }
}

template <typename T>
__global__ void gan_images_to_nhwc_kernel(size_t count, size_t c, size_t c_nhwc, const uint8_t *pixels, T *dst)
{
    /* count: dst's elements (n hw c_nhwc), the larger of the two arrays */
    GAN_INDEX_BODY(count, gan_images_to_nhwc_body, count, c, c_nhwc, pixels, dst);
}

#endif
