/* sys.h - raw system calls for the libc-free restorer.
 *
 * The restorer replaces its own address space with another program's, so
 * it cannot use libc (which keeps state in memory we are about to replace,
 * and would be mapped where the target wants to be).  Every call returns
 * the kernel's value: >= 0, or -errno.
 */
#ifndef RESTORER_SYS_H
#define RESTORER_SYS_H

#include <asm/unistd.h>
#include <stddef.h>
#include <stdint.h>

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;

    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#define SYS(n, a, b, c, d, e, f) \
    sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static inline long sys_read(int fd, void *buf, size_t n)
{ return SYS(__NR_read, fd, buf, n, 0, 0, 0); }
static inline long sys_write(int fd, const void *buf, size_t n)
{ return SYS(__NR_write, fd, buf, n, 0, 0, 0); }
static inline long sys_open(const char *path, int flags)
{ return SYS(__NR_openat, -100 /* AT_FDCWD */, path, flags, 0, 0, 0); }
static inline long sys_close(int fd)
{ return SYS(__NR_close, fd, 0, 0, 0, 0, 0); }
static inline long sys_pread(int fd, void *buf, size_t n, long off)
{ return SYS(__NR_pread64, fd, buf, n, off, 0, 0); }
static inline long sys_mmap(uint64_t addr, uint64_t len, int prot, int flags,
                            int fd, uint64_t off)
{ return SYS(__NR_mmap, addr, len, prot, flags, fd, off); }
static inline long sys_munmap(uint64_t addr, uint64_t len)
{ return SYS(__NR_munmap, addr, len, 0, 0, 0, 0); }
static inline long sys_mprotect(uint64_t addr, uint64_t len, int prot)
{ return SYS(__NR_mprotect, addr, len, prot, 0, 0, 0); }
static inline long sys_mremap(uint64_t old, uint64_t len, uint64_t nlen,
                              int flags, uint64_t naddr)
{ return SYS(__NR_mremap, old, len, nlen, flags, naddr, 0); }
static inline long sys_msync(uint64_t addr, uint64_t len, int flags)
{ return SYS(__NR_msync, addr, len, flags, 0, 0, 0); }
static inline long sys_prctl(int op, long a, long b, long c, long d)
{ return SYS(__NR_prctl, op, a, b, c, d, 0); }
static inline long sys_arch_prctl(int op, uint64_t v)
{ return SYS(__NR_arch_prctl, op, v, 0, 0, 0, 0); }
static inline long sys_getrandom(void *buf, size_t n, unsigned int flags)
{ return SYS(__NR_getrandom, buf, n, flags, 0, 0, 0); }
static inline long sys_close_range(unsigned int lo, unsigned int hi)
{ return SYS(__NR_close_range, lo, hi, 0, 0, 0, 0); }
static inline __attribute__((noreturn)) void sys_exit_group(int status)
{
    SYS(__NR_exit_group, status, 0, 0, 0, 0, 0);
    __builtin_unreachable();
}

/* struct stat of x86_64, only the field we read. */
struct rst_stat {
    uint64_t dev, ino, nlink;
    uint32_t mode, uid, gid, pad0;
    uint64_t rdev;
    int64_t size, blksize, blocks;
    uint64_t times[6];
    int64_t unused[3];
};

static inline long sys_fstat(int fd, struct rst_stat *st)
{ return SYS(__NR_fstat, fd, st, 0, 0, 0, 0); }

#endif
