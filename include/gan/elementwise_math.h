/* The per-element math of every op, written once: the CPU backend calls these functions in its
 * loops and the CUDA kernels (the .cuh files in kernels/) call the same functions per thread, so both backends
 * compute each element the same way. Under nvcc they are __host__ __device__; in C they are
 * plain static inline functions. Nothing here allocates, branches on the backend or touches I/O. */
#ifndef GAN_ELEMENTWISE_MATH_H
#define GAN_ELEMENTWISE_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__) || defined(GAN_CUDA_EMULATION)
#define GAN_HD __host__ __device__
#else
#define GAN_HD
#endif

/* a * b rounded on its own: nvcc would otherwise contract a * b + c into one fused multiply-add
 * (one rounding fewer), and the GPU's result would differ from the CPU's in the last bit. */
GAN_HD static inline float gan_mul_rn(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

/* ---- activations: forward, and backward from the saved input x or output y ---------------- */

GAN_HD static inline float gan_relu_forward(float x) { return x > 0.0f ? x : 0.0f; }
/* PyTorch's threshold_backward reads the output: gradient passes where y > 0. */
GAN_HD static inline float gan_relu_backward(float y, float dy) { return y > 0.0f ? dy : 0.0f; }

GAN_HD static inline float gan_lrelu_forward(float x, float slope) { return x > 0.0f ? x : x * slope; }
/* PyTorch's leaky_relu_backward reads the input: slope where x <= 0. */
GAN_HD static inline float gan_lrelu_backward(float x, float dy, float slope)
{
    return x > 0.0f ? dy : dy * slope;
}

GAN_HD static inline float gan_tanh_forward(float x) { return tanhf(x); }
GAN_HD static inline float gan_tanh_backward(float y, float dy) { return dy * (1.0f - y * y); }

/* Written so that exp never overflows: for x < 0, e^x / (1 + e^x). */
GAN_HD static inline float gan_sigmoid_forward(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
GAN_HD static inline float gan_sigmoid_backward(float y, float dy) { return dy * (1.0f - y) * y; }

/* ---- binary cross-entropy on logits ------------------------------------------------------- */

/* loss(x, t) = max(x, 0) - x t + log(1 + e^-|x|): BCEWithLogitsLoss for one element, exact for
 * any x (no clamp at -100 as BCELoss applies to log(sigmoid)). */
GAN_HD static inline float gan_bce_logits_loss(float x, float target)
{
    float max_x0 = x > 0.0f ? x : 0.0f;
    return max_x0 - x * target + log1pf(expf(-fabsf(x)));
}
/* d loss / d x = sigmoid(x) - t, times `scale` (1/N for the mean over N samples). */
GAN_HD static inline float gan_bce_logits_grad(float x, float target, float scale)
{
    return (gan_sigmoid_forward(x) - target) * scale;
}

/* ---- Adam, as torch.optim.Adam (amsgrad=False, weight_decay=0) computes one element --------- *
 * m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 * p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
 * where step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t) are computed
 * once per step in double, as PyTorch's Python code does, then rounded to float. */
typedef struct gan_adam_scalars {
    float beta1, one_minus_beta1;
    float beta2, one_minus_beta2;
    float eps;
    float step_size;              /* lr / (1 - beta1^t) */
    float bias_correction2_sqrt;  /* sqrt(1 - beta2^t) */
} gan_adam_scalars;

/* The hyper-parameters as the config gives them, in double as torch.optim.Adam keeps them. */
typedef struct gan_adam_hyper {
    double lr, beta1, beta2, eps;
} gan_adam_hyper;

/* The scalars of update number `step` (1, 2, ...). The CPU backend computes them once per step,
 * the CUDA kernel once per block from the step count in device memory (the device's double pow
 * may differ from glibc's in the last bit of a double, which the rounding to float hides but for
 * ties). */
GAN_HD static inline gan_adam_scalars gan_adam_scalars_at(gan_adam_hyper h, uint64_t step)
{
    double bias_correction1 = 1.0 - pow(h.beta1, (double)step);
    double bias_correction2 = 1.0 - pow(h.beta2, (double)step);
    gan_adam_scalars s;
    s.beta1 = (float)h.beta1;
    s.one_minus_beta1 = (float)(1.0 - h.beta1);
    s.beta2 = (float)h.beta2;
    s.one_minus_beta2 = (float)(1.0 - h.beta2);
    s.eps = (float)h.eps;
    s.step_size = (float)(h.lr / bias_correction1);
    s.bias_correction2_sqrt = (float)sqrt(bias_correction2);
    return s;
}

GAN_HD static inline void gan_adam_update(float *param, float grad, float *m, float *v,
                                          gan_adam_scalars s)
{
    float m_new = *m * s.beta1;
    m_new = m_new + s.one_minus_beta1 * grad;
    float v_new = *v * s.beta2;
    v_new = v_new + s.one_minus_beta2 * grad * grad;
    float denom = sqrtf(v_new) / s.bias_correction2_sqrt + s.eps;
    *param = *param + (-s.step_size) * (m_new / denom);
    *m = m_new;
    *v = v_new;
}

/* ---- EMA of weights, as torch.optim.swa_utils.get_ema_avg_fn computes one element ---------- *
 * ema = decay * ema + (1 - decay) * param: PyTorch's three tensor ops, each rounded to float on its
 * own (two products, then their sum; never fused into a multiply-add, on either backend), with
 * decay and 1 - decay the Python (double) values rounded to float, as PyTorch converts a scalar
 * for a float tensor. No bias correction: the average starts from G's initial weights. */
typedef struct gan_ema_scalars {
    float decay, one_minus_decay;
} gan_ema_scalars;

GAN_HD static inline gan_ema_scalars gan_ema_scalars_of(double decay)
{
    gan_ema_scalars s;
    s.decay = (float)decay;
    s.one_minus_decay = (float)(1.0 - decay);
    return s;
}

GAN_HD static inline float gan_ema_update(float ema, float param, gan_ema_scalars s)
{
    return gan_mul_rn(s.decay, ema) + gan_mul_rn(s.one_minus_decay, param);
}

/* ---- Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3") ----------- */

typedef struct gan_philox4 { uint32_t v[4]; } gan_philox4;

GAN_HD static inline uint32_t gan_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t product = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(product >> 32);
    return (uint32_t)product;
}

GAN_HD static inline gan_philox4 gan_philox4x32_10(gan_philox4 ctr, uint32_t key0, uint32_t key1)
{
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            key0 += W0;
            key1 += W1;
        }
        uint32_t hi0, hi1;
        uint32_t lo0 = gan_mulhilo32(M0, ctr.v[0], &hi0);
        uint32_t lo1 = gan_mulhilo32(M1, ctr.v[2], &hi1);
        gan_philox4 next;
        next.v[0] = hi1 ^ ctr.v[1] ^ key0;
        next.v[1] = lo1;
        next.v[2] = hi0 ^ ctr.v[3] ^ key1;
        next.v[3] = lo0;
        ctr = next;
    }
    return ctr;
}

/* Block `block` of the stream (seed, stream): 4 random words. Element e of the stream is word
 * e % 4 of block e / 4; a fill of N values from element `first` takes elements first ..
 * first + N - 1 (positions are counted in elements so that a fill may start inside a block:
 * a rank's share of a global batch). */
GAN_HD static inline gan_philox4 gan_philox_block(uint64_t seed, uint64_t stream, uint64_t block)
{
    gan_philox4 ctr;
    ctr.v[0] = (uint32_t)block;
    ctr.v[1] = (uint32_t)(block >> 32);
    ctr.v[2] = (uint32_t)stream;
    ctr.v[3] = (uint32_t)(stream >> 32);
    return gan_philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* [0, 1) with 24 bits, like torch.rand's float path. */
GAN_HD static inline float gan_uniform01(uint32_t bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }
/* (0, 1]: safe for log. */
GAN_HD static inline float gan_uniform01_open0(uint32_t bits)
{
    return (float)((bits >> 8) + 1u) * (1.0f / 16777216.0f);
}

/* Box-Muller on two words: two independent N(0, 1) values. */
GAN_HD static inline void gan_box_muller(uint32_t a, uint32_t b, float *z0, float *z1)
{
    const float two_pi = 6.28318530717958647692f;
    float radius = sqrtf(-2.0f * logf(gan_uniform01_open0(a)));
    float angle = two_pi * gan_uniform01(b);
    *z0 = radius * cosf(angle);
    *z1 = radius * sinf(angle);
}

/* Element e as N(0, 1): block e/4 gives four normals from its two pairs of words. */
GAN_HD static inline float gan_philox_normal_at(uint64_t seed, uint64_t stream, uint64_t element)
{
    gan_philox4 r = gan_philox_block(seed, stream, element / 4);
    unsigned lane = (unsigned)(element % 4);
    float z0, z1;
    gan_box_muller(r.v[lane & 2u], r.v[(lane & 2u) + 1u], &z0, &z1);
    return (lane & 1u) ? z1 : z0;
}

/* Element e as U[0, 1). */
GAN_HD static inline float gan_philox_uniform_at(uint64_t seed, uint64_t stream, uint64_t element)
{
    gan_philox4 r = gan_philox_block(seed, stream, element / 4);
    return gan_uniform01(r.v[element % 4]);
}

/* Dropout keeps an element when its uniform draw is >= p, and scales kept ones by 1/(1-p). */
GAN_HD static inline float gan_dropout_keep_scale(float uniform, float p)
{
    return uniform >= p ? 1.0f / (1.0f - p) : 0.0f;
}

/* uint8 pixel -> [-1, 1]: ToTensor (x/255) then Normalize(0.5, 0.5). */
GAN_HD static inline float gan_pixel_to_unit(uint8_t pixel)
{
    return ((float)pixel / 255.0f - 0.5f) / 0.5f;
}

/* ---- bilinear resize (the FID Inception's input, F.interpolate align_corners=False) ---------- */

/* The two input taps of output position `out_index` along one axis and their weights, as
 * PyTorch's upsample_bilinear2d computes them on the CPU for align_corners=False (measured
 * against torch 1.13's F.interpolate weight by weight, tools/make_eval_fixtures.py): the same size
 * copies; otherwise scale = in_size / out_size in float, the source position
 * scale (out_index + 0.5) - 0.5 in double (exact: a float times a short number), clamped at 0;
 * i0 its integer part, i1 the next input (the last one repeats); w1 = the fraction rounded to
 * float, w0 = 1 - w1 in float. */
typedef struct gan_bilinear_taps {
    int i0, i1;
    float w0, w1;
} gan_bilinear_taps;

GAN_HD static inline gan_bilinear_taps gan_bilinear_taps_at(int out_index, int in_size, int out_size)
{
    gan_bilinear_taps t;
    if (in_size == out_size) {
        t.i0 = t.i1 = out_index;
        t.w0 = 1.0f;
        t.w1 = 0.0f;
        return t;
    }
    float scale = (float)in_size / (float)out_size;
    double source = (double)scale * ((double)out_index + 0.5) - 0.5;
    if (source < 0.0)
        source = 0.0;
    t.i0 = (int)source;
    t.i1 = t.i0 + (t.i0 < in_size - 1 ? 1 : 0);
    float fraction = (float)(source - (double)t.i0);
    t.w1 = fraction < 0.0f ? 0.0f : fraction > 1.0f ? 1.0f : fraction;
    t.w0 = 1.0f - t.w1;
    return t;
}

/* One output value from its four inputs (rows of the taps `h`, columns of the taps `w`): each row
 * interpolated along the width, then the two rows, (x00 w0 + x01 w1) h0 + (x10 w0 + x11 w1) h1,
 * every product rounded on its own. PyTorch's vectorised loop combines the same four products in
 * an order of its own: the two agree within 2 ulps of the largest input (its tap weights, above,
 * are bit for bit the same). */
GAN_HD static inline float gan_bilinear_value(const float *plane, int width, gan_bilinear_taps h,
                                              gan_bilinear_taps w)
{
    const float *r0 = plane + (size_t)h.i0 * (size_t)width;
    const float *r1 = plane + (size_t)h.i1 * (size_t)width;
    float t0 = gan_mul_rn(r0[w.i0], w.w0) + gan_mul_rn(r0[w.i1], w.w1);
    float t1 = gan_mul_rn(r1[w.i0], w.w0) + gan_mul_rn(r1[w.i1], w.w1);
    return gan_mul_rn(t0, h.w0) + gan_mul_rn(t1, h.w1);
}

/* ---- pooling windows ---------------------------------------------------------------------- */

/* The input rows (or columns) [*lo, *hi) window `o` covers along one axis, clipped to the input,
 * and the window's length before clipping to the input but after clipping to the padded input
 * (PyTorch's avg_pool2d pool_size, the count_include_pad divisor). */
GAN_HD static inline void gan_pool_window(int o, int kernel, int stride, int pad, int in_size,
                                          int *lo, int *hi, int *padded_len)
{
    int start = o * stride - pad;
    int end = start + kernel < in_size + pad ? start + kernel : in_size + pad;
    *padded_len = end - start;
    *lo = start > 0 ? start : 0;
    *hi = end < in_size ? end : in_size;
}


/* The largest value of rows [h0, h1) x columns [w0, w1) of a plane `width` wide, visited row by
 * row; a NaN wins and stays (PyTorch's max_pool2d: val > max || isnan(val)). An empty window
 * gives -inf. */
GAN_HD static inline float gan_max_window(const float *plane, int width, int h0, int h1, int w0, int w1)
{
    float best = -INFINITY;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            float v = plane[(size_t)ih * (size_t)width + iw];
            if (v > best || v != v)
                best = v;
        }
    return best;
}

/* The float sum of the same window, in the same order (PyTorch's avg_pool2d and
 * adaptive_avg_pool2d sum this way before their one division). */
GAN_HD static inline float gan_sum_window(const float *plane, int width, int h0, int h1, int w0, int w1)
{
    float sum = 0.0f;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++)
            sum += plane[(size_t)ih * (size_t)width + iw];
    return sum;
}

#endif
