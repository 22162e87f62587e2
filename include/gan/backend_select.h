/* Choosing and opening the backend a run uses: `--device auto|cpu|cuda|cuda:N` and the backend
 * options (gan/backend.h) a config asks for. */
#ifndef GAN_BACKEND_SELECT_H
#define GAN_BACKEND_SELECT_H

#include <stddef.h>

#include "gan/backend.h"
#include "gan/config.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens a backend with `options` (NULL: the defaults).
 * device "cpu": the CPU backend.
 * device "cuda" or "cuda:N": the CUDA backend (on GPU N, which overrides options->device_index),
 *   or GAN_ERR_UNSUPPORTED saying why it cannot be had (no CUDA in this build, no driver, no
 *   device).
 * device "auto" (or NULL): the CUDA backend where this build has it and a device is usable, else
 *   the CPU backend; then `why` receives one line saying why not CUDA (it is "" when CUDA was
 *   taken or "cpu" was asked for). `why` may be NULL. A precision only CUDA has (tf32) is then
 *   refused with that reason rather than run on the CPU in another precision. */
gan_status gan_backend_open(const char *device, const gan_backend_options *options,
                            gan_backend **out, char *why, size_t why_bytes);

/* The options a config asks for: train.precision and train.deterministic; the workspace budget
 * and the device index keep their defaults. */
gan_backend_options gan_backend_options_for_config(const gan_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
