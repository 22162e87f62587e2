/* The two kernels around the inner convolution of the sub-pixel backward-data of a kernel 4,
 * stride 2, pad 1 convolution (the math and why it holds: gan/cuda_args.h, "the sub-pixel form").
 * Shapes, for g's x [n, ci, H, W], w [co, ci, 4, 4], y [n, co, Ho, Wo], H = 2 Ho, W = 2 Wo:
 *   weights:  w [co, ci, 4, 4]                    -> w2 [4 ci, co, 2, 2]
 *   gather:   y2 [n, 4 ci, Ho + 1, Wo + 1]        -> dx [n, ci, 2 Ho, 2 Wo]
 * One output element per thread, grid-stride, index math in 32 bits where it fits
 * (gan_index_narrow); thread i writes element i
 * (coalesced writes, scattered reads). Both are permutations: no arithmetic, so the results are
 * exact copies, but for the gather's activation epilogue: the gather ends the backward-data
 * pass, and applies the activation after it (when there is one) to each value it writes, with
 * the activation kernel's per-element code (gan_act_or_none, kernels/activation.cuh), so dx is
 * bit for bit the plain gather followed by the activation kernel. */
#ifndef GAN_KERNELS_SUBPIXEL_CUH
#define GAN_KERNELS_SUBPIXEL_CUH

#include "activation.cuh"
#include "common.cuh"

/* w2[(a*2 + b)*ci + c, o, i, j] = w[o, c, 3 - a - 2i, 3 - b - 2j] for a, b, i, j in {0, 1};
 * count = 16 ci co. */
template <typename I>
__device__ __forceinline__ void gan_subpixel_weights_body(I count, I co, I ci, const float *w, float *w2)
{
    for (I e = (I)gan_thread_index(); e < count; e += (I)gan_thread_stride()) {
        I j = e % 2;
        I i = (e / 2) % 2;
        I o = (e / 4) % co;
        I group_channel = e / (4 * co); /* (a*2 + b)*ci + c */
        I c = group_channel % ci;
        I parity = group_channel / ci; /* a*2 + b */
        I a = parity / 2, b = parity % 2;
        I kh = 3 - a - 2 * i, kw = 3 - b - 2 * j;
        w2[e] = w[((o * ci + c) * 4 + kh) * 4 + kw];
    }
}
__global__ void gan_subpixel_weights_kernel(size_t count, size_t co, size_t ci, const float *w,
                                            float *w2)
{
    /* w and w2 have count elements each */
    GAN_INDEX_BODY(count, gan_subpixel_weights_body, count, co, ci, w, w2);
}

/* dx[m, c, 2p + a, 2q + b] = act(y2[m, (a*2 + b)*ci + c, p + a, q + b]) for p < Ho, q < Wo;
 * count = n ci 2Ho 2Wo (every element of dx is written). `act` is a gan_activation or
 * GAN_FUSED_NONE (the value itself). */
template <typename I>
__device__ __forceinline__ void gan_subpixel_gather_body(I count, I ci, I h_out, I w_out, const float *y2, int act,
                                                         float slope, float *dx)
{
    const I h = 2 * h_out, w = 2 * w_out;
    const I h2 = h_out + 1, w2 = w_out + 1;
    for (I e = (I)gan_thread_index(); e < count; e += (I)gan_thread_stride()) {
        I col = e % w;
        I row = (e / w) % h;
        I c = (e / (w * h)) % ci;
        I m = e / (w * h * ci);
        I p = row / 2, a = row % 2;
        I q = col / 2, b = col % 2;
        I channel = m * 4 * ci + (a * 2 + b) * ci + c;
        dx[e] = gan_act_or_none(act, slope, y2[(channel * h2 + p + a) * w2 + q + b]);
    }
}
__global__ void gan_subpixel_gather_kernel(size_t count, size_t ci, size_t h_out, size_t w_out,
                                           const float *y2, int act, float slope, float *dx)
{
    /* y2 [n, 4 ci, h_out + 1, w_out + 1] is the larger of the two */
    size_t n = h_out && w_out && ci ? count / (4 * ci * h_out * w_out) : 0;
    const size_t y2_count = n * 4 * ci * (h_out + 1) * (w_out + 1), extent = y2_count > count ? y2_count : count;
    GAN_INDEX_BODY(extent, gan_subpixel_gather_body, count, ci, h_out, w_out, y2, act, slope, dx);
}

#endif
