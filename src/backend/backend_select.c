/* --device auto|cpu|cuda|cuda:N: which backend a run gets (the CUDA backend itself is loaded on
 * demand by load_cuda.c). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend_select.h"
#include "gan/cuda_backend.h"

static void set_why(char *why, size_t why_bytes, const char *text)
{
    if (why && why_bytes > 0)
        snprintf(why, why_bytes, "%s", text);
}

/* "cuda" or "cuda:N": true, with N in *index (unchanged for plain "cuda"). */
static bool parse_cuda_device(const char *device, int *index)
{
    if (!strcmp(device, "cuda"))
        return true;
    if (strncmp(device, "cuda:", 5) || !isdigit((unsigned char)device[5]))
        return false;
    char *end = NULL;
    errno = 0;
    long n = strtol(device + 5, &end, 10);
    if (errno || *end || n < 0 || n > 1023)
        return false;
    *index = (int)n;
    return true;
}

gan_status gan_backend_open(const char *device, const gan_backend_options *options,
                            gan_backend **out, char *why, size_t why_bytes)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_backend_open: no output pointer");
    *out = NULL;
    set_why(why, why_bytes, "");
    if (!device)
        device = "auto";
    gan_backend_options opts = options ? *options : gan_backend_options_default();

    if (strcmp(device, "cpu") == 0)
        return gan_cpu_backend_create(&opts, out);

    if (parse_cuda_device(device, &opts.device_index)) {
        gan_status status = gan_cuda_backend_create(&opts, out);
        if (status != GAN_OK)
            return gan_error_prefix(status, "--device %s: ", device);
        return GAN_OK;
    }

    if (strcmp(device, "auto") != 0)
        return gan_error(GAN_ERR_ARG, "--device %s: expected auto, cpu or cuda (cuda:N for GPU N)", device);

    gan_status status = gan_cuda_backend_create(&opts, out);
    if (status == GAN_OK)
        return GAN_OK;
    /* Keep the reason before the CPU backend's creation can overwrite the message. */
    char reason[600];
    snprintf(reason, sizeof reason, "using the CPU: %s", gan_error_message());
    gan_error_clear();
    if (opts.precision != GAN_PRECISION_FP32)
        return gan_error(GAN_ERR_UNSUPPORTED,
                         "train.precision = %s needs the CUDA backend, which cannot be used here (%s); "
                         "the CPU backend computes in fp32 only",
                         gan_precision_name(opts.precision), reason + strlen("using the CPU: "));
    GAN_TRY(gan_cpu_backend_create(&opts, out));
    set_why(why, why_bytes, reason);
    return GAN_OK;
}
