/* A small emulation of the CUDA built-ins, so that the real kernel bodies (kernels/NAME.cuh) and
 * launchers (kernels/NAME.cu) compile as host C++ and run on the CPU in CI, where no GPU exists.
 *
 * What it provides: __global__, __device__, __host__, __forceinline__, __shared__, threadIdx,
 * blockIdx, blockDim, gridDim, __syncthreads(), dim3, cudaStream_t, cudaError_t,
 * cudaGetLastError(), cudaGetErrorString(), the bfloat16 type of <cuda_bf16.h> with its two
 * conversions (__nv_bfloat16, __float2bfloat16_rn, __bfloat162float: bit-exact with CUDA's),
 * and gan_emu_launch(), which the launch helper in kernels/launch.cu calls where nvcc would see
 * `kernel<<<grid, block, 0, stream>>>(args)`.
 *
 * How a launch runs: on the calling host thread, blocks one after another; the CUDA threads of a
 * block are fibers (ucontext), run in turn from one __syncthreads() to the next: a round runs
 * thread 0 until it reaches the barrier (or returns), then thread 1, ..., so when the round
 * ends every live thread has arrived, and the next round resumes them all past the barrier. A
 * thread that returns early simply leaves the block (as on the hardware). The order is fixed,
 * so a missing barrier shows up reproducibly as a stale read rather than as a race. Because
 * only one block is alive at a time, `__shared__` can be `static`: every thread of the running
 * block sees the same variable, and the next block reuses it. Fiber switches are annotated for
 * AddressSanitizer (__sanitizer_start/finish_switch_fiber), so the emulated kernels also run
 * under ASan.
 *
 * Not provided: warp intrinsics (__shfl_*, __ballot_*), atomics, dynamic shared memory, streams
 * that overlap (a launch runs to completion before gan_emu_launch returns), bfloat16 arithmetic,
 * __nv_bfloat162 and every other bf16 conversion (rounding modes other than _rn, to and from
 * integers and double). Kernels must not use them; compiling the kernels against this header is
 * what enforces it.
 *
 * Include this header before anything that includes gan/elementwise_math.h: it defines
 * GAN_CUDA_EMULATION, which makes that header mark its functions __host__ __device__. */
#ifndef GAN_CUDA_EMULATION_H
#define GAN_CUDA_EMULATION_H

#if defined(__CUDACC__)
#error "cuda_emulation.h is for host compilers; nvcc has the real built-ins"
#endif

#ifndef GAN_CUDA_EMULATION
#define GAN_CUDA_EMULATION 1
#endif

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define GAN_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GAN_EMU_ASAN 1
#endif
#endif
#ifdef GAN_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

/* Per host thread, as the hardware gives per CUDA thread. */
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

/* ---- the runtime API pieces the launchers use ------------------------------------------------ */

typedef struct CUstream_st *cudaStream_t;

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidConfiguration = 9
} cudaError_t;

inline cudaError_t gan_emu_last_error = cudaSuccess;

/* Returns and clears the last launch error, as the runtime does. */
inline cudaError_t cudaGetLastError(void)
{
    cudaError_t error = gan_emu_last_error;
    gan_emu_last_error = cudaSuccess;
    return error;
}

inline const char *cudaGetErrorString(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    }
    return "unknown error";
}

/* ---- bfloat16 (<cuda_bf16.h>) ------------------------------------------------------------------ */

/* A bfloat16 value: the upper 16 bits of a float (sign, 8 exponent bits, 7 mantissa bits). Same
 * size and alignment as CUDA's __nv_bfloat16, so a uint16_t buffer of bit patterns can be
 * reinterpreted as one. Only the conversions below are provided: no arithmetic. */
struct __nv_bfloat16 {
    uint16_t bits;
};

/* float -> bfloat16, rounded to nearest, ties to even, as CUDA's: the dropped low 16 bits decide
 * (above half: up; exactly half: up only if the kept mantissa is odd). Rounding up carries into
 * the exponent where it must (the largest floats round to infinity); infinities and zeros keep
 * their sign and are exact; float subnormals round like any other value (no flush to zero).
 * Every NaN becomes 0x7FFF, the quiet NaN that CUDA's software path returns (cuda_bf16.hpp,
 * __internal_float2bfloat16) and cvt.rn.bf16.f32 gives on sm_80 and later. */
inline __nv_bfloat16 __float2bfloat16_rn(float value)
{
    uint32_t x;
    std::memcpy(&x, &value, sizeof x);
    __nv_bfloat16 result;
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        result.bits = 0x7fffu;
        return result;
    }
    uint32_t kept = x >> 16, dropped = x & 0xffffu;
    if (dropped > 0x8000u || (dropped == 0x8000u && (kept & 1u) != 0))
        kept++;
    result.bits = (uint16_t)kept;
    return result;
}

/* bfloat16 -> float: exact (the bits become the upper half of the float's). */
inline float __bfloat162float(__nv_bfloat16 value)
{
    uint32_t x = (uint32_t)value.bits << 16;
    float result;
    std::memcpy(&result, &x, sizeof result);
    return result;
}

/* ---- fibers: the CUDA threads of the running block ------------------------------------------ */

/* The state of the running block: one fiber per CUDA thread and the scheduler's context. */
struct gan_emu_block {
    struct fiber {
        ucontext_t context;
        uint3 thread_index;
        bool finished = false;
        void *fake_stack = nullptr; /* ASan's, while the fiber is switched out */
    };
    std::vector<fiber> fibers;
    ucontext_t scheduler;
    size_t current = 0;
    const std::function<void()> *body = nullptr;
    const void *scheduler_stack_bottom = nullptr; /* for ASan */
    size_t scheduler_stack_size = 0;
};

inline gan_emu_block *gan_emu_running_block = nullptr;

/* Stacks are kept for the whole process: a launch reuses them. Kernel bodies are shallow; 256 KiB
 * leaves room for AddressSanitizer's larger frames. */
enum { GAN_EMU_STACK_BYTES = 256 * 1024 };
inline std::vector<std::unique_ptr<char[]>> gan_emu_stacks;

/* Switches from the running fiber back to the scheduler; returns when the scheduler resumes it. */
inline void gan_emu_yield_to_scheduler(bool finishing)
{
    gan_emu_block *b = gan_emu_running_block;
    gan_emu_block::fiber &self = b->fibers[b->current];
#ifdef GAN_EMU_ASAN
    __sanitizer_start_switch_fiber(finishing ? nullptr : &self.fake_stack, b->scheduler_stack_bottom,
                                   b->scheduler_stack_size);
#endif
    swapcontext(&self.context, &b->scheduler);
#ifdef GAN_EMU_ASAN
    __sanitizer_finish_switch_fiber(self.fake_stack, &b->scheduler_stack_bottom,
                                    &b->scheduler_stack_size);
#endif
    (void)finishing;
}

/* Where every fiber starts: runs the kernel body for its thread, then leaves for good. */
inline void gan_emu_fiber_entry(void)
{
    gan_emu_block *b = gan_emu_running_block;
#ifdef GAN_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &b->scheduler_stack_bottom, &b->scheduler_stack_size);
#endif
    (*b->body)();
    b->fibers[b->current].finished = true;
    gan_emu_yield_to_scheduler(true);
    std::fprintf(stderr, "cuda_emulation: a finished fiber was resumed\n");
    std::abort();
}

/* The barrier: hand over to the next thread of the block; resumed in the next round. */
inline void __syncthreads(void)
{
    if (!gan_emu_running_block) {
        std::fprintf(stderr, "cuda_emulation: __syncthreads() outside a kernel\n");
        std::abort();
    }
    gan_emu_yield_to_scheduler(false);
}

/* A fresh fiber at gan_emu_fiber_entry on `stack`. Kept out of line: getcontext returns twice,
 * and the caller's loop variables must not live across it. */
__attribute__((noinline)) inline void gan_emu_fiber_init(gan_emu_block::fiber &f, char *stack)
{
    f.finished = false;
    f.fake_stack = nullptr;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stack;
    f.context.uc_stack.ss_size = GAN_EMU_STACK_BYTES;
    f.context.uc_link = nullptr;
    makecontext(&f.context, gan_emu_fiber_entry, 0);
}

/* Runs every thread of one block to completion, in rounds from barrier to barrier. */
inline void gan_emu_run_block(gan_emu_block &b)
{
    for (size_t t = 0; t < b.fibers.size(); t++)
        gan_emu_fiber_init(b.fibers[t], gan_emu_stacks[t].get());
    bool live = true;
    while (live) {
        live = false;
        for (size_t t = 0; t < b.fibers.size(); t++) {
            gan_emu_block::fiber &f = b.fibers[t];
            if (f.finished)
                continue;
            b.current = t;
            threadIdx = f.thread_index;
            void *scheduler_fake_stack = nullptr;
#ifdef GAN_EMU_ASAN
            __sanitizer_start_switch_fiber(&scheduler_fake_stack, gan_emu_stacks[t].get(),
                                           GAN_EMU_STACK_BYTES);
#endif
            swapcontext(&b.scheduler, &f.context);
#ifdef GAN_EMU_ASAN
            __sanitizer_finish_switch_fiber(scheduler_fake_stack, nullptr, nullptr);
#endif
            (void)scheduler_fake_stack;
            if (!f.finished)
                live = true;
        }
    }
}

/* ---- the launch ---------------------------------------------------------------------------- */

/* The limits every current GPU enforces; a launch outside them fails as on a device. */
enum { GAN_EMU_MAX_THREADS_PER_BLOCK = 1024 };

/* Runs kernel(args...) over grid x block, as `kernel<<<grid, block, 0, stream>>>(args...)` would,
 * and returns when every block has finished. Errors are reported through cudaGetLastError(). */
template <typename... Params, typename... Args>
void gan_emu_launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                    Args... args)
{
    (void)stream;
    unsigned long long threads_per_block = (unsigned long long)block.x * block.y * block.z;
    unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    if (threads_per_block == 0 || threads_per_block > GAN_EMU_MAX_THREADS_PER_BLOCK || blocks == 0 ||
        block.z > 64 || grid.y > 65535 || grid.z > 65535) {
        gan_emu_last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (gan_emu_running_block) {
        std::fprintf(stderr, "cuda_emulation: a kernel launched from inside a kernel\n");
        std::abort();
    }
    while (gan_emu_stacks.size() < threads_per_block)
        gan_emu_stacks.emplace_back(new char[GAN_EMU_STACK_BYTES]);

    gan_emu_block b;
    b.fibers.resize((size_t)threads_per_block);
    size_t t = 0;
    for (unsigned tz = 0; tz < block.z; tz++)
        for (unsigned ty = 0; ty < block.y; ty++)
            for (unsigned tx = 0; tx < block.x; tx++)
                b.fibers[t++].thread_index = uint3(tx, ty, tz);
    std::function<void()> body = [&] { kernel(args...); };
    b.body = &body;
    blockDim = block;
    gridDim = grid;
    gan_emu_running_block = &b;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = uint3(bx, by, bz);
                gan_emu_run_block(b);
            }
    gan_emu_running_block = nullptr;
}

#endif
