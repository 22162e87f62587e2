/* The two copy kernels of the im2col form of a backward-filter (the math: gan/cuda_args.h, "the
 * im2col form of a backward-filter"). For x [n, ci, H, W], kernel kh x kw, stride sh x sw,
 * pad ph x pw, y [n, co, Ho, Wo], K = ci kh kw, P = n Ho Wo:
 *   im2col:          x [n, ci, H, W]   -> col [K, P]
 *   channels first:  dy [n, co, Ho Wo] -> dyt [co, n Ho Wo]
 * One output element per thread, grid-stride, index math in size_t; thread i writes element i
 * (coalesced writes). Both only copy (or write 0): the results are exact. */
#ifndef GAN_KERNELS_IM2COL_CUH
#define GAN_KERNELS_IM2COL_CUH

#include "common.cuh"

/* The geometry as the kernel reads it (sizes as size_t, pads as signed offsets). */
typedef struct gan_im2col_shape {
    size_t ci, h, w, kh, kw, ho, wo, sh, sw;
    long long ph, pw;
    size_t p; /* n Ho Wo: col's row length */
} gan_im2col_shape;

/* col[(c*kh + i)*kw + j, (m*Ho + oh)*Wo + ow] = x[m, c, oh*sh - ph + i, ow*sw - pw + j], 0 where
 * that lies in the padding; count = K P. */
__global__ void gan_im2col_kernel(size_t count, gan_im2col_shape s, const float *x, float *col)
{
    for (size_t e = gan_thread_index(); e < count; e += gan_thread_stride()) {
        size_t column = e % s.p, row = e / s.p;
        size_t ow = column % s.wo, oh = (column / s.wo) % s.ho, m = column / (s.wo * s.ho);
        size_t j = row % s.kw, i = (row / s.kw) % s.kh, c = row / (s.kw * s.kh);
        long long ih = (long long)(oh * s.sh + i) - s.ph, iw = (long long)(ow * s.sw + j) - s.pw;
        bool inside = ih >= 0 && iw >= 0 && ih < (long long)s.h && iw < (long long)s.w;
        col[e] = inside ? x[((m * s.ci + c) * s.h + (size_t)ih) * s.w + (size_t)iw] : 0.0f;
    }
}

/* y[o, m*hw + p] = x[m, o, p] for x [n, c, hw]; count = n c hw. */
__global__ void gan_channels_first_kernel(size_t count, size_t n, size_t c, size_t hw, const float *x,
                                          float *y)
{
    for (size_t e = gan_thread_index(); e < count; e += gan_thread_stride()) {
        size_t p = e % hw, m = (e / hw) % n, o = e / (hw * n);
        y[e] = x[(m * c + o) * hw + p];
    }
}

#endif
