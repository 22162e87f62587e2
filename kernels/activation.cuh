/* ReLU, LeakyReLU, tanh and sigmoid forward and backward, one element per thread; the math is
 * the per-element functions of gan/elementwise_math.h, shared with the CPU backend. */
#ifndef GAN_KERNELS_ACTIVATION_CUH
#define GAN_KERNELS_ACTIVATION_CUH

#include "common.cuh"

/* y[count] = act(x[count]); `kind` is a gan_activation (the same for every thread). */
__global__ void gan_activation_forward_kernel(int kind, float slope, size_t count,
                                              const float *x, float *y)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float v = x[i];
        switch (kind) {
        case GAN_ACT_RELU: y[i] = gan_relu_forward(v); break;
        case GAN_ACT_LRELU: y[i] = gan_lrelu_forward(v, slope); break;
        case GAN_ACT_TANH: y[i] = gan_tanh_forward(v); break;
        default: y[i] = gan_sigmoid_forward(v); break;
        }
    }
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
