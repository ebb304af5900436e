/* clock.h - the monotonic clock in seconds, for timeouts and timings.
 * Header-only, so any program can use it without linking libcommon. */
#ifndef VEXEC_CLOCK_H
#define VEXEC_CLOCK_H

#include <time.h>

/* Returns CLOCK_MONOTONIC as seconds. */
static inline double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
