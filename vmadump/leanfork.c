/* leanfork.c - keep a fork's child from inheriting what it will not use.
 *
 * vmad_spawn_image forks the caller (a node daemon with libfabric, its
 * peers' shared-memory regions, its heap) only to replace the child at
 * once with the restorer, which then unmaps everything of the caller's.
 * Profiles of 64-node launches put ~20% of all CPU there: fork copying
 * page tables and VMAs, the child unmapping them again, and the caller
 * taking copy-on-write faults on its own heap while the child shares it.
 * Marking those mappings MADV_DONTFORK before the fork avoids all three.
 *
 * The child, forked by a raw clone (no atfork handlers, no return into
 * libc), runs only vmadump/spawn.c's child code until it jumps into the
 * restorer: raw system calls, on a stack of its own in an anonymous
 * mapping of the caller's that also holds its whole plan, our code and
 * read-only data, and the image.  So every mapping is marked except those
 * the caller names (leanfork.h) and the kernel's special mappings
 * ([vdso], [vvar], ...), which madvise cannot change: libc, the dynamic
 * loader, our own data, relro and TLS, and the [stack] too.  Most of
 * those a daemon inherited from vexec-cluster, which forks every daemon,
 * so each of their copies also joined anon_vma trees shared by all
 * daemons.  The marks stay: this is for
 * a caller that forks nothing else (leanfork.h).  Under AddressSanitizer
 * it marks nothing (the child needs the shadow memory).
 */
#include "leanfork.h"

/* Under AddressSanitizer every store of the child's checks shadow memory,
 * a large anonymous mapping it must keep: prune nothing there. */
#if defined(__SANITIZE_ADDRESS__)
#define LEANFORK_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEANFORK_OFF 1
#endif
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef LEANFORK_OFF

/* One line of /proc/self/maps, as far as we need it. */
struct vma {
    uintptr_t start, end;
    char path[512];
};

static int parse_line(const char *line, struct vma *v)
{
    int pos = 0;

    v->path[0] = 0;
    /* No whitespace directive after the inode: it would run on past the
     * end of a line without a path, into the next one. */
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %*s %*s%n",
               &v->start, &v->end, &pos) < 2 || pos == 0)
        return -1;
    while (line[pos] == ' ' || line[pos] == '\t')
        pos++;
    snprintf(v->path, sizeof(v->path), "%.*s", (int)strcspn(line + pos, "\n"),
             line + pos);
    return 0;
}

static int contains(const struct vma *v, uintptr_t a)
{
    return a >= v->start && a < v->end;
}

/* Call fn for each line of the maps text (NUL-terminated; each line is
 * cut at its newline while it is parsed, so sscanf sees one line). */
static void each_vma(char *text, void (*fn)(void *arg, const struct vma *v),
                     void *arg)
{
    for (char *line = text, *nl; *line; line = nl + 1) {
        struct vma v;
        int ok;

        if (!(nl = strchr(line, '\n')))
            nl = line + strlen(line) - 1;
        else
            *nl = 0;
        ok = parse_line(line, &v) == 0;
        if (!nl[0])
            *nl = '\n';
        if (ok)
            fn(arg, &v);
    }
}

/* Does the child need this mapping?  Not our [heap] nor our [stack]: the
 * child runs on a stack of its own (spawn.c). */
static int needed(const struct leanfork_keep *k, const struct vma *v)
{
    if (v->path[0] == '[' && strcmp(v->path, "[heap]")
        && strcmp(v->path, "[stack]"))
        return 1;           /* [vdso], [vvar]: the kernel's, kept */
    for (int i = 0; i < k->nranges; i++)
        if (v->start < k->end[i] && v->end > k->start[i])
            return 1;
    for (int i = 0; i < k->naddr; i++)
        if (contains(v, k->addr[i]))
            return 1;
    return 0;
}

/* Mark what the child does not need. */
static void mark(void *arg, const struct vma *v)
{
    if (needed(arg, v))
        return;
    /* Advice only: a mapping that refuses (EINVAL for some special ones)
     * is simply inherited as before. */
    madvise((void *)v->start, v->end - v->start, MADV_DONTFORK);
}

/* Read all of /proc/self/maps into one NUL-terminated buffer, kept and
 * grown from call to call (the kernel's cost is generating the text, so
 * read it once; a fresh large buffer each time would cost page faults).
 * Returns it, or NULL with errno. */
static char *read_maps(void)
{
    static char *text;
    static size_t cap;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n = 0;

    if (fd < 0)
        return NULL;
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 64 << 10;
            char *nt = realloc(text, ncap);

            if (!nt)
                break;
            text = nt;
            cap = ncap;
        }
        n = read(fd, text + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!text || n < 0 || len + 1 >= cap)
        return NULL;
    text[len] = 0;
    return text;
}

/* The size of our address space in pages (/proc/self/statm's first
 * field, from the kernel's counters: no walk of the mappings; the file
 * stays open, so a look is one read), or 0. */
static unsigned long vm_pages(void)
{
    static int fd = -1;
    char text[128];
    ssize_t n;

    if (fd < 0)
        fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    n = fd < 0 ? -1 : pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = 0;
    return strtoul(text, NULL, 10);
}

/* The end of our heap as the kernel maps it: the program break rounded
 * up to a page. */
static uintptr_t heap_end(void)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);

    return ((uintptr_t)sbrk(0) + page - 1) & ~(page - 1);
}

/* Does [lo, hi) hold anything the child needs? */
static int keeps_any(const struct leanfork_keep *k, uintptr_t lo, uintptr_t hi)
{
    struct vma v = { .start = lo, .end = hi };

    return needed(k, &v);
}

int leanfork_prune(const struct leanfork_keep *k)
{
    static unsigned long pruned_pages;
    static uintptr_t pruned_heap;
    unsigned long pages = vm_pages();
    uintptr_t heap = heap_end(), page = (uintptr_t)sysconf(_SC_PAGESIZE);
    char *text;

    /* Generating the maps text costs ~0.2 ms for a daemon's ~100
     * mappings.  New mappings change the address space's size; when it
     * has not changed since the last prune, the marks stand (a mapping
     * missed this way is only inherited, as without this module). */
    if (pages && pages == pruned_pages && heap == pruned_heap)
        return 0;
    /* Only the heap moved (malloc grows and trims it for a while after a
     * daemon starts, each launch in a new place): mark what it grew by. */
    if (pages && pruned_pages && pruned_heap && heap != pruned_heap
        && (long)(pages - pruned_pages) * (long)page
               == (long)(heap - pruned_heap)
        && !keeps_any(k, pruned_heap < heap ? pruned_heap : heap,
                      pruned_heap < heap ? heap : pruned_heap)) {
        if (heap > pruned_heap)
            madvise((void *)pruned_heap, heap - pruned_heap, MADV_DONTFORK);
        pruned_pages = pages;
        pruned_heap = heap;
        return 0;
    }
    if (!(text = read_maps()))
        return -1;
    pruned_pages = pages;
    pruned_heap = heap;
    each_vma(text, mark, (void *)k);
    return 0;
}

#else

int leanfork_prune(const struct leanfork_keep *k)
{
    (void)k;
    return 0;
}

#endif
