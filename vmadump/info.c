/* info.c - print an image as text (vmadump info). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "util.h"
#include "vmadump.h"

static const char *kind_name(uint32_t kind)
{
    return kind == REGION_DATA ? "data" : kind == REGION_FILE ? "file" : "none";
}

static void print_region(const struct image *img, const struct image_region *r,
                         FILE *out)
{
    uint64_t bytes = 0;

    for (uint32_t j = 0; j < r->nextents; j++)
        bytes += img->extents[r->first_extent + j].len;
    fprintf(out, "  %012" PRIx64 "-%012" PRIx64 " %c%c%c %-4s ", r->start, r->end,
            r->prot & 1 ? 'r' : '-', r->prot & 2 ? 'w' : '-',
            r->prot & 4 ? 'x' : '-', kind_name(r->kind));
    if (r->kind == REGION_FILE)
        fprintf(out, "offset %#" PRIx64 " size %" PRIu64 " hash %016" PRIx64 " ",
                r->file_offset, r->file_size, r->file_hash);
    else if (r->kind == REGION_DATA)
        fprintf(out, "%" PRIu32 " extents %" PRIu64 " KiB ", r->nextents, bytes >> 10);
    fprintf(out, "%s\n", image_string(img, r->name));
}

int vmad_print_info(const void *buf, size_t len, FILE *out, char *err, size_t errlen)
{
    const struct image_header *h;
    const char *why, *v;
    struct image img;

    if ((why = image_check(buf, len, &img))) {
        errno = EINVAL;
        return errprintf(err, errlen, "%s", why);
    }
    h = img.hdr;
    fprintf(out, "vmadump image version %u, x86_64, page %u, %" PRIu64 " bytes, "
            "checksum %016" PRIx64 "\n", h->version, h->page_size, h->total_len,
            h->checksum);
    fprintf(out, "program %s (%" PRIu64 " bytes)\n", image_string(&img, h->exe_name),
            h->exe_size);
    fprintf(out, "entry %#" PRIx64 " stack %#" PRIx64 " auxv %u entries at %#" PRIx64 "\n",
            img.cpu->regs[IREG_RIP], img.cpu->regs[IREG_RSP], h->nauxv, h->auxv_addr);
    fprintf(out, "brk %#" PRIx64 " args %#" PRIx64 "-%#" PRIx64 " env %#" PRIx64
            "-%#" PRIx64 "\n", img.mm->start_brk, img.mm->arg_start, img.mm->arg_end,
            img.mm->env_start, img.mm->env_end);
    fprintf(out, "rank variables:");
    v = image_string(&img, h->rankvars);
    for (uint32_t i = 0; i < h->nrankvars; i++, v += strlen(v) + 1)
        fprintf(out, " %s", v);
    fprintf(out, "\nhuge-page lead %#zx (where a node's 2 MiB-aligned buffer "
            "puts the image)\n", vmad_huge_lead(buf, len));
    fprintf(out, "%u regions, data from offset %#" PRIx64 ":\n", h->nregions,
            h->data_offset);
    for (uint32_t i = 0; i < h->nregions; i++)
        print_region(&img, &img.regions[i], out);
    return 0;
}
