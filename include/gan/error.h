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

/* The one way a sequence of calls handles failure: one statement per call, stopping at the first
 * failure with its status and message unchanged.
 *
 * GAN_TRY(call) returns the failure: for sequences that hold nothing to release.
 *
 * GAN_CHECK(call) stores the status in the function's `status` and jumps to its `cleanup:` label:
 * for sequences that hold something to release. The function declares `gan_status status =
 * GAN_OK;` and everything the cleanup releases before its first GAN_CHECK, and ends with
 *     cleanup:
 *         ...releases...
 *         return status;
 * (Where only a failure releases, the function returns GAN_OK just before the label.) A
 * conditional step reads `if (want) GAN_CHECK(call);`.
 *
 * Work split over threads (OpenMP loops, which cannot return or jump out) keeps the first failure
 * with gan_status_keep_first. */
#define GAN_TRY(expr)                          \
    do {                                       \
        gan_status gan_try_status_ = (expr);   \
        if (gan_try_status_ != GAN_OK)         \
            return gan_try_status_;            \
    } while (0)

#define GAN_CHECK(expr)                        \
    do {                                       \
        status = (expr);                       \
        if (status != GAN_OK)                  \
            goto cleanup;                      \
    } while (0)

/* *status = s unless *status already holds a failure (or s is GAN_OK): callable from every thread
 * of an OpenMP team at once. */
static inline void gan_status_keep_first(gan_status *status, gan_status s)
{
    if (s != GAN_OK) {
#ifdef _OPENMP
#pragma omp critical(gan_status_keep_first)
#endif
        if (*status == GAN_OK)
            *status = s;
    }
}

#ifdef __cplusplus
}
#endif
#endif
