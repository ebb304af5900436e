/* far.c - a program that sits where the restorer sits.
 *
 * Linked at 0x200000000000, the address range the restorer (vmad-restore)
 * is linked around, so restoring it must collide with the restorer: the
 * bad-input test checks that this fails with one clear line and does not
 * crash.  Static libc's startup code cannot be linked that high (its
 * 32-bit absolute relocations overflow), so this one has no libc: it
 * writes its line with raw system calls.
 */
#include <sys/syscall.h>

static const char message[] = "far ok\n";

static long syscall3(long nr, long a, long b, long c)
{
    long ret;

    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

void _start(void);

void _start(void)
{
    long n = syscall3(SYS_write, 1, (long)message, sizeof message - 1);

    syscall3(SYS_exit_group, n == sizeof message - 1 ? 0 : 1, 0, 0);
    __builtin_unreachable();
}
