/* spawn.c - start a restored program from an image held in memory.
 *
 * The node daemon receives every image into anonymous memory that it keeps
 * from launch to launch: fresh pages cost ~2-5 us each in this VM (a
 * kernel zeroing and accounting them), more than copying the image, and a
 * new memfd per launch paid that for every page on every node.
 *
 * vmad_spawn_image forks.  The child shares the image copy-on-write; an
 * exec of the restorer would drop that memory, so the child does the exec
 * itself: it maps the restorer's PT_LOAD segments at their linked address
 * (the restorer is static and position-dependent) and jumps to the
 * restorer's entry with "--view LEN --view-at ADDR" on a stack laid out as
 * the kernel would, the image left where our buffer holds it.  Only when
 * one of the image's target regions needs that place does the child first
 * move the image to VMAD_VIEW_ADDR, where no usual program maps anything.
 * The restorer unmaps everything else of the daemon and moves the image's
 * pages into place (no copy).  The daemon can rewrite its buffer at once
 * for the next launch: while a rank lives it keeps its own copy-on-write
 * pages, so a mapped image never changes under a live process.
 *
 * Between fork and the jump the child makes raw system calls only — no
 * libc at all —, as the daemon may have other threads (libfabric) and
 * with io->lean the child has neither libc nor the caller's stack, data
 * or TLS (leanfork.c).  It is a raw clone, so no atfork handler runs in
 * it, started on a stack of its own in the plan (struct child_plan) that
 * holds everything else it reads; besides that it reads only our code and
 * read-only data, and moves the image.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "image.h"
#include "leanfork.h"
#include "restorer/sys.h"
#include "util.h"
#include "vmadump.h"

#define PAGE 4096ul
#define MAX_SEGMENTS 8
#define MAX_VDSO_MAPS 4

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

/* The restorer's loadable segments, read once per process. */
static struct {
    char path[4096];
    int fd;
    uint64_t entry;
    int nseg;
    struct segment {
        uint64_t vaddr, memsz, filesz, offset;
        int prot;
    } seg[MAX_SEGMENTS];
    /* "--own-vdso START-END" for each of our [vvar], [vvar_vclock] and
     * [vdso], which the child inherits at the same place: the restorer
     * then need not read /proc/self/maps (~1% of a 1023-node launch's CPU,
     * most of the daemon's mappings being listed only to be skipped). */
    int nvdso;
    char vdso[MAX_VDSO_MAPS][40];
} rst = { .fd = -1 };

/* Our kernel-made mappings the restorer keeps, from /proc/self/maps; the
 * vDSO never moves in a running process.  None found (or too many): the
 * restorer reads its maps itself. */
static void find_vdso_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512], name[64];
    unsigned long lo, hi;

    rst.nvdso = 0;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        name[0] = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %63s", &lo, &hi, name) < 2
            || (strcmp(name, "[vdso]") && strcmp(name, "[vvar]")
                && strcmp(name, "[vvar_vclock]")))
            continue;
        if (rst.nvdso == MAX_VDSO_MAPS) {
            rst.nvdso = 0;
            break;
        }
        snprintf(rst.vdso[rst.nvdso++], sizeof(rst.vdso[0]), "%lx-%lx", lo, hi);
    }
    fclose(f);
}

static int segment_from(const Elf64_Phdr *ph, struct segment *s)
{
    if (ph->p_filesz > ph->p_memsz || (ph->p_vaddr - ph->p_offset) % PAGE)
        return -1;
    *s = (struct segment){
        .vaddr = ph->p_vaddr, .memsz = ph->p_memsz, .filesz = ph->p_filesz,
        .offset = ph->p_offset,
        .prot = (ph->p_flags & PF_R ? PROT_READ : 0) |
                (ph->p_flags & PF_W ? PROT_WRITE : 0) |
                (ph->p_flags & PF_X ? PROT_EXEC : 0),
    };
    return 0;
}

/* Read the restorer's ELF header and program headers into rst.  Returns 0,
 * or -1 with err naming the file and the reason. */
static int load_restorer(const char *path, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph[16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errprintf(err, errlen, "%s: %s", path, strerror(errno));
    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_type != ET_EXEC || eh.e_machine != EM_X86_64 || eh.e_phnum > 16 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) ||
        pread(fd, ph, eh.e_phnum * sizeof(ph[0]), (off_t)eh.e_phoff) !=
            (ssize_t)(eh.e_phnum * sizeof(ph[0])))
        goto bad;
    rst.nseg = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (rst.nseg == MAX_SEGMENTS || segment_from(&ph[i], &rst.seg[rst.nseg++]))
            goto bad;
    }
    if (rst.fd >= 0)
        close(rst.fd);
    rst.fd = fd;
    rst.entry = eh.e_entry;
    snprintf(rst.path, sizeof(rst.path), "%s", path);
    find_vdso_maps();
    return 0;
bad:
    close(fd);
    errno = ENOEXEC;
    return errprintf(err, errlen, "%s: not a static x86_64 restorer", path);
}

/* ---- in the child ---- */

/* The child runs on raw system calls and our own code and data only: it
 * inherits neither libc nor the dynamic loader (leanfork.c), so it may not
 * call into them, read their data, or return into _Fork's code; it is
 * forked by a raw clone, and everything it needs from libc was read into
 * its plan before the fork.  System calls: the restorer's own (sys.h). */

/* The child's stack: it leaves the caller's [stack] behind (leanfork.c). */
#define CHILD_STACK (64u << 10)

/* What the child does, all of it laid out by the caller in one anonymous
 * mapping of its own (made once per process, so its anon_vma is ours
 * alone): besides this, the child reads only our code and read-only data,
 * and moves the image. */
struct child_plan {
    const void *buf;
    size_t plen;                /* the image's pages, the lead's included */
    size_t head;                /* those before the first 2 MiB boundary */
    int in_place;               /* the restorer takes the image at buf */
    int fds[3];                 /* stdin, stdout, stderr, or -1: /dev/null */
    int new_pgroup;
    int death_sig;              /* PR_SET_PDEATHSIG, or 0 */
    long parent;                /* the caller's pid */
    uint64_t handled;           /* bit sig-1: a disposition not SIG_DFL */
    int rst_fd;                 /* the restorer, and its segments */
    uint64_t entry;
    int nseg;
    struct segment seg[MAX_SEGMENTS];
    char label[256], view[24], view_at[24], view_lead[24], rank[24];
    char vdso[MAX_VDSO_MAPS][40];
    struct start_stack {
        uint64_t words[64];
    } __attribute__((aligned(16))) st; /* the restorer's initial stack */
    unsigned char stack[CHILD_STACK] __attribute__((aligned(16)));
};

/* Copy a string into line[*n...]; the child has no libc. */
static void put_str(char *line, size_t *n, size_t cap, const char *s)
{
    for (; s && *s && *n < cap - 1; s++)
        line[(*n)++] = *s;
}

/* One line on the child's stderr (the rank's), then exit 127 like a
 * restorer that could not restore.  ret: the failed call's -errno. */
static void __attribute__((noreturn)) child_fail(const char *label,
                                                 const char *what, long ret)
{
    char line[512], num[24];
    size_t n = 0, k = sizeof(num) - 1;
    unsigned long e = ret < 0 ? (unsigned long)-ret : 0;

    num[k] = 0;
    do
        num[--k] = (char)('0' + e % 10);
    while ((e /= 10) && k > 0);
    put_str(line, &n, sizeof(line), "vmad-restore: ");
    put_str(line, &n, sizeof(line), label);
    put_str(line, &n, sizeof(line), ": ");
    put_str(line, &n, sizeof(line), what);
    put_str(line, &n, sizeof(line), ": error ");
    put_str(line, &n, sizeof(line), num + k);
    line[n++] = '\n';
    SYS(SYS_write, 2, line, n, 0, 0, 0);
    SYS(SYS_exit_group, 127, 0, 0, 0, 0, 0);
    __builtin_unreachable();
}

static void child_stdio(const struct child_plan *p)
{
    static const char dev_null[] = "/dev/null";

    for (int i = 0; i < 3; i++) {
        long fd = p->fds[i] >= 0 ? p->fds[i]
                  : SYS(SYS_openat, AT_FDCWD, dev_null, i ? O_WRONLY : O_RDONLY,
                        0, 0, 0);
        long ret = fd < 0 ? fd : SYS(SYS_dup2, fd, i, 0, 0, 0, 0);

        if (ret < 0)
            child_fail(p->label, "stdio", ret);
    }
}

/* What exec would reset: signal dispositions and mask, the alternate
 * signal stack, and the thread's registrations with the kernel that point
 * into the daemon's memory (robust futex list, clear-tid word; the rseq
 * area is not inherited, see vmad_spawn_image).  Only the signals the
 * caller handles or ignores are reset: the other ~60 are SIG_DFL already,
 * and a system call each was ~3% of a rank's start. */
static void child_reset(const struct child_plan *p)
{
    /* the kernel's struct sigaction, all zero: SIG_DFL, no flags */
    struct { uint64_t handler, flags, restorer, mask; } dfl = { 0 };
    stack_t no_alt = { .ss_flags = SS_DISABLE };
    uint64_t none = 0;

    for (int sig = 1; sig < NSIG; sig++)
        if (p->handled >> (sig - 1) & 1)
            SYS(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask), 0, 0);
    SYS(SYS_sigaltstack, &no_alt, NULL, 0, 0, 0, 0);
    SYS(SYS_set_robust_list, NULL, 3 * sizeof(void *), 0, 0, 0, 0);
    SYS(SYS_set_tid_address, NULL, 0, 0, 0, 0, 0);
    SYS(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none), 0, 0);
}

static void child_map_restorer(const struct child_plan *p)
{
    for (int i = 0; i < p->nseg; i++) {
        const struct segment *s = &p->seg[i];
        uint64_t start = s->vaddr & ~(PAGE - 1), fend = s->vaddr + s->filesz;
        uint64_t fpage = (fend + PAGE - 1) & ~(PAGE - 1);
        uint64_t mend = (s->vaddr + s->memsz + PAGE - 1) & ~(PAGE - 1);
        long ret = SYS(SYS_mmap, start, fpage - start, s->prot,
                       MAP_PRIVATE | MAP_FIXED_NOREPLACE, p->rst_fd,
                       s->offset & ~(PAGE - 1));

        if (ret < 0)
            child_fail(p->label, "mapping the restorer", ret);
        if (s->memsz > s->filesz && (s->prot & PROT_WRITE)) {
            /* zero the file page's tail: rep stosb, not libc's memset */
            void *d = (void *)fend;
            size_t len = fpage - fend;

            __asm__ volatile("rep stosb" : "+D"(d), "+c"(len) : "a"(0) : "memory");
        }
        if (mend > fpage
            && (ret = SYS(SYS_mmap, fpage, mend - fpage, s->prot,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
                          0)) < 0)
            child_fail(p->label, "mapping the restorer", ret);
    }
}

static void __attribute__((noreturn, used)) child_run(struct child_plan *p)
{
    long ret;

    /* A caller that died before the prctl would never signal us. */
    if (p->death_sig) {
        SYS(SYS_prctl, PR_SET_PDEATHSIG, p->death_sig, 0, 0, 0, 0);
        if (SYS(SYS_getppid, 0, 0, 0, 0, 0, 0) != p->parent)
            SYS(SYS_kill, SYS(SYS_getpid, 0, 0, 0, 0, 0, 0), p->death_sig, 0,
                0, 0, 0);
    }
    if (p->new_pgroup)
        SYS(SYS_setpgid, 0, 0, 0, 0, 0, 0);
    child_stdio(p);
    child_reset(p);
    child_map_restorer(p);
    /* Only when a target region lies where the image does.  In two moves
     * when there is a lead: the caller may give the part before the
     * first 2 MiB boundary small pages (a mapping of its own), and one
     * mremap moves one mapping only before Linux 6.17. */
    if (!p->in_place) {
        ret = p->head ? SYS(SYS_mremap, p->buf, p->head, p->head,
                            MREMAP_MAYMOVE | MREMAP_FIXED, VMAD_VIEW_ADDR, 0)
                      : 0;
        if (ret >= 0 && p->plen > p->head)
            ret = SYS(SYS_mremap, (const char *)p->buf + p->head,
                      p->plen - p->head, p->plen - p->head,
                      MREMAP_MAYMOVE | MREMAP_FIXED, VMAD_VIEW_ADDR + p->head,
                      0);
        if (ret < 0)
            child_fail(p->label, "moving the image", ret);
    }
    __asm__ volatile("mov %0, %%rsp\n\txor %%ebp, %%ebp\n\tjmp *%1"
                     :: "r"(p->st.words), "r"(p->entry) : "memory");
    __builtin_unreachable();
}

/* fork, as a raw clone whose child starts on p's own stack in child_run:
 * it never returns here, since this frame lives on the caller's [stack],
 * which the child does not have.  Returns the child's pid or -errno. */
static long clone_to_child_run(struct child_plan *p)
{
    register long r10 __asm__("r10") = 0;   /* child_tid */
    register long r8 __asm__("r8") = 0;     /* tls */
    /* Registers the syscall keeps, fixed: an "r" operand may be given
     * rax, which holds 0 in the child by the time of the call. */
    register void (*fn)(struct child_plan *) __asm__("r9") = child_run;
    long ret;

    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov %[p], %%rdi\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "call *%[fn]\n\t"
                     "ud2\n"
                     "1:"
                     : "=a"(ret)
                     : "a"((long)__NR_clone), "D"((long)SIGCHLD),
                       "S"(p->stack + CHILD_STACK), "d"(0L), "r"(r10), "r"(r8),
                       [p] "b"(p), [fn] "r"(fn)
                     : "rcx", "r11", "memory");
    return ret;
}

/* The restorer's initial stack, as the kernel would lay it out: argc,
 * argv, NULL, an empty environment, the auxv entries it reads, AT_NULL. */
static void plan_stack(struct child_plan *p, char *const argv[])
{
    static const unsigned long keys[] = { AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ,
                                          AT_SYSINFO_EHDR };
    size_t n = 1;
    int argc = 0;

    while (argv[argc])
        p->st.words[n++] = (uint64_t)argv[argc++];
    p->st.words[0] = (uint64_t)argc;
    p->st.words[n++] = 0;      /* end of argv */
    p->st.words[n++] = 0;      /* end of the environment */
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        p->st.words[n++] = keys[k];
        p->st.words[n++] = getauxval(keys[k]);
    }
    p->st.words[n++] = AT_NULL;
    p->st.words[n++] = 0;
}

/* ---- the caller's side ---- */

/* The signals whose disposition is not SIG_DFL in this process (caught or
 * ignored, from /proc/self/status, kept open: one read a spawn), as bit
 * sig-1; all of them if that cannot be read. */
static uint64_t handled_signals(void)
{
    static int fd = -1;
    char text[4096], *p;
    uint64_t mask = 0;
    int found = 0;
    ssize_t n;

    if (fd < 0)
        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    n = fd < 0 ? -1 : pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return ~(uint64_t)0;
    text[n] = '\0';
    for (p = text; (p = strstr(p, "\nSig")); p++)
        if (!strncmp(p, "\nSigIgn:", 8) || !strncmp(p, "\nSigCgt:", 8)) {
            mask |= strtoull(p + 8, NULL, 16);
            found++;
        }
    return found == 2 ? mask : ~(uint64_t)0;
}

/* Whole 2 MiB pages of the target that [t, t + len) covers. */
static uint64_t huge_pages_within(uint64_t t, uint64_t len)
{
    uint64_t lo = (t + VMAD_HUGE_PAGE - 1) & ~(VMAD_HUGE_PAGE - 1);
    uint64_t hi = (t + len) & ~(VMAD_HUGE_PAGE - 1);

    return hi > lo ? (hi - lo) / VMAD_HUGE_PAGE : 0;
}

size_t vmad_huge_lead(const void *buf, size_t len)
{
    struct image img;
    uint64_t best = 0, lead = 0;

    if (image_parse(buf, len, &img))
        return 0;
    for (uint32_t i = 0; i < img.hdr->nregions; i++) {
        const struct image_region *r = &img.regions[i];

        /* The stack is copied into place, not moved (restorer.c). */
        if (r->kind != REGION_DATA || (r->flags & REGION_F_STACK))
            continue;
        for (uint32_t j = 0; j < r->nextents; j++) {
            const struct image_extent *e = &img.extents[r->first_extent + j];
            uint64_t t = r->start + e->region_offset;
            uint64_t n = huge_pages_within(t, e->len);

            if (n > best) {
                best = n;
                lead = (t - e->image_offset) & (VMAD_HUGE_PAGE - 1);
            }
        }
    }
    return lead;
}

/* May the child leave the image where it lies, [lo, hi) of our address
 * space?  Only if none of its target regions needs that place.  (The
 * restorer's segments cannot lie there either way: the child maps them
 * with MAP_FIXED_NOREPLACE before any move.)  Moving it to VMAD_VIEW_ADDR
 * instead costs the child two mremaps and the page-table pages there. */
static int clear_of_targets(const void *buf, size_t len, uint64_t lo,
                            uint64_t hi)
{
    struct image img;

    if (image_parse(buf, len, &img))
        return 0;
    for (uint32_t i = 0; i < img.hdr->nregions; i++)
        if (img.regions[i].start < hi && lo < img.regions[i].end)
            return 0;
    return 1;
}

/* The child's plan, mapped once per process. */
static struct child_plan *child_plan;

int vmad_spawn_image(void *buf, size_t len, const struct vmad_restore_opts *opts,
                     const struct vmad_spawn_io *io, pid_t *pid,
                     char *err, size_t errlen)
{
    static const char restorer_name[] = "vmad-restore";
    const char *path = vmad_restorer_path();
    struct child_plan *p;
    struct leanfork_keep keep = { .nranges = 2, .naddr = 2 };
    void *rseq_area = NULL;
    unsigned rseq_len = 0;
    long child;
    char *argv[14 + 2 * MAX_VDSO_MAPS];
    int argc = 0;

    if ((((uintptr_t)buf | io->lead) & (PAGE - 1)) || len == 0
        || io->lead >= VMAD_HUGE_PAGE) {
        errno = EINVAL;
        return errprintf(err, errlen, "image buffer not page aligned or "
                         "empty, or a lead not a page multiple below 2 MiB");
    }
    if ((rst.fd < 0 || strcmp(rst.path, path)) && load_restorer(path, err, errlen) < 0)
        return -1;
    if (!child_plan) {
        void *m = mmap(NULL, sizeof(*child_plan), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (m == MAP_FAILED)
            return errprintf(err, errlen, "the spawn plan: %s", strerror(errno));
        child_plan = m;
    }
    p = child_plan;
    memset(p, 0, offsetof(struct child_plan, stack));
    p->buf = (char *)buf - io->lead;
    p->plen = io->lead + ((len + PAGE - 1) & ~(PAGE - 1));
    p->head = io->lead ? VMAD_HUGE_PAGE
                             - ((uintptr_t)p->buf & (VMAD_HUGE_PAGE - 1))
                       : 0;
    if (p->head > p->plen)
        p->head = p->plen;
    p->in_place = clear_of_targets(buf, len, (uintptr_t)p->buf,
                                   (uintptr_t)p->buf + p->plen);
    snprintf(p->label, sizeof(p->label), "%s", opts->label ? opts->label : "image");
    snprintf(p->view, sizeof(p->view), "%zu", len);
    argv[argc++] = (char *)restorer_name;
    argv[argc++] = (char *)"--view";
    argv[argc++] = p->view;
    if (p->in_place) {
        snprintf(p->view_at, sizeof(p->view_at), "%zu",
                 (size_t)(uintptr_t)p->buf);
        argv[argc++] = (char *)"--view-at";
        argv[argc++] = p->view_at;
    }
    if (io->lead) {
        snprintf(p->view_lead, sizeof(p->view_lead), "%zu", io->lead);
        argv[argc++] = (char *)"--view-lead";
        argv[argc++] = p->view_lead;
    }
    if (opts->rank >= 0) {
        snprintf(p->rank, sizeof(p->rank), "%ld", opts->rank);
        argv[argc++] = (char *)"--rank";
        argv[argc++] = p->rank;
    }
    if (opts->verified)
        argv[argc++] = (char *)"--verified";
    for (int i = 0; i < rst.nvdso; i++) {
        memcpy(p->vdso[i], rst.vdso[i], sizeof(p->vdso[i]));
        argv[argc++] = (char *)"--own-vdso";
        argv[argc++] = p->vdso[i];
    }
    argv[argc++] = (char *)"--label";
    argv[argc++] = p->label;
    argv[argc] = NULL;
    memcpy(p->fds, io->fds, sizeof(p->fds));
    p->new_pgroup = io->new_pgroup;
    p->death_sig = io->death_sig;
    p->parent = getpid();
    p->handled = handled_signals();
    p->rst_fd = rst.fd;
    p->entry = rst.entry;
    p->nseg = rst.nseg;
    memcpy(p->seg, rst.seg, sizeof(p->seg));
    plan_stack(p, argv);
    /* What the child touches: the image, its plan, our code, and our
     * read-only data (the strings above and child_fail's). */
    keep.start[0] = (uintptr_t)p->buf;
    keep.end[0] = (uintptr_t)p->buf + p->plen;
    keep.start[1] = (uintptr_t)p;
    keep.end[1] = (uintptr_t)p + sizeof(*p);
    keep.addr[0] = (uintptr_t)child_run;
    keep.addr[1] = (uintptr_t)restorer_name;
    if (io->lean && leanfork_prune(&keep) < 0)
        return errprintf(err, errlen, "/proc/self/maps: %s", strerror(errno));
    /* The kernel gives a forked child its parent's rseq registration and
     * writes to it on the child's first return to user space: in our TLS,
     * which the child lacks (a SIGSEGV at once).  So our thread leaves
     * rseq for the clone and registers again (glibc only reads it). */
    if (__rseq_size > 0) {
        rseq_area = (char *)__builtin_thread_pointer() + __rseq_offset;
        rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
        if (SYS(SYS_rseq, rseq_area, rseq_len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG,
                0, 0) < 0)
            rseq_area = NULL;
    }
    /* The child must not write *pid: it may be in memory it lacks. */
    child = clone_to_child_run(p);
    if (rseq_area)
        SYS(SYS_rseq, rseq_area, rseq_len, 0, RSEQ_SIG, 0, 0);
    if (child < 0) {
        errno = (int)-child;
        return errprintf(err, errlen, "fork: %s", strerror(errno));
    }
    *pid = (pid_t)child;
    return 0;
}
