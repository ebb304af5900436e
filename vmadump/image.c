/* image.c - parse and validate vmadump images (see image.h).
 *
 * Freestanding: the restorer links this file without libc.  Every offset
 * and count read from the image is checked before it is used, in an order
 * that never forms an out-of-bounds pointer: header, then the size of the
 * tables, then each table.  Messages are constants so no formatting is
 * needed here; they name what is wrong.
 */
#include "image.h"
#include "hash.h"

#define PAGE_MASK ((uint64_t)IMAGE_PAGE_SIZE - 1)

static int page_aligned(uint64_t v)
{
    return (v & PAGE_MASK) == 0;
}

/* a + b without wrap-around, or UINT64_MAX. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static int bytes_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

const char *image_parse_header(const void *buf, uint64_t avail,
                               const struct image_header **hdrp)
{
    const unsigned char *b = buf;
    const struct image_header *h;

    if (avail == 0)
        return "empty image";
    if (avail < 2 || b[0] != '#' || b[1] != '!')
        return "not a vmadump image (no #! line)";
    if (avail < IMAGE_SHEBANG_SIZE + sizeof(*h))
        return "truncated image (header incomplete)";
    h = (const void *)(b + IMAGE_SHEBANG_SIZE);
    if (!bytes_equal(h->magic, IMAGE_MAGIC, sizeof(h->magic)))
        return "not a vmadump image (bad magic)";
    if (h->version != IMAGE_VERSION)
        return "unsupported image format version";
    if (h->arch != IMAGE_ARCH_X86_64)
        return "image is for another architecture";
    if (h->page_size != IMAGE_PAGE_SIZE)
        return "image has an unsupported page size";
    if (h->flags != 0)
        return "image has unknown flags";
    if (h->total_len < IMAGE_SHEBANG_SIZE + sizeof(*h))
        return "corrupt header (length too small)";
    *hdrp = h;
    return 0;
}

/* Offsets of the tables that follow the header, or a message. */
static const char *layout_tables(struct image *img)
{
    const struct image_header *h = img->hdr;
    uint64_t off = IMAGE_SHEBANG_SIZE + sizeof(*h);

    if (h->nregions == 0 || h->nregions > IMAGE_MAX_REGIONS ||
        h->nextents > IMAGE_MAX_EXTENTS || h->nauxv == 0 ||
        h->nauxv > IMAGE_MAX_AUXV || h->strtab_len == 0 ||
        h->strtab_len > IMAGE_MAX_STRTAB || h->nrankvars > IMAGE_MAX_RANKVARS)
        return "corrupt header (table sizes out of range)";
    img->cpu = (const void *)(img->base + off);
    off += sizeof(struct image_cpu);
    img->mm = (const void *)(img->base + off);
    off += sizeof(struct image_mm);
    img->auxv = (const void *)(img->base + off);
    off += (uint64_t)h->nauxv * sizeof(struct image_auxv);
    img->regions = (const void *)(img->base + off);
    off += (uint64_t)h->nregions * sizeof(struct image_region);
    img->extents = (const void *)(img->base + off);
    off += (uint64_t)h->nextents * sizeof(struct image_extent);
    img->strtab = (const char *)(img->base + off);
    off += h->strtab_len;
    if (off > h->data_offset || !page_aligned(h->data_offset) ||
        h->data_offset > h->total_len)
        return "corrupt header (data offset)";
    if (img->strtab[h->strtab_len - 1] != '\0')
        return "corrupt string table";
    return 0;
}

static int string_ok(const struct image *img, uint32_t off)
{
    return off < img->hdr->strtab_len;
}

const char *image_string(const struct image *img, uint32_t off)
{
    return string_ok(img, off) ? img->strtab + off : "";
}

static const char *check_extents(const struct image *img,
                                 const struct image_region *r)
{
    const struct image_header *h = img->hdr;
    uint64_t size = r->end - r->start, next_in_region = 0;

    if (r->first_extent > h->nextents ||
        r->nextents > h->nextents - r->first_extent)
        return "corrupt region (extent index)";
    for (uint32_t i = 0; i < r->nextents; i++) {
        const struct image_extent *e = &img->extents[r->first_extent + i];

        if (!page_aligned(e->region_offset) || !page_aligned(e->len) ||
            !page_aligned(e->image_offset) || e->len == 0)
            return "corrupt extent (alignment)";
        if (e->region_offset < next_in_region ||
            add_sat(e->region_offset, e->len) > size)
            return "corrupt extent (outside its region)";
        if (e->image_offset < h->data_offset ||
            add_sat(e->image_offset, e->len) > h->total_len)
            return "corrupt extent (outside the image)";
        next_in_region = e->region_offset + e->len;
    }
    return 0;
}

static const char *check_region(const struct image *img,
                                const struct image_region *r, uint64_t prev_end)
{
    if (r->start >= r->end || !page_aligned(r->start) || !page_aligned(r->end))
        return "corrupt region (bounds)";
    if (r->start < prev_end)
        return "corrupt region table (overlap or order)";
    if (r->start < IMAGE_MIN_ADDR || r->end > IMAGE_TASK_SIZE)
        return "region cannot be placed (outside the user address space)";
    if (r->prot & ~7u)
        return "corrupt region (protection)";
    if (r->flags & ~(uint32_t)REGION_F_STACK)
        return "corrupt region (flags)";
    if (r->name && !string_ok(img, r->name))
        return "corrupt region (name)";
    switch (r->kind) {
    case REGION_DATA:
        return check_extents(img, r);
    case REGION_FILE:
        if (!r->name || !page_aligned(r->file_offset) || r->nextents)
            return "corrupt file reference";
        return 0;
    case REGION_NONE:
        return r->nextents || r->prot ? "corrupt reservation region" : 0;
    default:
        return "corrupt region (kind)";
    }
}

/* Stack and registers must agree with the regions, since the restorer
 * writes into the stack at these addresses. */
static const char *check_process(const struct image *img)
{
    const struct image_header *h = img->hdr;
    const struct image_mm *mm = img->mm;
    const struct image_region *stack;
    uint64_t auxv_end;

    stack = image_find_region(img, img->cpu->regs[IREG_RSP]);
    if (!stack || !(stack->flags & REGION_F_STACK) || stack->kind != REGION_DATA)
        return "corrupt image (stack pointer outside the stack)";
    if (!image_find_region(img, img->cpu->regs[IREG_RIP]))
        return "corrupt image (entry point outside every region)";
    auxv_end = add_sat(h->auxv_addr, (uint64_t)h->nauxv * sizeof(struct image_auxv));
    if (h->auxv_addr < stack->start || auxv_end > stack->end)
        return "corrupt image (auxv outside the stack)";
    if (mm->env_start > mm->env_end || mm->env_start < stack->start ||
        mm->env_end > stack->end || mm->arg_start > mm->arg_end ||
        mm->arg_start < stack->start || mm->arg_end > stack->end)
        return "corrupt image (arguments outside the stack)";
    if (img->auxv[h->nauxv - 1].type != 0)
        return "corrupt image (auxv not terminated)";
    if (!string_ok(img, h->exe_name))
        return "corrupt image (program name)";
    return 0;
}

static const char *check_rankvars(const struct image *img)
{
    uint32_t off = img->hdr->rankvars;

    for (uint32_t i = 0; i < img->hdr->nrankvars; i++) {
        if (!string_ok(img, off))
            return "corrupt image (rank variable list)";
        while (img->strtab[off])
            off++;
        off++;
    }
    return 0;
}

/* Header, and a length that matches the buffer: what both entry points
 * need before anything else is read. */
static const char *parse_frame(const void *buf, uint64_t len, struct image *img)
{
    const char *why;

    img->base = buf;
    img->len = len;
    if ((why = image_parse_header(buf, len, &img->hdr)))
        return why;
    if (img->hdr->total_len > len)
        return "truncated image";
    if (img->hdr->total_len < len)
        return "image has trailing bytes";
    return 0;
}

/* Tables, regions, process state: everything but the checksum. */
static const char *parse_body(struct image *img)
{
    const char *why;
    uint64_t prev_end = 0;

    if ((why = layout_tables(img)))
        return why;
    for (uint32_t i = 0; i < img->hdr->nregions; i++) {
        if ((why = check_region(img, &img->regions[i], prev_end)))
            return why;
        prev_end = img->regions[i].end;
    }
    if ((why = check_process(img)))
        return why;
    return check_rankvars(img);
}

const char *image_parse(const void *buf, uint64_t len, struct image *img)
{
    const char *why = parse_frame(buf, len, img);

    return why ? why : parse_body(img);
}

/* The checksum comes before the structure, so that a damaged image is
 * called damaged rather than given a structural reason. */
const char *image_check(const void *buf, uint64_t len, struct image *img)
{
    const char *why;

    if ((why = parse_frame(buf, len, img)) || (why = image_verify_checksum(img)))
        return why;
    return parse_body(img);
}

void image_hash_feed(struct image_hash_state *s, size_t *done,
                     const void *buf, size_t upto)
{
    static const unsigned char zero[8];
    const unsigned char *b = buf;
    const size_t field = IMAGE_CHECKSUM_OFFSET;

    if (upto <= *done)
        return;
    /* Bytes before the checksum field, then the field as zero (once the
     * whole field is in), then the rest. */
    if (*done < field) {
        size_t end = upto < field ? upto : field;

        image_hash_update(s, b + *done, end - *done);
        *done = end;
    }
    if (*done == field) {
        if (upto < field + sizeof(zero))
            return;
        image_hash_update(s, zero, sizeof(zero));
        *done = field + sizeof(zero);
    }
    image_hash_update(s, b + *done, upto - *done);
    *done = upto;
}

static const char *sum_matches(const struct image *img, uint64_t sum)
{
    return sum == img->hdr->checksum ? 0
                                     : "checksum mismatch (image damaged)";
}

const char *image_check_summed(const void *buf, uint64_t len, uint64_t sum,
                               struct image *img)
{
    const char *why;

    if ((why = parse_frame(buf, len, img)) || (why = sum_matches(img, sum)))
        return why;
    return parse_body(img);
}

const char *image_verify_checksum(const struct image *img)
{
    struct image_hash_state s;
    size_t done = 0;

    image_hash_init(&s);
    image_hash_feed(&s, &done, img->base, img->len);
    return sum_matches(img, image_hash_final(&s));
}

const struct image_region *image_find_region(const struct image *img,
                                             uint64_t addr)
{
    uint32_t lo = 0, hi = img->hdr->nregions;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct image_region *r = &img->regions[mid];

        if (addr < r->start)
            hi = mid;
        else if (addr >= r->end)
            lo = mid + 1;
        else
            return r;
    }
    return 0;
}
