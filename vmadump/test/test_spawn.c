/* test_spawn.c - vmad_spawn_image as a node daemon calls it (io.lean):
 * the restored program runs as the rank asked, its output on our pipe,
 * and the caller is left whole after its raw clones: its thread's rseq
 * registration is back, its heap and the image buffer are unchanged, and
 * it spawns again and again.  Signals the caller catches or ignores are
 * SIG_DFL in the child.  Heap the caller grows between spawns is left out
 * of the next child too (leanfork.c marks it MADV_DONTFORK).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/tap.h"
#include "vmadump/image.h"
#include "vmadump/vmadump.h"

#define SPAWNS 20

/* Under AddressSanitizer leanfork marks nothing (leanfork.c). */
#if defined(__SANITIZE_ADDRESS__)
#define NO_LEANFORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_LEANFORK 1
#endif
#endif

#ifndef NO_LEANFORK
/* Is the mapping holding addr marked MADV_DONTFORK ("dc" among its
 * VmFlags in /proc/self/smaps)?  1, 0, or -1 if not found. */
static int dontfork_at(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    char line[1024];
    unsigned long lo, hi, a = (unsigned long)addr;
    int in = 0, res = -1;

    if (!f)
        return -1;
    while (res < 0 && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = a >= lo && a < hi;
        else if (in && !strncmp(line, "VmFlags:", 8))
            res = strstr(line, " dc") != NULL;
    }
    fclose(f);
    return res;
}
#endif

static void on_usr1(int sig)
{
    (void)sig;
}

/* The hex mask after "NAME" in /proc/PID/status text, or 0. */
static unsigned long long sig_bits(const char *text, const char *name)
{
    const char *p = strstr(text, name);

    return p ? strtoull(p + strlen(name), NULL, 16) : 0;
}

/* Spawn the image at buf, lead bytes into its mapping, as rank; its
 * stdout into out.  Returns the wait status, or -1. */
static int spawn_at(void *buf, size_t lead, size_t len, long rank, char *out,
                    size_t cap)
{
    struct vmad_restore_opts ro = { .rank = rank, .label = "test_spawn" };
    struct vmad_spawn_io io = { .fds = { -1, -1, 2 }, .lean = 1,
                                .lead = lead };
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

static int spawn_one(void *buf, size_t len, long rank, char *out, size_t cap)
{
    return spawn_at(buf, 0, len, rank, out, cap);
}

/* The image lead bytes into a mapping of its own (as the node daemon
 * keeps it): the restored program runs the same; a lead off the page
 * grid is refused before any fork. */
static void test_lead(const void *img, size_t len)
{
    size_t lead = 3 * 4096, size = (lead + len + 4095) & ~4095ul;
    char *map = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char out[256];
    int st;

    if (map == MAP_FAILED) {
        ok(0, "lead buffer: %s", strerror(errno));
        return;
    }
    memset(map, 0xee, lead);
    memcpy(map + lead, img, len);
    st = spawn_at(map + lead, lead, len, 5, out, sizeof(out));
    ok(st == 0 && !strcmp(out, "rank=0000005\n"),
       "an image %zu bytes into its mapping runs (status %#x, '%s')", lead,
       st, out);
    errno = 0;
    ok(spawn_at(map + lead, 100, len, 5, out, sizeof(out)) == -1
       && errno == EINVAL, "a lead off the page grid is refused");
    munmap(map, size);
}

/* As the node daemon lays its buffer out: 2 MiB aligned, its first 2 MiB
 * a mapping of its own (small pages) and the rest another (huge pages
 * asked for), the image from a lead just below the boundary so that it
 * spans both: the child moves each. */
static void test_lead_two_mappings(const void *img, size_t len)
{
    size_t huge = 2ul << 20, lead = huge - 2 * 4096;
    size_t size = huge + ((len + huge - 1) & ~(huge - 1));
    char *area = mmap(NULL, size + huge, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *base;
    char out[256];
    int st;

    if (area == MAP_FAILED) {
        ok(0, "two-mapping buffer: %s", strerror(errno));
        return;
    }
    base = (char *)(((unsigned long)area + huge - 1) & ~(huge - 1));
    madvise(base + huge, size - huge, MADV_HUGEPAGE);
    memcpy(base + lead, img, len);
    st = spawn_at(base + lead, lead, len, 6, out, sizeof(out));
    ok(st == 0 && !strcmp(out, "rank=0000006\n"),
       "an image across a buffer's small-page head and its huge-page rest "
       "runs (status %#x, '%s')", st, out);
    munmap(area, size + huge);
}

/* A buffer lying where one of the image's regions goes (the first of
 * them that is free in our address space): the restorer cannot take the
 * image where it is, so the child moves it to VMAD_VIEW_ADDR first, and
 * the program runs as from any other buffer. */
static void test_buffer_on_target(const void *img, size_t len)
{
    size_t size = (len + 4095) & ~4095ul;
    char *map = MAP_FAILED, out[256];
    struct image im;
    uint64_t at = 0;
    int st;

    if (image_parse(img, len, &im)) {
        ok(0, "the image parses");
        return;
    }
    for (uint32_t i = 0; i < im.hdr->nregions && map == MAP_FAILED; i++) {
        at = im.regions[i].start;
        map = mmap((void *)at, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (map != MAP_FAILED && map != (char *)at) {
            munmap(map, size);
            map = MAP_FAILED;
        }
    }
    if (map == MAP_FAILED) {
        ok(0, "no region of the image is free here for a buffer");
        return;
    }
    memcpy(map, img, len);
    st = spawn_at(map, 0, len, 7, out, sizeof(out));
    ok(st == 0 && !strcmp(out, "rank=0000007\n"),
       "an image whose buffer lies on its own target %#llx runs (status %#x, "
       "'%s')", (unsigned long long)at, st, out);
    munmap(map, size);
}

int main(void)
{
    char *argv[] = { "/bin/sh", "-c", "echo rank=$BPROC_RANK", NULL };
    char *envp[] = { "BPROC_RANK=XXXXXXX", "PATH=/usr/bin:/bin", NULL };
    char *sargv[] = { "/bin/sh", "-c", "while read l; do case $l in "
                      "Sig[IC]*) echo $l;; esac; done </proc/self/status",
                      NULL };
    void *simg = NULL, *sbuf;
    size_t slen = 0;
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
    /* Dumped now: a plain fork after the first lean spawn would give a
     * child without our heap and stack (leanfork.h). */
    if (vmad_dump_to_buffer(sargv[0], sargv, envp, NULL, &simg, &slen, err,
                            sizeof(err)) < 0) {
        diag("dump of %s: %s", sargv[0], err);
        sbuf = MAP_FAILED;
    } else if ((sbuf = mmap(NULL, (slen + 4095) & ~4095ul,
                            PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED) {
        memcpy(sbuf, simg, slen);
    }
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
    test_lead(img, len);
    test_lead_two_mappings(img, len);
    test_buffer_on_target(img, len);
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
    {
        /* What we catch or ignore is SIG_DFL in the child, whatever the
         * image's own shell then sets (dash catches SIGINT and SIGCHLD). */
        int st = -1;

        signal(SIGUSR1, on_usr1);
        signal(SIGTERM, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        if (sbuf != MAP_FAILED)
            st = spawn_one(sbuf, slen, 0, out, sizeof(out));
        ok(st == 0 && strstr(out, "SigIgn: 0000000000000000")
               && strstr(out, "SigCgt: ")
               && !(sig_bits(out, "SigCgt:") & (1u << (SIGUSR1 - 1))),
           "signals we catch or ignore are SIG_DFL in the child "
           "(status %#x, '%s')", st, out);
        signal(SIGUSR1, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
    }
#ifndef NO_LEANFORK
    {
        /* Grow the heap past what the last spawn saw, spawn, and the new
         * part is marked; shrink and grow it again: the same. */
        char *grown = sbrk(256 << 10);
        int st;

        if (grown == (void *)-1) {
            ok(0, "sbrk: %s", strerror(errno));
            return done_testing();
        }
        memset(grown, 1, 256 << 10);
        st = spawn_one(buf, len, 7, out, sizeof(out));
        ok(st == 0 && dontfork_at(grown + (255 << 10)) == 1,
           "heap grown since the last spawn is left out of the next "
           "(status %#x, marked %d)", st, dontfork_at(grown + (255 << 10)));
        sbrk(-(128 << 10));
        st = spawn_one(buf, len, 8, out, sizeof(out));
        grown = sbrk(512 << 10);
        memset(grown, 2, 512 << 10);
        st |= spawn_one(buf, len, 9, out, sizeof(out));
        ok(st == 0 && dontfork_at(grown + (511 << 10)) == 1
               && !strcmp(heap, "heap unchanged"),
           "and after it shrank and grew again (marked %d)",
           dontfork_at(grown + (511 << 10)));
    }
#endif
    free(heap);
    free(img);
    free(simg);
    return done_testing();
}
