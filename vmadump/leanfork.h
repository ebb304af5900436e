/* leanfork.h - mark what a fork's child will not use MADV_DONTFORK.
 *
 * For vmad_spawn_image's child, which only makes system calls before it
 * becomes the restorer (leanfork.c says what it keeps).  The marks are
 * permanent: every later fork of the caller leaves those mappings out of
 * the child, so only a caller that forks nothing else may use this.
 */
#ifndef VMADUMP_LEANFORK_H
#define VMADUMP_LEANFORK_H

#include <stddef.h>

/* Mark every mapping of the calling process MADV_DONTFORK except the
 * image buffer [buf, buf+len) and what the spawning child needs.  Returns
 * 0, or -1 with errno if /proc/self/maps cannot be read (nothing marked). */
int leanfork_prune(const void *buf, size_t len);

#endif
