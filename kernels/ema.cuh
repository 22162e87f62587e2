/* The exponential moving average of G's weights (train.ema_decay): its parameters and their
 * average are each one contiguous buffer of `count` floats, so one launch per step updates them
 * all. Per element gan_ema_update (gan/elementwise_math.h), the very function the CPU backend
 * calls: two products each rounded on its own and their sum, so the two backends agree bit for
 * bit. The scalars are fixed for a run (host values in the launch: a captured graph replays them). */
#ifndef GAN_KERNELS_EMA_CUH
#define GAN_KERNELS_EMA_CUH

#include "common.cuh"

__global__ void gan_ema_update_kernel(size_t count, gan_ema_scalars scalars, const float *param, float *ema)
{
    for (size_t i = gan_thread_index(); i < count; i += gan_thread_stride())
        ema[i] = gan_ema_update(ema[i], param[i], scalars);
}

#endif
