/* vdso.c - the clocks read through the vDSO are right after restore.
 *
 * glibc reads CLOCK_REALTIME and CLOCK_MONOTONIC through the vDSO, which
 * reads the kernel's [vvar] page.  A restore that kept a stale vDSO or
 * mismatched vvar gives times that disagree with the kernel's own answer,
 * so each vDSO reading is compared with the raw system call, REALTIME is
 * compared with time(), and MONOTONIC must advance across a short sleep.
 */
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SKEW_NS 2000000000LL /* a couple of seconds */

static long long ts_ns(const struct timespec *ts)
{
    return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static long long llabs_diff(long long a, long long b)
{
    return a > b ? a - b : b - a;
}

/* Compare the vDSO's reading of clk with the kernel's; 0 when close. */
static int check_against_syscall(clockid_t clk, const char *name)
{
    struct timespec via_vdso, via_kernel;

    if (clock_gettime(clk, &via_vdso) != 0 ||
        syscall(SYS_clock_gettime, clk, &via_kernel) != 0) {
        fprintf(stderr, "vdso: cannot read %s\n", name);
        return 1;
    }
    if (llabs_diff(ts_ns(&via_vdso), ts_ns(&via_kernel)) > MAX_SKEW_NS) {
        fprintf(stderr, "vdso: %s: vDSO %lld ns, kernel %lld ns\n", name,
                ts_ns(&via_vdso), ts_ns(&via_kernel));
        return 1;
    }
    return 0;
}

static int check_realtime(void)
{
    struct timespec ts;
    struct timeval tv;
    time_t now = time(NULL);

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gettimeofday(&tv, NULL) != 0)
        return 1;
    if (llabs_diff(ts.tv_sec, now) > 2 || llabs_diff(tv.tv_sec, now) > 2) {
        fprintf(stderr, "vdso: clocks disagree: time %lld, clock_gettime %lld,"
                " gettimeofday %lld\n", (long long)now, (long long)ts.tv_sec,
                (long long)tv.tv_sec);
        return 1;
    }
    return 0;
}

static int check_monotonic_advances(void)
{
    struct timespec a, b, nap = { 0, 2000000 };

    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (ts_ns(&b) - ts_ns(&a) < ts_ns(&nap)) {
        fprintf(stderr, "vdso: CLOCK_MONOTONIC moved %lld ns over a 2 ms sleep\n",
                ts_ns(&b) - ts_ns(&a));
        return 1;
    }
    return 0;
}

static int check_vdso_image(void)
{
    const unsigned char *ehdr = (const void *)getauxval(AT_SYSINFO_EHDR);

    if (!ehdr || memcmp(ehdr, ELFMAG, SELFMAG) != 0) {
        fprintf(stderr, "vdso: AT_SYSINFO_EHDR does not point at an ELF image\n");
        return 1;
    }
    return 0;
}

int main(void)
{
    if (check_vdso_image() || check_realtime() || check_monotonic_advances() ||
        check_against_syscall(CLOCK_REALTIME, "CLOCK_REALTIME") ||
        check_against_syscall(CLOCK_MONOTONIC, "CLOCK_MONOTONIC"))
        return 1;
    puts("vdso ok");
    return 0;
}
