/* Tensor-core operand rounding, for the tests that stand in for a GPU on the CPU
 * (test_selftest_precision.c, emu_cuda_runtime.cpp). C and C++. */
#ifndef GAN_TEST_ROUNDING_H
#define GAN_TEST_ROUNDING_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* x rounded to `bits` explicit mantissa bits; ties to even (BF16: 7 bits) or away from zero
 * (TF32: 10 bits, as cvt.rna.tf32.f32). Infinities and NaN pass through. */
static inline float test_round_mantissa(float x, int bits, bool ties_even)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return x;
    int drop = 23 - bits;
    uint32_t half = 1u << (drop - 1), mask = (1u << drop) - 1;
    uint32_t rest = u & mask;
    u &= ~mask;
    if (rest > half || (rest == half && (!ties_even || (u >> drop) & 1u)))
        u += 1u << drop; /* carries into the exponent where it must */
    memcpy(&x, &u, sizeof x);
    return x;
}
static inline float test_to_tf32(float x) { return test_round_mantissa(x, 10, false); }
static inline float test_to_bf16(float x) { return test_round_mantissa(x, 7, true); }

#endif
