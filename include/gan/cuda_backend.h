/* The CUDA backend: cuDNN convolutions and batch norm (the legacy cuDNN API, deprecated in 9.x
 * and still present), cuBLAS GEMMs and our kernels (kernels/), behind the op table of
 * gan/backend.h. Everything here links in every build: where the build has no CUDA
 * (GAN_HAVE_CUDA undefined), creating the backend fails with GAN_ERR_UNSUPPORTED and
 * gan_cuda_get_versions says so, so callers need no #ifdef. */
#ifndef GAN_CUDA_BACKEND_H
#define GAN_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the GPU may compute FP32 math.
 * PARITY (the default): FP32 arithmetic only, no TF32 (cuDNN CUDNN_FMA_MATH, cuBLAS
 *   CUBLAS_PEDANTIC_MATH) and deterministic cuDNN algorithms only: results repeat bit for bit
 *   and stay within the selftest's tolerances of the CPU backend.
 * FAST: cuDNN and cuBLAS may use TF32 tensor cores (Ampere and later) and any algorithm; about
 *   10 bits of mantissa in products, so convolutions differ from the CPU in the third digit. */
typedef enum gan_cuda_math_mode {
    GAN_CUDA_MATH_PARITY = 0,
    GAN_CUDA_MATH_FAST = 1
} gan_cuda_math_mode;

/* Opens device 0 (as CUDA_VISIBLE_DEVICES presents them): a stream, cuDNN and cuBLAS handles on
 * it, and the cuBLAS workspace. Fails with GAN_ERR_UNSUPPORTED and a one-line reason when there
 * is no driver, no device, or no CUDA in this build. */
gan_status gan_cuda_backend_create(gan_backend **out);

/* Changing the mode forgets the algorithms chosen so far: call it before the models are planned
 * (conv_workspace_bytes), as the algorithms' workspace sizes are part of the plan. */
gan_status gan_cuda_set_math_mode(gan_backend *be, gan_cuda_math_mode mode);
gan_status gan_cuda_get_math_mode(gan_backend *be, gan_cuda_math_mode *mode);
const char *gan_cuda_math_mode_name(gan_cuda_math_mode mode); /* "parity" or "fast" */

/* The most scratch memory one convolution may use; algorithms needing more are passed over.
 * Default GAN_CUDA_DEFAULT_WORKSPACE_BYTES. Same rule as the math mode: set it before planning. */
enum { GAN_CUDA_DEFAULT_WORKSPACE_BYTES = 256 << 20 };
gan_status gan_cuda_set_workspace_budget(gan_backend *be, size_t bytes);

/* Versions for `gan info`; every field that cannot be known is 0 or "" and `note` says why.
 * Never fails for want of a device or driver. */
typedef struct gan_cuda_versions {
    bool built_with_cuda;
    int runtime_version;      /* cudaRuntimeGetVersion: 13000 = 13.0 */
    int driver_version;       /* cudaDriverGetVersion: 0 without a driver */
    size_t cudnn_version;     /* cudnnGetVersion: 91900 = 9.19.0 */
    size_t cudnn_header_version; /* CUDNN_VERSION this was compiled against */
    int cublas_version;       /* major * 10000 + minor * 100 + patch */
    int device_count;
    char device_name[256];    /* device 0 */
    int compute_capability_major, compute_capability_minor;
    size_t device_memory_bytes;
    char note[512];           /* e.g. "no CUDA device: cudaGetDeviceCount: no CUDA-capable device is detected" */
} gan_cuda_versions;
gan_status gan_cuda_get_versions(gan_cuda_versions *out);

#ifdef __cplusplus
}
#endif
#endif
