/* image_write.h - build an image from parts and emit it as one stream.
 *
 * The dumper adds registers, mm fields, auxv and regions; imgw_emit() lays
 * out the tables, computes the checksum and hands the bytes to a writer in
 * stream order.  Zero pages of data regions are left out of the image (they
 * come back as anonymous zero pages), so a 132 KiB stack with four used
 * pages costs four pages.
 */
#ifndef VMADUMP_IMAGE_WRITE_H
#define VMADUMP_IMAGE_WRITE_H

#include "image.h"
#include "vmadump.h"

struct imgw;

struct imgw *imgw_create(void);
void imgw_destroy(struct imgw *w);

/* Add a string to the string table; returns its offset or -1 (ENOMEM). */
long imgw_string(struct imgw *w, const char *s);

/* Add the next region (in address order).  For REGION_DATA, data holds the
 * region's bytes (end - start) and ownership passes to the builder, which
 * free()s it; otherwise data is NULL.  Returns 0 or -1 (ENOMEM). */
int imgw_add_region(struct imgw *w, const struct image_region *r, void *data);

/* Fixed parts; auxv is copied (n entries, AT_NULL included). */
void imgw_set_process(struct imgw *w, const struct image_cpu *cpu,
                      const struct image_mm *mm);
int imgw_set_auxv(struct imgw *w, const struct image_auxv *auxv, uint32_t n,
                  uint64_t auxv_addr);
void imgw_set_exe(struct imgw *w, uint32_t name, uint64_t size);
void imgw_set_rankvars(struct imgw *w, uint32_t first, uint32_t n);

/* Emit the image with restorer on its #! line.  Returns 0 or -1; a writer
 * failure is returned as is (its errno). */
int imgw_emit(struct imgw *w, const char *restorer, vmad_writer_fn writer,
              void *arg, char *err, size_t errlen);

#endif
