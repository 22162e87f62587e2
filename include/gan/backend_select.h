/* Choosing the backend a run uses: `--device auto|cpu|cuda`. */
#ifndef GAN_BACKEND_SELECT_H
#define GAN_BACKEND_SELECT_H

#include <stddef.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* device "cpu": the CPU backend.
 * device "cuda": the CUDA backend, or GAN_ERR_UNSUPPORTED saying why it cannot be had (no CUDA in
 *   this build, no driver, no device).
 * device "auto" (or NULL): the CUDA backend where this build has it and a device is usable, else
 *   the CPU backend; then `why` receives one line saying why not CUDA (it is "" when CUDA was
 *   taken or "cpu" was asked for). `why` may be NULL. */
gan_status gan_backend_open(const char *device, gan_backend **out, char *why, size_t why_bytes);

#ifdef __cplusplus
}
#endif
#endif
