/* The arithmetic a backend may use for its GEMMs and convolutions (train.precision). A header of
 * its own so that the config needs nothing else of the backends. */
#ifndef GAN_PRECISION_H
#define GAN_PRECISION_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gan_precision {
    GAN_PRECISION_FP32, /* FP32 products and sums: the CPU backend's, and the CUDA default */
    GAN_PRECISION_TF32, /* CUDA only: TF32 tensor cores (10-bit mantissas in products), FP32 sums */
    GAN_PRECISION_BF16  /* CUDA only: BF16 operands (8-bit mantissas) on tensor cores, FP32 sums;
                         * weights, Adam state, batch-norm statistics and losses stay FP32 */
} gan_precision;

/* "fp32", "tf32", "bf16": the config's spelling. */
const char *gan_precision_name(gan_precision precision);

#ifdef __cplusplus
}
#endif
#endif
