/* fuzz_image.c - libFuzzer target: the image parser must refuse or accept
 * any byte string without reading outside it, and accept only images whose
 * tables it can walk. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmadump/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t walk(const struct image *img)
{
    uint64_t sum = 0;

    for (uint32_t i = 0; i < img->hdr->nregions; i++) {
        const struct image_region *r = &img->regions[i];

        sum += strlen(image_string(img, r->name));
        for (uint32_t j = 0; r->kind == REGION_DATA && j < r->nextents; j++) {
            const struct image_extent *e = &img->extents[r->first_extent + j];

            sum += img->base[e->image_offset] + img->base[e->image_offset + e->len - 1];
        }
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct image img;
    volatile uint64_t sink;

    /* Structure without checksum first: random inputs never pass the
     * checksum, and the structural checks are what must be airtight. */
    if (!image_parse(data, size, &img))
        sink = walk(&img);
    if (!image_check(data, size, &img))
        sink = walk(&img);
    (void)sink;
    return 0;
}
