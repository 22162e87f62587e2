/* The CUDA backend: cuDNN convolutions (the legacy cuDNN API, deprecated in 9.x and still
 * present), cuBLAS GEMMs and our kernels (kernels/), behind the op table of gan/backend.h. It
 * lives in libgan_cuda.so, which these functions load on first use (src/backend/load_cuda.c): a
 * CPU run never maps the CUDA libraries. Everything here links in every build: where the build
 * has no CUDA (GAN_HAVE_CUDA undefined) or the module cannot be loaded (no CUDA runtime on this
 * machine), creating the backend fails with GAN_ERR_UNSUPPORTED and gan_cuda_get_versions says
 * why, so callers need no #ifdef. Open it through gan_backend_open (gan/backend_select.h) unless
 * a test needs this one backend. */
#ifndef GAN_CUDA_BACKEND_H
#define GAN_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens GPU options->device_index (as CUDA_VISIBLE_DEVICES presents them; NULL options: the
 * defaults): a stream, cuDNN and cuBLAS handles on it, and the cuBLAS workspace. How it computes
 * is fixed here, from the options:
 *   fp32: FP32 arithmetic only, no TF32 (cuDNN CUDNN_FMA_MATH, cuBLAS CUBLAS_PEDANTIC_MATH), so
 *     results stay within the selftest's tolerances of the CPU backend;
 *   tf32: cuDNN and cuBLAS may use TF32 tensor cores (Ampere and later): about 10 bits of
 *     mantissa in products, so convolutions differ from the CPU in the third digit;
 *   deterministic: only cuDNN algorithms that repeat bit for bit; otherwise any;
 *   workspace_bytes: the most scratch one convolution may use (0:
 *     GAN_CUDA_DEFAULT_WORKSPACE_BYTES); algorithms needing more are passed over.
 * Fails with GAN_ERR_UNSUPPORTED and a one-line reason when there is no driver, no such device,
 * or no CUDA in this build. */
enum { GAN_CUDA_DEFAULT_WORKSPACE_BYTES = 256 << 20 };
gan_status gan_cuda_backend_create(const gan_backend_options *options, gan_backend **out);

/* Versions for `gan info`; every field that cannot be known is 0 or "" and `note` says why (no
 * module, no driver, no device). Never fails for want of them. */
typedef struct gan_cuda_versions {
    bool built_with_cuda;
    bool module_loaded;       /* libgan_cuda.so could be loaded (else `note` says why) */
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
/* Whether libgan_cuda.so has been loaded into this process (for tests of the on-demand load). */
bool gan_cuda_module_loaded(void);

#ifdef __cplusplus
}
#endif
#endif
