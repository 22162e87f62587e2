/* Every CUDA kernel's real code, run on the CPU: kernels/launch.cu (the launchers, grid sizes and
 * launch checks included) and the kernel bodies in kernels/NAME.cuh compile here as host C++ under
 * kernels/cuda_emulation.h, and each launcher's result is compared with the CPU backend's op on
 * the same inputs. Shapes are small and odd (partial blocks, several blocks, one element).
 *
 * The emulation's warp shuffles are checked lane by lane, and the block sums built on them bit for
 * bit against the fixed-order tree they promise.
 *
 * Tolerances: where the kernel and the CPU backend evaluate the same per-element function of
 * gan/elementwise_math.h on the same host, the results must be bit-identical (tolerance 0). Only
 * reductions, whose summation order differs between a block tree and the CPU's loop, get a
 * relative tolerance (1e-5 on sums of at most a few thousand terms; batch norm, whose statistics
 * and gradient sums are kept in double on both sides, and whose outputs are a few float
 * operations on them: 1e-5 relative and absolute, against outputs of order 1). The sub-pixel
 * backward-data compares two float convolutions of the CPU backend that sum the same 4 co
 * products per output in different orders: 1e-5 relative, 1e-5 absolute up to 32 products and
 * in proportion beyond, against sums of order 1 to 4. The im2col backward-filter (two copy kernels,
 * then the CPU backend's GEMM on their outputs) sums the same n Ho Wo products per weight as the
 * CPU backend's backward-filter, in another order: 1e-5 relative, 1e-5 absolute up to 64 products
 * and in proportion beyond. The float <-> bfloat16 conversions, which also change the layout
 * (float NCHW [n, c, hw] <-> bf16 NHWC [n, hw, c_nhwc], the channels padded to c_nhwc >= c for the
 * tensor cores), have no CPU backend op: they are compared with references written here, a
 * transpose done element by element (the padding channels +0) and a rounding (the nearer of the
 * two bf16 neighbours, in double), and must be bit-exact (tolerance 0; a NaN input gives the quiet
 * NaN 0x7FFF; a padding channel of the narrowing is exactly 0x0000, over a destination filled with
 * a NaN pattern before); the accumulating widening beta * dst + float(src) is checked bit-exact
 * against the same two float operations, from sources whose padding holds NaN patterns (read,
 * they would show), and a round trip float NCHW -> bf16 NHWC -> float NCHW against the rounding
 * alone. The TF32 mode's float -> float NHWC copies (the same kernels with float elements) are
 * checked the same way on bit patterns: random 32-bit patterns and specials (NaN payloads,
 * infinities, subnormals, -0) must arrive bit for bit (the widening at beta 0, the round trip),
 * the padding exactly 0x00000000, and beta 1 and 0.5 give gan_mul_rn(beta, old) + src computed
 * here. A layout change moves values without arithmetic, so nothing looser could be right: a
 * wrong index shows up as a wrong value, a missing bounds check as an access past the buffer
 * (guard elements after each destination; AddressSanitizer in test_emu_kernels_asan). */
#include "cuda_emulation.h"

/* In a CUDA build, gan_core also holds the real launchers under the same extern "C" names: the
 * emulated ones are renamed here so that the two can never meet at link time. */
/* data-parallel runs: the split batch norm and the scale after a sum over ranks */
#define gan_cuda_scale emu_gan_cuda_scale
#define gan_cuda_bn_sums emu_gan_cuda_bn_sums
#define gan_cuda_bn_centered_squares emu_gan_cuda_bn_centered_squares
#define gan_cuda_bn_forward_from_sums emu_gan_cuda_bn_forward_from_sums
#define gan_cuda_bn_backward_sums emu_gan_cuda_bn_backward_sums
#define gan_cuda_bn_backward_from_sums emu_gan_cuda_bn_backward_from_sums
#define gan_cuda_fill emu_gan_cuda_fill
#define gan_cuda_activation_forward emu_gan_cuda_activation_forward
#define gan_cuda_activation_backward emu_gan_cuda_activation_backward
#define gan_cuda_multiply emu_gan_cuda_multiply
#define gan_cuda_dropout_forward emu_gan_cuda_dropout_forward
#define gan_cuda_bce_logits emu_gan_cuda_bce_logits
#define gan_cuda_adam_step emu_gan_cuda_adam_step
#define gan_cuda_ema_update emu_gan_cuda_ema_update
#define gan_cuda_rng_normal emu_gan_cuda_rng_normal
#define gan_cuda_rng_uniform emu_gan_cuda_rng_uniform
#define gan_cuda_advance_counts emu_gan_cuda_advance_counts
#define gan_cuda_images_to_float emu_gan_cuda_images_to_float
#define gan_cuda_bias_forward emu_gan_cuda_bias_forward
#define gan_cuda_bias_backward emu_gan_cuda_bias_backward
#define gan_cuda_bn_forward_train emu_gan_cuda_bn_forward_train
#define gan_cuda_bn_forward_eval emu_gan_cuda_bn_forward_eval
#define gan_cuda_bn_backward emu_gan_cuda_bn_backward
#define gan_cuda_bn_chunks emu_gan_cuda_bn_chunks
#define gan_cuda_bn_describe emu_gan_cuda_bn_describe
/* the batch norm and activations over stored (BF16 NHWC) tensors */
#define gan_cuda_bn_nhwc_chunks emu_gan_cuda_bn_nhwc_chunks
#define gan_cuda_bn_nhwc_forward_train emu_gan_cuda_bn_nhwc_forward_train
#define gan_cuda_bn_nhwc_forward_eval emu_gan_cuda_bn_nhwc_forward_eval
#define gan_cuda_bn_nhwc_backward emu_gan_cuda_bn_nhwc_backward
#define gan_cuda_activation_forward_bf16 emu_gan_cuda_activation_forward_bf16
#define gan_cuda_activation_backward_bf16 emu_gan_cuda_activation_backward_bf16
#define gan_cuda_subpixel_weights emu_gan_cuda_subpixel_weights
#define gan_cuda_subpixel_gather emu_gan_cuda_subpixel_gather
#define gan_cuda_im2col emu_gan_cuda_im2col
#define gan_cuda_channels_first emu_gan_cuda_channels_first
#define gan_cuda_max_pool_forward emu_gan_cuda_max_pool_forward
#define gan_cuda_avg_pool_forward emu_gan_cuda_avg_pool_forward
#define gan_cuda_global_avg_pool emu_gan_cuda_global_avg_pool
#define gan_cuda_copy_channels emu_gan_cuda_copy_channels
#define gan_cuda_resize_bilinear emu_gan_cuda_resize_bilinear
#define gan_cuda_bias_act_forward emu_gan_cuda_bias_act_forward
/* the BF16 precision mode's conversions */
#define gan_cuda_f32_to_bf16_nhwc emu_gan_cuda_f32_to_bf16_nhwc
#define gan_cuda_f32_to_bf16_nhwc_pair emu_gan_cuda_f32_to_bf16_nhwc_pair
#define gan_cuda_f32_to_bf16_nhwc_list emu_gan_cuda_f32_to_bf16_nhwc_list
#define gan_cuda_bf16_nhwc_to_f32 emu_gan_cuda_bf16_nhwc_to_f32
/* the TF32 precision mode's float NHWC copies */
#define gan_cuda_f32_to_f32_nhwc emu_gan_cuda_f32_to_f32_nhwc
#define gan_cuda_f32_to_f32_nhwc_pair emu_gan_cuda_f32_to_f32_nhwc_pair
#define gan_cuda_f32_to_f32_nhwc_list emu_gan_cuda_f32_to_f32_nhwc_list
#define gan_cuda_f32_nhwc_to_f32 emu_gan_cuda_f32_nhwc_to_f32
/* the uint8 batch straight into a convolution's NHWC input copy */
#define gan_cuda_images_to_bf16_nhwc emu_gan_cuda_images_to_bf16_nhwc
#define gan_cuda_images_to_f32_nhwc emu_gan_cuda_images_to_f32_nhwc

#include "launch.cu"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "gan/cuda_args.h"

extern "C" {
#include "test_util.h"
}

namespace {

gan_backend *cpu = nullptr;

std::vector<float> random_floats(size_t n, unsigned seed, float low, float high)
{
    std::vector<float> v(n);
    test_fill_uniform(v.data(), n, seed, low, high);
    return v;
}

/* Bit-for-bit equality, reported like CHECK_ALLCLOSE with the first differing element. */
void check_identical(const char *name, const std::vector<float> &got, const std::vector<float> &want)
{
    CHECK_MSG(got.size() == want.size(), "%s: sizes %zu and %zu", name, got.size(), want.size());
    for (size_t i = 0; i < got.size() && i < want.size(); i++) {
        if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            test_fail_at(__FILE__, __LINE__, "%s: element %zu of %zu differs: kernel %.9g, cpu %.9g",
                         name, i, got.size(), (double)got[i], (double)want[i]);
            return;
        }
    }
    test_checks_passed++;
}

/* ---- the emulation itself: barriers, shared memory, early returns, launch errors ---------- */

/* Reverses data[blockDim.x] within each block through shared memory; threads with
 * threadIdx.x >= active return before the barrier, as real kernels' bounds checks do. */
__global__ void emu_reverse_kernel(float *data, unsigned active)
{
    __shared__ float tile[GAN_BLOCK_THREADS];
    unsigned t = threadIdx.x;
    size_t base = (size_t)blockIdx.x * blockDim.x;
    tile[t] = data[base + t];
    __syncthreads();
    if (t >= active)
        return;
    float mine = tile[blockDim.x - 1 - t];
    __syncthreads();
    data[base + t] = mine;
}

void test_emulation(void)
{
    const unsigned blocks = 3;
    std::vector<float> data(blocks * GAN_BLOCK_THREADS);
    for (size_t i = 0; i < data.size(); i++)
        data[i] = (float)i;
    gan_emu_launch(emu_reverse_kernel, dim3(blocks), dim3(GAN_BLOCK_THREADS), nullptr, data.data(),
                   (unsigned)GAN_BLOCK_THREADS - 5u);
    CHECK(cudaGetLastError() == cudaSuccess);
    bool reversed = true;
    for (unsigned b = 0; b < blocks; b++)
        for (unsigned t = 0; t < GAN_BLOCK_THREADS; t++) {
            float want = t < GAN_BLOCK_THREADS - 5u ? (float)(b * GAN_BLOCK_THREADS + GAN_BLOCK_THREADS - 1 - t)
                                                    : (float)(b * GAN_BLOCK_THREADS + t);
            if (data[b * GAN_BLOCK_THREADS + t] != want)
                reversed = false;
        }
    CHECK_MSG(reversed, "emulated __syncthreads/__shared__ did not reverse each block");

    /* A block of 2048 threads is refused, as on every GPU, and reported once. */
    gan_emu_launch(emu_reverse_kernel, dim3(1), dim3(2048), nullptr, data.data(), 0u);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaGetLastError() == cudaSuccess);
}

/* ---- warp shuffles, and the block sums built on them ---------------------------------------- */

/* out[t] = what thread t receives from a shuffle of in[] (kind 0: down by `operand`, 1: xor with
 * it). Threads whose lane is >= live_lanes return first (out untouched). Barriers before and
 * after, so shuffles and barriers interleave. */
template <typename T>
__global__ void emu_shuffle_kernel(const T *in, T *out, int kind, unsigned operand, unsigned live_lanes)
{
    unsigned t = threadIdx.x;
    __syncthreads();
    if (t % warpSize >= live_lanes)
        return;
    T mine = in[t];
    T got = kind == 0 ? __shfl_down_sync(0xffffffffu, mine, operand)
                      : __shfl_xor_sync(0xffffffffu, mine, (int)operand);
    __syncthreads();
    out[t] = got;
}

/* Runs one shuffle over a block of `threads` and checks every thread's value against the lane
 * arithmetic done here: source lane = lane + operand (down) or lane ^ operand (xor), own value
 * when that is past lane 31. */
template <typename T>
void check_shuffle(const char *type, unsigned threads, int kind, unsigned operand, unsigned live_lanes)
{
    std::vector<T> in(threads), got(threads, (T)-7), want(threads, (T)-7);
    for (unsigned t = 0; t < threads; t++)
        in[t] = (T)(1.0 + std::ldexp((double)t, -40) + t); /* doubles not floats: low bits matter */
    gan_emu_launch(emu_shuffle_kernel<T>, dim3(1), dim3(threads), nullptr, (const T *)in.data(), got.data(), kind,
                   operand, live_lanes);
    CHECK(cudaGetLastError() == cudaSuccess);
    for (unsigned t = 0; t < threads; t++) {
        unsigned lane = t % 32, base = t - lane;
        if (lane >= live_lanes)
            continue;
        unsigned long long source = kind == 0 ? (unsigned long long)lane + operand : lane ^ operand;
        want[t] = in[base + (source < 32 ? (unsigned)source : lane)];
    }
    for (unsigned t = 0; t < threads; t++)
        if (std::memcmp(&got[t], &want[t], sizeof(T)) != 0) {
            test_fail_at(__FILE__, __LINE__, "__shfl_%s_sync(%s, %u), block of %u, %u live lanes a warp: thread %u "
                         "got %.17g, want %.17g", kind == 0 ? "down" : "xor", type, operand, threads, live_lanes, t,
                         (double)got[t], (double)want[t]);
            return;
        }
    test_checks_passed++;
}

/* Each thread's block sums: out[3 i] = gan_block_sum(in[i]), out[3 i + 1] = the sum of 2 in[i]
 * reusing `partial` at once, out_double[i] = gan_block_sum_double(in_double[i]). */
__global__ void emu_block_sum_kernel(const float *in, const double *in_double, float *out, double *out_double)
{
    __shared__ float partial[GAN_BLOCK_THREADS];
    __shared__ double partial_double[GAN_BLOCK_THREADS];
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    float total = gan_block_sum(in[i], partial);
    float twice = gan_block_sum(2.0f * in[i], partial);
    double total_double = gan_block_sum_double(in_double[i], partial_double);
    out[3 * i] = total;
    out[3 * i + 1] = twice;
    out_double[i] = total_double;
}

/* The fixed order the block sums promise: v[t] += v[t + half] for half = N/2, ..., 1. */
template <typename T>
T tree_sum(const T *values)
{
    std::vector<T> v(values, values + GAN_BLOCK_THREADS);
    for (unsigned half = GAN_BLOCK_THREADS / 2; half > 0; half /= 2)
        for (unsigned t = 0; t < half; t++)
            v[t] += v[t + half];
    return v[0];
}

/* Runs body() in a child process; true when it aborted with `needle` in what it wrote to stderr.
 * The emulation's refusals end the process, as a hung or undefined kernel would on a GPU. */
bool aborts_with(const char *needle, void (*body)(void))
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        body();
        _exit(0);
    }
    close(fds[1]);
    std::string message;
    char buffer[512];
    ssize_t n;
    while ((n = read(fds[0], buffer, sizeof buffer)) > 0)
        message.append(buffer, (size_t)n);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    bool said = message.find(needle) != std::string::npos;
    if (!aborted || !said)
        std::fprintf(stderr, "expected an abort saying \"%s\"; the child's status %d, its stderr: %s\n", needle,
                     status, message.c_str());
    return aborted && said;
}

/* Half of each warp at a barrier, the other half at a shuffle: neither can go on. */
__global__ void emu_divergent_kernel(float *out)
{
    float value = 1.0f;
    if (threadIdx.x % warpSize < 16)
        __syncthreads();
    else
        value = __shfl_down_sync(0xffffffffu, value, 1);
    out[threadIdx.x] = value;
}
/* Lane 5 of each warp returns; lane 4 then reads it. */
__global__ void emu_read_returned_kernel(float *out)
{
    if (threadIdx.x % warpSize == 5)
        return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
__global__ void emu_half_mask_kernel(float *out)
{
    out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, 1.0f, 1);
}

float emu_death_out[256];
void run_divergent(void)
{
    gan_emu_launch(emu_divergent_kernel, dim3(1), dim3(64), nullptr, emu_death_out);
}
void run_read_returned(void)
{
    gan_emu_launch(emu_read_returned_kernel, dim3(1), dim3(64), nullptr, emu_death_out);
}
void run_partial_warp_read(void)
{
    /* 48 threads: warp 1 has lanes 0..15 only, and lane 0 + 16 does not exist */
    gan_emu_launch(emu_shuffle_kernel<float>, dim3(1), dim3(48), nullptr, (const float *)emu_death_out,
                   emu_death_out, 0, 16u, 32u);
}
void run_half_mask(void)
{
    gan_emu_launch(emu_half_mask_kernel, dim3(1), dim3(64), nullptr, emu_death_out);
}

void test_shuffles(void)
{
    for (unsigned threads : {64u, 256u}) {
        for (unsigned operand : {0u, 1u, 2u, 4u, 8u, 16u, 31u, 32u, 1000u}) {
            check_shuffle<float>("float", threads, 0, operand, 32);
            check_shuffle<double>("double", threads, 0, operand, 32);
        }
        for (unsigned operand : {0u, 1u, 2u, 4u, 8u, 16u, 31u, 32u}) {
            check_shuffle<float>("float", threads, 1, operand, 32);
            check_shuffle<double>("double", threads, 1, operand, 32);
        }
    }
    /* A partial last warp (48 threads: 16 lanes in warp 1) is fine while no lane reads a missing
     * one; lanes that returned early are waited for no more (lanes 30, 31 of every warp). */
    for (unsigned operand : {1u, 2u, 4u, 8u}) {
        check_shuffle<float>("float", 48, 1, operand, 32);
        check_shuffle<double>("double", 48, 1, operand, 32);
    }
    check_shuffle<float>("float", 48, 0, 32, 32);
    check_shuffle<float>("float", 64, 1, 1, 30);
    check_shuffle<double>("double", 256, 1, 1, 30);

    /* What the GPU leaves hung or undefined aborts, saying why. */
    CHECK_MSG(aborts_with("deadlock", run_divergent), "a barrier and a shuffle in divergent code did not abort");
    CHECK_MSG(aborts_with("has returned", run_read_returned), "a shuffle reading a returned lane did not abort");
    CHECK_MSG(aborts_with("does not exist", run_partial_warp_read),
              "a shuffle reading past a partial warp did not abort");
    CHECK_MSG(aborts_with("only the full mask", run_half_mask), "a shuffle with mask 0xffff did not abort");

    /* The block sums keep their fixed order, bit for bit: 2 blocks of terms over 8 decades, so a
     * different order would show in the last bits. */
    const unsigned blocks = 2;
    const size_t threads = (size_t)blocks * GAN_BLOCK_THREADS;
    std::vector<float> in = random_floats(threads, 500, -1.0f, 1.0f);
    std::vector<double> in_double(threads);
    for (size_t i = 0; i < threads; i++) {
        in[i] *= std::pow(10.0f, (float)(i % 8) - 4.0f);
        in_double[i] = (double)in[i] * (1.0 + std::ldexp(1.0, -30)) * std::pow(10.0, (double)(i % 13) - 6.0);
    }
    std::vector<float> out(3 * threads, -1.0f);
    std::vector<double> out_double(threads, -1.0);
    gan_emu_launch(emu_block_sum_kernel, dim3(blocks), dim3(GAN_BLOCK_THREADS), nullptr, (const float *)in.data(),
                   (const double *)in_double.data(), out.data(), out_double.data());
    CHECK(cudaGetLastError() == cudaSuccess);
    for (unsigned b = 0; b < blocks; b++) {
        const size_t first = (size_t)b * GAN_BLOCK_THREADS;
        std::vector<float> twice(GAN_BLOCK_THREADS);
        for (unsigned t = 0; t < GAN_BLOCK_THREADS; t++)
            twice[t] = 2.0f * in[first + t];
        float want = tree_sum(&in[first]), want_twice = tree_sum(twice.data());
        double want_double = tree_sum(&in_double[first]);
        CHECK_MSG(std::memcmp(&out[3 * first], &want, sizeof want) == 0, "gan_block_sum block %u: %.9g, tree %.9g",
                  b, (double)out[3 * first], (double)want);
        CHECK_MSG(std::memcmp(&out[3 * first + 1], &want_twice, sizeof want) == 0,
                  "gan_block_sum again on the same partial, block %u: %.9g, tree %.9g", b,
                  (double)out[3 * first + 1], (double)want_twice);
        CHECK_MSG(std::memcmp(&out_double[first], &want_double, sizeof want_double) == 0,
                  "gan_block_sum_double block %u: %.17g, tree %.17g", b, out_double[first], want_double);
        bool others_zero = true;
        for (unsigned t = 1; t < GAN_BLOCK_THREADS; t++)
            others_zero = others_zero && out[3 * (first + t)] == 0.0f && out[3 * (first + t) + 1] == 0.0f &&
                          out_double[first + t] == 0.0;
        CHECK_MSG(others_zero, "block sums: a thread other than 0 of block %u got a nonzero total", b);
    }
}

/* ---- the kernels against the CPU backend ----------------------------------------------------- */

void test_fill(void)
{
    for (size_t count : {(size_t)1, (size_t)255, (size_t)1000}) {
        std::vector<float> got(count, -1.0f), want(count, -1.0f);
        CHECK_OK(gan_cuda_fill(nullptr, got.data(), 0.375f, count));
        CHECK_OK(cpu->fill(cpu, want.data(), 0.375f, count));
        check_identical("fill", got, want);
    }
    CHECK_OK(gan_cuda_fill(nullptr, nullptr, 1.0f, 0)); /* nothing to do, nothing launched */
}

void test_activations(void)
{
    const size_t count = 1237; /* 5 blocks, the last one partial */
    std::vector<float> x = random_floats(count, 1, -6.0f, 6.0f);
    std::vector<float> dy = random_floats(count, 2, -1.0f, 1.0f);
    x[0] = 0.0f; /* the boundary of relu/lrelu */
    const gan_activation kinds[] = {GAN_ACT_RELU, GAN_ACT_LRELU, GAN_ACT_TANH, GAN_ACT_SIGMOID};
    const char *names[] = {"relu", "lrelu", "tanh", "sigmoid"};
    for (int k = 0; k < 4; k++) {
        std::vector<float> y_got(count), y_want(count), dx_got(count), dx_want(count);
        CHECK_OK(gan_cuda_activation_forward(nullptr, kinds[k], 0.2f, count, x.data(), y_got.data()));
        CHECK_OK(cpu->activation_forward(cpu, kinds[k], 0.2f, count, x.data(), y_want.data()));
        check_identical(names[k], y_got, y_want);
        CHECK_OK(gan_cuda_activation_backward(nullptr, kinds[k], 0.2f, count, x.data(), y_want.data(),
                                              dy.data(), dx_got.data()));
        CHECK_OK(cpu->activation_backward(cpu, kinds[k], 0.2f, count, x.data(), y_want.data(),
                                          dy.data(), dx_want.data()));
        check_identical(names[k], dx_got, dx_want);
    }
}

void test_multiply_and_dropout(void)
{
    const size_t count = 999;
    std::vector<float> a = random_floats(count, 3, -2.0f, 2.0f), b = random_floats(count, 4, -2.0f, 2.0f);
    std::vector<float> got(count), want(count);
    CHECK_OK(gan_cuda_multiply(nullptr, count, a.data(), b.data(), got.data()));
    CHECK_OK(cpu->multiply(cpu, count, a.data(), b.data(), want.data()));
    check_identical("multiply", got, want);

    std::vector<float> mask_got(count), mask_want(count), y_got(count), y_want(count);
    CHECK_OK(gan_cuda_dropout_forward(nullptr, count, 0.3f, 1234, 5, gan_count_of(68), a.data(), mask_got.data(),
                                      y_got.data()));
    CHECK_OK(cpu->dropout_forward(cpu, count, 0.3f, 1234, 5, gan_count_of(68), a.data(), mask_want.data(),
                                  y_want.data()));
    check_identical("dropout mask", mask_got, mask_want);
    check_identical("dropout y", y_got, y_want);
    /* the position read from (device) memory, inside a Philox block */
    const uint64_t position = 66;
    CHECK_OK(gan_cuda_dropout_forward(nullptr, count, 0.3f, 1234, 5, gan_count{&position, 3}, a.data(),
                                      mask_got.data(), y_got.data()));
    CHECK_OK(cpu->dropout_forward(cpu, count, 0.3f, 1234, 5, gan_count_of(69), a.data(), mask_want.data(),
                                  y_want.data()));
    check_identical("dropout mask (position in memory)", mask_got, mask_want);
    size_t dropped = 0;
    for (float m : mask_got)
        dropped += m == 0.0f;
    /* 999 draws at p = 0.3: 300 expected, sd 14.5. */
    CHECK_MSG(dropped > 200 && dropped < 400, "dropout dropped %zu of %zu at p = 0.3", dropped, count);
}

void test_rng(void)
{
    /* A count that is not a multiple of 4 and a non-zero offset: the block/lane mapping matters. */
    const size_t count = 1001;
    std::vector<float> got(count), want(count);
    CHECK_OK(gan_cuda_rng_normal(nullptr, count, 42, 3, gan_count_of(28), 0.5f, 0.02f, got.data()));
    CHECK_OK(cpu->rng_normal(cpu, count, 42, 3, gan_count_of(28), 0.5f, 0.02f, want.data()));
    check_identical("rng_normal", got, want);
    CHECK_OK(gan_cuda_rng_uniform(nullptr, count, 42, 3, gan_count_of(28), -1.5f, 2.5f, got.data()));
    CHECK_OK(cpu->rng_uniform(cpu, count, 42, 3, gan_count_of(28), -1.5f, 2.5f, want.data()));
    check_identical("rng_uniform", got, want);
    /* a position in (device) memory plus an offset, not a whole number of blocks */
    const uint64_t position = 25;
    CHECK_OK(gan_cuda_rng_normal(nullptr, count, 42, 3, gan_count{&position, 2}, 0.5f, 0.02f, got.data()));
    CHECK_OK(cpu->rng_normal(cpu, count, 42, 3, gan_count_of(27), 0.5f, 0.02f, want.data()));
    check_identical("rng_normal (position in memory)", got, want);
    /* A different stream must give different numbers. */
    std::vector<float> other(count);
    CHECK_OK(gan_cuda_rng_uniform(nullptr, count, 42, 4, gan_count_of(28), -1.5f, 2.5f, other.data()));
    CHECK(std::memcmp(other.data(), got.data(), count * sizeof(float)) != 0);
}

void test_adam(void)
{
    const size_t count = 3001;
    std::vector<float> param = random_floats(count, 5, -1.0f, 1.0f), grad = random_floats(count, 6, -0.1f, 0.1f);
    std::vector<float> m = random_floats(count, 7, -0.01f, 0.01f), v = random_floats(count, 8, 0.0f, 1e-4f);
    const gan_adam_hyper hyper = {2e-4, 0.5, 0.999, 1e-8};
    const uint64_t steps_done = 2; /* update number 3 */
    std::vector<float> p_got = param, m_got = m, v_got = v;
    std::vector<float> p_want = param, m_want = m, v_want = v;
    CHECK_OK(gan_cuda_adam_step(nullptr, count, p_got.data(), grad.data(), m_got.data(), v_got.data(), hyper,
                                gan_count{&steps_done, 1}));
    CHECK_OK(cpu->adam_step(cpu, count, p_want.data(), grad.data(), m_want.data(), v_want.data(), hyper,
                            gan_count_of(3)));
    check_identical("adam param", p_got, p_want);
    check_identical("adam m", m_got, m_want);
    check_identical("adam v", v_got, v_want);
    CHECK(std::memcmp(p_got.data(), param.data(), count * sizeof(float)) != 0);
}

/* The EMA of G's weights: bit for bit the CPU backend's (the same gan_ema_update, no FMA), over
 * several steps, at PyTorch-like decays and an odd count (a partial block). */
void test_ema(void)
{
    const size_t count = 2999;
    const double decays[] = {0.999, 0.9, 0.5, 0.0};
    for (double decay : decays) {
        std::vector<float> ema = random_floats(count, 9, -1.0f, 1.0f);
        std::vector<float> got = ema, want = ema;
        for (unsigned step = 0; step < 4; step++) {
            std::vector<float> param = random_floats(count, 10 + step, -1.0f, 1.0f);
            CHECK_OK(gan_cuda_ema_update(nullptr, count, decay, param.data(), got.data()));
            CHECK_OK(cpu->ema_update(cpu, count, decay, param.data(), want.data()));
        }
        std::string name = "ema_update decay " + std::to_string(decay);
        check_identical(name.c_str(), got, want);
        CHECK(std::memcmp(got.data(), ema.data(), count * sizeof(float)) != 0);
    }
    /* one element, and a decay outside [0, 1) refused */
    float one_param = 0.25f, one_ema = 1.0f, one_want = 1.0f;
    CHECK_OK(gan_cuda_ema_update(nullptr, 1, 0.75, &one_param, &one_ema));
    CHECK_OK(cpu->ema_update(cpu, 1, 0.75, &one_param, &one_want));
    CHECK(one_ema == one_want && one_ema == 0.8125f);
    CHECK(gan_cuda_ema_update(nullptr, 1, 1.0, &one_param, &one_ema) == GAN_ERR_ARG);
}

void test_counts(void)
{
    uint64_t a = 40, b = (uint64_t)1 << 40, c = 7;
    gan_count_advance advance = {};
    advance.count[0] = &a, advance.count[1] = &b, advance.count[2] = &c;
    advance.add[0] = 12, advance.add[1] = 3, advance.add[2] = 0;
    advance.n = 3;
    CHECK_OK(gan_cuda_advance_counts(nullptr, advance));
    CHECK(a == 52 && b == ((uint64_t)1 << 40) + 3 && c == 7);
    advance.n = GAN_MAX_ADVANCED_COUNTS + 1;
    CHECK_FAILS_WITH(gan_cuda_advance_counts(nullptr, advance), GAN_ERR_ARG, "counts");
}

void test_images(void)
{
    const int n = 3, h = 5, w = 7, c = 3;
    const size_t count = (size_t)n * h * w * c;
    std::vector<uint8_t> pixels(count);
    for (size_t i = 0; i < count; i++)
        pixels[i] = (uint8_t)((i * 37u + 11u) % 256u);
    pixels[0] = 0;
    pixels[1] = 255;
    std::vector<float> got(count), want(count);
    CHECK_OK(gan_cuda_images_to_float(nullptr, n, h, w, c, pixels.data(), got.data()));
    CHECK_OK(cpu->images_to_float(cpu, n, h, w, c, pixels.data(), want.data()));
    check_identical("images_to_float", got, want);
}

void test_bias(void)
{
    const int n = 3, c = 5, hw = 77; /* 1155 elements: 5 blocks; 231 terms per channel sum */
    const size_t count = (size_t)n * c * hw;
    std::vector<float> bias = random_floats((size_t)c, 9, -1.0f, 1.0f);
    std::vector<float> y = random_floats(count, 10, -1.0f, 1.0f);
    std::vector<float> y_got = y, y_want = y;
    CHECK_OK(gan_cuda_bias_forward(nullptr, n, c, hw, bias.data(), y_got.data()));
    CHECK_OK(cpu->bias_forward(cpu, n, c, hw, bias.data(), y_want.data()));
    check_identical("bias_forward", y_got, y_want);

    /* beta = 0 overwrites: the kernel's db starts as NaN garbage, the CPU's as zeros. */
    std::vector<float> db_got((size_t)c, NAN), db_want((size_t)c, 0.0f);
    CHECK_OK(gan_cuda_bias_backward(nullptr, n, c, hw, y.data(), 0.0f, db_got.data()));
    CHECK_OK(cpu->bias_backward(cpu, n, c, hw, y.data(), 0.0f, db_want.data()));
    CHECK_ALLCLOSE("bias_backward beta=0", db_got.data(), db_want.data(), (size_t)c, 1e-5, 1e-6);
    /* beta = 1 accumulates onto the previous gradient. */
    CHECK_OK(gan_cuda_bias_backward(nullptr, n, c, hw, y.data(), 1.0f, db_got.data()));
    CHECK_OK(cpu->bias_backward(cpu, n, c, hw, y.data(), 1.0f, db_want.data()));
    CHECK_ALLCLOSE("bias_backward beta=1", db_got.data(), db_want.data(), (size_t)c, 1e-5, 1e-6);
    /* Linear's bias: hw = 1, more channels than one block has threads. */
    const int n1 = 7, c1 = 300;
    std::vector<float> dy1 = random_floats((size_t)n1 * c1, 11, -1.0f, 1.0f);
    std::vector<float> db1_got((size_t)c1), db1_want((size_t)c1);
    CHECK_OK(gan_cuda_bias_backward(nullptr, n1, c1, 1, dy1.data(), 0.0f, db1_got.data()));
    CHECK_OK(cpu->bias_backward(cpu, n1, c1, 1, dy1.data(), 0.0f, db1_want.data()));
    CHECK_ALLCLOSE("bias_backward hw=1", db1_got.data(), db1_want.data(), (size_t)c1, 1e-5, 1e-6);
}

void test_bce(void)
{
    /* 1 logit, a partial block, and more logits than threads (each thread sums several). */
    for (int n : {1, 64, 129, 1000}) {
        std::vector<float> logits = random_floats((size_t)n, 12 + (unsigned)n, -8.0f, 8.0f);
        logits[0] = 30.0f; /* saturated: exact log1p(exp(-|x|)) path */
        for (float target : {0.0f, 1.0f, 0.9f}) {
            float loss_got = -1.0f, prob_got = -1.0f, loss_want = -2.0f, prob_want = -2.0f;
            std::vector<float> d_got((size_t)n), d_want((size_t)n);
            CHECK_OK(gan_cuda_bce_logits(nullptr, n, logits.data(), target, 0.5f, &loss_got,
                                         &prob_got, d_got.data()));
            CHECK_OK(cpu->bce_logits(cpu, n, logits.data(), target, 0.5f, &loss_want, &prob_want,
                                     d_want.data()));
            CHECK_ALLCLOSE("bce loss", &loss_got, &loss_want, 1, 1e-5, 1e-7);
            CHECK_ALLCLOSE("bce prob_mean", &prob_got, &prob_want, 1, 1e-5, 1e-7);
            check_identical("bce dlogits", d_got, d_want);

            /* Deterministic: the same inputs give the same bits; NULL outputs are skipped. */
            float loss_again = -3.0f;
            CHECK_OK(gan_cuda_bce_logits(nullptr, n, logits.data(), target, 0.5f, &loss_again,
                                         nullptr, nullptr));
            CHECK(std::memcmp(&loss_again, &loss_got, sizeof(float)) == 0);
        }
    }
    float loss = 0.0f;
    CHECK_FAILS_WITH(gan_cuda_bce_logits(nullptr, 0, nullptr, 1.0f, 1.0f, &loss, nullptr, nullptr),
                     GAN_ERR_ARG, "bce_logits");
}

/* How many chunks a channel of a training batch norm is cut into: ceil(n hw / 4096), at most
 * what reaches 1024 blocks (ceil(1024 / c)), 64, and what the scratch holds (2 c chunks doubles),
 * at least 1. */
void test_bn_chunks(void)
{
    struct row {
        int n, c, hw;
        size_t scratch, want;
    } rows[] = {
        {17, 2, 1024, 1 << 16, 5},  /* 17408 values: ceil(17408 / 4096) */
        {17, 2, 1024, 12, 3},       /* room for 3 (2 c 3 = 12 doubles) */
        {17, 2, 1024, 11, 2},
        {17, 2, 1024, 3, 1},        /* no room: one chunk, no scratch needed */
        {1, 1, 4096, 1 << 16, 1},   /* exactly one chunk's values */
        {1, 1, 4097, 1 << 16, 2},
        {64, 64, 1024, 1 << 16, 16}, /* G's [64, 64, 32, 32] at batch 64 */
        {1024, 1, 1024, 1 << 16, 64}, /* capped */
        {64, 512, 16, 1 << 16, 1},
        {64, 512, 256, 1 << 16, 2},  /* 4 by its values, 2 reach 1024 blocks */
        {64, 128, 256, 1 << 16, 4},  /* D's [64, 128, 16, 16] */
        {64, 1024, 256, 1 << 16, 1}, /* 1024 channels are enough blocks */
        {0, 3, 3, 1 << 16, 1},      /* no shape: the launchers refuse it */
    };
    for (const row &r : rows) {
        size_t got = gan_cuda_bn_chunks(r.n, r.c, r.hw, r.scratch);
        CHECK_MSG(got == r.want, "bn chunks [%d, %d, %d] scratch %zu: %zu, want %zu", r.n, r.c, r.hw, r.scratch, got,
                  r.want);
    }
    /* in words, for gan bench ops */
    char text[128];
    gan_cuda_bn_describe(64, 64, 1024, 1 << 16, text, sizeof text);
    CHECK_MSG(!std::strcmp(text, "16 chunks of 4096 x 64 channels, 1024 blocks; 3 + 2 launches"), "bn describe: %s",
              text);
    gan_cuda_bn_describe(64, 512, 16, 1 << 16, text, sizeof text);
    CHECK_MSG(!std::strcmp(text, "1 chunk of 1024 x 512 channels, 512 blocks; 1 + 1 launches"), "bn describe: %s",
              text);
}

/* Batch norm, training forward and backward, alone and fused with ReLU / LeakyReLU, on shapes
 * with one partial block per channel, several rounds per thread, and hw = 1 (BatchNorm1d), all in
 * one chunk; and on shapes of several chunks (uneven ones, chunk edges inside a plane), with a
 * scratch of exactly the doubles they need (AddressSanitizer sees a write past it). Against the
 * CPU backend, and the chunked runs against one chunk (scratch NULL), within the reductions'
 * tolerance; a second run gives the same bits. */
void test_bn(void)
{
    struct shape {
        int n, c, hw;
        size_t chunks;
    } shapes[] = {{3, 5, 77, 1}, {16, 3, 64, 1}, {7, 300, 1, 1}, {2, 2, 1, 1}, {3, 2, 1600, 2}, {17, 2, 1024, 5},
                  {2, 3, 4097, 3}};
    struct fused {
        int act;
        float slope;
        const char *name;
    } kinds[] = {{GAN_FUSED_NONE, 0.0f, "bn"}, {GAN_ACT_RELU, 0.0f, "bn+relu"}, {GAN_ACT_LRELU, 0.2f, "bn+lrelu"}};
    unsigned seed = 40;
    for (const shape &sh : shapes) {
        const size_t count = (size_t)sh.n * sh.c * sh.hw, c = (size_t)sh.c;
        const size_t scratch_doubles = 2 * c * sh.chunks;
        CHECK_MSG(gan_cuda_bn_chunks(sh.n, sh.c, sh.hw, scratch_doubles) == sh.chunks,
                  "bn [%d, %d, %d]: not %zu chunks", sh.n, sh.c, sh.hw, sh.chunks);
        std::vector<double> scratch(scratch_doubles, NAN);
        std::vector<float> x = random_floats(count, seed++, -2.0f, 3.0f);
        std::vector<float> dy = random_floats(count, seed++, -1.0f, 1.0f);
        std::vector<float> gamma = random_floats(c, seed++, 0.5f, 1.5f), beta = random_floats(c, seed++, -0.5f, 0.5f);
        for (const fused &k : kinds) {
            char name[96];
            std::snprintf(name, sizeof name, "%s [%d, %d, %d] %zu chunks", k.name, sh.n, sh.c, sh.hw, sh.chunks);
            std::vector<float> rm_got = random_floats(c, seed, -0.1f, 0.1f), rm_want = rm_got, rm_one = rm_got;
            std::vector<float> rv_got = random_floats(c, seed + 1, 0.9f, 1.1f), rv_want = rv_got, rv_one = rv_got;
            std::vector<float> mean_got(c), mean_want(c), inv_got(c), inv_want(c), mean_one(c), inv_one(c);
            std::vector<float> y_got(count), y_want(count), ya_got(count), ya_want(count), y_one(count), ya_one(count);
            CHECK_OK(gan_cuda_bn_forward_train(nullptr, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(),
                                               0.1f, 1e-5f, rm_got.data(), rv_got.data(), mean_got.data(),
                                               inv_got.data(), y_got.data(), k.act, k.slope, ya_got.data(),
                                               scratch.data(), scratch_doubles));
            if (k.act == GAN_FUSED_NONE)
                CHECK_OK(cpu->bn_forward_train(cpu, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(), 0.1f,
                                               1e-5f, rm_want.data(), rv_want.data(), mean_want.data(),
                                               inv_want.data(), y_want.data()));
            else
                CHECK_OK(cpu->bn_act_forward_train(cpu, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(),
                                                   0.1f, 1e-5f, rm_want.data(), rv_want.data(), mean_want.data(),
                                                   inv_want.data(), y_want.data(), (gan_activation)k.act, k.slope,
                                                   ya_want.data()));
            std::string base(name);
            CHECK_ALLCLOSE((base + " y").c_str(), y_got.data(), y_want.data(), count, 1e-5, 1e-5);
            if (k.act != GAN_FUSED_NONE)
                CHECK_ALLCLOSE((base + " y_act").c_str(), ya_got.data(), ya_want.data(), count, 1e-5, 1e-5);
            CHECK_ALLCLOSE((base + " save_mean").c_str(), mean_got.data(), mean_want.data(), c, 1e-6, 1e-5);
            CHECK_ALLCLOSE((base + " save_invstd").c_str(), inv_got.data(), inv_want.data(), c, 1e-6, 1e-5);
            CHECK_ALLCLOSE((base + " running_mean").c_str(), rm_got.data(), rm_want.data(), c, 1e-6, 1e-5);
            CHECK_ALLCLOSE((base + " running_var").c_str(), rv_got.data(), rv_want.data(), c, 1e-6, 1e-5);
            /* one chunk per channel (no scratch): the same statistics within the sums' rounding */
            CHECK_OK(gan_cuda_bn_forward_train(nullptr, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(),
                                               0.1f, 1e-5f, rm_one.data(), rv_one.data(), mean_one.data(),
                                               inv_one.data(), y_one.data(), k.act, k.slope, ya_one.data(), nullptr,
                                               scratch_doubles));
            CHECK_ALLCLOSE((base + " y, one chunk").c_str(), y_got.data(), y_one.data(), count, 1e-6, 1e-6);
            CHECK_ALLCLOSE((base + " running_var, one chunk").c_str(), rv_got.data(), rv_one.data(), c, 1e-7, 1e-6);

            /* backward from the CPU's saved statistics, so only the backward's own sums differ */
            const float *y_in = k.act == GAN_FUSED_NONE ? nullptr : ya_want.data();
            for (float param_beta : {0.0f, 1.0f}) {
                std::vector<float> dx_got(count), dx_want(count), dx_one(count);
                std::vector<float> dg_got = random_floats(c, seed + 2, -1.0f, 1.0f), dg_want = dg_got, dg_one = dg_got;
                std::vector<float> db_got = random_floats(c, seed + 3, -1.0f, 1.0f), db_want = db_got, db_one = db_got;
                if (param_beta == 0.0f) /* overwritten without being read */
                    dg_got.assign(c, NAN), db_got.assign(c, NAN);
                CHECK_OK(gan_cuda_bn_backward(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                              gamma.data(), mean_want.data(), inv_want.data(), dx_got.data(),
                                              param_beta, dg_got.data(), db_got.data(), scratch.data(),
                                              scratch_doubles));
                if (k.act == GAN_FUSED_NONE)
                    CHECK_OK(cpu->bn_backward(cpu, sh.n, sh.c, sh.hw, x.data(), dy.data(), gamma.data(),
                                              mean_want.data(), inv_want.data(), dx_want.data(), param_beta,
                                              dg_want.data(), db_want.data()));
                else
                    CHECK_OK(cpu->bn_act_backward(cpu, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(),
                                                  (gan_activation)k.act, k.slope, gamma.data(), mean_want.data(),
                                                  inv_want.data(), dx_want.data(), param_beta, dg_want.data(),
                                                  db_want.data()));
                CHECK_ALLCLOSE((base + " dx").c_str(), dx_got.data(), dx_want.data(), count, 1e-5, 1e-5);
                CHECK_ALLCLOSE((base + " dgamma").c_str(), dg_got.data(), dg_want.data(), c, 1e-5, 1e-5);
                CHECK_ALLCLOSE((base + " dbeta").c_str(), db_got.data(), db_want.data(), c, 1e-5, 1e-5);
                CHECK_OK(gan_cuda_bn_backward(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                              gamma.data(), mean_want.data(), inv_want.data(), dx_one.data(),
                                              param_beta, dg_one.data(), db_one.data(), nullptr, scratch_doubles));
                CHECK_ALLCLOSE((base + " dx, one chunk").c_str(), dx_got.data(), dx_one.data(), count, 1e-6, 1e-6);
                CHECK_ALLCLOSE((base + " dgamma, one chunk").c_str(), dg_got.data(), dg_one.data(), c, 1e-5, 1e-5);
            }
            seed += 4;

            /* deterministic: a second forward and backward give the same bits */
            std::vector<float> rm2 = rm_want, rv2 = rv_want, mean2(c), inv2(c), y2(count), ya2(count);
            std::vector<float> rm3 = rm_want, rv3 = rv_want, mean3(c), inv3(c), y3(count), ya3(count);
            CHECK_OK(gan_cuda_bn_forward_train(nullptr, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(), 0.1f,
                                               1e-5f, rm2.data(), rv2.data(), mean2.data(), inv2.data(), y2.data(),
                                               k.act, k.slope, ya2.data(), scratch.data(), scratch_doubles));
            CHECK_OK(gan_cuda_bn_forward_train(nullptr, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(), 0.1f,
                                               1e-5f, rm3.data(), rv3.data(), mean3.data(), inv3.data(), y3.data(),
                                               k.act, k.slope, ya3.data(), scratch.data(), scratch_doubles));
            check_identical((base + " repeat").c_str(), y2, y3);
            check_identical((base + " repeat running_var").c_str(), rv2, rv3);
            std::vector<float> dx2(count), dx3(count), dg2(c), db2(c), dg3(c), db3(c);
            CHECK_OK(gan_cuda_bn_backward(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                          gamma.data(), mean2.data(), inv2.data(), dx2.data(), 0.0f, dg2.data(),
                                          db2.data(), scratch.data(), scratch_doubles));
            CHECK_OK(gan_cuda_bn_backward(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                          gamma.data(), mean2.data(), inv2.data(), dx3.data(), 0.0f, dg3.data(),
                                          db3.data(), scratch.data(), scratch_doubles));
            check_identical((base + " repeat dx").c_str(), dx2, dx3);
            check_identical((base + " repeat dgamma").c_str(), dg2, dg3);
        }
    }
    /* eval mode: elementwise, the same formula as the CPU */
    const int n = 3, c = 4, hw = 50;
    const size_t count = (size_t)n * c * hw;
    std::vector<float> x = random_floats(count, 90, -2.0f, 2.0f), gamma = random_floats(c, 91, 0.5f, 1.5f);
    std::vector<float> beta = random_floats(c, 92, -1.0f, 1.0f), rm = random_floats(c, 93, -0.5f, 0.5f);
    std::vector<float> rv = random_floats(c, 94, 0.5f, 2.0f), got(count), want(count);
    CHECK_OK(gan_cuda_bn_forward_eval(nullptr, n, c, hw, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                      1e-5f, got.data()));
    CHECK_OK(cpu->bn_forward_eval(cpu, n, c, hw, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f,
                                  want.data()));
    CHECK_ALLCLOSE("bn eval", got.data(), want.data(), count, 1e-6, 1e-6);
    float dummy = 0.0f;
    CHECK_FAILS_WITH(gan_cuda_bn_forward_train(nullptr, 1, 1, 1, &dummy, &dummy, &dummy, 0.1f, 1e-5f, &dummy, &dummy,
                                               &dummy, &dummy, &dummy, GAN_FUSED_NONE, 0.0f, nullptr, nullptr, 0),
                     GAN_ERR_ARG, "no variance");
    CHECK_FAILS_WITH(gan_cuda_bn_forward_train(nullptr, 2, 1, 1, &dummy, &dummy, &dummy, 0.1f, 1e-5f, &dummy, &dummy,
                                               &dummy, &dummy, &dummy, GAN_ACT_TANH, 0.0f, &dummy, nullptr, 0),
                     GAN_ERR_ARG, "not ReLU or LeakyReLU");
}

/* ---- the sub-pixel backward-data of a kernel 4, stride 2, pad 1 convolution ---------------- */

/* dx from y2 as the gather's formula says, on the host; `swap_parity` exchanges a and b (a wrong
 * formula that the comparison must catch). */
std::vector<float> gather_on_host(const gan_conv_geom &g, const std::vector<float> &y2, bool swap_parity)
{
    const size_t n = (size_t)g.n, ci = (size_t)g.c_in, ho = (size_t)g.h_out, wo = (size_t)g.w_out;
    std::vector<float> dx(n * ci * 4 * ho * wo);
    for (size_t m = 0; m < n; m++)
        for (size_t c = 0; c < ci; c++)
            for (size_t p = 0; p < ho; p++)
                for (size_t q = 0; q < wo; q++)
                    for (size_t a = 0; a < 2; a++)
                        for (size_t b = 0; b < 2; b++) {
                            size_t ra = swap_parity ? b : a, rb = swap_parity ? a : b;
                            size_t channel = m * 4 * ci + (ra * 2 + rb) * ci + c;
                            dx[((m * ci + c) * 2 * ho + 2 * p + a) * 2 * wo + 2 * q + b] =
                                y2[(channel * (ho + 1) + p + ra) * (wo + 1) + q + rb];
                        }
    return dx;
}

/* The weights kernel, the CPU backend's forward on the inner geometry (gan_conv_subpixel_inner)
 * and the gather kernel, against the CPU backend's backward-data of g. */
void test_subpixel_case(int n, int ci, int co, int h_out, int w_out, unsigned seed)
{
    gan_conv_geom g = {};
    g.n = n, g.c_in = ci, g.h_in = 2 * h_out, g.w_in = 2 * w_out;
    g.c_out = co, g.h_out = h_out, g.w_out = w_out;
    g.k_h = 4, g.k_w = 4, g.stride_h = 2, g.stride_w = 2, g.pad_h = 1, g.pad_w = 1;
    char name[128];
    std::snprintf(name, sizeof name, "subpixel x [%d, %d, %d, %d] w [%d, %d, 4, 4]", n, ci, g.h_in, g.w_in,
                  co, ci);
    CHECK_MSG(gan_conv_subpixel_applies(&g), "%s: sub-pixel form does not apply", name);
    gan_conv_geom inner;
    CHECK_OK(gan_conv_subpixel_inner(&g, &inner));

    const size_t w_count = (size_t)co * ci * 16, dy_count = (size_t)n * co * h_out * w_out;
    const size_t dx_count = (size_t)n * ci * g.h_in * g.w_in;
    const size_t y2_count = (size_t)n * inner.c_out * inner.h_out * inner.w_out;
    std::vector<float> w = random_floats(w_count, seed, -1.0f, 1.0f);
    std::vector<float> dy = random_floats(dy_count, seed + 1, -1.0f, 1.0f);

    /* Scratch laid out as the backend plans it: w2 at 0, y2 at the aligned offset. */
    const size_t scratch = gan_conv_subpixel_scratch_floats(&g), y2_at = gan_conv_subpixel_y2_offset_floats(&g);
    CHECK(y2_at % 64 == 0 && y2_at >= w_count && scratch == y2_at + y2_count);
    std::vector<float> scratch_buffer(scratch, NAN);
    float *w2 = scratch_buffer.data(), *y2 = scratch_buffer.data() + y2_at;
    CHECK_OK(gan_cuda_subpixel_weights(nullptr, co, ci, w.data(), w2));

    std::vector<unsigned char> inner_ws(cpu->conv_workspace_bytes(cpu, &inner, GAN_CONV_PASSES_ALL) + 1);
    CHECK_OK(cpu->conv_forward(cpu, &inner, dy.data(), w2, y2, inner_ws.data()));
    std::vector<float> dx_got(dx_count, NAN); /* every element must be written */
    CHECK_OK(gan_cuda_subpixel_gather(nullptr, n, ci, h_out, w_out, y2, GAN_FUSED_NONE, 0.0f, dx_got.data()));

    std::vector<float> dx_want(dx_count);
    std::vector<unsigned char> ws(cpu->conv_workspace_bytes(cpu, &g, GAN_CONV_PASSES_ALL) + 1);
    CHECK_OK(cpu->conv_backward_data(cpu, &g, dy.data(), w.data(), dx_want.data(), ws.data()));
    /* Each dx element sums 4 co products (of values in [-1, 1]) on both sides, in different
     * orders: rtol 1e-5, atol 1e-5 up to 32 products, growing with their number as the bound
     * on a float sum's rounding does (measured at co 32: 6.7e-6 against 4e-5). */
    const double atol = 1e-5 * (co > 8 ? co / 8.0 : 1.0);
    CHECK_ALLCLOSE(name, dx_got.data(), dx_want.data(), dx_count, 1e-5, atol);

    /* The host loop of the same formula gives the kernel's bits; with a and b exchanged it
     * does not give the backward-data where a layer is not square. */
    std::vector<float> y2_copy(y2, y2 + y2_count);
    check_identical((std::string(name) + " host gather").c_str(), gather_on_host(g, y2_copy, false), dx_got);
    if (h_out != w_out) {
        std::vector<float> swapped = gather_on_host(g, y2_copy, true);
        test_diff d = test_compare(swapped.data(), dx_want.data(), dx_count, 1e-3);
        CHECK_MSG(d.max_abs > 1e-2, "%s: gathering with a and b exchanged matched (max error %g)", name,
                  d.max_abs);
    }
}

void test_subpixel(void)
{
    test_subpixel_case(2, 3, 5, 4, 4, 100);  /* a small DCGAN layer, 8x8 -> 4x4 */
    test_subpixel_case(1, 4, 2, 2, 2, 110);  /* 4x4 -> 2x2: pad rows are most of the output */
    test_subpixel_case(3, 2, 3, 3, 5, 120);  /* non-square 6x10 -> 3x5, batch 3 */
    test_subpixel_case(2, 16, 32, 8, 8, 130); /* 16x16 -> 8x8, 128 products per sum */
    test_subpixel_case(1, 1, 1, 1, 1, 140);  /* the smallest: 2x2 -> 1x1 */
    /* Empty shapes launch nothing and succeed; negative ones are refused. */
    CHECK_OK(gan_cuda_subpixel_weights(nullptr, 0, 3, nullptr, nullptr));
    CHECK_OK(gan_cuda_subpixel_gather(nullptr, 2, 3, 0, 4, nullptr, GAN_FUSED_NONE, 0.0f, nullptr));
    CHECK_FAILS_WITH(gan_cuda_subpixel_weights(nullptr, -1, 3, nullptr, nullptr), GAN_ERR_ARG, "subpixel");
    CHECK_FAILS_WITH(gan_cuda_subpixel_gather(nullptr, 2, -3, 4, 4, nullptr, GAN_FUSED_NONE, 0.0f, nullptr),
                     GAN_ERR_ARG, "subpixel");
}

/* The im2col backward-filter (gan/cuda_args.h): the im2col and channels-first kernels into a
 * scratch laid out as the backend plans it (prefilled with NaN: every element must be written),
 * the planned GEMM on the CPU backend, against the CPU backend's backward-filter, beta 0 and 1. */
void test_im2col_filter_case(gan_conv_geom g, unsigned seed)
{
    char name[160];
    std::snprintf(name, sizeof name, "im2col filter x [%d, %d, %d, %d] k%dx%d s%dx%d p%dx%d -> [%d, %d, %d]", g.n,
                  g.c_in, g.h_in, g.w_in, g.k_h, g.k_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.c_out, g.h_out,
                  g.w_out);
    CHECK_MSG(gan_conv_im2col_filter_applies(&g), "%s: does not apply", name);
    const size_t x_count = (size_t)g.n * g.c_in * g.h_in * g.w_in, y_count = (size_t)g.n * g.c_out * g.h_out * g.w_out;
    const size_t w_count = (size_t)g.c_out * g.c_in * g.k_h * g.k_w;
    std::vector<float> x = random_floats(x_count, seed, -1.0f, 1.0f);
    std::vector<float> dy = random_floats(y_count, seed + 1, -1.0f, 1.0f);
    std::vector<float> scratch(gan_conv_im2col_filter_scratch_floats(&g), NAN);
    float *col = scratch.data(), *dyt = scratch.data() + gan_conv_im2col_filter_dyt_offset_floats(&g);
    CHECK_OK(gan_cuda_im2col(nullptr, &g, x.data(), col));
    CHECK_OK(gan_cuda_channels_first(nullptr, g.n, g.c_out, g.h_out * g.w_out, dy.data(), dyt));
    const size_t col_count = (size_t)g.c_in * g.k_h * g.k_w * g.n * g.h_out * g.w_out;
    for (size_t i = col_count; i < (size_t)(dyt - col); i++)
        scratch[i] = 0.0f; /* the alignment gap between col and dyt is never written or read */
    bool all_written = true;
    for (float v : scratch)
        all_written = all_written && !std::isnan(v);
    CHECK_MSG(all_written, "%s: an element of col or dyt was not written", name);
    gan_conv_gemm m;
    CHECK_OK(gan_conv_im2col_filter_gemm(&g, &m));
    std::vector<float> got(w_count), want(w_count);
    CHECK_OK(cpu->gemm(cpu, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, dyt, m.lda, col, m.ldb, 0.0f, got.data(),
                       m.ldc));
    std::vector<unsigned char> ws(cpu->conv_workspace_bytes(cpu, &g, GAN_CONV_PASSES_ALL) + 1);
    CHECK_OK(cpu->conv_backward_filter(cpu, &g, x.data(), dy.data(), 0.0f, want.data(), ws.data()));
    const double products = (double)g.n * g.h_out * g.w_out;
    const double atol = 1e-5 * (products > 64 ? products / 64.0 : 1.0);
    CHECK_ALLCLOSE(name, got.data(), want.data(), w_count, 1e-5, atol);
    /* beta 1 onto the CPU's result: twice it */
    CHECK_OK(cpu->gemm(cpu, m.trans_a, m.trans_b, m.m, m.n, m.k, 1.0f, dyt, m.lda, col, m.ldb, 1.0f, want.data(),
                       m.ldc));
    for (size_t i = 0; i < w_count; i++)
        got[i] *= 2.0f;
    CHECK_ALLCLOSE((std::string(name) + " beta 1").c_str(), want.data(), got.data(), w_count, 1e-5, 2.0 * atol);
}

gan_conv_geom conv_geom(int n, int ci, int h, int w, int co, int kh, int kw, int sh, int sw, int ph, int pw)
{
    gan_conv_geom g = {};
    g.n = n, g.c_in = ci, g.h_in = h, g.w_in = w, g.c_out = co;
    g.k_h = kh, g.k_w = kw, g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw;
    g.h_out = (h + 2 * ph - kh) / sh + 1;
    g.w_out = (w + 2 * pw - kw) / sw + 1;
    return g;
}

void test_im2col_filter(void)
{
    test_im2col_filter_case(conv_geom(3, 3, 16, 16, 8, 4, 4, 2, 2, 1, 1), 200); /* an image's first layer */
    test_im2col_filter_case(conv_geom(2, 1, 9, 7, 4, 3, 3, 1, 1, 1, 1), 210);   /* one channel, stride 1 */
    test_im2col_filter_case(conv_geom(2, 2, 7, 10, 3, 3, 2, 2, 3, 1, 0), 220);  /* anisotropic */
    test_im2col_filter_case(conv_geom(1, 5, 5, 5, 2, 1, 1, 1, 1, 0, 0), 230);   /* 1x1 */
    test_im2col_filter_case(conv_geom(2, 4, 8, 8, 3, 4, 4, 2, 2, 1, 1), 240);   /* G's last convT's weight grad */
    /* Empty shapes launch nothing; negative ones are refused. */
    CHECK_OK(gan_cuda_channels_first(nullptr, 0, 3, 4, nullptr, nullptr));
    CHECK_FAILS_WITH(gan_cuda_channels_first(nullptr, 2, -3, 4, nullptr, nullptr), GAN_ERR_ARG, "channels_first");
    gan_conv_geom bad = conv_geom(1, 3, 8, 8, 4, 4, 4, 2, 2, 1, 1);
    bad.stride_h = 0;
    CHECK_FAILS_WITH(gan_cuda_im2col(nullptr, &bad, nullptr, nullptr), GAN_ERR_ARG, "im2col");
}

/* The batch norm of train.sync_bn: the kernels split around the all-reduces.
 * 1. One rank (the sums used as they are): bit for bit the fused kernels' outputs, every one.
 * 2. Two ranks emulated (the batch's two halves, their double sums added as an all-reduce would):
 *    the whole batch's statistics within double rounding, so y, dx and the running statistics
 *    agree with the fused kernel on the whole batch to 1e-6; dgamma and dbeta are each half's
 *    own, and their sum is the whole batch's.
 * 3. The CPU backend's split ops on the same inputs, within the reductions' tolerance (1e-5). */
void test_bn_split(void)
{
    struct shape {
        int n, c, hw;
    } shapes[] = {{4, 5, 77}, {16, 3, 64}, {8, 300, 1}, {8, 3, 1100}}; /* the last: 3 chunks, 2 per half */
    struct fused {
        int act;
        float slope;
        const char *name;
    } kinds[] = {{GAN_FUSED_NONE, 0.0f, "bn"}, {GAN_ACT_RELU, 0.0f, "bn+relu"}, {GAN_ACT_LRELU, 0.2f, "bn+lrelu"}};
    unsigned seed = 140;
    for (const shape &sh : shapes) {
        const size_t count = (size_t)sh.n * sh.c * sh.hw, c = (size_t)sh.c, half = count / 2;
        const double values = (double)sh.n * sh.hw;
        const size_t scratch_doubles = 2 * c * GAN_BN_MAX_CHUNKS;
        std::vector<double> scratch_buffer(scratch_doubles, NAN);
        double *scratch = scratch_buffer.data();
        const size_t whole_chunks = gan_cuda_bn_chunks(sh.n, sh.c, sh.hw, scratch_doubles);
        const size_t half_chunks = gan_cuda_bn_chunks(sh.n / 2, sh.c, sh.hw, scratch_doubles);
        CHECK_MSG(sh.hw != 1100 || (whole_chunks == 3 && half_chunks == 2),
                  "split bn [%d, %d, %d]: %zu and %zu chunks, want 3 and 2", sh.n, sh.c, sh.hw, whole_chunks,
                  half_chunks);
        std::vector<float> x = random_floats(count, seed++, -2.0f, 3.0f);
        std::vector<float> dy = random_floats(count, seed++, -1.0f, 1.0f);
        std::vector<float> gamma = random_floats(c, seed++, 0.5f, 1.5f), beta = random_floats(c, seed++, -0.5f, 0.5f);
        std::vector<float> rm0 = random_floats(c, seed++, -0.1f, 0.1f), rv0 = random_floats(c, seed++, 0.9f, 1.1f);
        for (const fused &k : kinds) {
            char name[96];
            std::snprintf(name, sizeof name, "split %s [%d, %d, %d]", k.name, sh.n, sh.c, sh.hw);
            std::string base(name);
            float *no_act = nullptr;
            /* the fused kernels on the whole batch */
            std::vector<float> rm_f = rm0, rv_f = rv0, mean_f(c), inv_f(c), y_f(count), ya_f(count);
            CHECK_OK(gan_cuda_bn_forward_train(nullptr, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(), 0.1f,
                                               1e-5f, rm_f.data(), rv_f.data(), mean_f.data(), inv_f.data(),
                                               y_f.data(), k.act, k.slope, ya_f.data(), scratch,
                                               scratch_doubles));
            const float *y_in = k.act == GAN_FUSED_NONE ? nullptr : ya_f.data();
            std::vector<float> dx_f(count), dg_f(c), db_f(c);
            CHECK_OK(gan_cuda_bn_backward(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                          gamma.data(), mean_f.data(), inv_f.data(), dx_f.data(), 0.0f, dg_f.data(),
                                          db_f.data(), scratch, scratch_doubles));

            /* 1. one rank */
            std::vector<double> sums(c), squares(c), grad_sums(2 * c);
            std::vector<float> rm_s = rm0, rv_s = rv0, mean_s(c), inv_s(c), y_s(count), ya_s(count);
            CHECK_OK(gan_cuda_bn_sums(nullptr, sh.n, sh.c, sh.hw, x.data(), scratch, scratch_doubles, sums.data()));
            CHECK_OK(gan_cuda_bn_centered_squares(nullptr, sh.n, sh.c, sh.hw, x.data(), sums.data(), values, scratch,
                                                  scratch_doubles,
                                                  squares.data()));
            CHECK_OK(gan_cuda_bn_forward_from_sums(nullptr, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(),
                                                   0.1f, 1e-5f, sums.data(), squares.data(), values, rm_s.data(),
                                                   rv_s.data(), mean_s.data(), inv_s.data(), y_s.data(), k.act,
                                                   k.slope, k.act == GAN_FUSED_NONE ? no_act : ya_s.data()));
            check_identical((base + " y").c_str(), y_s, y_f);
            if (k.act != GAN_FUSED_NONE)
                check_identical((base + " y_act").c_str(), ya_s, ya_f);
            check_identical((base + " save_mean").c_str(), mean_s, mean_f);
            check_identical((base + " save_invstd").c_str(), inv_s, inv_f);
            check_identical((base + " running_mean").c_str(), rm_s, rm_f);
            check_identical((base + " running_var").c_str(), rv_s, rv_f);
            std::vector<float> dx_s(count), dg_s(c, NAN), db_s(c, NAN);
            CHECK_OK(gan_cuda_bn_backward_sums(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                               mean_f.data(), inv_f.data(), 0.0f, dg_s.data(), db_s.data(),
                                               scratch, scratch_doubles, grad_sums.data()));
            CHECK_OK(gan_cuda_bn_backward_from_sums(nullptr, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act,
                                                    k.slope, gamma.data(), mean_f.data(), inv_f.data(),
                                                    grad_sums.data(), values, dx_s.data()));
            check_identical((base + " dx").c_str(), dx_s, dx_f);
            check_identical((base + " dgamma").c_str(), dg_s, dg_f);
            check_identical((base + " dbeta").c_str(), db_s, db_f);

            /* 2. two ranks: each half of the batch ([n/2, c, hw] is contiguous), sums added */
            const int n2 = sh.n / 2;
            std::vector<double> s0(c), s1(c), q0(c), q1(c), g0(2 * c), g1(2 * c), total(c), total_sq(c), total_g(2 * c);
            CHECK_OK(gan_cuda_bn_sums(nullptr, n2, sh.c, sh.hw, x.data(), scratch, scratch_doubles, s0.data()));
            CHECK_OK(gan_cuda_bn_sums(nullptr, n2, sh.c, sh.hw, x.data() + half, scratch, scratch_doubles, s1.data()));
            for (size_t i = 0; i < c; i++)
                total[i] = s0[i] + s1[i];
            CHECK_OK(gan_cuda_bn_centered_squares(nullptr, n2, sh.c, sh.hw, x.data(), total.data(), values, scratch,
                                                  scratch_doubles, q0.data()));
            CHECK_OK(gan_cuda_bn_centered_squares(nullptr, n2, sh.c, sh.hw, x.data() + half, total.data(), values,
                                                  scratch, scratch_doubles,
                                                  q1.data()));
            for (size_t i = 0; i < c; i++)
                total_sq[i] = q0[i] + q1[i];
            std::vector<float> y2(count), ya2(count), rm2 = rm0, rv2 = rv0, mean2(c), inv2(c);
            std::vector<float> rm2b = rm0, rv2b = rv0, mean2b(c), inv2b(c);
            CHECK_OK(gan_cuda_bn_forward_from_sums(nullptr, n2, sh.c, sh.hw, x.data(), gamma.data(), beta.data(), 0.1f,
                                                   1e-5f, total.data(), total_sq.data(), values, rm2.data(), rv2.data(),
                                                   mean2.data(), inv2.data(), y2.data(), k.act, k.slope,
                                                   k.act == GAN_FUSED_NONE ? no_act : ya2.data()));
            CHECK_OK(gan_cuda_bn_forward_from_sums(nullptr, n2, sh.c, sh.hw, x.data() + half, gamma.data(),
                                                   beta.data(), 0.1f, 1e-5f, total.data(), total_sq.data(), values,
                                                   rm2b.data(), rv2b.data(), mean2b.data(), inv2b.data(),
                                                   y2.data() + half, k.act, k.slope,
                                                   k.act == GAN_FUSED_NONE ? no_act : ya2.data() + half));
            CHECK_ALLCLOSE((base + " 2 ranks y").c_str(), y2.data(), y_f.data(), count, 1e-6, 1e-6);
            CHECK_ALLCLOSE((base + " 2 ranks running_var").c_str(), rv2.data(), rv_f.data(), c, 1e-6, 1e-6);
            check_identical((base + " 2 ranks: the ranks' running_var").c_str(), rv2, rv2b);
            check_identical((base + " 2 ranks: the ranks' save_invstd").c_str(), inv2, inv2b);
            std::vector<float> dx2(count), dg0(c), db0(c), dg1(c), db1(c);
            CHECK_OK(gan_cuda_bn_backward_sums(nullptr, n2, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act, k.slope,
                                               mean_f.data(), inv_f.data(), 0.0f, dg0.data(), db0.data(), scratch,
                                               scratch_doubles, g0.data()));
            CHECK_OK(gan_cuda_bn_backward_sums(nullptr, n2, sh.c, sh.hw, x.data() + half, y_in ? y_in + half : y_in,
                                               dy.data() + half, k.act, k.slope, mean_f.data(), inv_f.data(), 0.0f,
                                               dg1.data(), db1.data(), scratch, scratch_doubles, g1.data()));
            for (size_t i = 0; i < 2 * c; i++)
                total_g[i] = g0[i] + g1[i];
            CHECK_OK(gan_cuda_bn_backward_from_sums(nullptr, n2, sh.c, sh.hw, x.data(), y_in, dy.data(), k.act,
                                                    k.slope, gamma.data(), mean_f.data(), inv_f.data(),
                                                    total_g.data(), values, dx2.data()));
            CHECK_OK(gan_cuda_bn_backward_from_sums(nullptr, n2, sh.c, sh.hw, x.data() + half,
                                                    y_in ? y_in + half : y_in, dy.data() + half, k.act, k.slope,
                                                    gamma.data(), mean_f.data(), inv_f.data(), total_g.data(), values,
                                                    dx2.data() + half));
            CHECK_ALLCLOSE((base + " 2 ranks dx").c_str(), dx2.data(), dx_f.data(), count, 1e-6, 1e-6);
            std::vector<float> dg_sum(c), db_sum(c);
            for (size_t i = 0; i < c; i++)
                dg_sum[i] = dg0[i] + dg1[i], db_sum[i] = db0[i] + db1[i];
            CHECK_ALLCLOSE((base + " 2 ranks dgamma summed").c_str(), dg_sum.data(), dg_f.data(), c, 1e-5, 1e-5);
            CHECK_ALLCLOSE((base + " 2 ranks dbeta summed").c_str(), db_sum.data(), db_f.data(), c, 1e-5, 1e-5);

            /* 3. the CPU backend's split ops */
            std::vector<double> cpu_sums(c), cpu_squares(c), cpu_grad(2 * c);
            std::vector<float> rm_c = rm0, rv_c = rv0, mean_c(c), inv_c(c), y_c(count), ya_c(count), dx_c(count);
            std::vector<float> dg_c(c), db_c(c);
            CHECK_OK(cpu->bn_sums(cpu, sh.n, sh.c, sh.hw, x.data(), cpu_sums.data()));
            CHECK_OK(cpu->bn_centered_squares(cpu, sh.n, sh.c, sh.hw, x.data(), cpu_sums.data(), values,
                                              cpu_squares.data()));
            CHECK_OK(cpu->bn_forward_from_sums(cpu, sh.n, sh.c, sh.hw, x.data(), gamma.data(), beta.data(), 0.1f, 1e-5f,
                                               cpu_sums.data(), cpu_squares.data(), values, rm_c.data(), rv_c.data(),
                                               mean_c.data(), inv_c.data(), y_c.data(), (gan_activation)k.act, k.slope,
                                               k.act == GAN_FUSED_NONE ? no_act : ya_c.data()));
            CHECK_ALLCLOSE((base + " cpu y").c_str(), y_c.data(), y_s.data(), count, 1e-5, 1e-5);
            CHECK_ALLCLOSE((base + " cpu running_var").c_str(), rv_c.data(), rv_s.data(), c, 1e-6, 1e-5);
            CHECK_OK(cpu->bn_backward_sums(cpu, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), (gan_activation)k.act,
                                           k.slope, mean_f.data(), inv_f.data(), 0.0f, dg_c.data(), db_c.data(),
                                           cpu_grad.data()));
            CHECK_OK(cpu->bn_backward_from_sums(cpu, sh.n, sh.c, sh.hw, x.data(), y_in, dy.data(), (gan_activation)k.act,
                                                k.slope, gamma.data(), mean_f.data(), inv_f.data(), cpu_grad.data(),
                                                values, dx_c.data()));
            CHECK_ALLCLOSE((base + " cpu dx").c_str(), dx_c.data(), dx_s.data(), count, 1e-5, 1e-5);
            CHECK_ALLCLOSE((base + " cpu dgamma").c_str(), dg_c.data(), dg_s.data(), c, 1e-5, 1e-5);
            CHECK_ALLCLOSE((base + " cpu dbeta").c_str(), db_c.data(), db_s.data(), c, 1e-5, 1e-5);
        }
    }
    /* the mean after a sum over ranks */
    std::vector<float> data = random_floats(1000, 199, -1.0f, 1.0f), want = data;
    CHECK_OK(gan_cuda_scale(nullptr, data.size(), 0.25f, data.data()));
    for (float &v : want)
        v *= 0.25f;
    check_identical("scale", data, want);
    double dummy = 0.0;
    CHECK_FAILS_WITH(gan_cuda_bn_centered_squares(nullptr, 1, 1, 1, nullptr, &dummy, 1.0, nullptr, 0, &dummy),
                     GAN_ERR_ARG, "values per channel");
}

/* The evaluation ops (kernels/eval.cuh): each output element is one thread's fixed-order loop
 * over the per-element functions the CPU backend calls too, so the results are identical. Shapes:
 * the FID Inception's windows (3x3 stride 2 unpadded, 3x3 stride 1 padded by 1) on odd planes,
 * with NaN and -inf inputs for max pooling; resizes up, down, to the same size and from 1 pixel. */
void test_eval_ops(void)
{
    struct pool_case {
        int n, c, h, w, k_h, k_w, stride, pad_h, pad_w;
    } pools[] = {{2, 3, 13, 11, 3, 3, 2, 0, 0}, {2, 3, 7, 9, 3, 3, 1, 1, 1}, {1, 5, 8, 8, 3, 3, 1, 1, 1},
                 {3, 2, 9, 5, 1, 3, 1, 0, 1}, {1, 1, 1, 1, 3, 3, 1, 1, 1}};
    unsigned seed = 200;
    for (const pool_case &pc : pools) {
        gan_pool2d_geom g = {pc.n, pc.c, pc.h, pc.w, (pc.h + 2 * pc.pad_h - pc.k_h) / pc.stride + 1,
                             (pc.w + 2 * pc.pad_w - pc.k_w) / pc.stride + 1, pc.k_h, pc.k_w, pc.stride, pc.stride,
                             pc.pad_h, pc.pad_w};
        const size_t in = (size_t)g.n * g.c * g.h_in * g.w_in, out = (size_t)g.n * g.c * g.h_out * g.w_out;
        std::vector<float> x = random_floats(in, seed++, -3.0f, 3.0f);
        if (in > 20) {
            x[5] = NAN;
            x[17] = -INFINITY;
        }
        char name[96];
        std::snprintf(name, sizeof name, "[%d,%d,%d,%d] k%dx%d s%d p%d,%d", g.n, g.c, g.h_in, g.w_in, g.k_h, g.k_w,
                      pc.stride, g.pad_h, g.pad_w);
        std::vector<float> got(out), want(out);
        CHECK_OK(gan_cuda_max_pool_forward(nullptr, &g, x.data(), got.data()));
        CHECK_OK(cpu->max_pool_forward(cpu, &g, x.data(), want.data()));
        check_identical((std::string("max_pool ") + name).c_str(), got, want);
        if (in > 20)
            x[5] = 0.5f, x[17] = -1.0f;
        for (bool include_pad : {false, true}) {
            CHECK_OK(gan_cuda_avg_pool_forward(nullptr, &g, include_pad, x.data(), got.data()));
            CHECK_OK(cpu->avg_pool_forward(cpu, &g, include_pad, x.data(), want.data()));
            check_identical((std::string(include_pad ? "avg_pool incl " : "avg_pool excl ") + name).c_str(), got,
                            want);
        }
    }
    gan_pool2d_geom bad = {1, 1, 4, 4, 2, 2, 3, 3, 1, 1, 2, 2}; /* padding beyond half the window */
    float dummy[16] = {0};
    CHECK_FAILS_WITH(gan_cuda_max_pool_forward(nullptr, &bad, dummy, dummy), GAN_ERR_ARG, "half the window");

    /* global average over 8x8 (the Inception's last pool) and over 1 and 300 values */
    for (int hw : {64, 1, 300}) {
        const int n = 3, c = 70;
        std::vector<float> x = random_floats((size_t)n * c * hw, seed++, 0.0f, 4.0f);
        std::vector<float> got((size_t)n * c), want((size_t)n * c);
        CHECK_OK(gan_cuda_global_avg_pool(nullptr, n, c, hw, x.data(), got.data()));
        CHECK_OK(cpu->global_avg_pool(cpu, n, c, hw, x.data(), want.data()));
        check_identical("global_avg_pool", got, want);
    }

    /* a branch of 5 channels into channels 3..7 of 11, the rest untouched */
    {
        const int n = 3, c = 5, hw = 37, yc = 11, offset = 3;
        std::vector<float> x = random_floats((size_t)n * c * hw, seed++, -1.0f, 1.0f);
        std::vector<float> got = random_floats((size_t)n * yc * hw, seed, -1.0f, 1.0f), want = got;
        CHECK_OK(gan_cuda_copy_channels(nullptr, n, c, hw, x.data(), yc, offset, got.data()));
        CHECK_OK(cpu->copy_channels(cpu, n, c, hw, x.data(), yc, offset, want.data()));
        check_identical("copy_channels", got, want);
        CHECK(std::memcmp(&got[(size_t)(yc + offset) * hw], &x[(size_t)c * hw], sizeof(float) * c * hw) == 0);
        CHECK_FAILS_WITH(gan_cuda_copy_channels(nullptr, n, c, hw, x.data(), yc, 7, got.data()), GAN_ERR_ARG,
                         "do not fit");
    }

    /* bilinear resize: up (28 -> 61, the FMNIST direction), down (47 -> 13), the same size, 1 -> 5 */
    struct resize_case {
        int n, c, h_in, w_in, h_out, w_out;
    } resizes[] = {{2, 1, 28, 28, 61, 61}, {1, 3, 47, 33, 13, 20}, {2, 2, 9, 9, 9, 9}, {1, 1, 1, 1, 5, 5}};
    for (const resize_case &rc : resizes) {
        std::vector<float> x = random_floats((size_t)rc.n * rc.c * rc.h_in * rc.w_in, seed++, -1.0f, 1.0f);
        const size_t out = (size_t)rc.n * rc.c * rc.h_out * rc.w_out;
        std::vector<float> got(out), want(out);
        CHECK_OK(gan_cuda_resize_bilinear(nullptr, rc.n, rc.c, rc.h_in, rc.w_in, rc.h_out, rc.w_out, x.data(),
                                          got.data()));
        CHECK_OK(cpu->resize_bilinear(cpu, rc.n, rc.c, rc.h_in, rc.w_in, rc.h_out, rc.w_out, x.data(),
                                      want.data()));
        char name[64];
        std::snprintf(name, sizeof name, "resize %dx%d -> %dx%d", rc.h_in, rc.w_in, rc.h_out, rc.w_out);
        check_identical(name, got, want);
        if (rc.h_in == rc.h_out && rc.w_in == rc.w_out)
            check_identical("resize to the same size copies", got, x);
    }

    /* bias + activation in place, every activation */
    {
        const int n = 3, c = 7, hw = 61;
        const size_t count = (size_t)n * c * hw;
        std::vector<float> bias = random_floats((size_t)c, seed++, -1.0f, 1.0f);
        std::vector<float> y = random_floats(count, seed++, -4.0f, 4.0f);
        for (gan_activation act : {GAN_ACT_RELU, GAN_ACT_LRELU, GAN_ACT_TANH, GAN_ACT_SIGMOID}) {
            std::vector<float> got = y, want = y;
            CHECK_OK(gan_cuda_bias_act_forward(nullptr, n, c, hw, bias.data(), act, 0.2f, got.data()));
            CHECK_OK(cpu->bias_act_forward(cpu, n, c, hw, bias.data(), act, 0.2f, want.data()));
            check_identical("bias_act", got, want);
        }
    }
}

/* ---- float <-> bfloat16 with the layout change (kernels/convert.cuh), against references of
 * our own: the rounding, and the transpose ------------------------------------------------------ */

/* The value of bf16 bit pattern p in double, decoded field by field (exact). The all-ones
 * exponent is decoded as if exponents went on (2^128 for 0x7F80): the reference rounds with it as
 * the neighbour above the largest finite bf16, which is what rounding to infinity means. */
double bf16_pattern_value(uint16_t p)
{
    int sign = p >> 15, exponent = (p >> 7) & 0xff, mantissa = p & 0x7f;
    double magnitude = exponent == 0 ? std::ldexp((double)mantissa, -126 - 7)
                                     : std::ldexp((double)(128 + mantissa), exponent - 127 - 7);
    return sign ? -magnitude : magnitude;
}

bool bf16_is_nan(uint16_t p) { return (p & 0x7fffu) > 0x7f80u; }

/* The bf16 nearest to a non-NaN x, ties to the even mantissa: the two bf16 values around x are
 * its float bits cut to the upper 16 (towards zero) and that pattern plus one (one step away
 * from zero; 0x7F80, infinity, above the largest finite), compared in double. */
uint16_t reference_bf16(float x)
{
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    uint16_t toward_zero = (uint16_t)(bits >> 16);
    if ((bits & 0xffffu) == 0)
        return toward_zero; /* exactly a bf16, infinities and zeros included */
    uint16_t away = (uint16_t)(toward_zero + 1);
    double below = std::fabs((double)x - bf16_pattern_value(toward_zero));
    double above = std::fabs(bf16_pattern_value(away) - (double)x);
    if (below < above)
        return toward_zero;
    if (above < below)
        return away;
    return (toward_zero & 1u) == 0 ? toward_zero : away;
}

float float_of_bits(uint32_t bits)
{
    float x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

/* A convolution tensor's shape for the conversions: [n, c, hw] in NCHW, [n, hw, c_nhwc] in NHWC
 * (channels c .. c_nhwc - 1 the padding). `padded_c` 0 (left out of a {n, c, hw}) is no padding. */
struct nhwc_shape {
    int n, c, hw;
    int padded_c = 0;
    int c_nhwc() const { return padded_c != 0 ? padded_c : c; }
    size_t count() const { return (size_t)n * (size_t)c * (size_t)hw; }                  /* NCHW side */
    size_t count_nhwc() const { return (size_t)n * (size_t)hw * (size_t)c_nhwc(); }     /* NHWC side */
    /* where element (image m, channel ch, position p) lies in each layout */
    size_t nchw(size_t m, size_t ch, size_t p) const { return (m * (size_t)c + ch) * (size_t)hw + p; }
    size_t nhwc(size_t m, size_t ch, size_t p) const { return (m * (size_t)hw + p) * (size_t)c_nhwc() + ch; }
};

/* The reference transposes, element by element: to NHWC with the padding channels T() (+0), back
 * to NCHW from the first c channels. */
template <typename T>
std::vector<T> reference_to_nhwc(const nhwc_shape &s, const std::vector<T> &nchw)
{
    std::vector<T> out(s.count_nhwc(), T());
    for (size_t m = 0; m < (size_t)s.n; m++)
        for (size_t ch = 0; ch < (size_t)s.c; ch++)
            for (size_t p = 0; p < (size_t)s.hw; p++)
                out[s.nhwc(m, ch, p)] = nchw[s.nchw(m, ch, p)];
    return out;
}
template <typename T>
std::vector<T> reference_to_nchw(const nhwc_shape &s, const std::vector<T> &nhwc)
{
    std::vector<T> out(s.count());
    for (size_t m = 0; m < (size_t)s.n; m++)
        for (size_t ch = 0; ch < (size_t)s.c; ch++)
            for (size_t p = 0; p < (size_t)s.hw; p++)
                out[s.nchw(m, ch, p)] = nhwc[s.nhwc(m, ch, p)];
    return out;
}

/* What CUDA's rounding gives for x: the reference for a non-NaN, the quiet NaN 0x7FFF for any NaN. */
uint16_t expected_bf16(float x) { return std::isnan(x) ? (uint16_t)0x7fffu : reference_bf16(x); }

/* Converts `src` [n, c, hw] with the kernel into a buffer of n hw c_nhwc elements full of garbage
 * (a NaN pattern, which the padding must not keep) and 3 guard elements beyond, checks every
 * element of dst [n, hw, c_nhwc] against the reference rounding of the element the reference
 * transpose puts there (a padding channel: exactly +0, bits 0x0000), and that the guards are
 * untouched. */
void check_f32_to_bf16_nhwc(const char *name, nhwc_shape s, const std::vector<float> &src)
{
    const size_t count = s.count_nhwc(), c_nhwc = (size_t)s.c_nhwc();
    const uint16_t garbage = 0xffff, guard = 0xabcd;
    std::vector<uint16_t> got(count + 3, guard);
    std::fill(got.begin(), got.begin() + (ptrdiff_t)count, garbage);
    CHECK_OK(gan_cuda_f32_to_bf16_nhwc(nullptr, s.n, s.c, s.c_nhwc(), s.hw, src.data(), got.data()));
    std::vector<float> moved = reference_to_nhwc(s, src);
    for (size_t i = 0; i < count; i++) {
        bool padding = i % c_nhwc >= (size_t)s.c;
        uint16_t want = padding ? (uint16_t)0x0000u : expected_bf16(moved[i]);
        if (got[i] != want) {
            uint32_t bits;
            std::memcpy(&bits, &moved[i], sizeof bits);
            test_fail_at(__FILE__, __LINE__,
                         "%s [n %d, c %d, c_nhwc %zu, hw %d]: NHWC element %zu of %zu (image %zu, position %zu, "
                         "channel %zu%s), %.9g (0x%08x): kernel 0x%04x, reference 0x%04x",
                         name, s.n, s.c, c_nhwc, s.hw, i, count, i / ((size_t)s.hw * c_nhwc), i / c_nhwc % s.hw,
                         i % c_nhwc, padding ? ": padding" : "", (double)moved[i], (unsigned)bits, (unsigned)got[i],
                         (unsigned)want);
            return;
        }
    }
    for (size_t i = count; i < count + 3; i++)
        if (got[i] != guard) {
            test_fail_at(__FILE__, __LINE__, "%s [n %d, c %d, c_nhwc %zu, hw %d]: wrote element %zu beyond count %zu",
                         name, s.n, s.c, c_nhwc, s.hw, i, count);
            return;
        }
    test_checks_passed++;
}

/* The rounding checks of a flat buffer: through both identity layouts, [count, 1, 1] and
 * [1, count, 1], where NCHW and NHWC are the same order. */
void check_f32_to_bf16(const char *name, const std::vector<float> &src)
{
    const int count = (int)src.size();
    check_f32_to_bf16_nhwc(name, nhwc_shape{count, 1, 1}, src);
    check_f32_to_bf16_nhwc(name, nhwc_shape{1, count, 1}, src);
}

/* Widens `src` [n, hw, c_nhwc] into dst [n, c, hw] that held `old` (n c hw elements and 2 guards
 * beyond; at beta 0 the n c hw are NaN instead, which must not leak) and compares it bit for bit
 * with float(src) at the reference-transposed place, or beta * old + float(src): the same two
 * float operations (the product rounded, then the sum). The guards must come back untouched.
 * Callers put NaN patterns in src's padding: read, they would show. */
void check_bf16_nhwc_to_f32(const char *name, nhwc_shape s, const std::vector<uint16_t> &src, float beta,
                            const std::vector<float> &old)
{
    const size_t count = s.count();
    CHECK(src.size() == s.count_nhwc() && old.size() == count + 2);
    std::vector<float> got = old, want = old;
    if (beta == 0.0f)
        std::fill(got.begin(), got.begin() + (ptrdiff_t)count, std::nanf(""));
    CHECK_OK(gan_cuda_bf16_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, src.data(), beta, GAN_FUSED_NONE, 0.0f,
                                       got.data()));
    std::vector<uint16_t> moved = reference_to_nchw(s, src);
    for (size_t i = 0; i < count; i++) {
        float widened = float_of_bits((uint32_t)moved[i] << 16);
        if (beta == 0.0f) {
            want[i] = widened;
        } else {
            float scaled = beta * old[i];
            want[i] = scaled + widened;
        }
    }
    char full_name[160];
    std::snprintf(full_name, sizeof full_name, "%s [n %d, c %d, c_nhwc %d, hw %d] beta %g", name, s.n, s.c,
                  s.c_nhwc(), s.hw, (double)beta);
    check_identical(full_name, got, want); /* the guards included */
}

/* Every bf16 pattern, laid out as NHWC [n, hw, c] (n c hw = 65536), widened into an NCHW buffer
 * full of NaN (beta 0: dst is not read), exactly and to the reference-transposed place, then
 * rounded back to NHWC: the same patterns. */
void check_every_bf16_pattern(nhwc_shape s)
{
    const size_t count = 65536;
    CHECK(s.count() == count);
    std::vector<uint16_t> all(count), back(count);
    for (size_t p = 0; p < count; p++)
        all[p] = (uint16_t)p;
    std::vector<float> wide(count, std::nanf(""));
    CHECK_OK(gan_cuda_bf16_nhwc_to_f32(nullptr, s.n, s.c, s.c, s.hw, all.data(), 0.0f, GAN_FUSED_NONE, 0.0f,
                                       wide.data()));
    CHECK_OK(gan_cuda_f32_to_bf16_nhwc(nullptr, s.n, s.c, s.c, s.hw, wide.data(), back.data()));
    std::vector<float> wide_nhwc = reference_to_nhwc(s, wide);
    size_t wrong_wide = count, wrong_back = count;
    for (size_t p = count; p-- > 0;) {
        uint16_t pattern = (uint16_t)p;
        bool nan = bf16_is_nan(pattern);
        float w = wide_nhwc[p];
        bool sign_ok = std::signbit(w) == (pattern >> 15 != 0); /* -0 included */
        bool wide_ok;
        if (nan)
            wide_ok = std::isnan(w);
        else if ((pattern & 0x7fffu) == 0x7f80u)
            wide_ok = std::isinf(w) && sign_ok;
        else
            wide_ok = (double)w == bf16_pattern_value(pattern) && sign_ok;
        if (!wide_ok)
            wrong_wide = p;
        if (nan ? !bf16_is_nan(back[p]) : back[p] != pattern)
            wrong_back = p;
    }
    CHECK_MSG(wrong_wide == count,
              "bf16_nhwc_to_f32 [n %d, c %d, hw %d] of pattern 0x%04zx gave %.9g (beta 0, dst NaN before)", s.n,
              s.c, s.hw, wrong_wide, wrong_wide < count ? (double)wide_nhwc[wrong_wide] : 0.0);
    CHECK_MSG(wrong_back == count, "[n %d, c %d, hw %d]: bf16 0x%04zx -> f32 nchw -> bf16 nhwc came back as 0x%04x",
              s.n, s.c, s.hw, wrong_back, wrong_back < count ? (unsigned)back[wrong_back] : 0u);
}

/* Sources with everything the rounding can meet: random bit patterns (every exponent:
 * subnormals, infinities and NaNs among them) and, every other element, random values in
 * [-3, 3). */
std::vector<float> mixed_floats(size_t count, unsigned seed)
{
    std::vector<float> v = random_floats(count, seed, -3.0f, 3.0f);
    uint32_t state = 0x9e3779b9u ^ seed;
    for (size_t i = 0; i < count; i += 2) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        v[i] = float_of_bits(state);
    }
    return v;
}

/* A bf16 source [n, hw, c_nhwc] for the widening: finite bf16 values in the first c channels, NaN
 * patterns (quiet and signalling, both signs) in the padding, which must never reach dst. */
std::vector<uint16_t> padded_bf16_source(const nhwc_shape &s, unsigned seed)
{
    const uint16_t nans[] = {0x7fff, 0xffc1, 0x7f81, 0xff81};
    const size_t count_nhwc = s.count_nhwc(), c_nhwc = (size_t)s.c_nhwc();
    std::vector<float> values = random_floats(count_nhwc, seed, -3.0f, 3.0f);
    std::vector<uint16_t> src(count_nhwc);
    for (size_t i = 0; i < count_nhwc; i++)
        src[i] = i % c_nhwc < (size_t)s.c ? reference_bf16(values[i]) : nans[i % 4];
    return src;
}

/* The launchers of one NHWC element type (uint16_t: BF16 bit patterns; float), with the names
 * their errors give. */
template <typename T> struct copy_launchers {
    const char *narrow_name;
    gan_status (*narrow)(cudaStream_t, int, int, int, int, const float *, T *);
    const char *widen_name;
    gan_status (*widen)(cudaStream_t, int, int, int, int, const T *, float, int, float, float *);
};

/* Empty tensors launch nothing (the pointers are not touched); negative sizes and fewer NHWC
 * channels than NCHW ones are refused, even for an empty tensor, naming the launcher and the
 * shape. */
template <typename T> void check_copy_arguments(const copy_launchers<T> &l)
{
    for (nhwc_shape s : {nhwc_shape{0, 3, 5}, nhwc_shape{2, 0, 5}, nhwc_shape{2, 3, 0}, nhwc_shape{0, 3, 5, 8},
                         nhwc_shape{2, 3, 0, 8}}) {
        CHECK_OK(l.narrow(nullptr, s.n, s.c, s.c_nhwc(), s.hw, nullptr, nullptr));
        CHECK_OK(l.widen(nullptr, s.n, s.c, s.c_nhwc(), s.hw, nullptr, 0.0f, GAN_FUSED_NONE, 0.0f, nullptr));
        CHECK_OK(l.widen(nullptr, s.n, s.c, s.c_nhwc(), s.hw, nullptr, 1.0f, GAN_FUSED_NONE, 0.0f, nullptr));
    }
    struct refused {
        int n, c, c_nhwc, hw;
        const char *why;
    };
    for (refused r : {refused{-1, 3, 4, 5, "negative shape"}, refused{2, -3, 4, 5, "negative shape"},
                      refused{2, 3, -4, 5, "negative shape"}, refused{2, 3, 4, -5, "negative shape"},
                      refused{2, 3, 2, 5, "c_nhwc below c in shape"}, refused{0, 3, 1, 0, "c_nhwc below c in shape"},
                      refused{2, 8, 4, 5, "c_nhwc below c in shape"}, refused{2, 3, 0, 0, "c_nhwc below c in shape"}}) {
        char want[160];
        std::snprintf(want, sizeof want, "%s: %s [n %d, c %d, c_nhwc %d, hw %d]", l.narrow_name, r.why, r.n, r.c,
                      r.c_nhwc, r.hw);
        CHECK_FAILS_WITH(l.narrow(nullptr, r.n, r.c, r.c_nhwc, r.hw, nullptr, nullptr), GAN_ERR_ARG, want);
        std::snprintf(want, sizeof want, "%s: %s [n %d, c %d, c_nhwc %d, hw %d]", l.widen_name, r.why, r.n, r.c,
                      r.c_nhwc, r.hw);
        for (float beta : {0.0f, 1.0f})
            CHECK_FAILS_WITH(l.widen(nullptr, r.n, r.c, r.c_nhwc, r.hw, nullptr, beta, GAN_FUSED_NONE, 0.0f, nullptr),
                             GAN_ERR_ARG, want);
    }
}

void test_bf16_conversions(void)
{
    /* ---- the rounding, through the identity layouts ---- */
    /* Random bit patterns: every exponent (subnormals, infinities and NaNs among them), every
     * mantissa. 4099 elements: 17 blocks, the last one partial. */
    uint32_t state = 0x9e3779b9u;
    auto next_bits = [&state]() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        return state;
    };
    {
        std::vector<float> src(4099);
        for (float &x : src)
            x = float_of_bits(next_bits());
        check_f32_to_bf16("f32_to_bf16_nhwc random bits", src);
    }
    /* Random values of every magnitude from 1e-30 to 1e30, both signs. */
    {
        std::vector<float> src(1001);
        for (size_t i = 0; i < src.size(); i++) {
            double unit = (double)(next_bits() >> 8) / 16777216.0;
            double magnitude = std::pow(10.0, -30.0 + 60.0 * (double)i / (double)(src.size() - 1)) * (1.0 + unit);
            src[i] = (float)(i % 2 ? -magnitude : magnitude);
        }
        check_f32_to_bf16("f32_to_bf16_nhwc magnitudes", src);
    }
    /* Exact ties (low half 0x8000) on even and odd mantissas, and one ulp either side of them. */
    std::vector<float> ties;
    for (int k = 0; k < 300; k++) {
        uint32_t upper = next_bits() & 0x7ffe0000u; /* positive, kept mantissa even */
        if ((upper >> 23) == 0xffu)
            upper &= ~0x00800000u;                   /* finite: exponent 0xFE at most */
        upper |= (uint32_t)(k & 1) << 16;            /* even and odd kept mantissas */
        upper |= (uint32_t)(k & 2) << 30;            /* both signs */
        ties.push_back(float_of_bits(upper | 0x8000u));
        ties.push_back(float_of_bits(upper | 0x7fffu));
        ties.push_back(float_of_bits(upper | 0x8001u));
    }
    check_f32_to_bf16("f32_to_bf16_nhwc ties", ties);
    /* Special values, one element each. */
    const uint32_t specials[] = {
        0x3f800000u, 0x3f808000u, 0x3f818000u, /* 1, ties below even and odd mantissas */
        0x3fff8000u, 0x3fffffffu, 0xbfff8000u, /* round up across an exponent: 2 - eps -> 2 */
        0x3f7fffffu, 0x007fffffu, 0x807fffffu, /* 1 - eps -> 1; largest subnormal -> smallest normal */
        0x7f7fffffu, 0xff7fffffu, 0x7f7f8000u, /* +-FLT_MAX and the tie above the largest bf16 -> inf */
        0x7f7f7fffu, 0x7f7e8000u,              /* ... and just below: stay finite */
        0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, /* +-inf, +-0 */
        0x00000001u, 0x80000001u, 0x00008000u, 0x00018000u, 0x00010000u, 0x0000ffffu, /* subnormals */
        0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7fbf0000u, /* NaNs */
    };
    std::vector<float> all_specials;
    for (uint32_t bits : specials) {
        char name[64];
        std::snprintf(name, sizeof name, "f32_to_bf16_nhwc of 0x%08x", (unsigned)bits);
        check_f32_to_bf16(name, {float_of_bits(bits)});
        all_specials.push_back(float_of_bits(bits));
    }

    /* Every bf16 pattern there and back, in both identity layouts (256 full blocks) and through
     * the tiles (64 of them). */
    check_every_bf16_pattern(nhwc_shape{65536, 1, 1});
    check_every_bf16_pattern(nhwc_shape{1, 65536, 1});
    check_every_bf16_pattern(nhwc_shape{2, 256, 128});

    /* Widening with accumulation, beta 0, 1 and 0.5, over odd counts in both identity layouts. */
    for (size_t count : {(size_t)1, (size_t)255, (size_t)257, (size_t)1237}) {
        std::vector<float> values = random_floats(count, 300 + (unsigned)count, -3.0f, 3.0f);
        std::vector<uint16_t> src(count);
        for (size_t i = 0; i < count; i++)
            src[i] = reference_bf16(values[i]);
        std::vector<float> old = random_floats(count + 2, 400 + (unsigned)count, -2.0f, 2.0f);
        for (float beta : {0.0f, 1.0f, 0.5f}) {
            check_bf16_nhwc_to_f32("bf16_nhwc_to_f32", nhwc_shape{(int)count, 1, 1}, src, beta, old);
            check_bf16_nhwc_to_f32("bf16_nhwc_to_f32", nhwc_shape{1, (int)count, 1}, src, beta, old);
        }
    }

    check_copy_arguments<uint16_t>(
        {"f32_to_bf16_nhwc", gan_cuda_f32_to_bf16_nhwc, "bf16_nhwc_to_f32", gan_cuda_bf16_nhwc_to_f32});
    /* c == 0 < c_nhwc is a shape like any other: the narrowing writes all of dst [n, hw, c_nhwc] as
     * +0 over garbage (src, of no elements, is not read: nullptr), the widening has nothing to
     * write (nothing launched: nullptr). */
    check_f32_to_bf16_nhwc("f32_to_bf16_nhwc of no channels", nhwc_shape{2, 0, 5, 8}, std::vector<float>());
    check_f32_to_bf16_nhwc("f32_to_bf16_nhwc of no channels", nhwc_shape{3, 0, 70, 40}, std::vector<float>());
    CHECK_OK(gan_cuda_bf16_nhwc_to_f32(nullptr, 2, 0, 8, 5, nullptr, 0.0f, GAN_FUSED_NONE, 0.0f, nullptr));
    CHECK_OK(gan_cuda_bf16_nhwc_to_f32(nullptr, 2, 0, 8, 5, nullptr, 0.5f, GAN_FUSED_NONE, 0.0f, nullptr));

    /* ---- the layout change, against the reference transpose ---- */
    /* Image layers (c = 3: partial tiles along c), plain conversions (c = 1, hw = 1), whole
     * tiles (multiples of 32), one past a tile (c = 33, hw = 65), a filter w [k, c, r s] (k as n),
     * and a larger one. Then the same with the channels padded (the fourth number, c_nhwc): the
     * image layers' c = 1 and 3 to 8 (one image and 5; a 64 x 64 image), 3 to 16, c = 33 to 40
     * (the padding starting in the second tile along c) and 30 to 40 (in the first, and the whole
     * second tile padding), and hw = 1 and c = 1, which are plain conversions only unpadded. */
    const nhwc_shape shapes[] = {
        {1, 3, 100},     {3, 3, 1024},   {3, 1, 65},    {1, 1, 1000},    {3, 70, 1},      {1, 100, 1},
        {1, 32, 32},     {3, 64, 96},    {1, 33, 65},   {3, 65, 33},     {2, 2, 2},       {64, 3, 16},
        {2, 100, 70},    {1, 1, 100, 8}, {5, 1, 65, 8}, {1, 3, 100, 8},  {5, 3, 65, 8},   {2, 3, 70, 16},
        {1, 33, 65, 40}, {3, 33, 40, 40}, {2, 30, 50, 40}, {1, 3, 1, 8}, {5, 3, 1, 8},    {4, 1, 1, 8},
        {3, 70, 1, 72},  {1, 3, 4096, 8},
    };
    unsigned seed = 500;
    for (const nhwc_shape &s : shapes) {
        const size_t count = s.count(), count_nhwc = s.count_nhwc();
        std::vector<float> src = mixed_floats(count, seed++);
        /* the special values at the front, through the tiles too */
        for (size_t i = 0; i < all_specials.size() && i < count; i++)
            src[i] = all_specials[i];
        check_f32_to_bf16_nhwc("f32_to_bf16_nhwc", s, src);

        /* widening of finite bf16 values, over NaN (beta 0) or onto old values (beta 1, 0.5), from
         * a source whose padding holds NaN patterns */
        std::vector<uint16_t> bf16 = padded_bf16_source(s, seed++);
        std::vector<float> old = random_floats(count + 2, seed++, -2.0f, 2.0f);
        for (float beta : {0.0f, 1.0f, 0.5f})
            check_bf16_nhwc_to_f32("bf16_nhwc_to_f32", s, bf16, beta, old);

        /* f32 NCHW -> bf16 NHWC -> f32 NCHW is the plain rounding of each element, in place */
        std::vector<uint16_t> narrow(count_nhwc, 0xffff);
        std::vector<float> round_trip(count + 2, 7.0f), want(count + 2, 7.0f);
        CHECK_OK(gan_cuda_f32_to_bf16_nhwc(nullptr, s.n, s.c, s.c_nhwc(), s.hw, src.data(), narrow.data()));
        CHECK_OK(gan_cuda_bf16_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, narrow.data(), 0.0f, GAN_FUSED_NONE,
                                           0.0f, round_trip.data()));
        for (size_t i = 0; i < count; i++)
            want[i] = float_of_bits((uint32_t)expected_bf16(src[i]) << 16);
        char name[96];
        std::snprintf(name, sizeof name, "f32 -> bf16 nhwc -> f32 [n %d, c %d, c_nhwc %d, hw %d]", s.n, s.c,
                      s.c_nhwc(), s.hw);
        check_identical(name, round_trip, want); /* the 2 guards included */
    }

    /* A grid smaller than the work, as the launchers' cap makes it for large tensors: each block
     * then loops over several tiles (and must not overwrite a tile another thread still reads),
     * or over several elements of a plain conversion. The kernels directly, on 3 blocks; padded
     * shapes among them (the image layer's c = 3 to 8 over 64 tiles, c = 33 to 40, hw = 1, c = 1). */
    for (nhwc_shape s : {nhwc_shape{2, 100, 70}, nhwc_shape{3, 33, 65}, nhwc_shape{1, 1, 2000},
                         nhwc_shape{2, 3, 1000, 8}, nhwc_shape{3, 33, 65, 40}, nhwc_shape{7, 3, 1, 8},
                         nhwc_shape{3, 1, 700, 8}}) {
        const size_t count = s.count(), count_nhwc = s.count_nhwc();
        std::vector<float> src = mixed_floats(count, seed++);
        std::vector<uint16_t> narrow(count_nhwc + 3, 0xabcd), narrow_want(count_nhwc + 3, 0xabcd);
        std::fill(narrow.begin(), narrow.begin() + (ptrdiff_t)count_nhwc, (uint16_t)0xffff);
        gan_emu_launch(gan_f32_to_nhwc_kernel<__nv_bfloat16>, dim3(3), dim3(GAN_BLOCK_THREADS), nullptr,
                       (size_t)s.n, (size_t)s.c, (size_t)s.c_nhwc(), (size_t)s.hw, (const float *)src.data(),
                       reinterpret_cast<__nv_bfloat16 *>(narrow.data()));
        CHECK(cudaGetLastError() == cudaSuccess);
        std::vector<float> moved = reference_to_nhwc(s, src);
        for (size_t i = 0; i < count_nhwc; i++)
            narrow_want[i] = i % (size_t)s.c_nhwc() < (size_t)s.c ? expected_bf16(moved[i]) : (uint16_t)0x0000u;
        CHECK_MSG(narrow == narrow_want, "f32_to_bf16_nhwc kernel on 3 blocks [n %d, c %d, c_nhwc %d, hw %d]: wrong",
                  s.n, s.c, s.c_nhwc(), s.hw);

        std::vector<uint16_t> bf16 = padded_bf16_source(s, seed++);
        std::vector<float> old = random_floats(count + 2, seed++, -2.0f, 2.0f), wide = old, want = old;
        gan_emu_launch(gan_nhwc_to_f32_kernel<__nv_bfloat16>, dim3(3), dim3(GAN_BLOCK_THREADS), nullptr,
                       (size_t)s.n, (size_t)s.c, (size_t)s.c_nhwc(), (size_t)s.hw,
                       reinterpret_cast<const __nv_bfloat16 *>(bf16.data()), 0.5f, GAN_FUSED_NONE, 0.0f, wide.data());
        CHECK(cudaGetLastError() == cudaSuccess);
        std::vector<uint16_t> bf16_nchw = reference_to_nchw(s, bf16);
        for (size_t i = 0; i < count; i++) {
            float scaled = 0.5f * old[i];
            want[i] = scaled + float_of_bits((uint32_t)bf16_nchw[i] << 16);
        }
        char name[96];
        std::snprintf(name, sizeof name, "bf16_nhwc_to_f32 kernel on 3 blocks [n %d, c %d, c_nhwc %d, hw %d]", s.n,
                      s.c, s.c_nhwc(), s.hw);
        check_identical(name, wide, want);
    }
}

/* ---- float -> float NHWC and back (the TF32 mode's copies: kernels/convert.cuh with T = float),
 * against the reference transpose, on bit patterns ------------------------------------------- */

uint32_t bits_of(float x)
{
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return bits;
}

std::vector<uint32_t> bits_of(const std::vector<float> &v)
{
    std::vector<uint32_t> bits(v.size());
    if (!v.empty()) /* an empty vector's data() may be null, which memcpy must not get */
        std::memcpy(bits.data(), v.data(), v.size() * sizeof(float));
    return bits;
}

/* Bit patterns no arithmetic may touch on the way: NaNs with payloads (quiet and signalling,
 * both signs), infinities, subnormals, -0 and +0. */
const uint32_t float_specials[] = {
    0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0xffedcba9u, /* quiet NaNs, with payloads */
    0x7f800001u, 0xff800001u, 0x7fa5a5a5u, 0xffbfffffu, /* signalling NaNs */
    0x7fffffffu, 0xffffffffu,                           /* the all-ones payloads */
    0x7f800000u, 0xff800000u,                           /* +-inf */
    0x00000001u, 0x80000001u, 0x007fffffu, 0x807fffffu, 0x00400000u, /* subnormals */
    0x80000000u, 0x00000000u,                           /* -0, +0 */
    0x7f7fffffu, 0x00800000u, 0x3f800000u,              /* FLT_MAX, FLT_MIN, 1 */
};

/* n random 32-bit patterns (every exponent: NaNs, infinities and subnormals among them), the
 * specials above at the front. */
std::vector<float> random_bit_floats(size_t count, unsigned seed)
{
    std::vector<float> v(count);
    uint32_t state = 0x2545f491u ^ (seed * 0x9e3779b9u);
    for (size_t i = 0; i < count; i++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        v[i] = float_of_bits(state);
    }
    const size_t specials = sizeof float_specials / sizeof float_specials[0];
    for (size_t i = 0; i < specials && i < count; i++)
        v[i] = float_of_bits(float_specials[i]);
    return v;
}

/* got == want pattern for pattern; on a difference, the first one and how many differ. */
void check_same_bits(const char *name, const std::vector<uint32_t> &got, const std::vector<uint32_t> &want)
{
    CHECK_MSG(got.size() == want.size(), "%s: sizes %zu and %zu", name, got.size(), want.size());
    size_t first = got.size(), differing = 0;
    for (size_t i = 0; i < got.size() && i < want.size(); i++)
        if (got[i] != want[i]) {
            if (differing++ == 0)
                first = i;
        }
    if (differing == 0) {
        test_checks_passed++;
        return;
    }
    test_fail_at(__FILE__, __LINE__, "%s: %zu of %zu elements differ, the first %zu: kernel 0x%08x, reference 0x%08x",
                 name, differing, got.size(), first, (unsigned)got[first], (unsigned)want[first]);
}

/* The narrowing of `src` [n, c, hw] into dst [n, hw, c_nhwc] full of a NaN pattern (which the
 * padding must not keep) with 3 guards beyond: the reference transpose of src's bits, the padding
 * exactly +0.0f (bits 0x00000000), the guards untouched. */
void check_f32_to_f32_nhwc(const char *name, nhwc_shape s, const std::vector<float> &src)
{
    const size_t count_nhwc = s.count_nhwc();
    const uint32_t garbage = 0x7fa00bad, guard = 0x12345678;
    std::vector<float> got(count_nhwc + 3, float_of_bits(guard));
    std::fill(got.begin(), got.begin() + (ptrdiff_t)count_nhwc, float_of_bits(garbage));
    CHECK_OK(gan_cuda_f32_to_f32_nhwc(nullptr, s.n, s.c, s.c_nhwc(), s.hw, src.data(), got.data()));
    std::vector<uint32_t> want = reference_to_nhwc(s, bits_of(src)); /* padding: uint32_t() = +0.0f */
    want.resize(count_nhwc + 3, guard);
    char full_name[160];
    std::snprintf(full_name, sizeof full_name, "%s [n %d, c %d, c_nhwc %d, hw %d]", name, s.n, s.c, s.c_nhwc(),
                  s.hw);
    check_same_bits(full_name, bits_of(got), want);
}

/* A float NHWC source [n, hw, c_nhwc]: `values` (n hw c elements, in NHWC order) in the first c
 * channels, NaN patterns in the padding, which must never reach dst. */
std::vector<float> padded_f32_source(const nhwc_shape &s, const std::vector<float> &values)
{
    const float nans[] = {float_of_bits(0x7fa0cafeu), float_of_bits(0xffc0ffeeu), float_of_bits(0x7f800001u),
                          float_of_bits(0xffffffffu)};
    const size_t c_nhwc = (size_t)s.c_nhwc();
    std::vector<float> src(s.count_nhwc());
    size_t next = 0;
    for (size_t i = 0; i < src.size(); i++)
        src[i] = i % c_nhwc < (size_t)s.c ? values[next++] : nans[i % 4];
    return src;
}

/* The widening of `src` [n, hw, c_nhwc] into dst [n, c, hw] that held `old` (n c hw elements
 * and 2 guards; at beta 0 the n c hw are a NaN pattern instead, which must not leak): src's bits
 * at the reference-transposed place (beta 0), or gan_mul_rn(beta, old) + src, the same two float
 * operations here (the product rounded, then the sum). The guards must come back untouched. */
void check_f32_nhwc_to_f32(const char *name, nhwc_shape s, const std::vector<float> &src, float beta,
                           const std::vector<float> &old)
{
    const size_t count = s.count();
    CHECK(src.size() == s.count_nhwc() && old.size() == count + 2);
    std::vector<float> got = old;
    if (beta == 0.0f)
        std::fill(got.begin(), got.begin() + (ptrdiff_t)count, float_of_bits(0xffc0dead));
    CHECK_OK(gan_cuda_f32_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, src.data(), beta, GAN_FUSED_NONE, 0.0f,
                                      got.data()));
    std::vector<uint32_t> moved = reference_to_nchw(s, bits_of(src));
    std::vector<uint32_t> want = bits_of(old);
    for (size_t i = 0; i < count; i++)
        want[i] = beta == 0.0f ? moved[i] : bits_of(gan_mul_rn(beta, old[i]) + float_of_bits(moved[i]));
    char full_name[160];
    std::snprintf(full_name, sizeof full_name, "%s [n %d, c %d, c_nhwc %d, hw %d] beta %g", name, s.n, s.c,
                  s.c_nhwc(), s.hw, (double)beta);
    check_same_bits(full_name, bits_of(got), want); /* the guards included */
}

void test_f32_nhwc_copies(void)
{
    /* Plain copies (no padding, c == 1 or hw == 1: the layouts agree; one element per thread),
     * tiles with partial edges (hw = 7 x 7 and 33 x 5, c = 40: one full tile and a part along c;
     * c = 33, hw = 65), whole tiles, and the image layers padded: c = 1 and 3 to 4 and 8, hw = 1
     * and c = 1 among them (plain only unpadded), c = 33 and 37 to 40 (the padding in the second
     * tile along c), 30 to 40. */
    const nhwc_shape shapes[] = {
        {1, 1, 1000},   {3, 70, 1},     {5, 1, 65},      {1, 100, 1},     {1, 1, 1},        {2, 40, 49},
        {3, 40, 165},   {1, 33, 65},    {2, 2, 2},       {1, 32, 32},     {3, 64, 96},      {64, 3, 16},
        {1, 1, 49, 4},  {2, 1, 49, 8},  {3, 3, 49, 4},   {2, 3, 165, 8},  {1, 3, 1024, 4},  {1, 3, 1, 4},
        {5, 3, 1, 8},   {4, 1, 1, 4},   {3, 1, 700, 8},  {1, 33, 49, 40}, {2, 37, 165, 40}, {2, 30, 49, 40},
        {3, 70, 1, 72},
    };
    unsigned seed = 900;
    for (const nhwc_shape &s : shapes) {
        const size_t count = s.count();
        /* the narrowing of every bit pattern, specials at the front */
        std::vector<float> src = random_bit_floats(count, seed++);
        check_f32_to_f32_nhwc("f32_to_f32_nhwc", s, src);

        /* the widening: at beta 0 of every bit pattern (kept, NaN payloads included), at beta 1
         * and 0.5 of values in [-3, 3) (the specials at the front: -0, subnormals and infinities
         * add as floats do; the NaNs left out, whose payload after arithmetic is the hardware's),
         * onto old values; NaN patterns in the padding */
        std::vector<float> old = random_floats(count + 2, seed++, -2.0f, 2.0f);
        std::vector<float> nhwc_bits = reference_to_nhwc(nhwc_shape{s.n, s.c, s.hw}, src);
        check_f32_nhwc_to_f32("f32_nhwc_to_f32", s, padded_f32_source(s, nhwc_bits), 0.0f, old);
        std::vector<float> values = random_floats(count, seed++, -3.0f, 3.0f);
        const uint32_t finite_specials[] = {0x80000000u, 0x00000001u, 0x807fffffu, 0x7f800000u, 0xff800000u};
        for (size_t i = 0; i < 5 && i < count; i++)
            values[i] = float_of_bits(finite_specials[i]);
        std::vector<float> wide_src = padded_f32_source(s, values);
        for (float beta : {1.0f, 0.5f})
            check_f32_nhwc_to_f32("f32_nhwc_to_f32", s, wide_src, beta, old);

        /* NCHW -> NHWC -> NCHW: the same bits, NaN payloads included; the padding between */
        std::vector<float> nhwc(s.count_nhwc(), float_of_bits(0x7fa00bad));
        std::vector<float> back(count + 2, float_of_bits(0xffc0dead));
        CHECK_OK(gan_cuda_f32_to_f32_nhwc(nullptr, s.n, s.c, s.c_nhwc(), s.hw, src.data(), nhwc.data()));
        CHECK_OK(gan_cuda_f32_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, nhwc.data(), 0.0f, GAN_FUSED_NONE, 0.0f,
                                          back.data()));
        std::vector<float> want = src;
        want.push_back(float_of_bits(0xffc0dead));
        want.push_back(float_of_bits(0xffc0dead));
        char name[96];
        std::snprintf(name, sizeof name, "f32 -> f32 nhwc -> f32 [n %d, c %d, c_nhwc %d, hw %d]", s.n, s.c,
                      s.c_nhwc(), s.hw);
        check_same_bits(name, bits_of(back), bits_of(want)); /* the 2 guards included */
    }

    /* c == 0 < c_nhwc: the narrowing writes all of dst as +0.0f over garbage (src not read), the
     * widening has nothing to write (nothing launched: nullptr). */
    for (nhwc_shape s : {nhwc_shape{2, 0, 5, 8}, nhwc_shape{2, 0, 49, 4}, nhwc_shape{3, 0, 70, 40}}) {
        check_f32_to_f32_nhwc("f32_to_f32_nhwc of no channels", s, std::vector<float>());
        CHECK_OK(gan_cuda_f32_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, nullptr, 0.0f, GAN_FUSED_NONE, 0.0f,
                                          nullptr));
        CHECK_OK(gan_cuda_f32_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, nullptr, 0.5f, GAN_FUSED_NONE, 0.0f,
                                          nullptr));
    }

    /* A grid smaller than the work, as the launchers' cap makes it for large tensors: the kernels
     * directly on 3 blocks, so that each block loops over several tiles (8 to 64 of them here) or
     * several elements of a plain copy. */
    for (nhwc_shape s : {nhwc_shape{2, 40, 49}, nhwc_shape{3, 33, 165, 40}, nhwc_shape{2, 3, 1000, 4},
                         nhwc_shape{7, 3, 1, 8}, nhwc_shape{1, 1, 2000}, nhwc_shape{3, 1, 700, 4}}) {
        const size_t count = s.count(), count_nhwc = s.count_nhwc();
        char name[128];
        std::vector<float> src = random_bit_floats(count, seed++);
        std::vector<float> narrow(count_nhwc + 3, float_of_bits(0x12345678));
        std::fill(narrow.begin(), narrow.begin() + (ptrdiff_t)count_nhwc, float_of_bits(0x7fa00bad));
        gan_emu_launch(gan_f32_to_nhwc_kernel<float>, dim3(3), dim3(GAN_BLOCK_THREADS), nullptr, (size_t)s.n,
                       (size_t)s.c, (size_t)s.c_nhwc(), (size_t)s.hw, (const float *)src.data(), narrow.data());
        CHECK(cudaGetLastError() == cudaSuccess);
        std::vector<uint32_t> narrow_want = reference_to_nhwc(s, bits_of(src));
        narrow_want.resize(count_nhwc + 3, 0x12345678u);
        std::snprintf(name, sizeof name, "f32_to_f32_nhwc kernel on 3 blocks [n %d, c %d, c_nhwc %d, hw %d]", s.n,
                      s.c, s.c_nhwc(), s.hw);
        check_same_bits(name, bits_of(narrow), narrow_want);

        std::vector<float> wide_src = padded_f32_source(s, random_floats(count, seed++, -3.0f, 3.0f));
        std::vector<float> old = random_floats(count + 2, seed++, -2.0f, 2.0f), wide = old;
        gan_emu_launch(gan_nhwc_to_f32_kernel<float>, dim3(3), dim3(GAN_BLOCK_THREADS), nullptr, (size_t)s.n,
                       (size_t)s.c, (size_t)s.c_nhwc(), (size_t)s.hw, (const float *)wide_src.data(), 0.5f,
                       GAN_FUSED_NONE, 0.0f, wide.data());
        CHECK(cudaGetLastError() == cudaSuccess);
        std::vector<uint32_t> moved = reference_to_nchw(s, bits_of(wide_src)), want = bits_of(old);
        for (size_t i = 0; i < count; i++)
            want[i] = bits_of(gan_mul_rn(0.5f, old[i]) + float_of_bits(moved[i]));
        std::snprintf(name, sizeof name, "f32_nhwc_to_f32 kernel on 3 blocks [n %d, c %d, c_nhwc %d, hw %d]", s.n,
                      s.c, s.c_nhwc(), s.hw);
        check_same_bits(name, bits_of(wide), want);
    }

    check_copy_arguments<float>({"f32_to_f32_nhwc", gan_cuda_f32_to_f32_nhwc, "f32_nhwc_to_f32", gan_cuda_f32_nhwc_to_f32});
}

/* ---- the activation epilogue of the widenings and the sub-pixel gather ---------------------- */

/* The activations an epilogue takes (LeakyReLU at slope 0 too: -0 for x < 0 where ReLU gives +0),
 * and none. */
struct epilogue_act {
    int act;
    float slope;
    const char *name;
};
const epilogue_act epilogue_acts[] = {
    {GAN_FUSED_NONE, 0.0f, "none"}, {GAN_ACT_RELU, 0.0f, "relu"}, {GAN_ACT_LRELU, 0.2f, "lrelu 0.2"},
    {GAN_ACT_LRELU, 0.0f, "lrelu 0"}, {GAN_ACT_TANH, 0.0f, "tanh"}, {GAN_ACT_SIGMOID, 0.0f, "sigmoid"},
};

/* count values in [-4, 4), every fifth one a special: zeros of both signs, large magnitudes (where
 * tanh and sigmoid saturate, and beyond bf16's range), infinities, subnormals, a NaN. */
std::vector<float> epilogue_values(size_t count, unsigned seed)
{
    const float specials[] = {0.0f, -0.0f, 1e30f, -1e30f, 3e38f, -3e38f, INFINITY, -INFINITY, 1e-40f, -1e-40f,
                              20.0f, -20.0f, -100.0f, std::nanf("")};
    const size_t n_specials = sizeof specials / sizeof specials[0];
    std::vector<float> v = random_floats(count, seed, -4.0f, 4.0f);
    for (size_t i = 0; i < count; i += 5)
        v[i] = specials[i / 5 % n_specials];
    return v;
}

/* The first `count` elements of `v` after the emulated gan_cuda_activation_forward, in place (none:
 * v as it is); the elements beyond (guards) untouched. That launcher shares its per-element switch
 * with the epilogues, so it is checked here against the CPU backend's activation_forward on the
 * same values: a wrong activation in the shared code fails these checks too. */
std::vector<float> activation_after(const char *name, std::vector<float> v, size_t count, epilogue_act a)
{
    if (a.act == GAN_FUSED_NONE)
        return v;
    std::vector<float> on_cpu(count);
    CHECK_OK(cpu->activation_forward(cpu, (gan_activation)a.act, a.slope, count, v.data(), on_cpu.data()));
    CHECK_OK(gan_cuda_activation_forward(nullptr, (gan_activation)a.act, a.slope, count, v.data(), v.data()));
    char full_name[224];
    std::snprintf(full_name, sizeof full_name, "%s: activation_forward against the CPU backend's", name);
    check_same_bits(full_name, bits_of(std::vector<float>(v.begin(), v.begin() + (ptrdiff_t)count)),
                    bits_of(on_cpu));
    return v;
}

/* One widening launcher, whatever its element type: src is the NHWC source as bytes. */
typedef gan_status (*widen_launcher)(const nhwc_shape &s, const void *src, float beta, int act, float slope,
                                     float *dst);
gan_status widen_bf16(const nhwc_shape &s, const void *src, float beta, int act, float slope, float *dst)
{
    return gan_cuda_bf16_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, (const uint16_t *)src, beta, act, slope,
                                     dst);
}
gan_status widen_f32(const nhwc_shape &s, const void *src, float beta, int act, float slope, float *dst)
{
    return gan_cuda_f32_nhwc_to_f32(nullptr, s.n, s.c, s.c_nhwc(), s.hw, (const float *)src, beta, act, slope, dst);
}

/* For each activation: the widening of `src` with the epilogue into a NaN pattern (beta 0: not read)
 * must be bit for bit the plain widening followed by gan_cuda_activation_forward on the same
 * buffer; onto old values at beta 0.5, gan_mul_rn(0.5, old) + that activated value (activated
 * before the add). Two guards after dst stay as they were. */
void check_widening_epilogue(const char *name, widen_launcher widen, nhwc_shape s, const void *src, unsigned seed)
{
    const size_t count = s.count();
    const float nan_pattern = float_of_bits(0xffc0dead), guard = float_of_bits(0x12345678);
    std::vector<float> blank(count + 2, nan_pattern);
    blank[count] = blank[count + 1] = guard;
    std::vector<float> plain = blank;
    CHECK_OK(widen(s, src, 0.0f, GAN_FUSED_NONE, 0.0f, plain.data()));
    std::vector<float> old = random_floats(count + 2, seed, -2.0f, 2.0f);
    old[count] = old[count + 1] = guard;
    for (const epilogue_act &a : epilogue_acts) {
        char full_name[192];
        std::snprintf(full_name, sizeof full_name, "%s [n %d, c %d, c_nhwc %d, hw %d] with %s", name, s.n, s.c,
                      s.c_nhwc(), s.hw, a.name);
        std::vector<float> want = activation_after(full_name, plain, count, a), got = blank;
        CHECK_OK(widen(s, src, 0.0f, a.act, a.slope, got.data()));
        check_same_bits(full_name, bits_of(got), bits_of(want));

        std::vector<float> accumulated = old, accumulated_want = old;
        for (size_t i = 0; i < count; i++)
            accumulated_want[i] = gan_mul_rn(0.5f, old[i]) + want[i];
        CHECK_OK(widen(s, src, 0.5f, a.act, a.slope, accumulated.data()));
        std::strncat(full_name, ", beta 0.5", sizeof full_name - std::strlen(full_name) - 1);
        check_same_bits(full_name, bits_of(accumulated), bits_of(accumulated_want));
    }
}

/* The sub-pixel gather of y2 [n, 4 ci, h_out + 1, w_out + 1] (values as epilogue_values) with each
 * epilogue, against the plain gather followed by gan_cuda_activation_forward; dx full of a NaN
 * pattern before (every element must be written), two guards after. */
void check_gather_epilogue(int n, int ci, int h_out, int w_out, unsigned seed)
{
    const size_t y2_count = (size_t)n * 4 * ci * (h_out + 1) * (w_out + 1);
    const size_t dx_count = (size_t)n * ci * 2 * h_out * 2 * w_out;
    std::vector<float> y2 = epilogue_values(y2_count, seed);
    std::vector<float> blank(dx_count + 2, float_of_bits(0xffc0dead));
    blank[dx_count] = blank[dx_count + 1] = float_of_bits(0x12345678);
    std::vector<float> plain = blank;
    CHECK_OK(gan_cuda_subpixel_gather(nullptr, n, ci, h_out, w_out, y2.data(), GAN_FUSED_NONE, 0.0f, plain.data()));
    for (const epilogue_act &a : epilogue_acts) {
        std::vector<float> got = blank;
        CHECK_OK(gan_cuda_subpixel_gather(nullptr, n, ci, h_out, w_out, y2.data(), a.act, a.slope, got.data()));
        char name[128];
        std::snprintf(name, sizeof name, "subpixel_gather [n %d, ci %d, y %dx%d] with %s", n, ci, h_out, w_out,
                      a.name);
        check_same_bits(name, bits_of(got), bits_of(activation_after(name, plain, dx_count, a)));
    }
}

void test_activation_epilogues(void)
{
    /* Tiles with padding (the image layers: c 3 to 8 for BF16, to 4 for TF32, 7 x 7), tiles
     * without (c 40, hw 33: a full tile and a part along c, two along hw), and the plain paths
     * (c == c_nhwc == 1; hw == 1). */
    const nhwc_shape bf16_shapes[] = {{2, 3, 49, 8}, {2, 40, 33}, {3, 1, 65}, {3, 70, 1}};
    const nhwc_shape f32_shapes[] = {{2, 3, 49, 4}, {2, 40, 33}, {3, 1, 65}, {3, 70, 1}};
    unsigned seed = 1300;
    for (const nhwc_shape &s : bf16_shapes) {
        /* bf16 patterns of the values, rounded as CUDA does (3e38 to infinity, 1e-40 kept a
         * subnormal), NaN patterns in the padding */
        std::vector<float> values = padded_f32_source(s, epilogue_values(s.count(), seed++));
        std::vector<uint16_t> src(values.size());
        for (size_t i = 0; i < values.size(); i++)
            src[i] = expected_bf16(values[i]);
        check_widening_epilogue("bf16_nhwc_to_f32", widen_bf16, s, src.data(), seed++);
    }
    for (const nhwc_shape &s : f32_shapes) {
        std::vector<float> src = padded_f32_source(s, epilogue_values(s.count(), seed++));
        check_widening_epilogue("f32_nhwc_to_f32", widen_f32, s, src.data(), seed++);
    }
    check_gather_epilogue(2, 3, 4, 4, seed++); /* a small DCGAN layer, 8x8 -> 4x4 */
    check_gather_epilogue(3, 2, 3, 5, seed++); /* non-square, batch 3 */

    /* An act that is neither a gan_activation nor GAN_FUSED_NONE is refused, naming the launcher,
     * for an empty shape too; nothing is launched (dst keeps its pattern). Real buffers, so that a
     * launcher that accepted it would fail the check rather than crash. */
    std::vector<uint16_t> bf16_src((size_t)2 * 5 * 8, 0x3f80);  /* [2, 5, 8] */
    std::vector<float> f32_src((size_t)2 * 5 * 4, -1.0f);       /* [2, 5, 4] */
    std::vector<float> y2((size_t)2 * 4 * 3 * 5 * 5, -1.0f);      /* [2, 12, 5, 5] */
    const float untouched = float_of_bits(0x7fa00bad);
    for (int act : {7, -2, (int)GAN_ACT_SIGMOID + 1}) {
        for (int n : {0, 2}) {
            char want[96];
            std::vector<float> dst((size_t)2 * 3 * 8 * 8, untouched); /* the largest dst: dx [2, 3, 8, 8] */
            std::snprintf(want, sizeof want, "bf16_nhwc_to_f32: unknown activation %d", act);
            CHECK_FAILS_WITH(gan_cuda_bf16_nhwc_to_f32(nullptr, n, 3, 8, 5, bf16_src.data(), 0.0f, act, 0.2f,
                                                       dst.data()),
                             GAN_ERR_ARG, want);
            std::snprintf(want, sizeof want, "f32_nhwc_to_f32: unknown activation %d", act);
            CHECK_FAILS_WITH(gan_cuda_f32_nhwc_to_f32(nullptr, n, 3, 4, 5, f32_src.data(), 0.5f, act, 0.2f, dst.data()),
                             GAN_ERR_ARG, want);
            std::snprintf(want, sizeof want, "subpixel_gather: unknown activation %d", act);
            CHECK_FAILS_WITH(gan_cuda_subpixel_gather(nullptr, n, 3, 4, 4, y2.data(), act, 0.2f, dst.data()),
                             GAN_ERR_ARG, want);
            CHECK_MSG(std::all_of(dst.begin(), dst.end(), [&](float x) { return bits_of(x) == bits_of(untouched); }),
                      "a launcher wrote dst with the unknown activation %d (n %d)", act, n);
        }
    }
}

} /* namespace */

/* The paired narrowings (a convolution pass's two input copies in one launch): each tensor's
 * bits are its single launcher's, over garbage, with the 3 elements after each untouched; either
 * side empty (no images, no channels: all padding, no positions); a bad shape refused, naming the
 * launcher and the tensor. */
template <typename T>
void check_narrow_pairs(const char *name,
                        gan_status (*pair)(cudaStream_t, const gan_nhwc_copy *, const gan_nhwc_copy *),
                        gan_status (*single)(cudaStream_t, int, int, int, int, const float *, T *), unsigned seed)
{
    const nhwc_shape pairs[][2] = {
        {{2, 3, 165, 8}, {16, 8, 9}},   /* a padded image layer's x, a filter (KRSC: n = c_out, hw = kernel) */
        {{3, 70, 1}, {2, 37, 165, 40}}, /* a plain copy, tiles with padding */
        {{0, 3, 5}, {1, 33, 65}},       /* nothing in the first */
        {{2, 40, 49}, {2, 0, 5, 8}},    /* the second all padding */
        {{1, 1, 2000}, {64, 3, 16, 4}}, /* G's last filter padded */
        {{4, 64, 256}, {2, 3, 0}},      /* nothing in the second */
    };
    for (const auto &p : pairs) {
        std::vector<float> src[2];
        std::vector<T> got[2], want[2];
        gan_nhwc_copy copies[2];
        for (int i = 0; i < 2; i++) {
            const nhwc_shape &sh = p[i];
            src[i] = random_bit_floats(sh.count(), seed++);
            got[i].resize(sh.count_nhwc() + 3);
            std::memset(got[i].data(), 0xa5, got[i].size() * sizeof(T));
            want[i] = got[i];
            CHECK_OK(single(nullptr, sh.n, sh.c, sh.c_nhwc(), sh.hw, src[i].data(), want[i].data()));
            copies[i] = gan_nhwc_copy{sh.n, sh.c, sh.c_nhwc(), sh.hw, src[i].data(), got[i].data()};
        }
        CHECK_OK(pair(nullptr, &copies[0], &copies[1]));
        for (int i = 0; i < 2; i++)
            CHECK_MSG(std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(T)) == 0,
                      "%s: tensor %d [n %d, c %d, c_nhwc %d, hw %d] is not the single launcher's", name, i, p[i].n,
                      p[i].c, p[i].c_nhwc(), p[i].hw);
    }
    const gan_nhwc_copy good = {2, 3, 4, 5, nullptr, nullptr}, empty = {0, 3, 4, 5, nullptr, nullptr};
    CHECK_OK(pair(nullptr, &empty, &empty));
    const gan_nhwc_copy negative = {-1, 3, 4, 5, nullptr, nullptr}, narrow = {2, 8, 4, 5, nullptr, nullptr};
    char want[160];
    std::snprintf(want, sizeof want, "%s: negative shape of the first tensor [n -1, c 3, c_nhwc 4, hw 5]", name);
    CHECK_FAILS_WITH(pair(nullptr, &negative, &good), GAN_ERR_ARG, want);
    std::snprintf(want, sizeof want, "%s: c_nhwc below c in shape of the second tensor [n 2, c 8, c_nhwc 4, hw 5]",
                  name);
    CHECK_FAILS_WITH(pair(nullptr, &good, &narrow), GAN_ERR_ARG, want);
}

void test_nhwc_pairs(void)
{
    check_narrow_pairs<uint16_t>("f32_to_bf16_nhwc_pair", gan_cuda_f32_to_bf16_nhwc_pair, gan_cuda_f32_to_bf16_nhwc,
                                 3100);
    check_narrow_pairs<float>("f32_to_f32_nhwc_pair", gan_cuda_f32_to_f32_nhwc_pair, gan_cuda_f32_to_f32_nhwc, 3200);

    /* A grid smaller than the work, as the launcher's cap makes it for large tensors: the pair
     * kernel directly, 2 blocks on the first tensor and 3 on the second, so that each block loops
     * over several tiles (or elements of a plain copy) of its own tensor. */
    const nhwc_shape firsts[] = {{2, 40, 49}, {1, 1, 2000}, {3, 3, 1000, 4}};
    const nhwc_shape seconds[] = {{3, 33, 165, 40}, {7, 3, 1, 8}, {2, 70, 1}};
    unsigned seed = 3300;
    for (int k = 0; k < 3; k++) {
        const nhwc_shape sh[2] = {firsts[k], seconds[k]};
        std::vector<float> src[2], got[2], want[2];
        for (int i = 0; i < 2; i++) {
            src[i] = random_bit_floats(sh[i].count(), seed++);
            got[i].assign(sh[i].count_nhwc() + 3, float_of_bits(0x7fa00bad));
            want[i] = got[i];
            CHECK_OK(gan_cuda_f32_to_f32_nhwc(nullptr, sh[i].n, sh[i].c, sh[i].c_nhwc(), sh[i].hw, src[i].data(),
                                              want[i].data()));
        }
        gan_emu_launch(gan_f32_to_nhwc_pair_kernel<float>, dim3(5), dim3(GAN_BLOCK_THREADS), nullptr, (size_t)2,
                       (size_t)sh[0].n, (size_t)sh[0].c, (size_t)sh[0].c_nhwc(), (size_t)sh[0].hw,
                       (const float *)src[0].data(), got[0].data(), (size_t)sh[1].n, (size_t)sh[1].c,
                       (size_t)sh[1].c_nhwc(), (size_t)sh[1].hw, (const float *)src[1].data(), got[1].data());
        CHECK(cudaGetLastError() == cudaSuccess);
        for (int i = 0; i < 2; i++) {
            char name[128];
            std::snprintf(name, sizeof name, "pair kernel on 2 + 3 blocks, tensor %d [n %d, c %d, c_nhwc %d, hw %d]",
                          i, sh[i].n, sh[i].c, sh[i].c_nhwc(), sh[i].hw);
            check_same_bits(name, bits_of(got[i]), bits_of(want[i]));
        }
    }
}

/* The indexing kernels run their index math in 32 bits at these sizes (gan_index_narrow); with the
 * emulation's limit lowered to 0 the same launchers run the size_t bodies. `run` calls the
 * launchers into `out` (sized and filled with garbage first); the two widths must agree bit for
 * bit, and write something. */
void check_index_widths(const char *name, size_t count, void (*run)(std::vector<float> &out))
{
    std::vector<float> narrow(count, float_of_bits(0x7fa00badu)), wide = narrow;
    run(narrow);
    gan_index_narrow_limit = 0;
    run(wide);
    gan_index_narrow_limit = (size_t)1 << 31;
    char full[96];
    std::snprintf(full, sizeof full, "%s: 32-bit and size_t index math", name);
    check_same_bits(full, bits_of(narrow), bits_of(wide));
    bool written = false;
    for (float v : narrow)
        written = written || bits_of(v) != 0x7fa00badu;
    CHECK_MSG(written, "%s: nothing written", name);
}

void test_index_widths(void)
{
    CHECK(gan_index_narrow((size_t)1 << 31) && !gan_index_narrow(((size_t)1 << 31) + 1));
    check_index_widths("subpixel_weights", 16 * 3 * 5, [](std::vector<float> &out) {
        std::vector<float> w = random_floats(out.size(), 4100, -1.0f, 1.0f);
        CHECK_OK(gan_cuda_subpixel_weights(nullptr, 3, 5, w.data(), out.data()));
    });
    check_index_widths("subpixel_gather", 2 * 3 * 4 * 5 * 7, [](std::vector<float> &out) {
        std::vector<float> y2 = random_floats(2 * 4 * 3 * 6 * 8, 4101, -2.0f, 2.0f);
        CHECK_OK(gan_cuda_subpixel_gather(nullptr, 2, 3, 5, 7, y2.data(), GAN_ACT_LRELU, 0.2f, out.data()));
    });
    /* x [2, 3, 9, 8], kernel 4, stride 2, pad 1 -> 4 x 4: col [3 4 4, 2 4 4] */
    check_index_widths("im2col", 3 * 16 * 2 * 16, [](std::vector<float> &out) {
        gan_conv_geom g = conv_geom(2, 3, 9, 8, 5, 4, 4, 2, 2, 1, 1);
        std::vector<float> x = random_floats(2 * 3 * 9 * 8, 4102, -1.0f, 1.0f);
        CHECK_OK(gan_cuda_im2col(nullptr, &g, x.data(), out.data()));
    });
    check_index_widths("channels_first", 3 * 5 * 7, [](std::vector<float> &out) {
        std::vector<float> x = random_floats(out.size(), 4103, -1.0f, 1.0f);
        CHECK_OK(gan_cuda_channels_first(nullptr, 3, 5, 7, x.data(), out.data()));
    });
    check_index_widths("bias_forward", 2 * 4 * 9, [](std::vector<float> &out) {
        std::vector<float> bias = random_floats(4, 4104, -1.0f, 1.0f);
        out = random_floats(out.size(), 4105, -1.0f, 1.0f); /* y += bias */
        CHECK_OK(gan_cuda_bias_forward(nullptr, 2, 4, 9, bias.data(), out.data()));
    });
    check_index_widths("images_to_float", 2 * 5 * 6 * 3, [](std::vector<float> &out) {
        std::vector<uint8_t> pixels(out.size());
        for (size_t i = 0; i < pixels.size(); i++)
            pixels[i] = (uint8_t)(i * 37 + 11);
        CHECK_OK(gan_cuda_images_to_float(nullptr, 2, 5, 6, 3, pixels.data(), out.data()));
    });
    check_index_widths("bn_forward_eval", 2 * 3 * 10, [](std::vector<float> &out) {
        std::vector<float> x = random_floats(out.size(), 4106, -2.0f, 2.0f), gamma = random_floats(3, 4107, 0.5f, 1.5f);
        std::vector<float> beta = random_floats(3, 4108, -1.0f, 1.0f), rm = random_floats(3, 4109, -0.5f, 0.5f);
        std::vector<float> rv = random_floats(3, 4110, 0.5f, 2.0f);
        CHECK_OK(gan_cuda_bn_forward_eval(nullptr, 2, 3, 10, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                          1e-5f, out.data()));
    });
    /* the evaluation ops: x [2, 3, 13, 11], 3x3 windows, stride 2, padded by 1 -> 7 x 6 */
    check_index_widths("max_pool", 2 * 3 * 7 * 6, [](std::vector<float> &out) {
        gan_pool2d_geom g = {2, 3, 13, 11, 7, 6, 3, 3, 2, 2, 1, 1};
        std::vector<float> x = random_floats(2 * 3 * 13 * 11, 4111, -3.0f, 3.0f);
        CHECK_OK(gan_cuda_max_pool_forward(nullptr, &g, x.data(), out.data()));
    });
    check_index_widths("avg_pool", 2 * 3 * 7 * 6, [](std::vector<float> &out) {
        gan_pool2d_geom g = {2, 3, 13, 11, 7, 6, 3, 3, 2, 2, 1, 1};
        std::vector<float> x = random_floats(2 * 3 * 13 * 11, 4112, -3.0f, 3.0f);
        CHECK_OK(gan_cuda_avg_pool_forward(nullptr, &g, false, x.data(), out.data()));
    });
    check_index_widths("copy_channels", 2 * 7 * 10, [](std::vector<float> &out) {
        std::vector<float> x = random_floats(2 * 3 * 10, 4113, -1.0f, 1.0f);
        CHECK_OK(gan_cuda_copy_channels(nullptr, 2, 3, 10, x.data(), 7, 2, out.data()));
    });
    check_index_widths("resize_bilinear", 2 * 3 * 17 * 5, [](std::vector<float> &out) {
        std::vector<float> x = random_floats(2 * 3 * 9 * 12, 4114, -1.0f, 1.0f);
        CHECK_OK(gan_cuda_resize_bilinear(nullptr, 2, 3, 9, 12, 17, 5, x.data(), out.data()));
    });
    check_index_widths("bias_act_forward", 2 * 4 * 9, [](std::vector<float> &out) {
        std::vector<float> bias = random_floats(4, 4115, -1.0f, 1.0f);
        out = random_floats(out.size(), 4116, -1.0f, 1.0f); /* in place */
        CHECK_OK(gan_cuda_bias_act_forward(nullptr, 2, 4, 9, bias.data(), GAN_ACT_LRELU, 0.2f, out.data()));
    });
}

/* ---- batch norm and activations over stored tensors (kernels/norm_nhwc.cuh) ---------------- *
 * A model may keep a tensor between two layers in NHWC (gan_storage: BF16 in bf16, FP32 in tf32).
 * The batch norm's kernels then read and write that storage, each tensor its own (x and dx the
 * input's, y, y_act and dy the output's: every pair of FP32 NCHW, BF16 NHWC and FP32 NHWC). They
 * are compared with the CPU backend's batch norm run in FP32 NCHW on the same values: a BF16 input
 * is rounded here first (reference_bf16) and given to the CPU rounded, so only the outputs'
 * rounding and the sums' order differ. Tolerances: FP32 outputs 1e-5 relative and absolute, as the
 * FP32 kernels; a BF16 output is the float result rounded to nearest even, at most half a unit in
 * its last place away, and a unit is 2^-7 of the binade's bottom, so half of it is at most 2^-8 of
 * the value: relative 2^-8 (plus 1e-5 for the float result's own difference). The statistics and
 * running statistics stay FP32: 1e-5; so do dgamma and dbeta, sums of signed products that cancel,
 * each thread adding a few hundred in float (a chunk's rows / 8) where the CPU adds a plane's: 1e-4
 * (1.9e-5 seen). Shapes: a partial channel tile (c = 40, 3, 33), one chunk (one launch each way)
 * and several of uneven rows (a scratch that holds only some), BatchNorm1d (hw = 1), a single-tile
 * one; a second run gives the same bits. */

/* A [n, c, hw] tensor held in `storage`: the bytes the kernels get (BF16 NHWC bit patterns, or
 * the floats in NCHW or NHWC order) and the float NCHW values they hold (rounded to BF16 where
 * stored so). */
struct stored_tensor {
    int storage;
    std::vector<uint16_t> bf16; /* [n, hw, c] */
    std::vector<float> f32;     /* [n, c, hw] (FP32 NCHW) or [n, hw, c] (FP32 NHWC) */
    std::vector<float> values;  /* [n, c, hw] */
    void *data() { return storage == GAN_STORAGE_BF16_NHWC ? (void *)bf16.data() : (void *)f32.data(); }
};

stored_tensor make_stored(int storage, int n, int c, int hw, const std::vector<float> &nchw)
{
    stored_tensor t;
    t.storage = storage;
    t.values = nchw;
    if (storage == GAN_STORAGE_BF16_NHWC) {
        t.bf16.resize(nchw.size());
        for (int m = 0; m < n; m++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++) {
                    size_t i = ((size_t)m * c + ch) * hw + p;
                    uint16_t b = reference_bf16(nchw[i]);
                    t.bf16[((size_t)m * hw + p) * c + ch] = b;
                    t.values[i] = (float)bf16_pattern_value(b);
                }
    } else if (storage == GAN_STORAGE_F32_NHWC) {
        t.f32.resize(nchw.size());
        for (int m = 0; m < n; m++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++)
                    t.f32[((size_t)m * hw + p) * c + ch] = nchw[((size_t)m * c + ch) * hw + p];
    } else {
        t.f32 = nchw;
    }
    return t;
}

/* An output buffer in `storage`, filled with a NaN pattern (a value never written shows). */
stored_tensor make_output(int storage, size_t count)
{
    stored_tensor t;
    t.storage = storage;
    if (storage == GAN_STORAGE_BF16_NHWC)
        t.bf16.assign(count, 0x7fc1);
    else
        t.f32.assign(count, NAN);
    return t;
}

/* The float NCHW values of what the kernels wrote into t. */
std::vector<float> stored_values(stored_tensor &t, int n, int c, int hw)
{
    if (t.storage == GAN_STORAGE_F32_NCHW)
        return t.f32;
    std::vector<float> v((size_t)n * c * hw);
    for (int m = 0; m < n; m++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) {
                size_t at = ((size_t)m * hw + p) * c + ch;
                v[((size_t)m * c + ch) * hw + p] =
                    t.storage == GAN_STORAGE_BF16_NHWC ? (float)bf16_pattern_value(t.bf16[at]) : t.f32[at];
            }
    return v;
}

void check_stored(const std::string &name, stored_tensor &got, int n, int c, int hw, const std::vector<float> &want)
{
    std::vector<float> v = stored_values(got, n, c, hw);
    double rtol = got.storage == GAN_STORAGE_BF16_NHWC ? 1.0 / 256.0 + 1e-5 : 1e-5;
    CHECK_ALLCLOSE(name.c_str(), v.data(), want.data(), v.size(), rtol, 1e-5);
}

const char *storage_name(int storage)
{
    return storage == GAN_STORAGE_BF16_NHWC ? "bf16 nhwc" : storage == GAN_STORAGE_F32_NHWC ? "f32 nhwc" : "f32 nchw";
}

/* A model's weight copies in one list launch against a launch of `one` for each: the same bits
 * (the image layers' padded channels +0; `fill` where nothing is written); ten tensors, so two
 * launches, one of them empty-shaped; a bad shape is refused naming the tensor. */
template <typename T, typename One, typename List>
void check_copy_list(const char *what, T fill, One one, List list, unsigned &seed)
{
    const int shapes[10][4] = {{64, 3, 8, 16}, {128, 64, 64, 16}, {7, 5, 8, 9}, {1, 512, 512, 16}, {3, 1, 8, 4},
                               {16, 16, 16, 1}, {0, 4, 8, 16}, {33, 8, 8, 25}, {2, 40, 40, 9}, {5, 3, 8, 16}};
    std::vector<gan_nhwc_copy> copies;
    std::vector<std::vector<float>> sources;
    std::vector<std::vector<T>> got, want;
    for (const int *sh : shapes) {
        size_t src_count = (size_t)sh[0] * sh[1] * sh[3], dst_count = (size_t)sh[0] * sh[2] * sh[3];
        sources.push_back(random_floats(src_count ? src_count : 1, seed++, -1.0f, 1.0f));
        got.emplace_back(dst_count + 1, fill);
        want.emplace_back(dst_count + 1, fill);
    }
    for (int i = 0; i < 10; i++) {
        const int *sh = shapes[i];
        copies.push_back(gan_nhwc_copy{sh[0], sh[1], sh[2], sh[3], sources[i].data(), got[i].data()});
        CHECK_OK(one(nullptr, sh[0], sh[1], sh[2], sh[3], sources[i].data(), want[i].data()));
    }
    CHECK_OK(list(nullptr, (int)copies.size(), copies.data()));
    for (int i = 0; i < 10; i++)
        CHECK_MSG(!std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(T)),
                  "%s: tensor %d differs from its own copy", what, i);
    copies[9].c_nhwc = 2;
    CHECK_FAILS_WITH(list(nullptr, (int)copies.size(), copies.data()), GAN_ERR_ARG, "of tensor 9");
}

void test_bn_stored(void)
{
    struct shape {
        int n, c, hw;
        size_t scratch_chunks; /* the scratch holds this many chunks */
        size_t chunks;         /* and so many are taken */
    } shapes[] = {{3, 40, 7, 64, 1}, {16, 8, 1024, 64, 16}, {5, 3, 301, 4, 2}, {2, 33, 1, 8, 1},
                  {4, 64, 64, 64, 1}, {7, 24, 500, 3, 3}};
    struct fused {
        int act;
        float slope;
        const char *name;
    } kinds[] = {{GAN_FUSED_NONE, 0.0f, "bn"}, {GAN_ACT_RELU, 0.0f, "bn+relu"}, {GAN_ACT_LRELU, 0.2f, "bn+lrelu"}};
    const int storages[] = {GAN_STORAGE_F32_NCHW, GAN_STORAGE_BF16_NHWC, GAN_STORAGE_F32_NHWC};
    unsigned seed = 700;
    for (const shape &sh : shapes) {
        const size_t count = (size_t)sh.n * sh.c * sh.hw, c = (size_t)sh.c;
        const size_t scratch_doubles = 2 * c * sh.scratch_chunks + 1;
        size_t chunks = gan_cuda_bn_nhwc_chunks(sh.n, sh.c, sh.hw, scratch_doubles);
        CHECK_MSG(chunks == sh.chunks, "bn stored [%d, %d, %d]: %zu chunks, want %zu", sh.n, sh.c, sh.hw, chunks,
                  sh.chunks);
        std::vector<double> scratch(scratch_doubles, NAN);
        std::vector<float> x0 = random_floats(count, seed++, -2.0f, 3.0f);
        std::vector<float> dy0 = random_floats(count, seed++, -1.0f, 1.0f);
        std::vector<float> gamma = random_floats(c, seed++, 0.5f, 1.5f), beta = random_floats(c, seed++, -0.5f, 0.5f);
        for (int in : storages)
            for (int out : storages)
                for (const fused &k : kinds) {
                    char text[128];
                    std::snprintf(text, sizeof text, "%s [%d, %d, %d] %s -> %s", k.name, sh.n, sh.c, sh.hw,
                                  storage_name(in), storage_name(out));
                    std::string name(text);
                    stored_tensor x = make_stored(in, sh.n, sh.c, sh.hw, x0);
                    std::vector<float> rm_got = random_floats(c, seed, -0.1f, 0.1f), rm_want = rm_got;
                    std::vector<float> rv_got = random_floats(c, seed + 1, 0.9f, 1.1f), rv_want = rv_got;
                    std::vector<float> mean_got(c), mean_want(c), inv_got(c), inv_want(c);
                    std::vector<float> y_want(count), ya_want(count);
                    stored_tensor y = make_output(out, count), ya = make_output(out, count);
                    CHECK_OK(gan_cuda_bn_nhwc_forward_train(nullptr, sh.n, sh.c, sh.hw, in, x.data(), gamma.data(),
                                                            beta.data(), 0.1f, 1e-5f, rm_got.data(), rv_got.data(),
                                                            mean_got.data(), inv_got.data(), out, y.data(), k.act,
                                                            k.slope, k.act == GAN_FUSED_NONE ? nullptr : ya.data(),
                                                            scratch.data(), scratch_doubles));
                    if (k.act == GAN_FUSED_NONE)
                        CHECK_OK(cpu->bn_forward_train(cpu, sh.n, sh.c, sh.hw, x.values.data(), gamma.data(),
                                                       beta.data(), 0.1f, 1e-5f, rm_want.data(), rv_want.data(),
                                                       mean_want.data(), inv_want.data(), y_want.data()));
                    else
                        CHECK_OK(cpu->bn_act_forward_train(cpu, sh.n, sh.c, sh.hw, x.values.data(), gamma.data(),
                                                           beta.data(), 0.1f, 1e-5f, rm_want.data(), rv_want.data(),
                                                           mean_want.data(), inv_want.data(), y_want.data(),
                                                           (gan_activation)k.act, k.slope, ya_want.data()));
                    check_stored(name + " y", y, sh.n, sh.c, sh.hw, y_want);
                    if (k.act != GAN_FUSED_NONE)
                        check_stored(name + " y_act", ya, sh.n, sh.c, sh.hw, ya_want);
                    CHECK_ALLCLOSE((name + " save_mean").c_str(), mean_got.data(), mean_want.data(), c, 1e-5, 1e-5);
                    CHECK_ALLCLOSE((name + " save_invstd").c_str(), inv_got.data(), inv_want.data(), c, 1e-5,
                                   1e-5);
                    CHECK_ALLCLOSE((name + " running_mean").c_str(), rm_got.data(), rm_want.data(), c, 1e-5, 1e-5);
                    CHECK_ALLCLOSE((name + " running_var").c_str(), rv_got.data(), rv_want.data(), c, 1e-5, 1e-5);

                    /* backward from the CPU's statistics and activation output, in the out storage */
                    stored_tensor y_in = make_stored(out, sh.n, sh.c, sh.hw, ya_want);
                    stored_tensor dy = make_stored(out, sh.n, sh.c, sh.hw, dy0);
                    for (float param_beta : {0.0f, 1.0f}) {
                        std::vector<float> dx_want(count);
                        std::vector<float> dg_got = random_floats(c, seed + 2, -1.0f, 1.0f), dg_want = dg_got;
                        std::vector<float> db_got = random_floats(c, seed + 3, -1.0f, 1.0f), db_want = db_got;
                        if (param_beta == 0.0f) /* overwritten without being read */
                            dg_got.assign(c, NAN), db_got.assign(c, NAN);
                        stored_tensor dx = make_output(in, count);
                        const void *y_arg = k.act == GAN_FUSED_NONE ? nullptr : y_in.data();
                        CHECK_OK(gan_cuda_bn_nhwc_backward(nullptr, sh.n, sh.c, sh.hw, in, x.data(), out, y_arg,
                                                           dy.data(), k.act, k.slope, gamma.data(), mean_want.data(),
                                                           inv_want.data(), dx.data(), param_beta, dg_got.data(),
                                                           db_got.data(), scratch.data(), scratch_doubles));
                        if (k.act == GAN_FUSED_NONE)
                            CHECK_OK(cpu->bn_backward(cpu, sh.n, sh.c, sh.hw, x.values.data(), dy.values.data(),
                                                      gamma.data(), mean_want.data(), inv_want.data(), dx_want.data(),
                                                      param_beta, dg_want.data(), db_want.data()));
                        else
                            CHECK_OK(cpu->bn_act_backward(cpu, sh.n, sh.c, sh.hw, x.values.data(),
                                                          y_in.values.data(), dy.values.data(),
                                                          (gan_activation)k.act, k.slope, gamma.data(),
                                                          mean_want.data(), inv_want.data(), dx_want.data(),
                                                          param_beta, dg_want.data(), db_want.data()));
                        check_stored(name + " dx", dx, sh.n, sh.c, sh.hw, dx_want);
                        CHECK_ALLCLOSE((name + " dgamma").c_str(), dg_got.data(), dg_want.data(), c, 1e-4, 1e-4);
                        CHECK_ALLCLOSE((name + " dbeta").c_str(), db_got.data(), db_want.data(), c, 1e-4, 1e-4);
                        if (param_beta != 0.0f)
                            continue;
                        /* deterministic: the same bits again */
                        stored_tensor dx2 = make_output(in, count);
                        std::vector<float> dg2(c), db2(c);
                        CHECK_OK(gan_cuda_bn_nhwc_backward(nullptr, sh.n, sh.c, sh.hw, in, x.data(), out, y_arg,
                                                           dy.data(), k.act, k.slope, gamma.data(), mean_want.data(),
                                                           inv_want.data(), dx2.data(), 0.0f, dg2.data(), db2.data(),
                                                           scratch.data(), scratch_doubles));
                        CHECK_MSG(dx2.bf16 == dx.bf16 &&
                                      (dx.f32.empty() || !std::memcmp(dx2.f32.data(), dx.f32.data(),
                                                                      dx.f32.size() * sizeof(float))),
                                  "%s: a second backward differs", name.c_str());
                        check_identical((name + " repeat dgamma").c_str(), dg2, dg_got);
                    }
                    /* eval: elementwise, the FP32 kernel's formula */
                    stored_tensor ye = make_output(out, count);
                    std::vector<float> ye_want(count);
                    CHECK_OK(gan_cuda_bn_nhwc_forward_eval(nullptr, sh.n, sh.c, sh.hw, in, x.data(), gamma.data(),
                                                           beta.data(), rm_want.data(), rv_want.data(), 1e-5f, out,
                                                           ye.data()));
                    CHECK_OK(cpu->bn_forward_eval(cpu, sh.n, sh.c, sh.hw, x.values.data(), gamma.data(), beta.data(),
                                                  rm_want.data(), rv_want.data(), 1e-5f, ye_want.data()));
                    check_stored(name + " eval", ye, sh.n, sh.c, sh.hw, ye_want);
                    seed += 4;
                }
    }
    /* the chunks, and what the launchers refuse */
    CHECK_MSG(gan_cuda_bn_nhwc_chunks(64, 64, 1024, 1 << 16) == 64, "bn stored chunks [64, 64, 1024]: %zu",
              gan_cuda_bn_nhwc_chunks(64, 64, 1024, 1 << 16)); /* 1024 rows each: 128 blocks in 2 tiles */
    CHECK_MSG(gan_cuda_bn_nhwc_chunks(64, 512, 16, 1 << 16) == 1, "bn stored chunks [64, 512, 16]: %zu",
              gan_cuda_bn_nhwc_chunks(64, 512, 16, 1 << 16)); /* 1024 rows: one launch each way */
    CHECK_MSG(gan_cuda_bn_nhwc_chunks(64, 256, 64, 1 << 16) == 4, "bn stored chunks [64, 256, 64]: %zu",
              gan_cuda_bn_nhwc_chunks(64, 256, 64, 1 << 16));
    double scratch[8];
    uint16_t b[8] = {0};
    float f[8] = {0};
    CHECK_FAILS_WITH(gan_cuda_bn_nhwc_forward_train(nullptr, 4, 8, 2, GAN_STORAGE_BF16_NHWC, b, f, f, 0.1f, 1e-5f, f,
                                                    f, f, f, GAN_STORAGE_BF16_NHWC, b, GAN_FUSED_NONE, 0.0f, nullptr,
                                                    scratch, 8),
                     GAN_ERR_ARG, "cannot hold the sums of 8 channels");
    CHECK_FAILS_WITH(gan_cuda_bn_nhwc_backward(nullptr, 4, 2, 1, 3, b, GAN_STORAGE_BF16_NHWC, nullptr, b,
                                               GAN_FUSED_NONE, 0.0f, f, f, f, b, 0.0f, f, f, scratch, 8),
                     GAN_ERR_ARG, "unknown storage 3 of the input");
    CHECK_FAILS_WITH(gan_cuda_bn_nhwc_forward_train(nullptr, 1, 2, 1, GAN_STORAGE_BF16_NHWC, b, f, f, 0.1f, 1e-5f, f,
                                                    f, f, f, GAN_STORAGE_BF16_NHWC, b, GAN_FUSED_NONE, 0.0f, nullptr,
                                                    scratch, 8),
                     GAN_ERR_ARG, "no variance");

    /* the activations on BF16 tensors: the float function of the widened value, rounded (bit for
     * bit the CPU backend's activation on the same floats, rounded here) */
    const size_t n = 1000;
    std::vector<float> v = random_floats(n, seed++, -4.0f, 4.0f), g = random_floats(n, seed++, -1.0f, 1.0f);
    std::vector<uint16_t> xb(n), gb(n), yb(n), dxb(n);
    std::vector<float> xv(n), gv(n), y_want(n), dx_want(n);
    for (size_t i = 0; i < n; i++) {
        xb[i] = reference_bf16(v[i]), xv[i] = (float)bf16_pattern_value(xb[i]);
        gb[i] = reference_bf16(g[i]), gv[i] = (float)bf16_pattern_value(gb[i]);
    }
    for (gan_activation act : {GAN_ACT_RELU, GAN_ACT_LRELU, GAN_ACT_TANH, GAN_ACT_SIGMOID}) {
        CHECK_OK(gan_cuda_activation_forward_bf16(nullptr, act, 0.2f, n, xb.data(), yb.data()));
        CHECK_OK(cpu->activation_forward(cpu, act, 0.2f, n, xv.data(), y_want.data()));
        std::vector<float> yv(n);
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) {
            yv[i] = (float)bf16_pattern_value(yb[i]);
            wrong += yb[i] != reference_bf16(y_want[i]);
        }
        CHECK_MSG(wrong == 0, "activation %d forward bf16: %zu of %zu values not the rounded float result", (int)act,
                  wrong, n);
        CHECK_OK(gan_cuda_activation_backward_bf16(nullptr, act, 0.2f, n, xb.data(), yb.data(), gb.data(),
                                                   dxb.data()));
        CHECK_OK(cpu->activation_backward(cpu, act, 0.2f, n, xv.data(), yv.data(), gv.data(), dx_want.data()));
        wrong = 0;
        for (size_t i = 0; i < n; i++)
            wrong += dxb[i] != reference_bf16(dx_want[i]);
        CHECK_MSG(wrong == 0, "activation %d backward bf16: %zu of %zu values not the rounded float result", (int)act,
                  wrong, n);
    }
    CHECK_FAILS_WITH(gan_cuda_activation_forward_bf16(nullptr, (gan_activation)7, 0.0f, n, xb.data(), yb.data()),
                     GAN_ERR_ARG, "unknown activation 7");

    /* a model's weight copies in one launch (eight per launch): BF16 in bf16, FP32 in tf32 */
    check_copy_list<uint16_t>("bf16 weight copy list", 0x7fc1, gan_cuda_f32_to_bf16_nhwc, gan_cuda_f32_to_bf16_nhwc_list,
                              seed);
    check_copy_list<float>("f32 weight copy list", NAN, gan_cuda_f32_to_f32_nhwc, gan_cuda_f32_to_f32_nhwc_list, seed);
}

/* The uint8 batch straight into a convolution's NHWC copy of x (T: uint16_t BF16 patterns, or
 * float), into dst full of a NaN pattern with 3 guards beyond: the bits of images_to_float followed
 * by the narrowing `narrow` (what a kept copy is made from otherwise), the padding included, the
 * guards untouched. */
template <typename T>
void check_images_to_nhwc(const char *name, T garbage,
                          gan_status (*convert)(cudaStream_t, int, int, int, int, int, const uint8_t *, T *),
                          gan_status (*narrow)(cudaStream_t, int, int, int, int, const float *, T *))
{
    static const struct {
        int n, h, w, c, c_nhwc;
    } shapes[] = {
        {3, 5, 7, 3, 4},  /* RGB padded for TF32 */
        {3, 5, 7, 3, 8},  /* RGB padded for BF16 */
        {2, 8, 8, 1, 4},  /* gray */
        {2, 8, 8, 1, 8},
        {2, 3, 9, 4, 4},  /* no padding */
        {1, 33, 35, 3, 8}, /* several blocks */
        {0, 5, 7, 3, 8},  /* nothing to write */
    };
    for (const auto &sh : shapes) {
        const size_t hw = (size_t)sh.h * sh.w, pixel_count = (size_t)sh.n * hw * sh.c;
        const size_t count = (size_t)sh.n * hw * sh.c_nhwc;
        std::vector<uint8_t> pixels(pixel_count + 1); /* never empty: its data() is not null */
        for (size_t i = 0; i < pixel_count; i++)
            pixels[i] = (uint8_t)((i * 37u + 11u) % 256u);
        if (pixel_count > 1) {
            pixels[0] = 0;
            pixels[1] = 255;
        }
        T guard;
        std::memset(&guard, 0x5a, sizeof guard);
        std::vector<T> got(count + 3, guard), want(count + 3, guard);
        std::fill(got.begin(), got.begin() + (ptrdiff_t)count, garbage);
        std::fill(want.begin(), want.begin() + (ptrdiff_t)count, garbage);
        std::vector<float> nchw(pixel_count + 1);
        CHECK_OK(cpu->images_to_float(cpu, sh.n, sh.h, sh.w, sh.c, pixels.data(), nchw.data()));
        CHECK_OK(narrow(nullptr, sh.n, sh.c, sh.c_nhwc, (int)hw, nchw.data(), want.data()));
        CHECK_OK(convert(nullptr, sh.n, sh.h, sh.w, sh.c, sh.c_nhwc, pixels.data(), got.data()));
        char full[160];
        std::snprintf(full, sizeof full, "%s [n %d, h %d, w %d, c %d, c_nhwc %d]", name, sh.n, sh.h, sh.w, sh.c,
                      sh.c_nhwc);
        CHECK_MSG(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0,
                  "%s: not images_to_float and the narrowing bit for bit", full);
    }
    std::vector<uint8_t> pixels(2 * 4 * 4 * 3, 7);
    std::vector<T> dst(2 * 4 * 4 * 8);
    CHECK_FAILS_WITH(convert(nullptr, 2, 4, 4, 3, 2, pixels.data(), dst.data()), GAN_ERR_ARG, "c_nhwc below c");
    CHECK_FAILS_WITH(convert(nullptr, -1, 4, 4, 3, 4, pixels.data(), dst.data()), GAN_ERR_ARG, "negative shape");
    CHECK_FAILS_WITH(convert(nullptr, 2, -4, 4, 3, 4, pixels.data(), dst.data()), GAN_ERR_ARG, "negative image size");
}

void test_images_to_nhwc(void)
{
    check_images_to_nhwc<uint16_t>("images_to_bf16_nhwc", 0x7fc1, gan_cuda_images_to_bf16_nhwc,
                                   gan_cuda_f32_to_bf16_nhwc);
    check_images_to_nhwc<float>("images_to_f32_nhwc", float_of_bits(0x7fa00badu), gan_cuda_images_to_f32_nhwc,
                                gan_cuda_f32_to_f32_nhwc);
    check_index_widths("images_to_f32_nhwc", 2 * 5 * 6 * 4, [](std::vector<float> &out) {
        std::vector<uint8_t> pixels(2 * 5 * 6 * 3);
        for (size_t i = 0; i < pixels.size(); i++)
            pixels[i] = (uint8_t)(i * 37 + 11);
        CHECK_OK(gan_cuda_images_to_f32_nhwc(nullptr, 2, 5, 6, 3, 4, pixels.data(), out.data()));
    });
}

int main(void)
{
    gan_status status = gan_cpu_backend_create(NULL, &cpu);
    if (status != GAN_OK) {
        std::fprintf(stderr, "cannot create the CPU backend: %s\n", gan_error_message());
        return 1;
    }
    test_emulation();
    test_shuffles();
    test_fill();
    test_activations();
    test_multiply_and_dropout();
    test_rng();
    test_adam();
    test_ema();
    test_counts();
    test_images();
    test_images_to_nhwc();
    test_bias();
    test_bce();
    test_bn_chunks();
    test_bn();
    test_subpixel();
    test_im2col_filter();
    test_bn_split();
    test_eval_ops();
    test_bf16_conversions();
    test_f32_nhwc_copies();
    test_nhwc_pairs();
    test_index_widths();
    test_activation_epilogues();
    test_bn_stored();
    cpu->destroy(cpu);
    return test_finish();
}
