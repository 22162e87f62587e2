/* See gan/clock.h. */
#include "gan/clock.h"

#include <time.h>

double gan_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
