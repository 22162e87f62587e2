/* ReLU, LeakyReLU, tanh and sigmoid forward and backward, one element per thread; the math is
 * the per-element functions of gan/elementwise_math.h, shared with the CPU backend. The forward
 * of one value, gan_act_or_none, is also the epilogue other kernels apply to what they write
 * (bias + activation, the NHWC widenings, the sub-pixel gather): one switch, so a fused
 * activation gives the bits of this file's kernel run after the plain one. */
#ifndef GAN_KERNELS_ACTIVATION_CUH
#define GAN_KERNELS_ACTIVATION_CUH

#include "common.cuh"
#include "gan_kernels.h" /* GAN_FUSED_NONE */

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

/* dx[count] from dy[count] and the saved input x (lrelu) or output y (relu, tanh, sigmoid). */
__global__ void gan_activation_backward_kernel(int kind, float slope, size_t count,
                                               const float *x, const float *y, const float *dy,
                                               float *dx)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        switch (kind) {
        case GAN_ACT_RELU: dx[i] = gan_relu_backward(y[i], dy[i]); break;
        case GAN_ACT_LRELU: dx[i] = gan_lrelu_backward(x[i], dy[i], slope); break;
        case GAN_ACT_TANH: dx[i] = gan_tanh_backward(y[i], dy[i]); break;
        default: dx[i] = gan_sigmoid_backward(y[i], dy[i]); break;
        }
    }
}

#endif
