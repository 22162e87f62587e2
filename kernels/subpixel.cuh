/* The two kernels around the inner convolution of the sub-pixel backward-data of a kernel 4,
 * stride 2, pad 1 convolution (the math and why it holds: gan/cuda_args.h, "the sub-pixel form").
 * Shapes, for g's x [n, ci, H, W], w [co, ci, 4, 4], y [n, co, Ho, Wo], H = 2 Ho, W = 2 Wo:
 *   weights:  w [co, ci, 4, 4]                    -> w2 [4 ci, co, 2, 2]
 *   gather:   y2 [n, 4 ci, Ho + 1, Wo + 1]        -> dx [n, ci, 2 Ho, 2 Wo]
 * One output element per thread, grid-stride, index math in size_t; thread i writes element i
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
__global__ void gan_subpixel_weights_kernel(size_t count, size_t co, size_t ci, const float *w,
                                            float *w2)
{
    for (size_t e = gan_thread_index(); e < count; e += gan_thread_stride()) {
        size_t j = e % 2;
        size_t i = (e / 2) % 2;
        size_t o = (e / 4) % co;
        size_t group_channel = e / (4 * co); /* (a*2 + b)*ci + c */
        size_t c = group_channel % ci;
        size_t parity = group_channel / ci; /* a*2 + b */
        size_t a = parity / 2, b = parity % 2;
        size_t kh = 3 - a - 2 * i, kw = 3 - b - 2 * j;
        w2[e] = w[((o * ci + c) * 4 + kh) * 4 + kw];
    }
}

/* dx[m, c, 2p + a, 2q + b] = act(y2[m, (a*2 + b)*ci + c, p + a, q + b]) for p < Ho, q < Wo;
 * count = n ci 2Ho 2Wo (every element of dx is written). `act` is a gan_activation or
 * GAN_FUSED_NONE (the value itself). */
__global__ void gan_subpixel_gather_kernel(size_t count, size_t ci, size_t h_out, size_t w_out,
                                           const float *y2, int act, float slope, float *dx)
{
    const size_t h = 2 * h_out, w = 2 * w_out;
    const size_t h2 = h_out + 1, w2 = w_out + 1;
    for (size_t e = gan_thread_index(); e < count; e += gan_thread_stride()) {
        size_t col = e % w;
        size_t row = (e / w) % h;
        size_t c = (e / (w * h)) % ci;
        size_t m = e / (w * h * ci);
        size_t p = row / 2, a = row % 2;
        size_t q = col / 2, b = col % 2;
        size_t channel = m * 4 * ci + (a * 2 + b) * ci + c;
        dx[e] = gan_act_or_none(act, slope, y2[(channel * h2 + p + a) * w2 + q + b]);
    }
}

#endif
