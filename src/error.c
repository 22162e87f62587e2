#include "gan/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { GAN_ERROR_MESSAGE_BYTES = 2048 };
static _Thread_local char error_message[GAN_ERROR_MESSAGE_BYTES];

gan_status gan_error(gan_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, args);
    va_end(args);
    return status;
}

gan_status gan_error_prefix(gan_status status, const char *fmt, ...)
{
    char prefix[GAN_ERROR_MESSAGE_BYTES];
    char old[GAN_ERROR_MESSAGE_BYTES];
    va_list args;
    va_start(args, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, args);
    va_end(args);
    memcpy(old, error_message, sizeof old);
    snprintf(error_message, sizeof error_message, "%s%s", prefix, old);
    return status;
}

const char *gan_error_message(void)
{
    return error_message[0] ? error_message : "no error message recorded";
}

void gan_error_clear(void) { error_message[0] = '\0'; }

const char *gan_status_name(gan_status status)
{
    switch (status) {
    case GAN_OK: return "ok";
    case GAN_ERR_ARG: return "bad argument";
    case GAN_ERR_IO: return "i/o error";
    case GAN_ERR_FORMAT: return "bad file format";
    case GAN_ERR_CONFIG: return "bad config";
    case GAN_ERR_SHAPE: return "shape mismatch";
    case GAN_ERR_NOMEM: return "out of memory";
    case GAN_ERR_BACKEND: return "backend error";
    case GAN_ERR_NUMERIC: return "non-finite value";
    case GAN_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}
