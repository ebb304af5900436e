/* no_pwait2.c - run a command as on a kernel without epoll_pwait2, for
 * tests/vexec-cluster.t.
 *
 *   no_pwait2 COMMAND [ARGS...]
 *
 * Installs a seccomp filter under which epoll_pwait2 (Linux 5.11) fails
 * with ENOSYS, as it does on an older kernel and under valgrind, then
 * execs COMMAND.  The filter is inherited by every process COMMAND forks,
 * so `no_pwait2 vexec-cluster up N` brings up daemons and a gateway that
 * must fall back to epoll_wait (common/evwait.h) rather than spin.
 * Exit status 2 if the filter cannot be installed or COMMAND not run. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_pwait2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        .len = sizeof(code) / sizeof(code[0]),
        .filter = code,
    };

    if (argc < 2) {
        fprintf(stderr, "usage: no_pwait2 COMMAND [ARGS...]\n");
        return 2;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
        || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
        fprintf(stderr, "no_pwait2: installing the seccomp filter: %s\n",
                strerror(errno));
        return 2;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "no_pwait2: %s: %s\n", argv[1], strerror(errno));
    return 2;
}
