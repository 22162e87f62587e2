/* The two copy kernels of the im2col form of a backward-filter (the math: gan/cuda_args.h, "the
 * im2col form of a backward-filter"). For x [n, ci, H, W], kernel kh x kw, stride sh x sw,
 * pad ph x pw, y [n, co, Ho, Wo], K = ci kh kw, P = n Ho Wo:
 *   im2col:          x [n, ci, H, W]   -> col [K, P]
 *   channels first:  dy [n, co, Ho Wo] -> dyt [co, n Ho Wo]
 * One output element per thread, grid-stride, index math in 32 bits where it fits
 * (gan_index_narrow); thread i writes element i
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
template <typename I>
__device__ __forceinline__ void gan_im2col_body(I count, const gan_im2col_shape &s, const float *x, float *col)
{
    const I p = (I)s.p, wo = (I)s.wo, ho = (I)s.ho, kw = (I)s.kw, kh = (I)s.kh, ci = (I)s.ci, h = (I)s.h,
            w = (I)s.w, sh = (I)s.sh, sw = (I)s.sw;
    for (I e = (I)gan_thread_index(); e < count; e += (I)gan_thread_stride()) {
        I column = e % p, row = e / p;
        I ow = column % wo, oh = (column / wo) % ho, m = column / (wo * ho);
        I j = row % kw, i = (row / kw) % kh, c = row / (kw * kh);
        long long ih = (long long)(oh * sh + i) - s.ph, iw = (long long)(ow * sw + j) - s.pw;
        bool inside = ih >= 0 && iw >= 0 && ih < (long long)h && iw < (long long)w;
        col[e] = inside ? x[((m * ci + c) * h + (I)ih) * w + (I)iw] : 0.0f;
    }
}
__global__ void gan_im2col_kernel(size_t count, gan_im2col_shape s, const float *x, float *col)
{
    /* x [n, ci, h, w], n = P / (Ho Wo); col [K, P] has count elements */
    size_t n = s.ho && s.wo ? s.p / (s.ho * s.wo) : 0;
    const size_t x_count = n * s.ci * s.h * s.w, extent = x_count > count ? x_count : count;
    GAN_INDEX_BODY(extent, gan_im2col_body, count, s, x, col);
}

/* y [c, n hw] from x [n, c, hw]: y[o, m*hw + p] = x[m, o, p]; count = n c hw. */
template <typename I>
__device__ __forceinline__ void gan_channels_first_body(I count, I n, I c, I hw, const float *x, float *y)
{
    for (I e = (I)gan_thread_index(); e < count; e += (I)gan_thread_stride()) {
        I p = e % hw, m = (e / hw) % n, o = e / (hw * n);
        y[e] = x[(m * c + o) * hw + p];
    }
}
__global__ void gan_channels_first_kernel(size_t count, size_t n, size_t c, size_t hw, const float *x,
                                          float *y)
{
    /* x and y have count elements each */
    GAN_INDEX_BODY(count, gan_channels_first_body, count, n, c, hw, x, y);
}

#endif
