/* One Adam step over a whole network: its parameters, gradients and both moments are each one
 * contiguous buffer of `count` floats (gan_model plans them so), so one launch updates them all.
 * The step number is read from device memory (*step_base + step_offset) and the step's scalars
 * (bias corrections) computed from it by thread 0 of every block, in double, with the function
 * the CPU backend calls once: a captured graph takes a new step on every replay. */
#ifndef GAN_KERNELS_ADAM_CUH
#define GAN_KERNELS_ADAM_CUH

#include "common.cuh"

__global__ void gan_adam_kernel(size_t count, float *param, const float *grad, float *m, float *v,
                                gan_adam_hyper hyper, const uint64_t *step_base, uint64_t step_offset)
{
    __shared__ gan_adam_scalars block_scalars;
    if (threadIdx.x == 0)
        block_scalars = gan_adam_scalars_at(hyper, (step_base ? *step_base : 0) + step_offset);
    __syncthreads();
    const gan_adam_scalars scalars = block_scalars;
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float p = param[i], m_i = m[i], v_i = v[i];
        gan_adam_update(&p, grad[i], &m_i, &v_i, scalars);
        param[i] = p;
        m[i] = m_i;
        v[i] = v_i;
    }
}

#endif
