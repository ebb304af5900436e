/* test_spawn.c - vmad_spawn_image as a node daemon calls it (io.lean):
 * the restored program runs as the rank asked, its output on our pipe,
 * and the caller is left whole after its raw clones: its thread's rseq
 * registration is back, its heap and the image buffer are unchanged, and
 * it spawns again and again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/tap.h"
#include "vmadump/vmadump.h"

#define SPAWNS 20

/* Spawn the image as rank; its stdout into out.  Returns the wait
 * status, or -1. */
static int spawn_one(void *buf, size_t len, long rank, char *out, size_t cap)
{
    struct vmad_restore_opts ro = { .rank = rank, .label = "test_spawn" };
    struct vmad_spawn_io io = { .fds = { -1, -1, 2 }, .lean = 1 };
    char err[512];
    size_t have = 0;
    ssize_t n;
    pid_t pid;
    int p[2], status;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    io.fds[1] = p[1];
    if (vmad_spawn_image(buf, len, &ro, &io, &pid, err, sizeof(err)) < 0) {
        diag("spawn: %s", err);
        close(p[0]);
        close(p[1]);
        return -1;
    }
    close(p[1]);
    while (have < cap - 1 && (n = read(p[0], out + have, cap - 1 - have)) > 0)
        have += (size_t)n;
    out[have] = 0;
    close(p[0]);
    return waitpid(pid, &status, 0) == pid ? status : -1;
}

int main(void)
{
    char *argv[] = { "/bin/sh", "-c", "echo rank=$BPROC_RANK", NULL };
    char *envp[] = { "BPROC_RANK=XXXXXXX", "PATH=/usr/bin:/bin", NULL };
    char err[512], out[256], want[64];
    void *img, *buf;
    size_t len;
    char *heap = malloc(64);
    int good = 0;

    if (!heap || vmad_dump_to_buffer(argv[0], argv, envp, NULL, &img, &len, err,
                                     sizeof(err)) < 0) {
        ok(0, "dump /bin/sh: %s", heap ? err : "out of memory");
        return done_testing();
    }
    strcpy(heap, "heap unchanged");
    buf = mmap(NULL, (len + 4095) & ~4095ul, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        ok(0, "image buffer: %s", strerror(errno));
        return done_testing();
    }
    memcpy(buf, img, len);
    for (long r = 0; r < SPAWNS; r++) {
        int st = spawn_one(buf, len, r, out, sizeof(out));

        snprintf(want, sizeof(want), "rank=%07ld\n", r);
        if (st == 0 && !strcmp(out, want))
            good++;
        else
            diag("rank %ld: status %#x, output '%s'", r, st, out);
    }
    ok(good == SPAWNS, "%d of %d lean spawns ran their rank and exited 0", good,
       SPAWNS);
    ok(!memcmp(buf, img, len), "the image buffer is unchanged after them");
    ok(!strcmp(heap, "heap unchanged"), "and so is our heap");
    if (__rseq_size > 0) {
        void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
        long r = syscall(SYS_rseq, area, __rseq_size < 32 ? 32 : __rseq_size, 0,
                         RSEQ_SIG);

        ok(r == -1 && errno == EBUSY,
           "our thread's rseq is registered again (a new registration: %s)",
           r == 0 ? "accepted" : strerror(errno));
    } else {
        ok(1, "# SKIP glibc registered no rseq");
    }
    free(heap);
    free(img);
    return done_testing();
}
