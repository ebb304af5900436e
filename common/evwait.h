/* evwait.h - epoll with a timespec timeout on any kernel.
 * Header-only, like clock.h.
 *
 * epoll_pwait2 (Linux 5.11) takes a timespec, so a daemon can sleep for
 * 200 us where epoll_wait rounds to a millisecond.  A kernel before 5.11,
 * or valgrind (which does not know the call), answers ENOSYS; a loop
 * around epoll_pwait2 would then spin.  This falls back to epoll_wait,
 * with the timeout rounded up to whole milliseconds. */
#ifndef VEXEC_EVWAIT_H
#define VEXEC_EVWAIT_H

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>

/* epoll_pwait2(ep, ev, max, ts, NULL), or its epoll_wait equivalent where
 * the kernel lacks it.  ts NULL waits without bound. */
static inline int evwait(int ep, struct epoll_event *ev, int max,
                         const struct timespec *ts)
{
    static int no_pwait2;
    long ms;
    int n;

    if (!no_pwait2) {
        n = epoll_pwait2(ep, ev, max, ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1;
    }
    if (!ts)
        return epoll_wait(ep, ev, max, -1);
    ms = (long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return epoll_wait(ep, ev, max, ms > 0x7fffffff ? 0x7fffffff : (int)ms);
}

#endif
