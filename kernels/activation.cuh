/* ReLU, LeakyReLU, tanh and sigmoid forward and backward, one element per thread; the math is
 * the per-element functions of gan/elementwise_math.h, shared with the CPU backend. The forward
 * of one value, gan_act_or_none, is also the epilogue other kernels apply to what they write
 * (bias + activation, the NHWC widenings, the sub-pixel gather): one switch, so a fused
 * activation gives the bits of this file's kernel run after the plain one. */
#ifndef GAN_KERNELS_ACTIVATION_CUH
#define GAN_KERNELS_ACTIVATION_CUH

#include "common.cuh"
#include "gan_kernels.h" /* GAN_FUSED_NONE */

#ifndef GAN_CUDA_EMULATION
#include <cuda_bf16.h>
#endif

/* act(v) for `act` a gan_activation, v itself for GAN_FUSED_NONE (any other value: sigmoid; the
 * launchers of an epilogue refuse those). `act` is the same for every thread: the switch does
 * not diverge. */
__device__ __forceinline__ float gan_act_or_none(int act, float slope, float v)
{
    switch (act) {
    case GAN_FUSED_NONE: return v;
    case GAN_ACT_RELU: return gan_relu_forward(v);
    case GAN_ACT_LRELU: return gan_lrelu_forward(v, slope);
    case GAN_ACT_TANH: return gan_tanh_forward(v);
    default: return gan_sigmoid_forward(v);
    }
}

/* y[count] = act(x[count]); `kind` is a gan_activation (the same for every thread). */
__global__ void gan_activation_forward_kernel(int kind, float slope, size_t count,
                                              const float *x, float *y)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        y[i] = gan_act_or_none(kind, slope, x[i]);
}

/* The gradient at the activation's input from its output gradient dy and the saved input x
 * (lrelu) or output y (relu, tanh, sigmoid). */
__device__ __forceinline__ float gan_act_backward_one(int kind, float slope, float x, float y, float dy)
{
    switch (kind) {
    case GAN_ACT_RELU: return gan_relu_backward(y, dy);
    case GAN_ACT_LRELU: return gan_lrelu_backward(x, dy, slope);
    case GAN_ACT_TANH: return gan_tanh_backward(y, dy);
    default: return gan_sigmoid_backward(y, dy);
    }
}

/* dx[count] from dy[count] and the saved input x (lrelu) or output y (relu, tanh, sigmoid). */
__global__ void gan_activation_backward_kernel(int kind, float slope, size_t count,
                                               const float *x, const float *y, const float *dy,
                                               float *dx)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        dx[i] = gan_act_backward_one(kind, slope, kind == GAN_ACT_LRELU ? x[i] : 0.0f,
                                     kind == GAN_ACT_LRELU ? 0.0f : y[i], dy[i]);
}

/* The two on BF16 tensors (a model's BF16 NHWC edges; elementwise, so the layout does not
 * matter): each value widened exactly, the float function above, the result rounded to nearest
 * even. The backward reads x or y as the float kernel does (the other may be NULL). */
__global__ void gan_activation_forward_bf16_kernel(int kind, float slope, size_t count, const __nv_bfloat16 *x,
                                                   __nv_bfloat16 *y)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        y[i] = __float2bfloat16_rn(gan_act_or_none(kind, slope, __bfloat162float(x[i])));
}
__global__ void gan_activation_backward_bf16_kernel(int kind, float slope, size_t count, const __nv_bfloat16 *x,
                                                    const __nv_bfloat16 *y, const __nv_bfloat16 *dy,
                                                    __nv_bfloat16 *dx)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float xv = kind == GAN_ACT_LRELU ? __bfloat162float(x[i]) : 0.0f;
        float yv = kind == GAN_ACT_LRELU ? 0.0f : __bfloat162float(y[i]);
        dx[i] = __float2bfloat16_rn(gan_act_backward_one(kind, slope, xv, yv, __bfloat162float(dy[i])));
    }
}

#endif
