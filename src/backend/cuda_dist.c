/* The CUDA backend's all-reduces (data-parallel runs, docs/DESIGN.md "Data parallel"): NCCL on the
 * backend's stream, so they queue like every other op and a captured iteration replays them (NCCL
 * 2.9 and later capture their collectives in CUDA graphs). One GPU per rank, the backend's device.
 *
 * The communicator is made at the first all-reduce, which every rank reaches at the same point of
 * its first (eager, never captured) iteration, after the run has agreed that every rank opened its
 * backend: rank 0 makes NCCL's unique id and the process group broadcasts it (MPI); with a
 * one-rank group (GAN_DIST_FORCE=1, no launcher) there is nothing to broadcast, and the
 * communicator of one rank needs no MPI at all. NCCL sums the ranks' buffers in one order for
 * every rank (ring: reduce-scatter then all-gather; tree: reduce then broadcast), so every rank
 * gets the same bits. */
#include <stdio.h>

#include "backend/cuda_internal.h"
#include "gan_kernels.h"

#ifdef GAN_HAVE_NCCL
#include <nccl.h>

static gan_status nccl_check(ncclResult_t result, const char *call, const char *file, int line)
{
    if (result == ncclSuccess)
        return GAN_OK;
    const char *detail = ncclGetLastError(NULL);
    return gan_error(GAN_ERR_BACKEND, "%s:%d: %s: NCCL error: %s%s%s (NCCL_DEBUG=WARN says more)", file, line, call,
                     ncclGetErrorString(result), detail && detail[0] ? ": " : "", detail ? detail : "");
}
#define NCCL_TRY(call) GAN_TRY(nccl_check((call), #call, __FILE__, __LINE__))

/* What rank 0 broadcasts: its unique id, and whether it could make one (so that a failure there
 * does not leave the others waiting for an id). */
typedef struct nccl_id_message {
    int ok;
    ncclUniqueId id;
} nccl_id_message;

static gan_status connect(gan_cuda_impl *impl, const gan_dist *dist)
{
    if (impl->capturing)
        return gan_error(GAN_ERR_ARG, "the first all-reduce (which makes the NCCL communicator) cannot be captured "
                                      "in a graph: run one iteration op by op first");
    nccl_id_message message = {0};
    gan_status made = GAN_OK;
    if (dist->rank == 0) {
        made = nccl_check(ncclGetUniqueId(&message.id), "ncclGetUniqueId", __FILE__, __LINE__);
        message.ok = made == GAN_OK;
    }
    GAN_TRY(gan_dist_broadcast(dist, &message, sizeof message, 0));
    if (!message.ok)
        return dist->rank == 0 ? made : gan_error(GAN_ERR_BACKEND, "rank 0 could not make NCCL's unique id");
    ncclComm_t comm = NULL;
    NCCL_TRY(ncclCommInitRank(&comm, dist->world_size, message.id, dist->rank));
    impl->nccl_comm = comm;
    return GAN_OK;
}

/* The communicator, made at the first all-reduce. All-reduces run on the first stream only: every
 * rank must issue its collectives in one order, which two streams would not keep. */
static gan_status communicator(gan_backend *be, ncclComm_t *out)
{
    gan_cuda_impl *impl = gan_cuda_impl_of(be);
    if (impl->on_side)
        return gan_error(GAN_ERR_ARG, "an all-reduce on the side stream (the ranks' all-reduces run on the first "
                                      "stream, in one order)");
    if (!impl->nccl_comm)
        GAN_TRY(connect(impl, be->options.dist));
    *out = impl->nccl_comm;
    return GAN_OK;
}

gan_status gan_cuda_allreduce_sum(gan_backend *be, float *data, size_t count, float scale)
{
    ncclComm_t comm = NULL;
    GAN_TRY(communicator(be, &comm));
    cudaStream_t stream = gan_cuda_impl_of(be)->stream;
    if (count == 0)
        return GAN_OK;
    NCCL_TRY(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm, stream));
    if (scale != 1.0f)
        GAN_TRY(gan_cuda_scale(stream, count, scale, data));
    return GAN_OK;
}

gan_status gan_cuda_allreduce_sum_f64(gan_backend *be, double *data, size_t count)
{
    ncclComm_t comm = NULL;
    GAN_TRY(communicator(be, &comm));
    if (count == 0)
        return GAN_OK;
    NCCL_TRY(ncclAllReduce(data, data, count, ncclFloat64, ncclSum, comm, gan_cuda_impl_of(be)->stream));
    return GAN_OK;
}

void gan_cuda_dist_close(gan_cuda_impl *impl)
{
    if (impl->nccl_comm)
        ncclCommDestroy((ncclComm_t)impl->nccl_comm);
    impl->nccl_comm = NULL;
}

bool gan_cuda_has_nccl(void) { return true; }

#else

gan_status gan_cuda_allreduce_sum(gan_backend *be, float *data, size_t count, float scale)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "this CUDA backend was built without NCCL");
}

gan_status gan_cuda_allreduce_sum_f64(gan_backend *be, double *data, size_t count)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "this CUDA backend was built without NCCL");
}

void gan_cuda_dist_close(gan_cuda_impl *impl) { (void)impl; }

bool gan_cuda_has_nccl(void) { return false; }

#endif
