/* Error reporting: every library function returns a gan_status; the message that goes with a
 * non-OK status is kept per thread and read with gan_error_message(). Nothing in the library
 * calls exit(): the CLI turns a status into one line on stderr and a non-zero exit code. */
#ifndef GAN_ERROR_H
#define GAN_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gan_status {
    GAN_OK = 0,
    GAN_ERR_ARG,       /* a caller passed something impossible */
    GAN_ERR_IO,        /* a file could not be opened, read or written */
    GAN_ERR_FORMAT,    /* a file is not what it claims to be (magic, header, truncation) */
    GAN_ERR_CONFIG,    /* a config key or value is wrong */
    GAN_ERR_SHAPE,     /* a layer cannot fit its input */
    GAN_ERR_NOMEM,     /* an allocation failed */
    GAN_ERR_BACKEND,   /* the BLAS, CUDA, cuDNN or cuBLAS said no */
    GAN_ERR_NUMERIC,   /* a non-finite value where a finite one is required */
    GAN_ERR_UNSUPPORTED /* this build or this device cannot do it */
} gan_status;

/* Records `fmt` as the message of the current error and returns `status`, so a failure
 * reads `return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));`. */
gan_status gan_error(gan_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prepends context ("layer 3 (conv): ") to the current message and returns `status`. */
gan_status gan_error_prefix(gan_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

const char *gan_error_message(void);
const char *gan_status_name(gan_status status);
void gan_error_clear(void);

/* Propagate a failed status unchanged (the message is already set). */
#define GAN_TRY(expr)                          \
    do {                                       \
        gan_status gan_try_status_ = (expr);   \
        if (gan_try_status_ != GAN_OK)         \
            return gan_try_status_;            \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
