/* image_write.c - lay out and emit an image (see image_write.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "image_write.h"
#include "util.h"

struct imgw {
    struct image_header hdr;
    struct image_cpu cpu;
    struct image_mm mm;
    struct image_auxv *auxv;
    struct image_region *regions;
    struct image_extent *extents;
    void **data;                 /* per region: its bytes, or NULL */
    char *strtab;
    uint32_t nregions, cap_regions, cap_data;
    uint32_t nextents, cap_extents;
    uint32_t strtab_len, cap_strtab;
};

struct imgw *imgw_create(void)
{
    struct imgw *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    /* Offset 0 of the string table is the empty string, so that a name of
     * 0 means "none". */
    if (imgw_string(w, "") < 0)
        goto error;
    return w;
error:
    imgw_destroy(w);
    return NULL;
}

void imgw_destroy(struct imgw *w)
{
    int saved = errno;

    if (!w)
        return;
    for (uint32_t i = 0; i < w->nregions; i++)
        free(w->data[i]);
    free(w->data);
    free(w->regions);
    free(w->extents);
    free(w->auxv);
    free(w->strtab);
    free(w);
    errno = saved;
}

/* Grow *v to hold at least need elements of size sz. */
static int grow(void *vp, uint32_t *cap, uint32_t need, size_t sz)
{
    void **v = vp, *nv;
    uint32_t ncap = *cap ? *cap : 16;

    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    if (!(nv = realloc(*v, (size_t)ncap * sz)))
        return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

long imgw_string(struct imgw *w, const char *s)
{
    uint32_t len = strlen(s) + 1, off = w->strtab_len;

    if (grow(&w->strtab, &w->cap_strtab, off + len, 1) < 0)
        return -1;
    memcpy(w->strtab + off, s, len);
    w->strtab_len += len;
    return off;
}

static int page_is_zero(const unsigned char *p)
{
    const uint64_t *q = (const void *)p;

    for (size_t i = 0; i < IMAGE_PAGE_SIZE / 8; i++)
        if (q[i])
            return 0;
    return 1;
}

/* Record the runs of non-zero pages of a data region as its extents; the
 * image offsets are assigned later, at layout. */
static int add_extents(struct imgw *w, struct image_region *r,
                       const unsigned char *data)
{
    uint64_t size = r->end - r->start, off = 0;

    r->first_extent = w->nextents;
    r->nextents = 0;
    while (off < size) {
        uint64_t run = off;

        if (page_is_zero(data + off)) {
            off += IMAGE_PAGE_SIZE;
            continue;
        }
        while (run < size && !page_is_zero(data + run))
            run += IMAGE_PAGE_SIZE;
        if (grow(&w->extents, &w->cap_extents, w->nextents + 1,
                 sizeof(*w->extents)) < 0)
            return -1;
        w->extents[w->nextents++] = (struct image_extent){
            .region_offset = off, .len = run - off };
        r->nextents++;
        off = run;
    }
    return 0;
}

int imgw_add_region(struct imgw *w, const struct image_region *r, void *data)
{
    struct image_region *nr;

    if (grow(&w->regions, &w->cap_regions, w->nregions + 1, sizeof(*w->regions)) < 0 ||
        grow(&w->data, &w->cap_data, w->nregions + 1, sizeof(*w->data)) < 0)
        return -1;
    nr = &w->regions[w->nregions];
    *nr = *r;
    if (r->kind == REGION_DATA && add_extents(w, nr, data) < 0)
        return -1;
    w->data[w->nregions++] = data;
    return 0;
}

void imgw_set_process(struct imgw *w, const struct image_cpu *cpu,
                      const struct image_mm *mm)
{
    w->cpu = *cpu;
    w->mm = *mm;
}

int imgw_set_auxv(struct imgw *w, const struct image_auxv *auxv, uint32_t n,
                  uint64_t auxv_addr)
{
    free(w->auxv);
    if (!(w->auxv = malloc(n * sizeof(*auxv))))
        return -1;
    memcpy(w->auxv, auxv, n * sizeof(*auxv));
    w->hdr.nauxv = n;
    w->hdr.auxv_addr = auxv_addr;
    return 0;
}

void imgw_set_exe(struct imgw *w, uint32_t name, uint64_t size)
{
    w->hdr.exe_name = name;
    w->hdr.exe_size = size;
}

void imgw_set_rankvars(struct imgw *w, uint32_t first, uint32_t n)
{
    w->hdr.rankvars = first;
    w->hdr.nrankvars = n;
}

static uint64_t page_up(uint64_t v)
{
    return (v + IMAGE_PAGE_SIZE - 1) & ~(uint64_t)(IMAGE_PAGE_SIZE - 1);
}

/* Fill in the header and give every extent its image offset. */
static void layout(struct imgw *w)
{
    struct image_header *h = &w->hdr;
    uint64_t off = IMAGE_SHEBANG_SIZE + sizeof(*h) + sizeof(w->cpu) +
                   sizeof(w->mm) + (uint64_t)h->nauxv * sizeof(*w->auxv) +
                   (uint64_t)w->nregions * sizeof(*w->regions) +
                   (uint64_t)w->nextents * sizeof(*w->extents) + w->strtab_len;

    memcpy(h->magic, IMAGE_MAGIC, sizeof(h->magic));
    h->version = IMAGE_VERSION;
    h->arch = IMAGE_ARCH_X86_64;
    h->page_size = IMAGE_PAGE_SIZE;
    h->nregions = w->nregions;
    h->nextents = w->nextents;
    h->strtab_len = w->strtab_len;
    h->data_offset = off = page_up(off);
    for (uint32_t i = 0; i < w->nextents; i++) {
        w->extents[i].image_offset = off;
        off += w->extents[i].len;
    }
    h->total_len = off;
    h->checksum = 0;
}

/* The metadata part of the stream: #! line to data_offset. */
static unsigned char *build_prefix(struct imgw *w, const char *restorer,
                                   size_t *lenp)
{
    size_t len = w->hdr.data_offset, off = IMAGE_SHEBANG_SIZE;
    unsigned char *p = calloc(1, len);

    if (!p)
        return NULL;
    snprintf((char *)p, IMAGE_SHEBANG_SIZE, "#!%s\n", restorer);
#define PUT(src, n) (memcpy(p + off, (src), (n)), off += (n))
    PUT(&w->hdr, sizeof(w->hdr));
    PUT(&w->cpu, sizeof(w->cpu));
    PUT(&w->mm, sizeof(w->mm));
    PUT(w->auxv, w->hdr.nauxv * sizeof(*w->auxv));
    PUT(w->regions, w->nregions * sizeof(*w->regions));
    PUT(w->extents, w->nextents * sizeof(*w->extents));
    PUT(w->strtab, w->strtab_len);
#undef PUT
    *lenp = len;
    return p;
}

/* Call fn on every extent's bytes in stream order. */
static int each_extent(struct imgw *w,
                       int (*fn)(void *arg, const void *data, size_t len),
                       void *arg)
{
    for (uint32_t i = 0; i < w->nregions; i++) {
        const struct image_region *r = &w->regions[i];
        const unsigned char *data = w->data[i];

        if (r->kind != REGION_DATA)
            continue;
        for (uint32_t j = 0; j < r->nextents; j++) {
            const struct image_extent *e = &w->extents[r->first_extent + j];

            if (fn(arg, data + e->region_offset, e->len) < 0)
                return -1;
        }
    }
    return 0;
}

static int hash_piece(void *arg, const void *data, size_t len)
{
    image_hash_update(arg, data, len);
    return 0;
}

int imgw_emit(struct imgw *w, const char *restorer, vmad_writer_fn writer,
              void *arg, char *err, size_t errlen)
{
    struct image_hash_state hs;
    unsigned char *prefix;
    size_t plen;
    int rc;

    if (strlen(restorer) + 3 >= IMAGE_SHEBANG_SIZE)
        return errprintf(err, errlen, "restorer path too long for the #! line: %s",
                         restorer);
    layout(w);
    if (!(prefix = build_prefix(w, restorer, &plen)))
        return errprintf(err, errlen, "out of memory building the image");
    image_hash_init(&hs);
    image_hash_update(&hs, prefix, plen);
    each_extent(w, hash_piece, &hs);
    w->hdr.checksum = image_hash_final(&hs);
    memcpy(prefix + IMAGE_CHECKSUM_OFFSET, &w->hdr.checksum, 8);
    rc = writer(arg, prefix, plen);
    free(prefix);
    if (rc == 0)
        rc = each_extent(w, writer, arg);
    if (rc < 0)
        return errprintf(err, errlen, "writing the image: %s", strerror(errno));
    return 0;
}
