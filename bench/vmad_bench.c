/* vmad_bench.c - vexec-bench-vmadump: what a VMADump image costs against
 * starting the program from its file.
 *
 * All benchmarks use the 4 MiB static test program tests/progs/big4m-static
 * (from big4m.c) of the build under test: $VEXEC_BUILD, else the build this
 * binary sits in (it lives in $(B)/bin).
 *   dump             vmad_dump_to_buffer() of big4m (the buffer is freed
 *                    outside the timed region);
 *   restore          fork, the child restores the image from a file opened
 *                    once, the parent waits for the child's exit;
 *   restore_verified the same with opts.verified: the checksum is skipped,
 *                    as when one node restores a checked image many times;
 *   restore_spawn    vmad_restore_spawn() (no fork, like posix_spawn) and
 *                    waitpid; restore_spawn_verified skips the checksum:
 *                    the node daemon's path, which checks it on arrival;
 *   spawn_image      vmad_spawn_image() from the image in anonymous memory
 *                    (checksum skipped) and waitpid: the node daemon's path
 *                    since it keeps its image buffer (fork, user-space exec
 *                    of the restorer, pages moved into place);
 *   posix_spawn      posix_spawn of big4m (page cache warm) and waitpid;
 *   fork_exec        fork + execve + waitpid, to show what the fork that
 *                    restore needs (vmad_restore_fd replaces the caller)
 *                    costs next to posix_spawn's vfork-style clone;
 *   cpuid, page_fault, syscall  what this machine charges for the things
 *                    every process start does many times: one CPUID, the
 *                    first touch of one fresh 4 KiB page, one system call
 *                    (getppid): a VM's costs differ by machine kind, and
 *                    these say which one a run was on.
 * Times are taken with CLOCK_MONOTONIC from just before the fork/spawn to
 * waitpid's return and fed in as manual time, so the harness's bookkeeping
 * is not counted.  A child that does not exit 0 fails the benchmark; its
 * time is never reported.  The children's stdout goes to /dev/null.
 */
#include "common/clock.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/gbench.h"
#include "vmadump/util.h"
#include "vmadump/vmadump.h"

extern char **environ;

struct bench_ctx {
    char prog[PATH_MAX];        /* big4m */
    char *argv[2];
    int devnull;                /* stdout of every child */
    int image_fd;               /* big4m's image, or -1 ... */
    void *image_mem;            /* ... the same in anonymous memory */
    size_t image_len;
    char image_err[PATH_MAX + 256]; /* ... and why it could not be made */
};

struct restore_case {
    struct bench_ctx *ctx;
    int verified;
};

/* Wait for pid.  Returns 0 if it exited with status 0, else -1 with a
 * description of what happened in why. */
static int wait_exit_ok(pid_t pid, char *why, size_t len)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, len, "waitpid: %s", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(why, len, "exit status %d", WEXITSTATUS(status));
    else
        snprintf(why, len, "killed by signal %d", WTERMSIG(status));
    return -1;
}

static void bm_dump(struct gbench_state *st, void *arg)
{
    struct bench_ctx *ctx = arg;
    char err[256];
    void *buf;
    size_t len = 0;

    while (gbench_keep_running(st)) {
        double t0 = mono_now();
        if (vmad_dump_to_buffer(ctx->prog, ctx->argv, environ, NULL,
                                &buf, &len, err, sizeof err) < 0) {
            gbench_error(st, "vmad_dump_to_buffer %s: %s", ctx->prog, err);
            return;
        }
        gbench_set_iteration_time(st, mono_now() - t0);
        free(buf);
    }
    gbench_counter(st, "image_MiB", len / 1048576.0, GBENCH_COUNTER_PLAIN);
}

/* Time fork + child(arg) + waitpid; child never returns. */
static void fork_loop(struct gbench_state *st, void (*child)(const void *arg),
                      const void *arg)
{
    char why[256];

    while (gbench_keep_running(st)) {
        double t0 = mono_now();
        pid_t pid = fork();

        if (pid < 0) {
            gbench_error(st, "fork: %s", strerror(errno));
            return;
        }
        if (pid == 0)
            child(arg);
        if (wait_exit_ok(pid, why, sizeof why) < 0) {
            gbench_error(st, "big4m: %s", why);
            return;
        }
        gbench_set_iteration_time(st, mono_now() - t0);
    }
}

/* The child of the restore benchmark: never returns. */
static void restore_child(const void *arg)
{
    const struct restore_case *rc = arg;
    struct vmad_restore_opts opts = { .rank = -1, .verified = rc->verified };
    char err[256];

    if (dup2(rc->ctx->devnull, STDOUT_FILENO) < 0)
        _exit(126);
    vmad_restore_fd(rc->ctx->image_fd, &opts, err, sizeof err);
    dprintf(STDERR_FILENO, "vmad_restore_fd: %s\n", err);
    _exit(127);
}

static void bm_restore(struct gbench_state *st, void *arg)
{
    const struct restore_case *rc = arg;

    if (rc->ctx->image_fd < 0) {
        gbench_error(st, "no image: %s", rc->ctx->image_err);
        return;
    }
    fork_loop(st, restore_child, rc);
}

/* Starts one child with stdout on fa; 0, or -1 with a message in err. */
typedef int (*start_fn)(const void *arg, const posix_spawn_file_actions_t *fa,
                        pid_t *pid, char *err, size_t errlen);

/* Time start + waitpid, the way posix_spawn users start programs. */
static void spawn_loop(struct gbench_state *st, struct bench_ctx *ctx,
                       start_fn start, const void *arg)
{
    posix_spawn_file_actions_t fa;
    char err[256];
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, ctx->devnull, STDOUT_FILENO);
    while (gbench_keep_running(st)) {
        double t0 = mono_now();

        if (start(arg, &fa, &pid, err, sizeof err) < 0) {
            gbench_error(st, "%s", err);
            break;
        }
        if (wait_exit_ok(pid, err, sizeof err) < 0) {
            gbench_error(st, "big4m: %s", err);
            break;
        }
        gbench_set_iteration_time(st, mono_now() - t0);
    }
    posix_spawn_file_actions_destroy(&fa);
}

static int start_restore(const void *arg, const posix_spawn_file_actions_t *fa,
                         pid_t *pid, char *err, size_t errlen)
{
    const struct restore_case *rc = arg;
    struct vmad_restore_opts opts = { .rank = -1, .verified = rc->verified };

    return vmad_restore_spawn(rc->ctx->image_fd, &opts, fa, NULL, pid, err,
                              errlen);
}

static int start_program(const void *arg, const posix_spawn_file_actions_t *fa,
                         pid_t *pid, char *err, size_t errlen)
{
    const struct bench_ctx *ctx = arg;
    int rc = posix_spawn(pid, ctx->prog, fa, NULL, ctx->argv, environ);

    if (rc)
        snprintf(err, errlen, "posix_spawn %s: %s", ctx->prog, strerror(rc));
    return rc ? -1 : 0;
}

static int start_image(const void *arg, const posix_spawn_file_actions_t *fa,
                       pid_t *pid, char *err, size_t errlen)
{
    const struct bench_ctx *ctx = arg;
    struct vmad_restore_opts opts = { .rank = -1, .verified = 1 };
    struct vmad_spawn_io io = { .fds = { -1, ctx->devnull, STDERR_FILENO } };

    (void)fa;   /* io says the same: stdout to /dev/null */
    return vmad_spawn_image(ctx->image_mem, ctx->image_len, &opts, &io, pid,
                            err, errlen);
}

static void bm_spawn_image(struct gbench_state *st, void *arg)
{
    struct bench_ctx *ctx = arg;

    if (!ctx->image_mem) {
        gbench_error(st, "no image: %s", ctx->image_err);
        return;
    }
    spawn_loop(st, ctx, start_image, ctx);
}

/* Restore through vmad_restore_spawn(): no fork, the way posix_spawn
 * starts a program; checksum checked or skipped as in bm_restore. */
static void bm_restore_spawn(struct gbench_state *st, void *arg)
{
    const struct restore_case *rc = arg;

    if (rc->ctx->image_fd < 0) {
        gbench_error(st, "no image: %s", rc->ctx->image_err);
        return;
    }
    spawn_loop(st, rc->ctx, start_restore, rc);
}

static void bm_posix_spawn(struct gbench_state *st, void *arg)
{
    spawn_loop(st, arg, start_program, arg);
}

/* The child of the fork+exec baseline: never returns. */
static void exec_child(const void *arg)
{
    const struct bench_ctx *ctx = arg;

    if (dup2(ctx->devnull, STDOUT_FILENO) >= 0)
        execve(ctx->prog, ctx->argv, environ);
    _exit(127);
}

static void bm_fork_exec(struct gbench_state *st, void *arg)
{
    fork_loop(st, exec_child, arg);
}

/* One CPUID instruction (leaf 4, the cache parameters glibc's start-up
 * asks for, leaf after leaf): in a VM every CPUID exits to the
 * hypervisor, so its cost is part of every process start, restored or
 * spawned alike. */
static void bm_cpuid(struct gbench_state *st, void *arg)
{
    unsigned int a, b, c, d, sub = 0;

    (void)arg;
    while (gbench_keep_running(st)) {
        double t0 = mono_now();

        __cpuid_count(4, sub & 3, a, b, c, d);
        gbench_set_iteration_time(st, mono_now() - t0);
        sub += a & 1;
    }
}

/* Pages per page_fault iteration: 4 MiB, which THP would have made one
 * huge page, so huge pages are refused for it. */
#define FAULT_PAGES 1024

/* The first touch of a fresh 4 KiB anonymous page (the kernel allocates,
 * zeroes and maps it): time per page, mapping and unmapping not timed. */
static void bm_page_fault(struct gbench_state *st, void *arg)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = FAULT_PAGES * page;

    (void)arg;
    while (gbench_keep_running(st)) {
        volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        double t0;

        if (p == MAP_FAILED) {
            gbench_error(st, "mmap: %s", strerror(errno));
            return;
        }
        madvise((void *)p, len, MADV_NOHUGEPAGE);
        t0 = mono_now();
        for (size_t i = 0; i < len; i += page)
            p[i] = 1;
        gbench_set_iteration_time(st, (mono_now() - t0) / FAULT_PAGES);
        munmap((void *)p, len);
    }
}

/* Calls per syscall iteration. */
#define SYSCALLS 1000

/* One round trip into the kernel and back (getppid, which does almost
 * nothing there): time per call. */
static void bm_syscall(struct gbench_state *st, void *arg)
{
    (void)arg;
    while (gbench_keep_running(st)) {
        double t0 = mono_now();

        for (int i = 0; i < SYSCALLS; i++)
            syscall(SYS_getppid);
        gbench_set_iteration_time(st, (mono_now() - t0) / SYSCALLS);
    }
}

/* Fill ctx->prog from $VEXEC_BUILD, else from our own path: we live in
 * $(B)/bin.  Returns 0 or -1. */
static int find_prog(struct bench_ctx *ctx)
{
    const char *build = getenv("VEXEC_BUILD");
    char self[PATH_MAX];
    ssize_t n;

    if (!build) {
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0) {
            perror("vexec-bench-vmadump: /proc/self/exe");
            return -1;
        }
        self[n] = '\0';
        build = dirname(dirname(self));
    }
    n = snprintf(ctx->prog, sizeof ctx->prog, "%s/tests/progs/big4m-static",
                 build);
    if (n < (ssize_t)sizeof ctx->prog)
        return 0;
    fprintf(stderr, "vexec-bench-vmadump: build path too long: %s\n", build);
    return -1;
}

/* Dump big4m into an unlinked temporary file and open it for the restore
 * benchmarks.  Returns the fd, or -1 with the cause in ctx->image_err. */
static int make_image(struct bench_ctx *ctx)
{
    const char *dir = getenv("TMPDIR");
    char path[PATH_MAX];
    void *buf;
    size_t len;
    int fd;

    if (vmad_dump_to_buffer(ctx->prog, ctx->argv, environ, NULL, &buf, &len,
                            ctx->image_err, sizeof ctx->image_err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/vexec-bench-XXXXXX", dir ? dir : "/tmp");
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    ctx->image_mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ctx->image_mem == MAP_FAILED)
        ctx->image_mem = NULL;
    else
        memcpy(ctx->image_mem, buf, ctx->image_len = len);
    if (fd < 0 || write_all(fd, buf, len) < 0) {
        snprintf(ctx->image_err, sizeof ctx->image_err, "%s: %s", path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    free(buf);
    return fd;
}

static void register_all(struct bench_ctx *ctx, struct restore_case rc[2])
{
    const struct gbench_opts opts = { .unit = GBENCH_US, .manual_time = 1 };
    const struct gbench_opts fault_opts = { .unit = GBENCH_US, .manual_time = 1,
                                            .iterations = 20 };
    const struct gbench_opts call_opts = { .unit = GBENCH_US, .manual_time = 1,
                                           .iterations = 200 };

    rc[0] = (struct restore_case){ .ctx = ctx, .verified = 0 };
    rc[1] = (struct restore_case){ .ctx = ctx, .verified = 1 };
    gbench_register("vmadump/dump", bm_dump, ctx, &opts);
    gbench_register("vmadump/restore", bm_restore, &rc[0], &opts);
    gbench_register("vmadump/restore_verified", bm_restore, &rc[1], &opts);
    gbench_register("vmadump/restore_spawn", bm_restore_spawn, &rc[0], &opts);
    gbench_register("vmadump/restore_spawn_verified", bm_restore_spawn, &rc[1], &opts);
    gbench_register("vmadump/spawn_image", bm_spawn_image, ctx, &opts);
    gbench_register("baseline/posix_spawn", bm_posix_spawn, ctx, &opts);
    gbench_register("baseline/fork_exec", bm_fork_exec, ctx, &opts);
    gbench_register("baseline/cpuid", bm_cpuid, NULL, &opts);
    /* Their iteration times are per page and per call, far below what
     * an iteration really takes, so the harness would size the runs for
     * minutes: fixed counts instead (~0.2 s a repetition here). */
    gbench_register("baseline/page_fault", bm_page_fault, NULL, &fault_opts);
    gbench_register("baseline/syscall", bm_syscall, NULL, &call_opts);
}

int main(int argc, char **argv)
{
    /* Ten repetitions give a median that one slow run cannot move; the
     * console shows the aggregates, the JSON file every repetition.
     * Repetitions of all benchmarks run interleaved in random order, so a
     * burst of load on the machine hits each of them alike instead of
     * skewing the ratio of whichever was running. */
    static const char *const defaults[] = {
        "--benchmark_repetitions=10",
        "--benchmark_enable_random_interleaving=true",
        "--benchmark_display_aggregates_only=true",
        NULL,
    };
    static struct bench_ctx ctx = { .argv = { "big4m", NULL } };
    struct restore_case rc[2];
    int status;

    if (find_prog(&ctx) < 0)
        return 1;
    ctx.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (ctx.devnull < 0) {
        perror("vexec-bench-vmadump: /dev/null");
        return 1;
    }
    ctx.image_fd = make_image(&ctx);
    register_all(&ctx, rc);
    status = gbench_main(argc, argv, defaults);
    if (ctx.image_fd >= 0)
        close(ctx.image_fd);
    close(ctx.devnull);
    return status;
}
