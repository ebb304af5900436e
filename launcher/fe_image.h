/* fe_image.h - the front end's image (fe_image.c). */
#ifndef VEXEC_FE_IMAGE_H
#define VEXEC_FE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Dump argv[0] run with argv and the ranks' environment (ours, with
 * BPROC_RANK=XXXXXXX for the rank and VEXEC_SIZE=n) into *fd from its
 * start if *fd >= 0 (the memfd the gateway lent, gateway.h), else into a
 * new memfd, sealed.  Returns 0 with *fd, *len, *sum (the checksum the
 * image's header carries) and *lead (where a node's buffer should put it,
 * vmad_huge_lead); else the exit code vexec should give (127:
 * the program cannot be dumped, 1: anything else) with err set, and *fd
 * still the caller's to close if it is not -1. */
int fe_image_dump(char *const argv[], int n, int *fd, size_t *len,
                  uint64_t *sum, uint32_t *lead, char *err, size_t errlen);

#endif
