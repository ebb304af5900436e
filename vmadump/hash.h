/* hash.h - the 64-bit checksum used by images: a streaming hash of the
 * XXH3 construction (eight lanes of 32x32->64-bit multiplies over 64-byte
 * stripes, scrambled every KiB; hash.c), with an AVX2 loop chosen at run
 * time that gives the same result.  Freestanding: linked into both
 * libvmad and the libc-free restorer.  Not
 * cryptographic: it catches damage, not forgery (authentication belongs
 * to the transport).
 */
#ifndef VMADUMP_HASH_H
#define VMADUMP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_HASH_LANES 8
#define IMAGE_HASH_STRIPE 64

struct image_hash_state {
    uint64_t acc[IMAGE_HASH_LANES];
    uint64_t total;
    unsigned int nstripe;       /* stripes since the last scramble */
    unsigned int ntail;
    unsigned char tail[IMAGE_HASH_STRIPE];
};

void image_hash_init(struct image_hash_state *s);
void image_hash_update(struct image_hash_state *s, const void *data, size_t len);
/* Returns the hash of everything passed to update since init. */
uint64_t image_hash_final(const struct image_hash_state *s);
/* One-shot convenience. */
uint64_t image_hash(const void *data, size_t len);

/* Use the scalar loop even where AVX2 is available (on != 0): for the
 * unit test that holds both loops to the same results. */
void image_hash_force_scalar(int on);

#endif
