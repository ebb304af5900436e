/* hash.h - the 64-bit checksum used by images: a streaming, four-lane
 * multiply-rotate hash (the XXH64 construction).  Freestanding: linked into
 * both libvmad and the libc-free restorer.  Not cryptographic: it catches
 * damage, not forgery (authentication belongs to the transport).
 */
#ifndef VMADUMP_HASH_H
#define VMADUMP_HASH_H

#include <stddef.h>
#include <stdint.h>

struct image_hash_state {
    uint64_t lane[4];
    uint64_t total;
    unsigned char tail[32];
    unsigned int ntail;
};

void image_hash_init(struct image_hash_state *s);
void image_hash_update(struct image_hash_state *s, const void *data, size_t len);
/* Returns the hash of everything passed to update since init. */
uint64_t image_hash_final(const struct image_hash_state *s);
/* One-shot convenience. */
uint64_t image_hash(const void *data, size_t len);

#endif
