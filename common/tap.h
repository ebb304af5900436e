/* tap.h - a minimal Test Anything Protocol emitter for unit tests.
 *
 * Unit tests are small C programs that print TAP and are run by prove.
 * Header-only so that every module's tests can use it without a library.
 */
#ifndef VEXEC_TAP_H
#define VEXEC_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_count;
static int tap_failed;

/* Report one check; returns cond so callers can chain diagnostics. */
__attribute__((format(printf, 2, 3), unused))
static int ok(int cond, const char *fmt, ...)
{
    va_list ap;

    tap_count++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

/* A comment line, shown by prove -v and on failures. */
__attribute__((format(printf, 1, 2), unused))
static void diag(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Print the plan and return the exit status for main(). */
__attribute__((unused))
static int done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
