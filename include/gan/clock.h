/* The monotonic clock every timing in gan reads (logs, progress, benchmarks). */
#ifndef GAN_CLOCK_H
#define GAN_CLOCK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC): for differences only. */
double gan_now_s(void);

#ifdef __cplusplus
}
#endif
#endif
