/* The CPU backend: host memory, OpenBLAS (loaded at run time, src/blas.c) and OpenMP. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "gan/blas.h"

static gan_status cpu_alloc(gan_backend *be, size_t bytes, void **out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "cpu alloc: out is NULL");
    *out = NULL;
    if (bytes > SIZE_MAX - 63)
        return gan_error(GAN_ERR_NOMEM, "cpu alloc: %zu bytes is more than memory can hold", bytes);
    size_t rounded = (bytes + 63) / 64 * 64;
    *out = aligned_alloc(64, rounded ? rounded : 64);
    if (!*out)
        return gan_error(GAN_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
    return GAN_OK;
}

static void cpu_free(gan_backend *be, void *ptr) { free(ptr); }

static gan_status cpu_memcpy(gan_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes && (!dst || !src))
        return gan_error(GAN_ERR_ARG, "cpu copy: NULL pointer");
    if (bytes && dst != src)
        memmove(dst, src, bytes);
    return GAN_OK;
}

static gan_status cpu_synchronize(gan_backend *be) { return GAN_OK; }

static void cpu_destroy(gan_backend *be)
{
    if (!be)
        return;
    free(be->impl);
    free(be);
}

gan_status gan_cpu_backend_create(const gan_backend_options *options, gan_backend **out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_cpu_backend_create: out is NULL");
    *out = NULL;
    gan_backend_options opts = options ? *options : gan_backend_options_default();
    if (opts.precision != GAN_PRECISION_FP32)
        return gan_error(GAN_ERR_UNSUPPORTED,
                         "train.precision = %s: the CPU backend computes in fp32 only (set "
                         "train.precision = fp32, or train on a GPU with --device cuda)",
                         gan_precision_name(opts.precision));
    GAN_TRY(gan_blas_init());
    gan_backend *be = calloc(1, sizeof *be);
    cpu_backend_state *state = calloc(1, sizeof *state);
    if (!be || !state) {
        free(be);
        free(state);
        return gan_error(GAN_ERR_NOMEM, "gan_cpu_backend_create: out of memory");
    }
    state->conv_workspace_budget_bytes = CPU_CONV_WORKSPACE_BUDGET_BYTES;
    state->threads = omp_get_max_threads();
    be->name = "cpu";
    be->kind = GAN_BACKEND_CPU;
    /* Deterministic either way: every reduction has a fixed order for a given thread count. The
     * convolutions' chunks have their own budget (cpu_internal.h), not the option's. */
    opts.workspace_bytes = state->conv_workspace_budget_bytes;
    be->options = opts;
    be->impl = state;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_memcpy;
    be->download = cpu_memcpy;
    be->copy = cpu_memcpy;
    be->fill = cpu_fill;
    be->synchronize = cpu_synchronize;
    be->gemm = cpu_gemm;
    be->conv_workspace_bytes = cpu_conv_workspace_bytes;
    be->conv_forward = cpu_conv_forward;
    be->conv_backward_data = cpu_conv_backward_data;
    be->conv_backward_filter = cpu_conv_backward_filter;
    be->conv_grads = cpu_conv_grads;
    be->conv_describe = cpu_conv_describe;
    be->bias_forward = cpu_bias_forward;
    be->bias_backward = cpu_bias_backward;
    be->bn_forward_train = cpu_bn_forward_train;
    be->bn_forward_eval = cpu_bn_forward_eval;
    be->bn_backward = cpu_bn_backward;
    be->bn_act_forward_train = cpu_bn_act_forward_train;
    be->bn_act_backward = cpu_bn_act_backward;
    be->bn_sums = cpu_bn_sums;
    be->bn_centered_squares = cpu_bn_centered_squares;
    be->bn_forward_from_sums = cpu_bn_forward_from_sums;
    be->bn_backward_sums = cpu_bn_backward_sums;
    be->bn_backward_from_sums = cpu_bn_backward_from_sums;
    if (opts.dist && opts.dist->active) { /* a data-parallel run: the collectives over MPI */
        be->allreduce_sum = cpu_allreduce_sum;
        be->allreduce_sum_f64 = cpu_allreduce_sum_f64;
    }
    be->activation_forward = cpu_activation_forward;
    be->activation_backward = cpu_activation_backward;
    be->dropout_forward = cpu_dropout_forward;
    be->multiply = cpu_multiply;
    be->bce_logits = cpu_bce_logits;
    be->adam_step = cpu_adam_step;
    be->ema_update = cpu_ema_update;
    be->rng_normal = cpu_rng_normal;
    be->rng_uniform = cpu_rng_uniform;
    be->advance_counts = cpu_advance_counts;
    be->images_to_float = cpu_images_to_float;
    be->max_pool_forward = cpu_max_pool_forward;
    be->avg_pool_forward = cpu_avg_pool_forward;
    be->global_avg_pool = cpu_global_avg_pool;
    be->copy_channels = cpu_copy_channels;
    be->resize_bilinear = cpu_resize_bilinear;
    be->bias_act_forward = cpu_bias_act_forward;
    be->conv_bias_act_forward = cpu_conv_bias_act_forward;
    be->conv_forward_act = cpu_conv_forward_act;
    be->conv_backward_data_act = cpu_conv_backward_data_act;
    be->destroy = cpu_destroy;
    *out = be;
    return GAN_OK;
}
