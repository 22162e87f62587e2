/* The CPU backend's all-reduces (data-parallel runs, docs/DESIGN.md "Data parallel"): MPI_Allreduce on
 * host memory through the process group (src/dist/dist.c), which gives every rank the same bits.
 * With a one-rank group (GAN_DIST_FORCE=1, no launcher) the sum is the data itself. */
#include "backend/cpu_internal.h"

gan_status cpu_allreduce_sum(gan_backend *be, float *data, size_t count, float scale)
{
    if (count && !data)
        return gan_error(GAN_ERR_ARG, "cpu allreduce: NULL data");
    GAN_TRY(gan_dist_allreduce_sum_float(be->options.dist, data, count));
    if (scale != 1.0f)
        for (size_t i = 0; i < count; i++)
            data[i] *= scale;
    return GAN_OK;
}

gan_status cpu_allreduce_sum_f64(gan_backend *be, double *data, size_t count)
{
    if (count && !data)
        return gan_error(GAN_ERR_ARG, "cpu allreduce (double): NULL data");
    return gan_dist_allreduce_sum_double(be->options.dist, data, count);
}
