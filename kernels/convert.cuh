/* float <-> bfloat16 conversions of the BF16 precision mode: a float buffer rounded to a bf16
 * copy (weights and activations stored in half the bytes), and a bf16 buffer widened back to
 * float, overwriting or accumulating into it (gradients summed in float). One element per
 * thread, grid-stride; both buffers have `count` elements, the same index in each.
 * The conversions are CUDA's own (<cuda_bf16.h> under nvcc, kernels/cuda_emulation.h's bit-exact
 * copies on the CPU): rounding to nearest even, NaN stays NaN, widening is exact. */
#ifndef GAN_KERNELS_CONVERT_CUH
#define GAN_KERNELS_CONVERT_CUH

#include "common.cuh"

#ifndef GAN_CUDA_EMULATION
#include <cuda_bf16.h>
#endif

/* dst[count] = bf16(src[count]), round to nearest, ties to even: the largest floats round to
 * infinity, every NaN becomes the quiet NaN 0x7FFF. */
__global__ void gan_f32_to_bf16_kernel(size_t count, const float *src, __nv_bfloat16 *dst)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        dst[i] = __float2bfloat16_rn(src[i]);
}

/* dst[count] = float(src[count]) when beta == 0 (dst is not read: it may hold NaN), else
 * beta * dst + float(src). The product is rounded on its own (gan_mul_rn: no fused multiply-add),
 * so the device gives the same bits as the emulation and as a float loop on the host. */
__global__ void gan_bf16_to_f32_kernel(size_t count, const __nv_bfloat16 *src, float beta, float *dst)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float value = __bfloat162float(src[i]);
        dst[i] = beta == 0.0f ? value : gan_mul_rn(beta, dst[i]) + value;
    }
}

#endif
