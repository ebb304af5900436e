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
#include <stdint.h>

/* What the child needs: the mappings holding these ranges and addresses. */
#define LEANFORK_MAX 4
struct leanfork_keep {
    uintptr_t start[LEANFORK_MAX], end[LEANFORK_MAX];  /* nranges of them */
    int nranges;
    uintptr_t addr[LEANFORK_MAX];                       /* naddr of them */
    int naddr;
};

/* Mark every mapping of the calling process MADV_DONTFORK except those
 * that overlap k's ranges or hold k's addresses, and the kernel's special
 * mappings ([vdso], [vvar], ...).  Returns 0, or -1 with errno if
 * /proc/self/maps cannot be read (nothing marked). */
int leanfork_prune(const struct leanfork_keep *k);

#endif
