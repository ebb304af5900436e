/* image.h - the vmadump image format: on-disk structures and the parser.
 *
 * docs/image-format.md is the written spec; this header is its C form.  The
 * code here is freestanding (no libc): the static restorer links the same
 * parser as libvmad, so a damaged image is refused by one piece of code
 * wherever it is read.  All integers are little-endian; x86_64 only.
 *
 * Layout, in stream order:
 *   [0, 256)           "#!/path/to/vmad-restore\n", zero padded
 *   [256, 352)         struct image_header
 *   then               struct image_cpu, struct image_mm,
 *                      nauxv x struct image_auxv, nregions x struct image_region,
 *                      nextents x struct image_extent, strtab_len bytes of strings
 *   [data_offset, ...) region data, every extent at a page-aligned offset
 */
#ifndef VMADUMP_IMAGE_H
#define VMADUMP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_SHEBANG_SIZE 256
#define IMAGE_MAGIC        "VMADIMG"       /* 8 bytes with its NUL */
#define IMAGE_VERSION      2
#define IMAGE_ARCH_X86_64  62              /* EM_X86_64 */
#define IMAGE_PAGE_SIZE    4096

/* Bounds that keep a hostile header from making the parser do silly work;
 * real images are far below them (a big dynamic program has ~30 regions at
 * its exec point). */
#define IMAGE_MAX_REGIONS  4096
#define IMAGE_MAX_EXTENTS  (1u << 20)
#define IMAGE_MAX_AUXV     128
#define IMAGE_MAX_STRTAB   (1u << 20)
#define IMAGE_MAX_RANKVARS 64
/* x86_64 user address space with 4-level paging: TASK_SIZE_MAX. */
#define IMAGE_TASK_SIZE    0x7ffffffff000ull
/* Lowest address a region may start at: Linux's default mmap_min_addr. */
#define IMAGE_MIN_ADDR     0x10000ull
/* Where the restorer finds its view of the image (it maps the image
 * there, or vmad_spawn_image moves it there): below the restorer (linked
 * at 0x200000000000), far from every usual mapping, so that mapping the
 * target never lands on it (with ASLR off a kernel-chosen address is
 * exactly where ld.so goes). */
#define VMAD_VIEW_ADDR     0x100000000000ull

/* x86_64's huge page: the view and a node daemon's image buffer are
 * aligned to it, and an image's lead (vmad_huge_lead) is below it. */
#define VMAD_HUGE_PAGE     (2ull << 20)

struct image_header {
    char     magic[8];
    uint32_t version;
    uint32_t arch;
    uint32_t page_size;
    uint32_t flags;          /* none defined yet: must be 0 */
    uint64_t total_len;      /* whole image, #! line included */
    uint64_t checksum;       /* image_hash of all bytes, this field as 0 */
    uint64_t data_offset;    /* first byte of region data, page aligned */
    uint32_t nregions;
    uint32_t nextents;
    uint32_t nauxv;          /* auxv entries, AT_NULL included */
    uint32_t strtab_len;
    uint32_t exe_name;       /* strtab offset: the program's path */
    uint32_t rankvars;       /* strtab offset of nrankvars consecutive names */
    uint32_t nrankvars;
    uint32_t reserved0;
    uint64_t exe_size;       /* st_size of the program, for /proc/self/exe */
    uint64_t auxv_addr;      /* where auxv sits in the dumped stack */
};

/* Registers in the order of struct user_regs_struct (sys/user.h). */
enum {
    IREG_R15, IREG_R14, IREG_R13, IREG_R12, IREG_RBP, IREG_RBX, IREG_R11, IREG_R10,
    IREG_R9, IREG_R8, IREG_RAX, IREG_RCX, IREG_RDX, IREG_RSI, IREG_RDI, IREG_ORIG_RAX,
    IREG_RIP, IREG_CS, IREG_EFLAGS, IREG_RSP, IREG_SS, IREG_FS_BASE, IREG_GS_BASE,
    IREG_DS, IREG_ES, IREG_FS, IREG_GS, IREG_COUNT
};

struct image_cpu {
    uint64_t regs[IREG_COUNT];
};

/* The mm fields of the process, as prctl(PR_SET_MM_MAP) takes them. */
struct image_mm {
    uint64_t start_code, end_code, start_data, end_data;
    uint64_t start_brk, brk, start_stack;
    uint64_t arg_start, arg_end, env_start, env_end;
    uint64_t reserved0;
};

struct image_auxv {
    uint64_t type, value;
};

enum image_region_kind {
    REGION_DATA = 1,         /* bytes in the image (extents); the rest zero */
    REGION_FILE = 2,         /* mapped from a file expected on the node */
    REGION_NONE = 3,         /* PROT_NONE reservation, no content */
};

#define REGION_F_STACK 0x1   /* the main stack: MAP_GROWSDOWN */

struct image_region {
    uint64_t start, end;     /* page aligned, start < end */
    uint64_t file_offset;    /* FILE: offset in the file */
    uint64_t file_size;      /* FILE: st_size the file must have */
    uint64_t file_hash;      /* FILE: image_hash of the mapped range */
    uint32_t prot;           /* PROT_READ | PROT_WRITE | PROT_EXEC */
    uint32_t kind;           /* enum image_region_kind */
    uint32_t flags;          /* REGION_F_* */
    uint32_t name;           /* strtab offset: path or [stack]; 0 = none */
    uint32_t first_extent;   /* DATA: index of its first extent */
    uint32_t nextents;       /* DATA: number of extents */
};

struct image_extent {
    uint64_t region_offset;  /* page aligned offset inside the region */
    uint64_t len;            /* page multiple */
    uint64_t image_offset;   /* page aligned offset inside the image */
};

/* A parsed image: pointers into the caller's buffer. */
struct image {
    const unsigned char *base;
    uint64_t len;
    const struct image_header *hdr;
    const struct image_cpu *cpu;
    const struct image_mm *mm;
    const struct image_auxv *auxv;
    const struct image_region *regions;
    const struct image_extent *extents;
    const char *strtab;
};

/* Byte offset of the checksum field from the start of the image. */
#define IMAGE_CHECKSUM_OFFSET \
    (IMAGE_SHEBANG_SIZE + offsetof(struct image_header, checksum))

/* Parse and validate the structure of an image of len bytes (header,
 * tables, bounds, ordering).  The checksum is checked separately by
 * image_verify_checksum().  Returns NULL on success or a constant message
 * naming what is wrong. */
const char *image_parse(const void *buf, uint64_t len, struct image *img);

/* Parse only the header; buf holds at least avail bytes.  Lets a receiver
 * learn total_len from the first bytes of a stream.  NULL or a message. */
const char *image_parse_header(const void *buf, uint64_t avail,
                               const struct image_header **hdr);

/* Header, length, checksum, then image_parse(): what a reader that has not
 * verified the bytes by other means calls.  NULL or a message. */
const char *image_check(const void *buf, uint64_t len, struct image *img);

struct image_hash_state;     /* hash.h */

/* Hash buf[*done..upto) of an image into s, its checksum field counted as
 * zero, and advance *done: fed the whole image in pieces, in order, s ends
 * with the checksum its header records. */
void image_hash_feed(struct image_hash_state *s, size_t *done,
                     const void *buf, size_t upto);

/* image_check, with the bytes' checksum computed by the caller (sum). */
const char *image_check_summed(const void *buf, uint64_t len, uint64_t sum,
                               struct image *img);

/* Compare the header checksum with the bytes; needs img->base, len and hdr.
 * NULL or a message. */
const char *image_verify_checksum(const struct image *img);

/* The string at strtab offset off ("" for an invalid offset: the parser
 * has already checked every offset the header and regions use). */
const char *image_string(const struct image *img, uint32_t off);

/* Region by address: the one containing addr, or NULL. */
const struct image_region *image_find_region(const struct image *img,
                                             uint64_t addr);

#endif
