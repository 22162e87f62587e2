/* A CUDA device on the CPU, for CI: the parts of the CUDA runtime, cuBLAS and cuDNN that the CUDA
 * backend (src/backend/cuda_*.c) calls, written against the real headers so that every signature
 * is checked, computing on host memory. Linked with the backend's own host sources and its
 * kernels under kernels/cuda_emulation.h (tests/emu_cuda_kernels.cpp), it makes
 * libgan_cuda_emu.so: the CUDA backend whole, loadable through GAN_CUDA_MODULE, so that
 * `gan selftest --device cuda` and training run its orchestration (plans, NHWC and BF16 copies,
 * the forms of ours, conv_grads, graph capture and replay, device-side counters) against the CPU
 * backend in CI. What it proves is the host side and our kernels; cuDNN's and cuBLAS's real
 * kernels, timing, concurrency and memory are the GPU's to show.
 *
 * The device:
 *   - memory is host memory (cudaMalloc: 256-byte aligned, filled with NaNs, so that a read of
 *     what nothing wrote shows), so the backend's pointers are plain pointers;
 *     cudaPointerGetAttributes says device for what cudaMalloc gave, host otherwise;
 *   - streams queue their operations (kernel launches too, through gan_emu_enqueue) and run them
 *     in order only when something waits: cudaStreamSynchronize, cudaEventSynchronize (up to the
 *     event), a copy into pageable host memory, cudaFree; so a host that reads or reuses memory
 *     before waiting sees stale data, as on a GPU. A copy from pinned host memory (cudaHostAlloc)
 *     reads it when it runs, one from pageable memory at the call. While a stream captures, its
 *     operations become graph nodes instead, queued again at each cudaGraphLaunch;
 *   - two streams meet through events: cudaStreamWaitEvent makes a stream wait for where the event
 *     was recorded on another. Between such a fork and its join, the GPU may run the two streams'
 *     work in any order, so the emulation picks one (GAN_EMU_SIDE_ORDER): `after` (the default:
 *     the waiting stream's work runs as late as the join allows, after the other's), `before` (as
 *     early as its fork allows) or `interleave` (in a capture, one of its operations after each of
 *     the other's; outside one, as `after`). A caller that shares memory between the two without
 *     an event between computes differently under some order. Inside a capture an event recorded on the capturing stream and
 *     waited on by another brings that stream into the capture (its operations become nodes of the
 *     same graph, merged in at the join), and every such stream must be joined back before
 *     cudaStreamEndCapture (else cudaErrorStreamCaptureUnjoined), as CUDA requires;
 *   - events time in a deterministic unit: 0.01 ms per operation run between the two records,
 *     so that the backend's timed choices are reproducible (cuDNN's Find reports its own fixed
 *     figures, below);
 *   - cuDNN: 4-d tensors (NCHW, NHWC or any strides) of FLOAT or BFLOAT16, filters in NCHW or
 *     NHWC (KRSC), cross-correlation with padding, stride and dilation, the three passes with
 *     alpha and beta, sums in double (in a fixed order), rounded once. A TENSOR_OP math type on
 *     FLOAT data rounds the operands to TF32 first, as tensor cores do. Each pass offers three
 *     algorithms: 0 (FMA,
 *     deterministic, 0.020 ms, no workspace), 1 (TENSOR_OP, deterministic, 0.010 ms, 4 KiB of
 *     workspace) and 2 (FMA, not deterministic, 0.005 ms, no workspace). A call given less
 *     workspace than its algorithm needs fails with BAD_PARAM; the workspace it is given is
 *     overwritten with NaNs, so that a caller keeping data there sees it destroyed;
 *   - cuBLAS: cublasGemmEx on FP32 matrices (column-major), the compute type's rounding of the
 *     operands (TF32, BF16) applied; sums in double;
 *   - NCCL: a communicator of one rank, whose sum all-reduce is a copy in stream order (so the
 *     data-parallel path runs, split batch norm and all-reduces inside the graph included).
 * Not provided: more ranks than one, more than one device, asynchronous errors. */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include <nccl.h>

#include "test_rounding.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <vector>

/* ---- the stream order, capture and graphs ---------------------------------------------------- */

namespace {

struct node {
    cudaGraphNodeType type;
    std::function<void()> run;
};

/* operations run so far: the events' clock */
unsigned long long operations_run = 0;

} /* namespace */

struct CUevent_st {
    /* records queued and reached (a fresh event counts as reached, as CUDA's); a wait is for the
     * records made before it, not for later ones */
    unsigned long long records = 0, reached = 0;
    unsigned long long at = 0;
    cudaStream_t stream = nullptr;
    /* recorded in a capture: after how many of its stream's captured nodes (counted since the
     * capture began, merged nodes included: `captured_total`) */
    bool in_capture = false;
    size_t capture_at = 0;
};

struct CUstream_st {
    bool capturing = false;
    std::vector<node> captured;
    /* A stream that joined another's capture (a fork): that stream (the origin), and for each of
     * its captured nodes the origin's node count at the fork it follows; merged into the origin's
     * nodes at the join. The origin counts every node it has had (captured_total), so that an
     * event's place survives merges. */
    CUstream_st *origin = nullptr;
    std::vector<size_t> forked_at;
    size_t fork_point = 0;
    size_t captured_total = 0;
    /* queued, not yet run: an operation, an event's record (event set, wait false) or a wait for
     * an event's first `records` records, made on another stream (event set, wait true) */
    struct item {
        std::function<void()> run;
        cudaEvent_t event;
        bool wait;
        unsigned long long records;
    };
    std::deque<item> pending;
};

struct CUgraphNode_st {
    cudaGraphNodeType type;
};

struct CUgraph_st {
    std::vector<node> nodes;
    std::vector<CUgraphNode_st> handles; /* one per node, for cudaGraphGetNodes */
};

struct CUgraphExec_st {
    std::vector<node> nodes;
};

namespace {

CUstream_st default_stream;
std::set<CUstream_st *> streams = {&default_stream};
CUstream_st *stream_of(cudaStream_t stream) { return stream ? stream : &default_stream; }

/* GAN_EMU_SIDE_ORDER: where a stream's work between a fork and its join runs (the header). */
enum side_order { SIDE_AFTER, SIDE_BEFORE, SIDE_INTERLEAVE };
side_order side_order_now(void)
{
    const char *v = std::getenv("GAN_EMU_SIDE_ORDER");
    if (!v || !*v || !std::strcmp(v, "after"))
        return SIDE_AFTER;
    if (!std::strcmp(v, "before"))
        return SIDE_BEFORE;
    if (!std::strcmp(v, "interleave"))
        return SIDE_INTERLEAVE;
    std::fprintf(stderr, "emulated CUDA: GAN_EMU_SIDE_ORDER must be after, before or interleave, not %s\n", v);
    std::abort();
}

void run_next(CUstream_st *s);
/* Runs the event's stream until its first `records` records are reached. */
void run_until(cudaEvent_t event, unsigned long long records)
{
    while (event->reached < records && !event->stream->pending.empty())
        run_next(event->stream);
}
/* Runs what a stream can run now: up to a wait for a record not reached yet. */
void run_ready(CUstream_st *s)
{
    while (!s->pending.empty() &&
           !(s->pending.front().wait && s->pending.front().event->reached < s->pending.front().records))
        run_next(s);
}

/* Runs the first queued item of s. */
void run_next(CUstream_st *s)
{
    CUstream_st::item it = std::move(s->pending.front());
    s->pending.pop_front();
    if (it.event && it.wait) {
        run_until(it.event, it.records);
    } else if (it.event) {
        it.event->reached++;
        it.event->at = operations_run;
        /* `before`: the streams waiting for this event run as far as they can, now */
        if (side_order_now() == SIDE_BEFORE)
            for (CUstream_st *other : streams)
                if (other != s && !other->pending.empty() && other->pending.front().wait &&
                    other->pending.front().event == it.event && it.event->reached >= other->pending.front().records)
                    run_ready(other);
    } else {
        it.run();
        operations_run++;
    }
}
void flush(CUstream_st *s)
{
    while (!s->pending.empty())
        run_next(s);
}
void flush_all(void)
{
    for (CUstream_st *s : streams)
        flush(s);
}

/* Queues `work` on `stream`, or records it as a node of type `type` while the stream captures. */
void enqueue(cudaStream_t stream, cudaGraphNodeType type, std::function<void()> work)
{
    CUstream_st *s = stream_of(stream);
    if (s->capturing) {
        s->captured.push_back(node{type, std::move(work)});
        s->captured_total++;
        if (s->origin)
            s->forked_at.push_back(s->fork_point);
    } else {
        s->pending.push_back(CUstream_st::item{std::move(work), nullptr, false, 0});
    }
}

/* The join: the nodes `side` captured up to `count` of them (since the capture began) merged into
 * its origin's, in the order GAN_EMU_SIDE_ORDER says. */
void merge_side(CUstream_st *origin, CUstream_st *side, size_t count)
{
    size_t taken_before = side->captured_total - side->captured.size();
    size_t n = count > taken_before ? std::min(count - taken_before, side->captured.size()) : 0;
    side_order order = side_order_now();
    /* the origin holds every node since its capture began (captured_total of them), so a fork's
     * count is an index into its nodes */
    std::vector<node> merged;
    size_t o = 0; /* origin's nodes placed so far */
    for (size_t i = 0; i < n; i++) {
        size_t fork = std::min(side->forked_at[i], origin->captured.size());
        /* before: right at its fork; interleave: after one more of origin's since the last;
         * after: at the end */
        size_t place = order == SIDE_AFTER        ? origin->captured.size()
                       : order == SIDE_BEFORE     ? std::max(fork, o)
                                                  : std::min(std::max(fork, o + (i > 0 ? 1 : 0)), origin->captured.size());
        while (o < place)
            merged.push_back(std::move(origin->captured[o++]));
        merged.push_back(std::move(side->captured[i]));
    }
    while (o < origin->captured.size())
        merged.push_back(std::move(origin->captured[o++]));
    origin->captured_total += n;
    origin->captured = std::move(merged);
    side->captured.erase(side->captured.begin(), side->captured.begin() + (long)n);
    side->forked_at.erase(side->forked_at.begin(), side->forked_at.begin() + (long)n);
}

cudaError_t last_error = cudaSuccess;
cudaError_t fail(cudaError_t error)
{
    last_error = error;
    return error;
}

std::set<const void *> device_allocations, pinned_allocations;

} /* namespace */

/* The emulated kernels' launches (kernels/cuda_emulation.h) come here: queued in stream order
 * with their arguments, or recorded into the graph a capture is making. */
extern "C" bool gan_emu_enqueue(cudaStream_t stream, void (*run)(void *), void (*release)(void *), void *work)
{
    std::shared_ptr<void> owned(work, release);
    enqueue(stream, cudaGraphNodeTypeKernel, [run, owned] { run(owned.get()); });
    return true;
}

extern "C" {

/* ---- device, versions, errors ------------------------------------------------------------------ */

cudaError_t cudaDriverGetVersion(int *version)
{
    *version = 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *version)
{
    *version = CUDART_VERSION;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (device != 0)
        return fail(cudaErrorInvalidDevice);
    std::memset(prop, 0, sizeof *prop);
    std::snprintf(prop->name, sizeof prop->name, "gan emulated device");
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 132;
    prop->totalGlobalMem = (size_t)80 << 30;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    *free_bytes = (size_t)64 << 30;
    *total_bytes = (size_t)80 << 30;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void)
{
    cudaError_t error = last_error;
    last_error = cudaSuccess;
    return error;
}
const char *cudaGetErrorString(cudaError_t error)
{
    return error == cudaSuccess ? "no error" : "an error of the emulated device";
}
const char *cudaGetErrorName(cudaError_t error) { return error == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }

/* ---- memory ----------------------------------------------------------------------------------- */

cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    size_t rounded = (bytes + 255) / 256 * 256 + 256;
    *ptr = std::aligned_alloc(256, rounded);
    if (!*ptr)
        return fail(cudaErrorMemoryAllocation);
    std::memset(*ptr, 0xff, rounded); /* NaNs: a read of what nothing wrote shows */
    device_allocations.insert(*ptr);
    return cudaSuccess;
}
/* cudaFree and cudaFreeHost wait for the device, as CUDA's do. */
cudaError_t cudaFree(void *ptr)
{
    flush_all();
    if (ptr && !device_allocations.erase(ptr))
        return fail(cudaErrorInvalidValue);
    std::free(ptr);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags)
{
    (void)flags;
    *ptr = std::malloc(bytes ? bytes : 1);
    if (!*ptr)
        return fail(cudaErrorMemoryAllocation);
    pinned_allocations.insert(*ptr);
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *ptr)
{
    flush_all();
    pinned_allocations.erase(ptr);
    std::free(ptr);
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr)
{
    std::memset(attributes, 0, sizeof *attributes);
    attributes->type = device_allocations.count(ptr) ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
    return cudaSuccess;
}
/* Host memory from cudaHostAlloc (pinned) is read or written when the copy runs in stream order,
 * so the caller must not touch it before then; pageable memory is read at the call (CUDA stages
 * it) and written before the call returns (CUDA waits for a copy into pageable memory). */
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    if (stream_of(stream)->capturing && kind != cudaMemcpyDeviceToDevice)
        return fail(cudaErrorStreamCaptureUnsupported); /* a host copy in a graph: refused, as CUDA does */
    if (kind == cudaMemcpyHostToDevice && !pinned_allocations.count(src)) {
        auto staged = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + bytes);
        enqueue(stream, cudaGraphNodeTypeMemcpy, [=] { std::memcpy(dst, staged->data(), bytes); });
        return cudaSuccess;
    }
    enqueue(stream, cudaGraphNodeTypeMemcpy, [=] { std::memmove(dst, src, bytes); });
    if (kind == cudaMemcpyDeviceToHost && !pinned_allocations.count(dst))
        flush(stream_of(stream));
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream)
{
    enqueue(stream, cudaGraphNodeTypeMemset, [=] { std::memset(dst, value, bytes); });
    return cudaSuccess;
}

/* ---- streams, events, graphs -------------------------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    (void)flags;
    *stream = new CUstream_st;
    streams.insert(*stream);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    flush(stream);
    streams.erase(stream);
    delete stream;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    if (stream_of(stream)->capturing)
        return fail(cudaErrorStreamCaptureUnsupported);
    flush(stream_of(stream));
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    (void)mode;
    CUstream_st *s = stream_of(stream);
    if (s->capturing)
        return fail(cudaErrorIllegalState);
    s->capturing = true;
    s->captured.clear();
    s->captured_total = 0;
    s->origin = nullptr;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    CUstream_st *s = stream_of(stream);
    if (!s->capturing || s->origin)
        return fail(cudaErrorIllegalState);
    /* the streams that joined this capture: each must have been joined back */
    bool unjoined = false;
    for (CUstream_st *other : streams)
        if (other->origin == s) {
            unjoined = unjoined || !other->captured.empty();
            other->capturing = false;
            other->origin = nullptr;
            other->captured.clear();
            other->forked_at.clear();
        }
    s->capturing = false;
    if (unjoined) {
        s->captured.clear();
        *graph = nullptr;
        return fail(cudaErrorStreamCaptureUnjoined);
    }
    *graph = new CUgraph_st;
    (*graph)->nodes = std::move(s->captured);
    for (const node &n : (*graph)->nodes)
        (*graph)->handles.push_back(CUgraphNode_st{n.type});
    s->captured.clear();
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    (void)flags;
    *exec = new CUgraphExec_st;
    (*exec)->nodes = graph->nodes;
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    if (stream_of(stream)->capturing)
        return fail(cudaErrorStreamCaptureUnsupported);
    for (const node &n : exec->nodes)
        enqueue(stream, n.type, n.run);
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    delete graph;
    return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count)
{
    if (nodes) {
        size_t n = std::min(*count, graph->handles.size());
        for (size_t i = 0; i < n; i++)
            nodes[i] = &graph->handles[i];
    }
    *count = graph->handles.size();
    return cudaSuccess;
}
cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node_handle, enum cudaGraphNodeType *type)
{
    *type = node_handle->type;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    *event = new CUevent_st;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    (void)flags;
    return cudaEventCreate(event);
}
cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    if (!event->in_capture)
        cudaEventSynchronize(event); /* its record may still be queued (CUDA lets it complete) */
    delete event;
    return cudaSuccess;
}
/* An event is reached when the stream runs up to where it was recorded; synchronizing on it runs
 * the stream that far and no further. */
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    CUstream_st *s = stream_of(stream);
    event->stream = s;
    if (s->capturing) { /* a place in the capture, for cudaStreamWaitEvent only */
        event->in_capture = true;
        event->capture_at = s->captured_total;
        return cudaSuccess;
    }
    event->in_capture = false;
    event->records++;
    s->pending.push_back(CUstream_st::item{nullptr, event, false, 0});
    return cudaSuccess;
}
/* `stream` waits for where `event` was recorded: in a capture, a fork (a stream that does not
 * capture joins the event's capture) or a join (the event's stream merged back into its origin);
 * otherwise a wait queued on `stream`. */
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    (void)flags;
    CUstream_st *s = stream_of(stream), *e = event->stream;
    if (!event->in_capture) {
        if (s->capturing)
            return fail(cudaErrorStreamCaptureIsolation); /* on work outside the capture */
        if (e && e != s)
            s->pending.push_back(CUstream_st::item{nullptr, event, true, event->records});
        return cudaSuccess;
    }
    CUstream_st *origin = e->origin ? e->origin : e;
    if (!s->capturing) { /* the fork: s joins the capture */
        s->capturing = true;
        s->origin = origin;
        s->captured.clear();
        s->forked_at.clear();
        s->captured_total = 0;
        s->fork_point = event->capture_at;
        return cudaSuccess;
    }
    if (s == origin && e->origin == origin) { /* the join */
        merge_side(origin, e, event->capture_at);
        return cudaSuccess;
    }
    if (s->origin == origin && e == origin) { /* a fork again, of a stream already in the capture */
        s->fork_point = std::max(s->fork_point, event->capture_at);
        return cudaSuccess;
    }
    return fail(cudaErrorStreamCaptureIsolation); /* what the backend does not do */
}
cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    if (event->in_capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    if (event->stream)
        run_until(event, event->records);
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (start->reached < start->records || end->reached < end->records)
        return fail(cudaErrorNotReady);
    *ms = 0.01f * (float)(end->at - start->at);
    return cudaSuccess;
}

} /* extern "C" */

/* ---- rounding as the hardware's math modes do --------------------------------------------------- */

namespace {

float bits_to_float(uint32_t bits)
{
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
uint32_t float_to_bits(float f)
{
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits;
}
float to_tf32(float v) { return test_to_tf32(v); }
float to_bf16(float v) { return test_to_bf16(v); }
uint16_t bf16_bits(float v)
{
    if (std::isnan(v))
        return 0x7fff;
    return (uint16_t)(float_to_bits(to_bf16(v)) >> 16);
}
float from_bf16(uint16_t bits) { return bits_to_float((uint32_t)bits << 16); }

} /* namespace */

/* ---- cuBLAS -------------------------------------------------------------------------------------- */

struct cublasContext {
    cudaStream_t stream = nullptr;
};

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)
{
    *handle = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream)
{
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t bytes)
{
    (void)handle, (void)workspace, (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    (void)handle, (void)mode;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    *value = type == MAJOR_VERSION ? 13 : 0;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t status)
{
    return status == CUBLAS_STATUS_SUCCESS ? "success" : "an error of the emulated cuBLAS";
}
const char *cublasGetStatusName(cublasStatus_t status)
{
    return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_EMULATED_ERROR";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F || m < 0 || n < 0 || k < 0)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    float (*round)(float) = computeType == CUBLAS_COMPUTE_32F_FAST_TF32   ? to_tf32
                            : computeType == CUBLAS_COMPUTE_32F_FAST_16BF ? to_bf16
                                                                          : nullptr;
    const float a_scale = *(const float *)alpha, b_scale = *(const float *)beta;
    const float *a = (const float *)A, *b = (const float *)B;
    float *c = (float *)C;
    bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    enqueue(handle->stream, cudaGraphNodeTypeKernel, [=] {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double sum = 0.0;
                for (int p = 0; p < k; p++) {
                    float x = ta ? a[(size_t)i * lda + p] : a[(size_t)p * lda + i];
                    float y = tb ? b[(size_t)p * ldb + j] : b[(size_t)j * ldb + p];
                    if (round)
                        x = round(x), y = round(y);
                    sum += (double)x * y;
                }
                float *out = &c[(size_t)j * ldc + i];
                float value = a_scale * (float)sum;
                *out = b_scale == 0.0f ? value : value + b_scale * *out;
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} /* extern "C" */

/* ---- cuDNN --------------------------------------------------------------------------------------- */

struct cudnnContext {
    cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    int n = 0, c = 0, h = 0, w = 0;
    int sn = 0, sc = 0, sh = 0, sw = 0;
};
struct cudnnFilterStruct {
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
    int k = 0, c = 0, h = 0, w = 0;
};
struct cudnnConvolutionStruct {
    int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

/* One tensor's elements, read and written through its type and strides. */
struct view {
    void *data;
    cudnnDataType_t type;
    int n, c, h, w;
    long sn, sc, sh, sw;
    bool tf32; /* round FLOAT operands to TF32 on the way in */
    float get(int i, int j, int y, int x) const
    {
        long at = i * sn + j * sc + y * sh + x * sw;
        if (type == CUDNN_DATA_BFLOAT16)
            return from_bf16(((const uint16_t *)data)[at]);
        float v = ((const float *)data)[at];
        return tf32 ? to_tf32(v) : v;
    }
    /* out = alpha value + beta out (beta 0: out not read) */
    void put(int i, int j, int y, int x, double value, float alpha, float beta) const
    {
        long at = i * sn + j * sc + y * sh + x * sw;
        float v = alpha * (float)value;
        if (type == CUDNN_DATA_BFLOAT16) {
            uint16_t *p = &((uint16_t *)data)[at];
            *p = bf16_bits(beta == 0.0f ? v : v + beta * from_bf16(*p));
        } else {
            float *p = &((float *)data)[at];
            *p = beta == 0.0f ? v : v + beta * *p;
        }
    }
};

view tensor_view(const cudnnTensorStruct *t, const void *data, bool tf32)
{
    return view{const_cast<void *>(data), t->type, t->n, t->c, t->h, t->w, t->sn, t->sc, t->sh, t->sw, tf32};
}
view filter_view(const cudnnFilterStruct *f, const void *data, bool tf32)
{
    long c = f->c, h = f->h, w = f->w;
    if (f->format == CUDNN_TENSOR_NHWC) /* KRSC */
        return view{const_cast<void *>(data), f->type, f->k, f->c, f->h, f->w, h * w * c, 1, w * c, c, tf32};
    return view{const_cast<void *>(data), f->type, f->k, f->c, f->h, f->w, c * h * w, h * w, w, 1, tf32};
}
bool tensor_op(const cudnnConvolutionStruct *conv, cudnnDataType_t type)
{
    return type == CUDNN_DATA_FLOAT && conv->math != CUDNN_FMA_MATH && conv->math != CUDNN_DEFAULT_MATH;
}
bool shapes_agree(const view &x, const view &w, const view &y, const cudnnConvolutionStruct *conv)
{
    if (x.n != y.n || x.c != w.c || y.c != w.n || conv->mode != CUDNN_CROSS_CORRELATION)
        return false;
    int h = (x.h + 2 * conv->pad_h - conv->dil_h * (w.h - 1) - 1) / conv->stride_h + 1;
    int wo = (x.w + 2 * conv->pad_w - conv->dil_w * (w.w - 1) - 1) / conv->stride_w + 1;
    return h == y.h && wo == y.w;
}

/* The three algorithms every pass offers (see the file's comment), fastest first as cuDNN sorts
 * what it finds. */
struct algorithm {
    int algo;
    float ms;
    size_t bytes;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
};
const algorithm ALGORITHMS[] = {
    {2, 0.005f, 0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH},
    {1, 0.010f, 4096, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH},
    {0, 0.020f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH},
};
const int ALGORITHM_COUNT = (int)(sizeof ALGORITHMS / sizeof ALGORITHMS[0]);

size_t bytes_of(int algo)
{
    for (const algorithm &a : ALGORITHMS)
        if (a.algo == algo)
            return a.bytes;
    return std::numeric_limits<size_t>::max();
}

/* What a heuristic query suggests: the algorithms, in their order. */
template <typename Perf, typename Algo>
cudnnStatus_t fill_perf(int requested, int *returned, Perf *perf)
{
    int n = std::min(requested, ALGORITHM_COUNT);
    for (int i = 0; i < n; i++) {
        std::memset(&perf[i], 0, sizeof perf[i]);
        perf[i].algo = (Algo)ALGORITHMS[i].algo;
        perf[i].status = CUDNN_STATUS_SUCCESS;
        perf[i].time = ALGORITHMS[i].ms;
        perf[i].memory = ALGORITHMS[i].bytes;
        perf[i].determinism = ALGORITHMS[i].determinism;
        perf[i].mathType = ALGORITHMS[i].math;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

/* What a timed search finds: the same, after running the handle's stream (the search runs the
 * convolutions on the buffers as they are) and every algorithm a few times on the events' clock. */
template <typename Perf, typename Algo>
cudnnStatus_t find_perf(cudnnHandle_t handle, int requested, int *returned, Perf *perf)
{
    flush(stream_of(handle->stream));
    operations_run += 10;
    return fill_perf<Perf, Algo>(requested, returned, perf);
}

/* An algorithm's workspace, or NOT_SUPPORTED for one not offered. */
cudnnStatus_t workspace_size(int algo, size_t *bytes)
{
    *bytes = bytes_of(algo);
    return *bytes == std::numeric_limits<size_t>::max() ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
}

/* The workspace a call is given: refused when short of its algorithm's. */
cudnnStatus_t take_workspace(int algo, void *workspace, size_t bytes)
{
    size_t need = bytes_of(algo);
    if (need == std::numeric_limits<size_t>::max() || bytes < need || (need && !workspace))
        return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

/* ... and destroyed when the call runs: NaNs over all of it. */
void spoil(void *workspace, size_t bytes)
{
    float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t i = 0; i + sizeof(float) <= bytes; i += sizeof(float))
        std::memcpy((char *)workspace + i, &nan, sizeof nan);
}

/* The input position of output (oy, ox) at tap (r, s), or false outside the input. */
bool input_at(const cudnnConvolutionStruct *conv, const view &x, int oy, int ox, int r, int s, int *iy, int *ix)
{
    *iy = oy * conv->stride_h - conv->pad_h + r * conv->dil_h;
    *ix = ox * conv->stride_w - conv->pad_w + s * conv->dil_w;
    return *iy >= 0 && *iy < x.h && *ix >= 0 && *ix < x.w;
}

/* A view's elements as dense float NCHW (its rounding applied): the passes compute on these. */
std::vector<float> dense(const view &v)
{
    std::vector<float> out((size_t)v.n * v.c * v.h * v.w);
    size_t i = 0;
    for (int a = 0; a < v.n; a++)
        for (int b = 0; b < v.c; b++)
            for (int y = 0; y < v.h; y++)
                for (int x = 0; x < v.w; x++)
                    out[i++] = v.get(a, b, y, x);
    return out;
}

/* Writes dense double sums (NCHW) through the view: out = alpha sum + beta out. */
void store(const view &v, const std::vector<double> &sums, float alpha, float beta)
{
    size_t i = 0;
    for (int a = 0; a < v.n; a++)
        for (int b = 0; b < v.c; b++)
            for (int y = 0; y < v.h; y++)
                for (int x = 0; x < v.w; x++)
                    v.put(a, b, y, x, sums[i++], alpha, beta);
}

/* The convolution's taps, as (output position, input position) pairs per tap (r, s): the sums of
 * every pass run over these lists, so the padding test is made once per geometry. */
struct tap_pairs {
    std::vector<std::pair<int, int>> pairs; /* (oy * ow + ox, iy * iw + ix) */
};
std::vector<tap_pairs> taps_of(const cudnnConvolutionStruct &conv, const view &x, const view &w, const view &y)
{
    std::vector<tap_pairs> taps((size_t)w.h * w.w);
    for (int r = 0; r < w.h; r++)
        for (int s = 0; s < w.w; s++)
            for (int oy = 0; oy < y.h; oy++)
                for (int ox = 0; ox < y.w; ox++) {
                    int iy, ix;
                    if (input_at(&conv, x, oy, ox, r, s, &iy, &ix))
                        taps[(size_t)r * w.w + s].pairs.emplace_back(oy * y.w + ox, iy * x.w + ix);
                }
    return taps;
}

} /* namespace */

extern "C" {

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }
const char *cudnnGetErrorString(cudnnStatus_t status)
{
    return status == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_EMULATED_ERROR";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    *handle = new cudnnContext;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    delete handle;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream)
{
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *desc)
{
    *desc = new cudnnTensorStruct;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc)
{
    delete desc;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t desc, cudnnDataType_t type, int n, int c, int h,
                                           int w, int sn, int sc, int sh, int sw)
{
    if (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *desc = cudnnTensorStruct{type, n, c, h, w, sn, sc, sh, sw};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w)
{
    if (format == CUDNN_TENSOR_NHWC)
        return cudnnSetTensor4dDescriptorEx(desc, type, n, c, h, w, h * w * c, 1, w * c, c);
    if (format != CUDNN_TENSOR_NCHW)
        return CUDNN_STATUS_NOT_SUPPORTED;
    return cudnnSetTensor4dDescriptorEx(desc, type, n, c, h, w, c * h * w, h * w, w, 1);
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *desc)
{
    *desc = new cudnnFilterStruct;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc)
{
    delete desc;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w)
{
    if ((type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16) ||
        (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC))
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (k <= 0 || c <= 0 || h <= 0 || w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *desc = cudnnFilterStruct{type, format, k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *desc)
{
    *desc = new cudnnConvolutionStruct;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc)
{
    delete desc;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t desc, int pad_h, int pad_w, int stride_h,
                                              int stride_w, int dil_h, int dil_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute_type)
{
    if (compute_type != CUDNN_DATA_FLOAT || stride_h <= 0 || stride_w <= 0 || dil_h <= 0 || dil_w <= 0 ||
        pad_h < 0 || pad_w < 0)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnMathType_t math = desc->math;
    *desc = cudnnConvolutionStruct{pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, mode, math};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t math)
{
    desc->math = math;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- algorithms: found, suggested, their workspace ---- */

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t, const void *,
                                                     const cudnnFilterDescriptor_t, const void *,
                                                     const cudnnConvolutionDescriptor_t,
                                                     const cudnnTensorDescriptor_t, void *, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf, void *,
                                                     size_t)
{
    return find_perf<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(handle, requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t handle, const cudnnFilterDescriptor_t, const void *,
                                                          const cudnnTensorDescriptor_t, const void *,
                                                          const cudnnConvolutionDescriptor_t,
                                                          const cudnnTensorDescriptor_t, void *, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf,
                                                          void *, size_t)
{
    return find_perf<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(handle, requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t,
                                                            const void *, const cudnnTensorDescriptor_t, const void *,
                                                            const cudnnConvolutionDescriptor_t,
                                                            const cudnnFilterDescriptor_t, void *,
                                                            const int requested, int *returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf, void *, size_t)
{
    return find_perf<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(handle, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                     const cudnnFilterDescriptor_t,
                                                     const cudnnConvolutionDescriptor_t,
                                                     const cudnnTensorDescriptor_t, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf)
{
    return fill_perf<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t,
                                                          const cudnnTensorDescriptor_t,
                                                          const cudnnConvolutionDescriptor_t,
                                                          const cudnnTensorDescriptor_t, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf)
{
    return fill_perf<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                            const cudnnTensorDescriptor_t,
                                                            const cudnnConvolutionDescriptor_t,
                                                            const cudnnFilterDescriptor_t, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf)
{
    return fill_perf<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                      const cudnnFilterDescriptor_t,
                                                      const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes)
{
    return workspace_size((int)algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t,
                                                           const cudnnTensorDescriptor_t,
                                                           const cudnnConvolutionDescriptor_t,
                                                           const cudnnTensorDescriptor_t,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes)
{
    return workspace_size((int)algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                             const cudnnTensorDescriptor_t,
                                                             const cudnnConvolutionDescriptor_t,
                                                             const cudnnFilterDescriptor_t,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)
{
    return workspace_size((int)algo, bytes);
}

/* ---- the three passes ---- */

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                      void *workspace, size_t workspace_bytes, const void *beta,
                                      const cudnnTensorDescriptor_t yd, void *y)
{
    bool t = tensor_op(cd, xd->type);
    view X = tensor_view(xd, x, t), W = filter_view(wd, w, t), Y = tensor_view(yd, y, false);
    if (!shapes_agree(X, W, Y, cd) || xd->type != wd->type || yd->type != xd->type)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = take_workspace((int)algo, workspace, workspace_bytes);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const std::vector<tap_pairs> taps = taps_of(*cd, X, W, Y);
    enqueue(handle->stream, cudaGraphNodeTypeKernel, [=] {
        spoil(workspace, workspace_bytes);
        std::vector<float> xs = dense(X), ws = dense(W);
        std::vector<double> ys((size_t)Y.n * Y.c * Y.h * Y.w, 0.0);
        size_t xplane = (size_t)X.h * X.w, yplane = (size_t)Y.h * Y.w, kk = (size_t)W.h * W.w;
        for (int n = 0; n < Y.n; n++)
            for (int k = 0; k < Y.c; k++) {
                double *out = &ys[((size_t)n * Y.c + k) * yplane];
                for (int c = 0; c < X.c; c++) {
                    const float *in = &xs[((size_t)n * X.c + c) * xplane];
                    for (size_t t = 0; t < kk; t++) {
                        double wv = ws[((size_t)k * W.c + c) * kk + t];
                        for (const auto &p : taps[t].pairs)
                            out[p.first] += wv * in[p.second];
                    }
                }
            }
        store(Y, ys, a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                                           void *workspace, size_t workspace_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx)
{
    bool t = tensor_op(cd, dyd->type);
    view W = filter_view(wd, w, t), DY = tensor_view(dyd, dy, t), DX = tensor_view(dxd, dx, false);
    if (!shapes_agree(DX, W, DY, cd) || dyd->type != wd->type || dxd->type != dyd->type)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = take_workspace((int)algo, workspace, workspace_bytes);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const std::vector<tap_pairs> taps = taps_of(*cd, DX, W, DY);
    enqueue(handle->stream, cudaGraphNodeTypeKernel, [=] {
        spoil(workspace, workspace_bytes);
        std::vector<float> dys = dense(DY), ws = dense(W);
        std::vector<double> dxs((size_t)DX.n * DX.c * DX.h * DX.w, 0.0);
        size_t xplane = (size_t)DX.h * DX.w, yplane = (size_t)DY.h * DY.w, kk = (size_t)W.h * W.w;
        for (int n = 0; n < DY.n; n++)
            for (int k = 0; k < DY.c; k++) {
                const float *in = &dys[((size_t)n * DY.c + k) * yplane];
                for (int c = 0; c < DX.c; c++) {
                    double *out = &dxs[((size_t)n * DX.c + c) * xplane];
                    for (size_t t = 0; t < kk; t++) {
                        double wv = ws[((size_t)k * W.c + c) * kk + t];
                        for (const auto &p : taps[t].pairs)
                            out[p.second] += wv * in[p.first];
                    }
                }
            }
        store(DX, dxs, a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workspace,
                                             size_t workspace_bytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwd, void *dw)
{
    bool t = tensor_op(cd, xd->type);
    view X = tensor_view(xd, x, t), DY = tensor_view(dyd, dy, t), DW = filter_view(dwd, dw, false);
    if (!shapes_agree(X, DW, DY, cd) || xd->type != dyd->type || dwd->type != xd->type)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = take_workspace((int)algo, workspace, workspace_bytes);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const std::vector<tap_pairs> taps = taps_of(*cd, X, DW, DY);
    enqueue(handle->stream, cudaGraphNodeTypeKernel, [=] {
        spoil(workspace, workspace_bytes);
        std::vector<float> xs = dense(X), dys = dense(DY);
        std::vector<double> dws((size_t)DW.n * DW.c * DW.h * DW.w, 0.0);
        size_t xplane = (size_t)X.h * X.w, yplane = (size_t)DY.h * DY.w, kk = (size_t)DW.h * DW.w;
        for (int n = 0; n < X.n; n++)
            for (int k = 0; k < DW.n; k++) {
                const float *g = &dys[((size_t)n * DY.c + k) * yplane];
                for (int c = 0; c < DW.c; c++) {
                    const float *in = &xs[((size_t)n * X.c + c) * xplane];
                    for (size_t t = 0; t < kk; t++) {
                        double sum = 0.0;
                        for (const auto &p : taps[t].pairs)
                            sum += (double)g[p.first] * in[p.second];
                        dws[((size_t)k * DW.c + c) * kk + t] += sum;
                    }
                }
            }
        store(DW, dws, a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}

} /* extern "C" */

/* ---- NCCL: one rank ---------------------------------------------------------------------------- */

struct ncclComm {
    int ranks;
};

extern "C" {

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    std::memset(id, 0, sizeof *id);
    return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    (void)id;
    if (nranks != 1 || rank != 0)
        return ncclInvalidUsage;
    *comm = new ncclComm{1};
    return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    flush_all();
    delete comm;
    return ncclSuccess;
}
const char *ncclGetErrorString(ncclResult_t result)
{
    return result == ncclSuccess ? "no error" : "an error of the emulated NCCL";
}
const char *ncclGetLastError(ncclComm_t comm)
{
    (void)comm;
    return "";
}
/* The sum over one rank: the data itself. */
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream)
{
    size_t bytes = type == ncclFloat32 ? 4 : type == ncclFloat64 ? 8 : 0;
    if (!bytes || op != ncclSum || !comm)
        return ncclInvalidArgument;
    enqueue(stream, cudaGraphNodeTypeKernel, [=] { std::memmove(recv, send, count * bytes); });
    return ncclSuccess;
}

} /* extern "C" */
