/* --device auto|cpu|cuda, and the CUDA entry points for builds without CUDA (so that the CLI and
 * the trainer call gan_cuda_* without #ifdef; in a CUDA build they live in cuda_backend.c). */
#include <stdio.h>
#include <string.h>

#include "gan/backend_select.h"
#include "gan/cuda_backend.h"

static void set_why(char *why, size_t why_bytes, const char *text)
{
    if (why && why_bytes > 0)
        snprintf(why, why_bytes, "%s", text);
}

gan_status gan_backend_open(const char *device, gan_backend **out, char *why, size_t why_bytes)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_backend_open: no output pointer");
    *out = NULL;
    set_why(why, why_bytes, "");
    if (!device)
        device = "auto";

    if (strcmp(device, "cpu") == 0)
        return gan_cpu_backend_create(out);

    if (strcmp(device, "cuda") == 0) {
        gan_status status = gan_cuda_backend_create(out);
        if (status != GAN_OK)
            return gan_error_prefix(status, "--device cuda: ");
        return GAN_OK;
    }

    if (strcmp(device, "auto") != 0)
        return gan_error(GAN_ERR_ARG, "--device %s: expected auto, cpu or cuda", device);

    gan_status status = gan_cuda_backend_create(out);
    if (status == GAN_OK)
        return GAN_OK;
    /* Keep the reason before the CPU backend's creation can overwrite the message. */
    char reason[600];
    snprintf(reason, sizeof reason, "using the CPU: %s", gan_error_message());
    gan_error_clear();
    GAN_TRY(gan_cpu_backend_create(out));
    set_why(why, why_bytes, reason);
    return GAN_OK;
}

#ifndef GAN_HAVE_CUDA

static const char NO_CUDA_BUILD[] =
    "this build has no CUDA backend (configured with GAN_CUDA=OFF, or nvcc/cuDNN were not found; "
    "rebuild with -DGAN_CUDA=ON)";

gan_status gan_cuda_backend_create(gan_backend **out)
{
    if (out)
        *out = NULL;
    return gan_error(GAN_ERR_UNSUPPORTED, "%s", NO_CUDA_BUILD);
}

gan_status gan_cuda_set_math_mode(gan_backend *be, gan_cuda_math_mode mode)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "math mode: %s", NO_CUDA_BUILD);
}

gan_status gan_cuda_get_math_mode(gan_backend *be, gan_cuda_math_mode *mode)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "math mode: %s", NO_CUDA_BUILD);
}

gan_status gan_cuda_set_workspace_budget(gan_backend *be, size_t bytes)
{
    return gan_error(GAN_ERR_UNSUPPORTED, "workspace budget: %s", NO_CUDA_BUILD);
}

gan_status gan_cuda_get_versions(gan_cuda_versions *out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_cuda_get_versions: no output pointer");
    memset(out, 0, sizeof *out);
    out->built_with_cuda = false;
    snprintf(out->note, sizeof out->note, "%s", NO_CUDA_BUILD);
    return GAN_OK;
}

#endif

const char *gan_cuda_math_mode_name(gan_cuda_math_mode mode)
{
    return mode == GAN_CUDA_MATH_FAST ? "fast" : "parity";
}
