/* One Adam step over a whole network: its parameters, gradients and both moments are each one
 * contiguous buffer of `count` floats (gan_model plans them so), so one launch updates them all.
 * The step's scalars (bias corrections) are computed on the host once per step. */
#ifndef GAN_KERNELS_ADAM_CUH
#define GAN_KERNELS_ADAM_CUH

#include "common.cuh"

__global__ void gan_adam_kernel(size_t count, float *param, const float *grad, float *m, float *v,
                                gan_adam_scalars scalars)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride()) {
        float p = param[i], m_i = m[i], v_i = v[i];
        gan_adam_update(&p, grad[i], &m_i, &v_i, scalars);
        param[i] = p;
        m[i] = m_i;
        v[i] = v_i;
    }
}

#endif
