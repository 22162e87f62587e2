/* A small emulation of the CUDA built-ins, so that the real kernel bodies (kernels/NAME.cuh) and
 * launchers (kernels/NAME.cu) compile as host C++ and run on the CPU in CI, where no GPU exists.
 *
 * What it provides: __global__, __device__, __host__, __forceinline__, __shared__, threadIdx,
 * blockIdx, blockDim, gridDim, __syncthreads(), warpSize, __shfl_down_sync() and
 * __shfl_xor_sync() (float and double, full mask only), dim3, cudaStream_t, cudaError_t,
 * cudaGetLastError(), cudaGetErrorString(), the bfloat16 type of <cuda_bf16.h> with its two
 * conversions (__nv_bfloat16, __float2bfloat16_rn, __bfloat162float: bit-exact with CUDA's),
 * and gan_emu_launch(), which the launch helper in kernels/launch.cu calls where nvcc would see
 * `kernel<<<grid, block, 0, stream>>>(args)`.
 *
 * How a launch runs: on the calling host thread, blocks one after another; the CUDA threads of a
 * block are fibers (a stack each, switched by a few instructions on x86-64, by ucontext elsewhere),
 * run in turn from one wait to the next: a round runs thread 0
 * until it waits (at __syncthreads() or at a warp shuffle) or returns, then thread 1, ... Each
 * fiber records what it waits on. After a round, every warp (32 consecutive threads by linear
 * thread index) whose live lanes all wait at a shuffle exchanges its values, and those lanes run
 * on in the next round; when no warp can exchange, and every live thread waits at the barrier,
 * the barrier releases them all. Anything else can never move on (on the GPU it hangs or is
 * undefined: a barrier or a shuffle in divergent code) and aborts with a message naming the
 * threads. A thread that returns early simply leaves the block (as on the hardware): barriers
 * and shuffles wait for the live threads only. The order is fixed, so a missing barrier shows up
 * reproducibly as a stale read rather than as a race. Because only one block is alive at a
 * time, `__shared__` can be `static`: every thread of the running block sees the same variable,
 * and the next block reuses it. Fiber switches are annotated for AddressSanitizer
 * (__sanitizer_start/finish_switch_fiber), so the emulated kernels also run under ASan.
 *
 * Shuffles: lane L of a warp gets the value of lane L + delta (down) or L ^ laneMask (xor); a
 * source lane past 31 gives the lane its own value, as CUDA does. A source lane inside the warp
 * that has returned, or does not exist (a partial last warp), is undefined on the GPU and is
 * refused here (abort); a partial warp is fine as long as no lane reads a missing one.
 *
 * Not provided: other warp intrinsics (__shfl_sync, __shfl_up_sync, __ballot_sync, ...), a mask
 * other than 0xffffffff (refused at run time), the shuffles' width argument, other shuffled
 * types, atomics, dynamic shared memory, streams that overlap (a launch runs to completion
 * before gan_emu_launch returns, unless a CUDA runtime on the CPU queues it: see gan_emu_enqueue),
 * bfloat16 arithmetic, __nv_bfloat162 and every other bf16
 * conversion (rounding modes other than _rn, to and from integers and double). Kernels must not
 * use them; compiling the kernels against this header is what enforces it (the mask: running
 * them).
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

/* ---- contexts: a stack to switch to and from -------------------------------------------------- */

/* On x86-64 a switch saves the callee-saved registers on the stack it leaves and the stack pointer
 * in the context, then does the reverse for the one it enters: no system call (swapcontext saves
 * and restores the signal mask with one each way, which was most of an emulated launch's time).
 * Elsewhere, ucontext. */
#if defined(__x86_64__)
struct gan_emu_context {
    void *sp = nullptr;
};
/* Saves into *from_sp and enters to_sp (System V: rdi, rsi). Only basic asm in a naked function. */
__attribute__((naked, noinline)) static void gan_emu_switch_stacks(void **from_sp, void *to_sp)
{
    __asm__ volatile("pushq %rbp\n\t"
                     "pushq %rbx\n\t"
                     "pushq %r12\n\t"
                     "pushq %r13\n\t"
                     "pushq %r14\n\t"
                     "pushq %r15\n\t"
                     "movq %rsp, (%rdi)\n\t"
                     "movq %rsi, %rsp\n\t"
                     "popq %r15\n\t"
                     "popq %r14\n\t"
                     "popq %r13\n\t"
                     "popq %r12\n\t"
                     "popq %rbx\n\t"
                     "popq %rbp\n\t"
                     "retq\n\t");
}
/* A context that starts entry() on stack[0 .. bytes): six zero registers, then entry as the
 * return address, then a zero slot, so that entry starts with the stack aligned as after a call
 * (rsp + 8 a multiple of 16). entry must never return. */
inline void gan_emu_context_start(gan_emu_context &c, char *stack, size_t bytes, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)stack + bytes) & ~(uintptr_t)15;
    void **slot = (void **)top;
    *--slot = nullptr;
    *--slot = (void *)entry;
    for (int i = 0; i < 6; i++)
        *--slot = nullptr;
    c.sp = slot;
}
inline void gan_emu_context_switch(gan_emu_context &from, gan_emu_context &to)
{
    gan_emu_switch_stacks(&from.sp, to.sp);
}
#else
struct gan_emu_context {
    ucontext_t uc;
};
/* Kept out of line: getcontext returns twice, and the caller's variables must not live across it. */
__attribute__((noinline)) inline void gan_emu_context_start(gan_emu_context &c, char *stack, size_t bytes,
                                                            void (*entry)(void))
{
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
inline void gan_emu_context_switch(gan_emu_context &from, gan_emu_context &to) { swapcontext(&from.uc, &to.uc); }
#endif

/* ---- fibers: the CUDA threads of the running block ------------------------------------------ */

/* The state of the running block: one fiber per CUDA thread and the scheduler's context. */
struct gan_emu_block {
    /* What a fiber waits on when it is switched out. */
    enum wait_kind { RUNNABLE, AT_BARRIER, AT_SHUFFLE, FINISHED };
    enum shuffle_kind { SHUFFLE_DOWN, SHUFFLE_XOR };
    struct fiber {
        gan_emu_context context;
        uint3 thread_index;
        wait_kind waiting = RUNNABLE;
        /* the shuffle it waits at: kind, delta or lane mask, the value's bytes (4 float, 8 double)
         * in, and the source lane's bytes out once the warp has exchanged */
        shuffle_kind shuffle = SHUFFLE_DOWN;
        unsigned long long shuffle_operand = 0;
        size_t value_bytes = 0;
        unsigned char value_in[8] = {}, value_out[8] = {};
        void *fake_stack = nullptr; /* ASan's, while the fiber is switched out */
    };
    std::vector<fiber> fibers;
    gan_emu_context scheduler;
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
    gan_emu_context_switch(self.context, b->scheduler);
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
    b->fibers[b->current].waiting = gan_emu_block::FINISHED;
    gan_emu_yield_to_scheduler(true);
    std::fprintf(stderr, "cuda_emulation: a finished fiber was resumed\n");
    std::abort();
}

/* The barrier: hand over to the next thread of the block; resumed once every live thread of the
 * block waits here. */
inline void __syncthreads(void)
{
    gan_emu_block *b = gan_emu_running_block;
    if (!b) {
        std::fprintf(stderr, "cuda_emulation: __syncthreads() outside a kernel\n");
        std::abort();
    }
    b->fibers[b->current].waiting = gan_emu_block::AT_BARRIER;
    gan_emu_yield_to_scheduler(false);
}

/* CUDA's built-in warp size. */
inline constexpr int warpSize = 32;

/* One lane's part of a warp shuffle: leaves `value` for the warp and waits until every live lane
 * of the warp has arrived (the scheduler exchanges, gan_emu_exchange_warp); returns the value of
 * the source lane. */
template <typename T>
T gan_emu_shuffle(const char *name, unsigned mask, T value, gan_emu_block::shuffle_kind kind,
                  unsigned long long operand)
{
    static_assert(sizeof(T) <= 8, "a shuffled value is at most 8 bytes");
    gan_emu_block *b = gan_emu_running_block;
    if (!b) {
        std::fprintf(stderr, "cuda_emulation: %s outside a kernel\n", name);
        std::abort();
    }
    if (mask != 0xffffffffu) {
        std::fprintf(stderr, "cuda_emulation: %s with mask 0x%08x: only the full mask 0xffffffff is emulated\n",
                     name, mask);
        std::abort();
    }
    size_t self = b->current;
    gan_emu_block::fiber &f = b->fibers[self];
    f.waiting = gan_emu_block::AT_SHUFFLE;
    f.shuffle = kind;
    f.shuffle_operand = operand;
    f.value_bytes = sizeof(T);
    std::memcpy(f.value_in, &value, sizeof(T));
    gan_emu_yield_to_scheduler(false);
    T result;
    std::memcpy(&result, b->fibers[self].value_out, sizeof(T));
    return result;
}

/* value of lane (this lane + delta); this lane's own value when that is past lane 31 */
inline float __shfl_down_sync(unsigned mask, float var, unsigned int delta)
{
    return gan_emu_shuffle("__shfl_down_sync", mask, var, gan_emu_block::SHUFFLE_DOWN, delta);
}
inline double __shfl_down_sync(unsigned mask, double var, unsigned int delta)
{
    return gan_emu_shuffle("__shfl_down_sync", mask, var, gan_emu_block::SHUFFLE_DOWN, delta);
}
/* value of lane (this lane ^ laneMask); this lane's own value when that is past lane 31 */
inline float __shfl_xor_sync(unsigned mask, float var, int laneMask)
{
    return gan_emu_shuffle("__shfl_xor_sync", mask, var, gan_emu_block::SHUFFLE_XOR, (unsigned)laneMask);
}
inline double __shfl_xor_sync(unsigned mask, double var, int laneMask)
{
    return gan_emu_shuffle("__shfl_xor_sync", mask, var, gan_emu_block::SHUFFLE_XOR, (unsigned)laneMask);
}

/* A fresh fiber at gan_emu_fiber_entry on `stack`. */
inline void gan_emu_fiber_init(gan_emu_block::fiber &f, char *stack)
{
    f.waiting = gan_emu_block::RUNNABLE;
    f.fake_stack = nullptr;
    gan_emu_context_start(f.context, stack, GAN_EMU_STACK_BYTES, gan_emu_fiber_entry);
}

/* "__shfl_down_sync(float)" and the like, for messages. */
inline const char *gan_emu_shuffle_name(const gan_emu_block::fiber &f)
{
    bool down = f.shuffle == gan_emu_block::SHUFFLE_DOWN, wide = f.value_bytes == sizeof(double);
    return down ? (wide ? "__shfl_down_sync(double)" : "__shfl_down_sync(float)")
                : (wide ? "__shfl_xor_sync(double)" : "__shfl_xor_sync(float)");
}

/* Threads [first, end) are one warp. If every live lane of it waits at a shuffle, hands each
 * lane its source lane's value, makes them runnable and returns true; otherwise changes nothing.
 * Lanes at different shuffles (kind or type), or a lane reading one that has returned or does
 * not exist, abort: the GPU gives no defined result. */
inline bool gan_emu_exchange_warp(gan_emu_block &b, size_t first, size_t end)
{
    size_t live = 0, arrived = 0, leader = end;
    for (size_t t = first; t < end; t++) {
        if (b.fibers[t].waiting == gan_emu_block::FINISHED)
            continue;
        live++;
        if (b.fibers[t].waiting == gan_emu_block::AT_SHUFFLE) {
            arrived++;
            if (leader == end)
                leader = t;
        }
    }
    if (live == 0 || arrived < live)
        return false;
    const size_t warp = first / (size_t)warpSize;
    for (size_t t = first; t < end; t++) {
        const gan_emu_block::fiber &f = b.fibers[t];
        if (f.waiting == gan_emu_block::FINISHED)
            continue;
        if (f.shuffle != b.fibers[leader].shuffle || f.value_bytes != b.fibers[leader].value_bytes) {
            std::fprintf(stderr, "cuda_emulation: warp %zu: lane %zu is at %s, lane %zu at %s\n", warp,
                         leader - first, gan_emu_shuffle_name(b.fibers[leader]), t - first,
                         gan_emu_shuffle_name(f));
            std::abort();
        }
        unsigned long long lane = t - first;
        unsigned long long source = f.shuffle == gan_emu_block::SHUFFLE_DOWN ? lane + f.shuffle_operand
                                                                            : lane ^ f.shuffle_operand;
        if (source >= (unsigned long long)warpSize)
            source = lane; /* out of range: the lane keeps its own value */
        size_t s = first + (size_t)source;
        if (s >= end || b.fibers[s].waiting == gan_emu_block::FINISHED) {
            std::fprintf(stderr, "cuda_emulation: warp %zu: lane %llu's %s reads lane %llu, which %s; "
                                 "undefined on the GPU\n", warp, lane, gan_emu_shuffle_name(f), source,
                         s >= end ? "does not exist (a partial warp)" : "has returned");
            std::abort();
        }
        std::memcpy(b.fibers[t].value_out, b.fibers[s].value_in, f.value_bytes);
    }
    for (size_t t = first; t < end; t++)
        if (b.fibers[t].waiting == gan_emu_block::AT_SHUFFLE)
            b.fibers[t].waiting = gan_emu_block::RUNNABLE;
    return true;
}

/* Runs every thread of one block to completion: rounds that run each runnable fiber until it
 * waits, then the warps' exchanges, else the barrier's release, else a deadlock. */
inline void gan_emu_run_block(gan_emu_block &b)
{
    const size_t threads = b.fibers.size();
    for (size_t t = 0; t < threads; t++)
        gan_emu_fiber_init(b.fibers[t], gan_emu_stacks[t].get());
    for (;;) {
        for (size_t t = 0; t < threads; t++) {
            gan_emu_block::fiber &f = b.fibers[t];
            if (f.waiting != gan_emu_block::RUNNABLE)
                continue;
            b.current = t;
            threadIdx = f.thread_index;
            void *scheduler_fake_stack = nullptr;
#ifdef GAN_EMU_ASAN
            __sanitizer_start_switch_fiber(&scheduler_fake_stack, gan_emu_stacks[t].get(),
                                           GAN_EMU_STACK_BYTES);
#endif
            gan_emu_context_switch(b.scheduler, f.context);
#ifdef GAN_EMU_ASAN
            __sanitizer_finish_switch_fiber(scheduler_fake_stack, nullptr, nullptr);
#endif
            (void)scheduler_fake_stack;
            if (f.waiting == gan_emu_block::RUNNABLE) {
                std::fprintf(stderr, "cuda_emulation: a fiber switched out without waiting\n");
                std::abort();
            }
        }
        bool exchanged = false;
        for (size_t first = 0; first < threads; first += (size_t)warpSize) {
            size_t end = first + (size_t)warpSize < threads ? first + (size_t)warpSize : threads;
            if (gan_emu_exchange_warp(b, first, end))
                exchanged = true;
        }
        if (exchanged)
            continue;
        size_t live = 0, at_barrier = 0, at_shuffle = threads;
        for (size_t t = 0; t < threads; t++) {
            gan_emu_block::wait_kind w = b.fibers[t].waiting;
            live += w != gan_emu_block::FINISHED;
            at_barrier += w == gan_emu_block::AT_BARRIER;
            if (w == gan_emu_block::AT_SHUFFLE && at_shuffle == threads)
                at_shuffle = t;
        }
        if (live == 0)
            return;
        if (at_barrier == live) {
            for (size_t t = 0; t < threads; t++)
                if (b.fibers[t].waiting == gan_emu_block::AT_BARRIER)
                    b.fibers[t].waiting = gan_emu_block::RUNNABLE;
            continue;
        }
        /* Some warp waits at a shuffle that one of its live lanes never reaches: that lane waits
         * at the barrier, which in turn waits for the shuffling lanes. */
        size_t first = at_shuffle - at_shuffle % (size_t)warpSize, blocker = at_shuffle;
        for (size_t t = first; t < first + (size_t)warpSize && t < threads; t++)
            if (b.fibers[t].waiting == gan_emu_block::AT_BARRIER)
                blocker = t;
        std::fprintf(stderr, "cuda_emulation: deadlock in block (%u, %u, %u): thread %zu waits at %s, but "
                             "thread %zu of its warp waits at __syncthreads() (a barrier or a shuffle in "
                             "divergent code)\n", blockIdx.x, blockIdx.y, blockIdx.z, at_shuffle,
                     gan_emu_shuffle_name(b.fibers[at_shuffle]), blocker);
        std::abort();
    }
}

/* ---- the launch ---------------------------------------------------------------------------- */

/* A CUDA runtime on the CPU (tests/emu_cuda_runtime.cpp, in libgan_cuda_emu.so) provides this;
 * elsewhere it is absent (weak, NULL) and every launch runs at once. When present it takes every
 * launch: run(work) later, in `stream`'s order (at each launch of the graph, where the stream was
 * capturing one), and release(work) once it is no longer needed. */
extern "C" bool gan_emu_enqueue(cudaStream_t stream, void (*run)(void *), void (*release)(void *), void *work)
    __attribute__((weak));

/* The limits every current GPU enforces; a launch outside them fails as on a device. */
enum { GAN_EMU_MAX_THREADS_PER_BLOCK = 1024 };

/* The blocks of a checked launch, one after another. */
template <typename... Params, typename... Args>
void gan_emu_run_grid(void (*kernel)(Params...), dim3 grid, dim3 block, Args... args)
{
    unsigned long long threads_per_block = (unsigned long long)block.x * block.y * block.z;
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

/* Runs kernel(args...) over grid x block, as `kernel<<<grid, block, 0, stream>>>(args...)` would:
 * at once, returning when every block has finished, or queued where a CUDA runtime on the CPU
 * takes it (gan_emu_enqueue). Errors are reported through cudaGetLastError(). */
template <typename... Params, typename... Args>
void gan_emu_launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                    Args... args)
{
    unsigned long long threads_per_block = (unsigned long long)block.x * block.y * block.z;
    unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    if (threads_per_block == 0 || threads_per_block > GAN_EMU_MAX_THREADS_PER_BLOCK || blocks == 0 ||
        block.z > 64 || grid.y > 65535 || grid.z > 65535) {
        gan_emu_last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (gan_emu_enqueue) {
        /* the arguments by value, as a queued or captured launch keeps them */
        auto *work = new std::function<void()>([=] { gan_emu_run_grid(kernel, grid, block, args...); });
        auto run = [](void *w) { (*static_cast<std::function<void()> *>(w))(); };
        auto release = [](void *w) { delete static_cast<std::function<void()> *>(w); };
        if (gan_emu_enqueue(stream, run, release, work))
            return;
        delete work;
    }
    gan_emu_run_grid(kernel, grid, block, args...);
}

#endif
