/* `gan selftest` (src/selftest/): every op of the op table run on random inputs by two backends
 * (the CPU backend as the reference, the CUDA backend under test), with the largest absolute and
 * relative error per op printed beside the tolerance that op is held to (ops.c); then one whole
 * training iteration compared the same way (iteration.c). */
#ifndef GAN_SELFTEST_H
#define GAN_SELFTEST_H

#include <stdbool.h>
#include <stdio.h>

#include "gan/backend.h"
#include "gan/config.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs every op on `reference` (normally the CPU backend) and `test` (normally CUDA), prints one
 * line per op output to `report` (may be NULL): its name, element count, largest absolute and
 * relative error, the tolerance, and ok/FAIL. *all_within_tolerance is false when any output is
 * out of tolerance or any op failed on either backend (the failure is printed too).
 * The return status is for failures to run the comparison at all (memory, transfers).
 * Tolerances assume fp32; where the test backend computes in tf32 or bf16, GEMM and convolution
 * tolerances are widened and the report says so. */
gan_status gan_selftest_ops(gan_backend *reference, gan_backend *test, FILE *report,
                            bool *all_within_tolerance);

/* `gan selftest`: one iteration of `cfg` (data not needed) on two backends from the same weights,
 * real batch and noise; prints losses, D outputs, G's images, weights and running statistics
 * with their largest errors and tolerances to `report`. */
gan_status gan_selftest_iteration(gan_backend *reference, gan_backend *test, const gan_config *cfg,
                                  FILE *report, bool *all_within_tolerance);

#ifdef __cplusplus
}
#endif
#endif
