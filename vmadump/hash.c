/* hash.c - streaming 64-bit checksum of images (see hash.h).
 *
 * Every node checks the whole image it received, so this loop is paid
 * once per node per launch: ~10% of a launch's CPU with the earlier
 * four-lane 64-bit multiply-rotate hash (14.7 GB/s).  This one is the
 * XXH3 construction: eight 64-bit lanes take 64-byte stripes, each lane
 * adding lo32(d ^ key) * hi32(d ^ key) (a 32x32->64 multiply, which SIMD
 * units do four or eight at a time) and its neighbour's raw word; every
 * BLOCK_STRIPES stripes the lanes are scrambled so that no input bit
 * stays in one place.  The scalar loop is the definition; the AVX2 loop
 * (libvmad only, chosen at run time) computes exactly the same lanes and
 * is checked against it by vmadump/test/test_image.c.  The restorer is
 * built without SIMD registers, but the AVX2 function has its own target
 * and the restorer's check of a whole image uses it too.
 */
#include "hash.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull
#define P32 0x9E3779B1u

/* Stripes between scrambles: 1 KiB, as in XXH3's default secret. */
#define BLOCK_STRIPES 16

/* Per-lane keys (arbitrary odd constants) and scramble keys. */
static const uint64_t key[IMAGE_HASH_LANES] = {
    0xbe4ba423396cfeb8ull, 0x1cad21f72c81017cull, 0xdb979083e96dd4deull,
    0x1f67b3b7a4a44072ull, 0x78e5c0cc4ee679cbull, 0x2172ffcc7dd05a82ull,
    0x8e2443f7744608b8ull, 0x4c263a81e69035e0ull,
};
static const uint64_t skey[IMAGE_HASH_LANES] = {
    0xcb00c391bb52283cull, 0xa32e531b8b65d088ull, 0x4ef90da297486471ull,
    0xd8acdea946ef1938ull, 0x3f349ce33f76faa8ull, 0x1d4f0bc7c7bbdcf9ull,
    0x3159b4cd4be0518aull, 0x647378d9c97e9fc8ull,
};

static int force_scalar;

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

static void scramble(uint64_t acc[IMAGE_HASH_LANES])
{
    for (int i = 0; i < IMAGE_HASH_LANES; i++) {
        uint64_t a = acc[i];

        a ^= a >> 47;
        a ^= skey[i];
        acc[i] = a * P32;
    }
}

/* n whole stripes; s->nstripe counts stripes since the last scramble.
 * The lanes live in a local array: through s they would be reloaded
 * after every store, since p may alias anything. */
static void stripes_scalar(struct image_hash_state *s, const unsigned char *p,
                           size_t n)
{
    uint64_t acc[IMAGE_HASH_LANES];
    unsigned int ns = s->nstripe;

    __builtin_memcpy(acc, s->acc, sizeof(acc));
    for (; n; n--, p += IMAGE_HASH_STRIPE) {
        /* unrolled, so that the lanes stay in registers */
#pragma GCC unroll 8
        for (int i = 0; i < IMAGE_HASH_LANES; i++) {
            uint64_t d = load64(p + 8 * i), dk = d ^ key[i];

            acc[i ^ 1] += d;
            acc[i] += (dk & 0xffffffffu) * (dk >> 32);
        }
        if (++ns == BLOCK_STRIPES) {
            scramble(acc);
            ns = 0;
        }
    }
    __builtin_memcpy(s->acc, acc, sizeof(acc));
    s->nstripe = ns;
}

#ifdef HAVE_AVX2_PATH
/* AVX2 in the CPU and its registers saved by the kernel (XCR0 has the
 * SSE and AVX state bits).  cpuid.h is header-only, so this works in the
 * restorer too, which runs no constructors and links no libgcc data. */
static int cpu_has_avx2(void)
{
    unsigned int a, b, c, d, xcr0_lo, xcr0_hi;

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
        return 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6) != 6 || __get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_AVX2) != 0;
}

__attribute__((target("avx2")))
static inline __m256i accumulate_avx2(__m256i acc, __m256i d, __m256i k)
{
    __m256i dk = _mm256_xor_si256(d, k);
    __m256i prod = _mm256_mul_epu32(dk, _mm256_srli_epi64(dk, 32));
    /* lanes 0<->1, 2<->3: each lane adds its neighbour's word */
    __m256i swapped = _mm256_shuffle_epi32(d, _MM_SHUFFLE(1, 0, 3, 2));

    return _mm256_add_epi64(acc, _mm256_add_epi64(prod, swapped));
}

__attribute__((target("avx2")))
static inline __m256i scramble_avx2(__m256i a, __m256i sk)
{
    const __m256i prime = _mm256_set1_epi32((int)P32);
    __m256i lo, hi;

    a = _mm256_xor_si256(a, _mm256_srli_epi64(a, 47));
    a = _mm256_xor_si256(a, sk);
    lo = _mm256_mul_epu32(a, prime);
    hi = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), prime);
    return _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
}

__attribute__((target("avx2")))
static void stripes_avx2(struct image_hash_state *s, const unsigned char *p,
                         size_t n)
{
    __m256i a0 = _mm256_loadu_si256((const __m256i *)s->acc);
    __m256i a1 = _mm256_loadu_si256((const __m256i *)(s->acc + 4));
    const __m256i k0 = _mm256_loadu_si256((const __m256i *)key);
    const __m256i k1 = _mm256_loadu_si256((const __m256i *)(key + 4));
    const __m256i s0 = _mm256_loadu_si256((const __m256i *)skey);
    const __m256i s1 = _mm256_loadu_si256((const __m256i *)(skey + 4));

    for (; n; n--, p += IMAGE_HASH_STRIPE) {
        a0 = accumulate_avx2(a0, _mm256_loadu_si256((const __m256i *)p), k0);
        a1 = accumulate_avx2(a1, _mm256_loadu_si256((const __m256i *)(p + 32)),
                             k1);
        if (++s->nstripe == BLOCK_STRIPES) {
            a0 = scramble_avx2(a0, s0);
            a1 = scramble_avx2(a1, s1);
            s->nstripe = 0;
        }
    }
    _mm256_storeu_si256((__m256i *)s->acc, a0);
    _mm256_storeu_si256((__m256i *)(s->acc + 4), a1);
}
#endif

static void stripes(struct image_hash_state *s, const unsigned char *p,
                    size_t n)
{
#ifdef HAVE_AVX2_PATH
    static int avx2 = -1;

    if (avx2 < 0)
        avx2 = cpu_has_avx2();
    if (avx2 && !force_scalar) {
        stripes_avx2(s, p, n);
        return;
    }
#endif
    stripes_scalar(s, p, n);
}

void image_hash_force_scalar(int on)
{
    force_scalar = on;
}

void image_hash_init(struct image_hash_state *s)
{
    for (int i = 0; i < IMAGE_HASH_LANES; i++)
        s->acc[i] = key[i] ^ P5;
    s->total = 0;
    s->nstripe = 0;
    s->ntail = 0;
}

void image_hash_update(struct image_hash_state *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t n;

    s->total += len;
    if (s->ntail) {
        size_t take = IMAGE_HASH_STRIPE - s->ntail < len
                      ? IMAGE_HASH_STRIPE - s->ntail : len;

        __builtin_memcpy(s->tail + s->ntail, p, take);
        s->ntail += take;
        p += take;
        len -= take;
        if (s->ntail < IMAGE_HASH_STRIPE)
            return;
        stripes(s, s->tail, 1);
        s->ntail = 0;
    }
    n = len / IMAGE_HASH_STRIPE;
    if (n)
        stripes(s, p, n);
    p += n * IMAGE_HASH_STRIPE;
    len -= n * IMAGE_HASH_STRIPE;
    __builtin_memcpy(s->tail, p, len);
    s->ntail = len;
}

/* The high and low halves of a 64x64-bit product, folded. */
static inline uint64_t fold64(uint64_t a, uint64_t b)
{
    unsigned __int128 m = (unsigned __int128)a * b;

    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

uint64_t image_hash_final(const struct image_hash_state *s)
{
    const unsigned char *p = s->tail;
    unsigned int n = s->ntail;
    uint64_t h = s->total * P1;

    for (int i = 0; i < IMAGE_HASH_LANES; i += 2)
        h += fold64(s->acc[i] ^ skey[i], s->acc[i + 1] ^ key[i + 1]);
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
