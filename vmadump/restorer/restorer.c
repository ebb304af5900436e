/* restorer.c - vmad-restore: become the program saved in an image.
 *
 * A static, libc-free program linked at 0x200000000000, far from where
 * Linux puts programs (0x400000, 0x55..., 0x7f...), so the target's regions
 * can be mapped at their own addresses around it.  In order:
 *   1. read options and our own auxv (HWCAP, vDSO) from the initial stack;
 *   2. map the image read-only, validate it and its checksum (image.c) —
 *      or, with --view, find it already in place (vmad_spawn_image put it
 *      there in a forked child of the daemon, which then jumped to us),
 *      --view-lead bytes after VIEW_ADDR, or after --view-at's address
 *      where the daemon's buffer lies clear of every target region;
 *   3. move our vDSO if a target region needs its place, unmap everything
 *      that is not ours, the image or the vDSO (our old stack, and with
 *      --view the forking program's whole address space);
 *   4. map every region: data privately from the image (with --view the
 *      image's anonymous pages are moved into place), references from
 *      the node's own files after an identity check, the stack as a copy;
 *   5. patch the stack: ranks into the environment, fresh AT_RANDOM bytes,
 *      this host's HWCAP and vDSO in auxv;
 *   6. close all fds but 0-2 and the kept ones, set the mm fields with
 *      PR_SET_MM_MAP (and /proc/self/exe when privileges allow), jump.
 * Any failure before the jump prints one line and exits 127.
 */
#include <asm/prctl.h>
#include <linux/auxvec.h>
#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <stdarg.h>

#include "../hash.h"
#include "../image.h"
#include "rlib.h"
#include "sys.h"

#define EXIT_RESTORE_FAILED 127
#define MAX_KEEP_FDS 64
#define MAX_OWN_MAPS 64
#define PAGE 4096ull
#define VIEW_ADDR VMAD_VIEW_ADDR

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

/* Our stack, in .bss (start.S switches to its top): 64 KiB is far more
 * than the deepest call chain here (under 4 KiB).  Page aligned, so that it never shares
 * a page with file-backed data (see anonymize_self). */
#define RESTORER_STACK_SIZE (64 << 10)
__attribute__((aligned(4096), used))
unsigned char restorer_stack[RESTORER_STACK_SIZE];

extern const char __executable_start[], _end[];

void restorer_main(uint64_t *sp) __attribute__((noreturn, used));
void restore_jump(const uint64_t *regs) __attribute__((noreturn));

enum own_kind { OWN_OTHER, OWN_VDSO, OWN_SELF };

struct own_map {
    uint64_t start, end;
    int prot, kind;
    int file;                /* backed by a file (inode != 0) */
};

static struct {
    char label[256];
    const char *path;
    int fd;
    long rank;
    int verified;
    int in_view;             /* --view: the image is already in memory */
    uint64_t base;           /* at VIEW_ADDR, or where --view-at says */
    uint64_t lead;           /* --view-lead: where from base it begins */
    int own_given;           /* --own-vdso: own[] is given, not read */
    int keep[MAX_KEEP_FDS], nkeep;
    /* from our auxv */
    uint64_t hwcap, hwcap2, minsigstksz, vdso;
    /* the image */
    const unsigned char *view;
    uint64_t len;
    struct image img;
    struct image_cpu cpu;
    struct image_mm mm;
    /* our own mappings */
    struct own_map own[MAX_OWN_MAPS];
    int nown;
    uint64_t self_start, self_end;
} R = { .fd = -1, .rank = -1 };

/* ---- messages ---------------------------------------------------------- */

static void put(const char *s)
{
    sys_write(2, s, rlib_strlen(s));
}

/* Print "vmad-restore: LABEL: " and the NULL-terminated list of strings
 * as one line in one write (so lines from many ranks do not interleave),
 * then exit. */
static __attribute__((noreturn, sentinel)) void failv(const char *first, ...)
{
    static char line[1024];
    const char *head[] = { "vmad-restore: ", R.label, ": " }, *p;
    size_t n = 0;
    va_list ap;

    for (unsigned i = 0; i < 3; i++)
        for (p = head[i]; *p && n < sizeof(line) - 2; p++)
            line[n++] = *p;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        for (p = s; *p && n < sizeof(line) - 2; p++)
            line[n++] = *p;
    va_end(ap);
    line[n++] = '\n';
    sys_write(2, line, n);
    sys_exit_group(EXIT_RESTORE_FAILED);
}

static __attribute__((noreturn)) void fail(const char *what)
{
    failv(what, (char *)0);
}

static __attribute__((noreturn)) void fail_sys(const char *what, long ret)
{
    failv(what, ": ", rlib_strerror(ret), (char *)0);
}

static char *num_buf(void)
{
    static char buf[24];

    return buf;
}

static char *hex_str(uint64_t v, char *buf)
{
    static const char digits[] = "0123456789abcdef";
    int i = 2, shift = 60;

    buf[0] = '0';
    buf[1] = 'x';
    while (shift > 0 && !(v >> shift))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        buf[i++] = digits[(v >> shift) & 15];
    buf[i] = 0;
    return buf;
}

static __attribute__((noreturn)) void usage(void)
{
    put("usage: vmad-restore [--rank R] [--keep-fd N]... [--verified] "
        "[--label NAME] [--own-vdso START-END]... "
        "(--fd N | --view LEN [--view-at ADDR] [--view-lead N] | IMAGE)\n");
    sys_exit_group(2);
}

/* ---- options and our own auxv ------------------------------------------ */

static void copy_label(const char *s)
{
    size_t i;

    for (i = 0; s[i] && i < sizeof(R.label) - 1; i++)
        R.label[i] = s[i];
    R.label[i] = 0;
}

static long option_value(char **argv, int *i, long max)
{
    long v;

    if (!argv[*i + 1] || (v = rlib_parse_ulong(argv[*i + 1], max)) < 0)
        usage();
    (*i)++;
    return v;
}

/* "--own-vdso START-END" (hex, as in /proc/self/maps): a kernel mapping
 * of ours that vmad_spawn_image saw in the daemon, which the child
 * inherited at the same place; given these, we do not read our maps. */
static void add_vdso_arg(const char *a)
{
    struct own_map *m = &R.own[R.nown];

    if (R.nown >= MAX_OWN_MAPS - 2)
        usage();
    m->start = rlib_parse_hex(&a);
    if (*a++ != '-')
        usage();
    m->end = rlib_parse_hex(&a);
    if (*a || m->end <= m->start || (m->start | m->end) & (PAGE - 1))
        usage();
    m->prot = PROT_READ;
    m->file = 0;
    m->kind = OWN_VDSO;
    R.nown++;
    R.own_given = 1;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (rlib_streq(a, "--rank"))
            R.rank = option_value(argv, &i, 999999999999L);
        else if (rlib_streq(a, "--fd"))
            R.fd = option_value(argv, &i, 1 << 30);
        else if (rlib_streq(a, "--keep-fd") && R.nkeep < MAX_KEEP_FDS)
            R.keep[R.nkeep++] = option_value(argv, &i, 1 << 30);
        else if (rlib_streq(a, "--view")) {
            R.len = option_value(argv, &i, IMAGE_TASK_SIZE - VIEW_ADDR);
            R.in_view = 1;
        } else if (rlib_streq(a, "--view-at"))
            R.base = option_value(argv, &i, IMAGE_TASK_SIZE);
        else if (rlib_streq(a, "--view-lead"))
            R.lead = option_value(argv, &i, VMAD_HUGE_PAGE - 1);
        else if (rlib_streq(a, "--verified"))
            R.verified = 1;
        else if (rlib_streq(a, "--own-vdso") && argv[i + 1])
            add_vdso_arg(argv[++i]);
        else if (rlib_streq(a, "--label") && argv[i + 1])
            copy_label(argv[++i]);
        else if (a[0] == '-' && a[1])
            usage();
        else if (!R.path)
            R.path = a;
        else
            usage();
    }
    if (!R.base)
        R.base = VIEW_ADDR;
    if ((R.fd >= 0) + !!R.path + R.in_view != 1
        || (R.lead && (!R.in_view || R.lead % PAGE))
        || (R.base != VIEW_ADDR && (!R.in_view || R.base % PAGE))
        || R.base + R.lead + R.len > IMAGE_TASK_SIZE)
        usage();
    if (!R.label[0])
        copy_label(R.path ? R.path : "image");
}

static void read_own_auxv(uint64_t *auxv)
{
    for (; auxv[0] != AT_NULL; auxv += 2) {
        switch (auxv[0]) {
        case AT_HWCAP: R.hwcap = auxv[1]; break;
        case AT_HWCAP2: R.hwcap2 = auxv[1]; break;
        case AT_MINSIGSTKSZ: R.minsigstksz = auxv[1]; break;
        case AT_SYSINFO_EHDR: R.vdso = auxv[1]; break;
        }
    }
}

/* ---- the image ----------------------------------------------------------- */

/* Parse (or, unless --verified, check) the image at R.view. */
static void parse_image(void)
{
    const char *why = R.verified ? image_parse(R.view, R.len, &R.img)
                                 : image_check(R.view, R.len, &R.img);

    if (why)
        fail(why);
    R.cpu = *R.img.cpu;
    R.mm = *R.img.mm;
}

static void open_image(void)
{
    struct rst_stat st;
    long ret;

    if (R.in_view) {
        /* vmad_spawn_image put it there; run by hand, nothing is. */
        if (sys_msync(R.base, R.lead + R.len, MS_ASYNC) < 0)
            fail("--view: no image is mapped at the view address "
                 "(vmad_spawn_image puts it there)");
        R.view = (const void *)(R.base + R.lead);
        parse_image();
        return;
    }
    if (R.path && (R.fd = sys_open(R.path, O_RDONLY | O_CLOEXEC)) < 0)
        fail_sys("cannot open image", R.fd);
    if ((ret = sys_fstat(R.fd, &st)) < 0)
        fail_sys("cannot stat image", ret);
    if (st.size == 0)
        fail("empty image");
    R.len = st.size;
    /* Populate at once when we are about to read every byte anyway. */
    ret = sys_mmap(VIEW_ADDR, R.len, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE |
                   (R.verified ? 0 : MAP_POPULATE), R.fd, 0);
    if (ret < 0)
        fail_sys("cannot map image", ret);
    R.view = (const void *)ret;
    parse_image();
}

/* Open a referenced file and check it is the one the image was made
 * with: same size, same bytes in the mapped range.  Returns its fd. */
static int open_reference(const struct image_region *r)
{
    const char *path = image_string(&R.img, r->name);
    uint64_t len = r->end - r->start;
    struct rst_stat st;
    long fd, ret, map;

    if ((fd = sys_open(path, O_RDONLY | O_CLOEXEC)) < 0)
        failv("referenced library ", path, ": ", rlib_strerror(fd), (char *)0);
    if ((ret = sys_fstat(fd, &st)) < 0 || (uint64_t)st.size != r->file_size)
        failv("referenced library ", path, " differs from the dumped one (size)",
              (char *)0);
    map = sys_mmap(0, len, PROT_READ, MAP_PRIVATE, fd, r->file_offset);
    if (map < 0)
        failv("referenced library ", path, " cannot be mapped: ",
              rlib_strerror(map), (char *)0);
    ret = image_hash((const void *)map, len) != r->file_hash;
    sys_munmap(map, len);
    if (ret)
        failv("referenced library ", path, " differs from the dumped one (content)",
              (char *)0);
    return fd;
}

/* ---- our own address space ----------------------------------------------- */

static enum own_kind own_kind(uint64_t start, const char *name)
{
    if (start >= R.self_start && start < R.self_end)
        return OWN_SELF;
    if (rlib_streq(name, "[vdso]") || rlib_streq(name, "[vvar]") ||
        rlib_streq(name, "[vvar_vclock]"))
        return OWN_VDSO;
    return OWN_OTHER;
}

/* One line of /proc/self/maps: "start-end perms offset dev inode  name",
 * kept if it is ours or the vDSO's (everything else will be unmapped, and
 * a forking daemon has hundreds of mappings).  Returns the start of the
 * next line. */
static const char *parse_own_line(const char *p)
{
    struct own_map *m = &R.own[R.nown];
    char name[32];
    int field = 1, i = 0;

    m->start = rlib_parse_hex(&p);
    p++;
    m->end = rlib_parse_hex(&p);
    p++;
    m->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
              (p[2] == 'x' ? PROT_EXEC : 0);
    for (; *p && *p != '\n' && field < 4; p++)   /* perms offset dev */
        if (*p == ' ')
            field++;
    m->file = *p && *p != '0';                     /* inode */
    while (*p && *p != ' ' && *p != '\n')
        p++;
    while (*p == ' ')
        p++;
    for (; *p && *p != '\n'; p++)
        if (i < (int)sizeof(name) - 1)
            name[i++] = *p;
    name[i] = 0;
    m->kind = own_kind(m->start, name);
    if (m->kind != OWN_OTHER && R.nown < MAX_OWN_MAPS - 1)
        R.nown++;
    return *p ? p + 1 : p;
}

/* Read /proc/self/maps in pieces: a forking daemon's can be far larger
 * than any buffer we would keep (hundreds of peers' shared memory). */
static void read_own_maps(void)
{
    static char buf[8192];
    long fd = sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC), n;
    size_t have = 0;

    if (fd < 0)
        fail_sys("cannot read /proc/self/maps", fd);
    R.nown = 0;
    while ((n = sys_read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
        const char *p = buf, *last;

        have += n;
        buf[have] = 0;
        for (last = buf + have; last > buf && last[-1] != '\n'; last--)
            ;
        while (p < last)
            p = parse_own_line(p);
        have = buf + have - last;
        memmove(buf, last, have);
    }
    sys_close(fd);
    if (have) {
        buf[have] = 0;
        parse_own_line(buf);
    }
}

static int overlaps_target(uint64_t start, uint64_t end)
{
    for (uint32_t i = 0; i < R.img.hdr->nregions; i++) {
        const struct image_region *r = &R.img.regions[i];

        if (r->start < end && start < r->end)
            return 1;
    }
    return 0;
}

static void check_placement(void)
{
    char a[24], b[24];

    for (uint32_t i = 0; i < R.img.hdr->nregions; i++) {
        const struct image_region *r = &R.img.regions[i];

        if ((r->start < R.self_end && R.self_start < r->end) ||
            (r->start < R.base + R.lead + R.len && R.base < r->end))
            failv("region ", hex_str(r->start, a), "-", hex_str(r->end, b),
                  " cannot be placed: it overlaps the restorer or the "
                  "image", (char *)0);
    }
}

/* The kernel's [vvar], [vvar_vclock] and [vdso] must move together (the
 * vDSO reads vvar at a fixed distance).  Move them below the restorer when
 * a target region wants their place, as it does with ASLR off. */
static void move_vdso_if_needed(void)
{
    uint64_t lo = ~0ull, hi = 0, park;
    long ret;

    for (int i = 0; i < R.nown; i++)
        if (R.own[i].kind == OWN_VDSO) {
            lo = R.own[i].start < lo ? R.own[i].start : lo;
            hi = R.own[i].end > hi ? R.own[i].end : hi;
        }
    if (hi == 0 || !overlaps_target(lo, hi))
        return;
    park = (R.self_start - (hi - lo) - (16 << 20)) & ~(PAGE - 1);
    if (overlaps_target(park, park + (hi - lo)))
        fail("no room to move the vDSO out of the way");
    for (int i = 0; i < R.nown; i++) {
        struct own_map *m = &R.own[i];

        if (m->kind != OWN_VDSO)
            continue;
        ret = sys_mremap(m->start, m->end - m->start, m->end - m->start,
                         MREMAP_MAYMOVE | MREMAP_FIXED, park + (m->start - lo));
        if (ret < 0)
            fail_sys("cannot move the vDSO out of the way", ret);
    }
    if (R.vdso)
        R.vdso = park + (R.vdso - lo);
}

static uint64_t page_up(uint64_t v)
{
    return (v + PAGE - 1) & ~(PAGE - 1);
}

/* Unmap every page that is not ours, the image's or the vDSO's: our
 * kernel-given stack, and after vmad_spawn_image the forking program's
 * whole address space. */
static void drop_foreign_mappings(void)
{
    uint64_t keep[MAX_OWN_MAPS + 1][2], lo = 0, t0, t1;
    int n = 0;

    keep[n][0] = R.base;
    keep[n++][1] = R.base + page_up(R.lead + R.len);
    for (int i = 0; i < R.nown; i++) {
        keep[n][0] = R.own[i].start;
        keep[n++][1] = R.own[i].end;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && keep[j - 1][0] > keep[j][0]; j--) {
            t0 = keep[j][0], t1 = keep[j][1];
            keep[j][0] = keep[j - 1][0], keep[j][1] = keep[j - 1][1];
            keep[j - 1][0] = t0, keep[j - 1][1] = t1;
        }
    for (int i = 0; i < n; i++) {
        if (keep[i][0] > lo)
            sys_munmap(lo, keep[i][0] - lo);
        lo = keep[i][1] > lo ? keep[i][1] : lo;
    }
    if (lo < IMAGE_TASK_SIZE)
        sys_munmap(lo, IMAGE_TASK_SIZE - lo);
}

/* ---- mapping the target --------------------------------------------------- */

static void map_or_fail(uint64_t addr, uint64_t len, int prot, int flags,
                        int fd, uint64_t off)
{
    char a[24];
    long ret = sys_mmap(addr, len, prot, flags | MAP_FIXED, fd, off);

    if (ret < 0)
        failv("cannot map region at ", hex_str(addr, a), ": ",
              rlib_strerror(ret), (char *)0);
}

static const struct image_extent *extent(const struct image_region *r, uint32_t j)
{
    return &R.img.extents[r->first_extent + j];
}

/* The stack is copied, not mapped: it must grow down and we patch it. */
static void map_stack(const struct image_region *r)
{
    uint64_t len = r->end - r->start;

    map_or_fail(r->start, len, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    for (uint32_t j = 0; j < r->nextents; j++) {
        const struct image_extent *e = extent(r, j);

        memcpy((void *)(r->start + e->region_offset), R.view + e->image_offset,
               e->len);
    }
}

/* Put one extent's pages at addr: mapped privately from the image file,
 * or with --view moved out of the image (its pages are this process's
 * own copy-on-write pages, so moving them copies nothing). */
static void place_extent(uint64_t addr, const struct image_extent *e, int prot)
{
    char a[24];
    long ret;

    if (!R.in_view) {
        map_or_fail(addr, e->len, prot, MAP_PRIVATE, R.fd, e->image_offset);
        return;
    }
    if ((e->image_offset | e->len) & (PAGE - 1))
        failv("extent at image offset ", hex_str(e->image_offset, a),
              " is not page aligned", (char *)0);
    ret = sys_mremap((uint64_t)R.view + e->image_offset, e->len, e->len,
                     MREMAP_MAYMOVE | MREMAP_FIXED, addr);
    if (ret >= 0)
        ret = sys_mprotect(addr, e->len, prot);
    if (ret < 0)
        failv("cannot move image data to ", hex_str(addr, a), ": ",
              rlib_strerror(ret), (char *)0);
}

/* Data comes from the image without a copy, and pages the program never
 * touches are never read. */
static void map_data(const struct image_region *r)
{
    uint64_t len = r->end - r->start;
    const struct image_extent *e = r->nextents ? extent(r, 0) : 0;

    if (!(r->nextents == 1 && e->region_offset == 0 && e->len == len))
        map_or_fail(r->start, len, r->prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (uint32_t j = 0; j < r->nextents; j++) {
        e = extent(r, j);
        place_extent(r->start + e->region_offset, e, r->prot);
    }
}

/* Is r a data region whose one extent fills it, page aligned: moved
 * whole with --view? */
static int whole_data(const struct image_region *r)
{
    const struct image_extent *e = r->nextents == 1 ? extent(r, 0) : 0;

    return r->kind == REGION_DATA && !(r->flags & REGION_F_STACK) && e
           && e->region_offset == 0 && e->len == r->end - r->start
           && !((e->image_offset | e->len) & (PAGE - 1));
}

/* With --view, regions i, i+1, ... that lie back to back both in the
 * image and at their targets (a program's header, text, read-only data
 * and data do) move in one mremap, then each gets its protection: each
 * mremap is a new mapping, page-table work and a TLB flush of its own.
 * The image's pages are read-write, so read-write regions need no
 * mprotect.  Returns how many regions it placed: 0 for a run of fewer
 * than two, or one that spans two of the buffer's mappings on a kernel
 * before 6.17 (one mremap moves one mapping only: EFAULT, nothing moved),
 * which map_region then places region by region. */
static uint32_t move_run(uint32_t i)
{
    const struct image_region *r = &R.img.regions[i];
    const struct image_extent *first, *prev;
    uint32_t j = i + 1;
    uint64_t len;
    char a[24];
    long ret;

    if (!R.in_view || !whole_data(r))
        return 0;
    first = prev = extent(r, 0);
    len = first->len;
    for (; j < R.img.hdr->nregions && whole_data(&R.img.regions[j]); j++) {
        const struct image_extent *e = extent(&R.img.regions[j], 0);

        if (R.img.regions[j].start != R.img.regions[j - 1].end
            || e->image_offset != prev->image_offset + prev->len)
            break;
        len += e->len;
        prev = e;
    }
    if (j - i < 2)
        return 0;
    ret = sys_mremap((uint64_t)R.view + first->image_offset, len, len,
                     MREMAP_MAYMOVE | MREMAP_FIXED, r->start);
    if (ret == -EFAULT)
        return 0;
    for (const struct image_region *q = r; q < r + (j - i) && ret >= 0; q++)
        if (q->prot != (PROT_READ | PROT_WRITE))
            ret = sys_mprotect(q->start, q->end - q->start, q->prot);
    if (ret < 0)
        failv("cannot move image data to ", hex_str(r->start, a), ": ",
              rlib_strerror(ret), (char *)0);
    return j - i;
}

static void map_region(const struct image_region *r)
{
    uint64_t len = r->end - r->start;
    int fd;

    switch (r->kind) {
    case REGION_NONE:
        map_or_fail(r->start, len, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        break;
    case REGION_FILE:
        fd = open_reference(r);
        map_or_fail(r->start, len, r->prot, MAP_PRIVATE, fd, r->file_offset);
        sys_close(fd);
        break;
    default:
        if (r->flags & REGION_F_STACK)
            map_stack(r);
        else
            map_data(r);
    }
}

/* ---- patching the stack ---------------------------------------------------- */

static int is_rank_var(const char *s, size_t namelen)
{
    const char *v = image_string(&R.img, R.img.hdr->rankvars);

    for (uint32_t i = 0; i < R.img.hdr->nrankvars; i++) {
        size_t n = rlib_strlen(v);

        if (n == namelen && !memcmp(v, s, n))
            return 1;
        v += n + 1;
    }
    return 0;
}

/* NAME=XXXX with NAME on the rank list becomes NAME=0042 in place. */
static void substitute_rank(char *s, char *end)
{
    char digits[24], name[64];
    size_t namelen, width, nd;
    char *eq, *v;

    for (eq = s; eq < end && *eq && *eq != '='; eq++)
        ;
    if (eq >= end || *eq != '=' || !is_rank_var(s, eq - s))
        return;
    namelen = eq - s;
    for (v = eq + 1, width = 0; v < end && *v == 'X'; v++)
        width++;
    if (!width || (v < end && *v))
        return;
    nd = rlib_strlen(rlib_ulong_str(R.rank, digits));
    if (nd > width) {
        namelen = namelen < sizeof(name) - 1 ? namelen : sizeof(name) - 1;
        memcpy(name, s, namelen);
        name[namelen] = 0;
        failv("rank ", digits, " does not fit the placeholder of ", name, " (",
              rlib_ulong_str(width, num_buf()), " digits)", (char *)0);
    }
    memset(eq + 1, '0', width - nd);
    memcpy(eq + 1 + width - nd, digits, nd);
}

static void patch_environment(void)
{
    char *p = (char *)R.mm.env_start, *end = (char *)R.mm.env_end;

    if (R.rank < 0)
        return;
    while (p < end) {
        substitute_rank(p, end);
        while (p < end && *p)
            p++;
        p++;
    }
}

static void patch_auxv(void)
{
    uint64_t *a = (uint64_t *)R.img.hdr->auxv_addr;
    const struct image_region *stack = image_find_region(&R.img, R.cpu.regs[IREG_RSP]);
    long ret;

    /* The parser checked that nauxv entries fit in the stack; the stack's
     * own copy is walked no further than that. */
    for (uint32_t i = 0; i < R.img.hdr->nauxv && a[0] != AT_NULL; i++, a += 2) {
        switch (a[0]) {
        case AT_HWCAP: a[1] = R.hwcap; break;
        case AT_HWCAP2: a[1] = R.hwcap2; break;
        case AT_MINSIGSTKSZ: a[1] = R.minsigstksz; break;
        case AT_SYSINFO_EHDR:
            if (R.vdso)
                a[1] = R.vdso;
            else
                a[0] = AT_IGNORE;
            break;
        case AT_RANDOM:
            /* One image serves every rank: each gets its own canary and
             * pointer guard. */
            if (a[1] < stack->start || a[1] + 16 > stack->end)
                fail("AT_RANDOM points outside the stack");
            if ((ret = sys_getrandom((void *)a[1], 16, 0)) != 16)
                fail_sys("getrandom", ret);
            break;
        }
    }
}

/* ---- final state -------------------------------------------------------------- */

/* Replace our own file-backed pages by anonymous copies, so that no
 * mapping refers to vmad-restore any more and the kernel lets us point
 * /proc/self/exe at the program.  No global is written while a copy is in
 * flight (the page being replaced may hold it); the stack we run on is in
 * .bss, which is anonymous and never copied. */
static void anonymize_self(void)
{
    struct own_map maps[MAX_OWN_MAPS];
    int n = 0;

    for (int i = 0; i < R.nown; i++)
        if (R.own[i].kind == OWN_SELF && R.own[i].file)
            maps[n++] = R.own[i];
    for (int i = 0; i < n; i++) {
        uint64_t len = maps[i].end - maps[i].start;
        long tmp = sys_mmap(0, len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (tmp < 0)
            return;
        if (maps[i].prot & PROT_READ)
            memcpy((void *)tmp, (const void *)maps[i].start, len);
        sys_mprotect(tmp, len, maps[i].prot);
        sys_mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, maps[i].start);
    }
}

/* The program's own file, when this node has the same one. */
static int open_exe(void)
{
    struct rst_stat st;
    long fd = sys_open(image_string(&R.img, R.img.hdr->exe_name), O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (sys_fstat(fd, &st) < 0 || (uint64_t)st.size != R.img.hdr->exe_size) {
        sys_close(fd);
        return -1;
    }
    return fd;
}

static void set_mm(int exe_fd)
{
    struct prctl_mm_map map = {
        .start_code = R.mm.start_code, .end_code = R.mm.end_code,
        .start_data = R.mm.start_data, .end_data = R.mm.end_data,
        .start_brk = R.mm.start_brk, .brk = R.mm.brk,
        .start_stack = R.mm.start_stack,
        .arg_start = R.mm.arg_start, .arg_end = R.mm.arg_end,
        .env_start = R.mm.env_start, .env_end = R.mm.env_end,
        .auxv = (__u64 *)R.img.hdr->auxv_addr,
        .auxv_size = R.img.hdr->nauxv * sizeof(struct image_auxv),
        .exe_fd = (uint32_t)exe_fd,
    };
    long ret;

    if (exe_fd >= 0) {
        /* The kernel refuses (EBUSY) while a mapping still refers to the
         * old /proc/self/exe.  After an exec of the restorer that file is
         * ours, so we become anonymous first; after vmad_spawn_image's
         * fork it is the daemon's, whose mappings are gone, and the
         * copies (~40 us a rank) are not needed. */
        ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (long)&map, sizeof(map), 0);
        if (ret == -EBUSY) {
            anonymize_self();
            ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (long)&map, sizeof(map), 0);
        }
        if (ret == 0)
            return;
        /* Without CAP_CHECKPOINT_RESTORE /proc/self/exe stays ours. */
        map.exe_fd = (uint32_t)-1;
    }
    ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (long)&map, sizeof(map), 0);
    if (ret < 0)
        fail_sys("cannot set the process's memory layout (PR_SET_MM_MAP)", ret);
}

/* ps and top show the program's name, not the restorer's (or, after
 * vmad_spawn_image, the daemon's). */
static void set_comm(void)
{
    const char *name = image_string(&R.img, R.img.hdr->exe_name), *p;

    for (p = name; *p; p++)
        if (*p == '/')
            name = p + 1;
    sys_prctl(PR_SET_NAME, (long)name, 0, 0, 0);
}

static void close_fds(void)
{
    unsigned int lo = 3;

    /* keep[] sorted, so the gaps between kept fds are closed in ranges */
    for (int i = 1; i < R.nkeep; i++)
        for (int j = i; j > 0 && R.keep[j - 1] > R.keep[j]; j--) {
            int t = R.keep[j];
            R.keep[j] = R.keep[j - 1];
            R.keep[j - 1] = t;
        }
    for (int i = 0; i < R.nkeep; i++) {
        if ((unsigned)R.keep[i] < lo)
            continue;
        if ((unsigned)R.keep[i] > lo)
            sys_close_range(lo, R.keep[i] - 1);
        lo = R.keep[i] + 1;
    }
    sys_close_range(lo, ~0u);
}

void restorer_main(uint64_t *sp)
{
    int argc = (int)sp[0], exe_fd;
    char **argv = (char **)(sp + 1), **envp = argv + argc + 1;

    while (*envp)
        envp++;
    read_own_auxv((uint64_t *)(envp + 1));
    parse_args(argc, argv);
    R.self_start = (uint64_t)__executable_start & ~(PAGE - 1);
    R.self_end = ((uint64_t)_end + PAGE - 1) & ~(PAGE - 1);
    open_image();
    check_placement();
    if (R.own_given) {
        /* Ours: one range, file-backed, so only the exec path (which
         * gives no --own-vdso) ever needs anonymize_self's list. */
        R.own[R.nown++] = (struct own_map){ .start = R.self_start,
                                            .end = R.self_end,
                                            .prot = PROT_READ,
                                            .kind = OWN_SELF };
    } else {
        read_own_maps();
    }
    move_vdso_if_needed();
    drop_foreign_mappings();
    for (uint32_t i = 0, n; i < R.img.hdr->nregions; i += n)
        if (!(n = move_run(i))) {
            map_region(&R.img.regions[i]);
            n = 1;
        }
    patch_environment();
    patch_auxv();
    exe_fd = open_exe();
    set_mm(exe_fd);
    set_comm();
    sys_munmap(R.base, R.lead + R.len);
    close_fds();
    if (R.cpu.regs[IREG_FS_BASE])
        sys_arch_prctl(ARCH_SET_FS, R.cpu.regs[IREG_FS_BASE]);
    if (R.cpu.regs[IREG_GS_BASE])
        sys_arch_prctl(ARCH_SET_GS, R.cpu.regs[IREG_GS_BASE]);
    restore_jump(R.cpu.regs);
}
