/* hash.c - streaming 64-bit checksum of images (see hash.h).
 *
 * Four independent lanes consume 32-byte stripes so the multiplies overlap
 * in the pipeline; the restorer hashes a whole image before it maps it, so
 * this loop is on the restore path and must run near memory bandwidth.
 */
#include "hash.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;

    __builtin_memcpy(&v, p, 8);
    return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t v)
{
    return rotl(acc + v * P2, 31) * P1;
}

static inline uint64_t merge64(uint64_t acc, uint64_t lane)
{
    return (acc ^ round64(0, lane)) * P1 + P4;
}

static void stripe(uint64_t lane[4], const unsigned char *p)
{
    lane[0] = round64(lane[0], load64(p));
    lane[1] = round64(lane[1], load64(p + 8));
    lane[2] = round64(lane[2], load64(p + 16));
    lane[3] = round64(lane[3], load64(p + 24));
}

void image_hash_init(struct image_hash_state *s)
{
    s->lane[0] = P1 + P2;
    s->lane[1] = P2;
    s->lane[2] = 0;
    s->lane[3] = -P1;
    s->total = 0;
    s->ntail = 0;
}

void image_hash_update(struct image_hash_state *s, const void *data, size_t len)
{
    const unsigned char *p = data;

    s->total += len;
    if (s->ntail) {
        size_t take = 32 - s->ntail < len ? 32 - s->ntail : len;

        __builtin_memcpy(s->tail + s->ntail, p, take);
        s->ntail += take;
        p += take;
        len -= take;
        if (s->ntail < 32)
            return;
        stripe(s->lane, s->tail);
        s->ntail = 0;
    }
    for (; len >= 32; p += 32, len -= 32)
        stripe(s->lane, p);
    __builtin_memcpy(s->tail, p, len);
    s->ntail = len;
}

uint64_t image_hash_final(const struct image_hash_state *s)
{
    const unsigned char *p = s->tail;
    unsigned int n = s->ntail;
    uint64_t h;

    if (s->total >= 32) {
        h = rotl(s->lane[0], 1) + rotl(s->lane[1], 7) +
            rotl(s->lane[2], 12) + rotl(s->lane[3], 18);
        for (int i = 0; i < 4; i++)
            h = merge64(h, s->lane[i]);
    } else {
        h = P5;
    }
    h += s->total;
    for (; n >= 8; p += 8, n -= 8)
        h = rotl(h ^ round64(0, load64(p)), 27) * P1 + P4;
    for (; n; p++, n--)
        h = rotl(h ^ (*p * P5), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t image_hash(const void *data, size_t len)
{
    struct image_hash_state s;

    image_hash_init(&s);
    image_hash_update(&s, data, len);
    return image_hash_final(&s);
}
