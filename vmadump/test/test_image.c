/* test_image.c - unit tests of the image parser and checksum.
 *
 * Dumps a real program (/bin/true) into memory, then checks that the parser
 * accepts it and refuses every damaged variant: any flipped byte, any
 * truncation, bad magic, version and arch, tables pointing outside.
 */
#include <stdlib.h>
#include <string.h>

#include "common/tap.h"
#include "vmadump/hash.h"
#include "vmadump/image.h"
#include "vmadump/vmadump.h"

extern char **environ;

static void test_hash_streaming(void)
{
    unsigned char buf[1000];
    struct image_hash_state s;
    int same = 1;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    for (size_t cut = 0; cut < sizeof(buf); cut += 37) {
        image_hash_init(&s);
        image_hash_update(&s, buf, cut);
        image_hash_update(&s, buf + cut, sizeof(buf) - cut);
        same &= image_hash_final(&s) == image_hash(buf, sizeof(buf));
    }
    ok(same, "streaming hash equals one-shot hash at every split");
    ok(image_hash(buf, 999) != image_hash(buf, 1000), "length changes the hash");
    {
        uint64_t before = image_hash(buf, sizeof(buf));

        buf[500] ^= 1;
        ok(image_hash(buf, sizeof(buf)) != before, "one flipped bit changes the hash");
    }
}

/* The AVX2 loop must give exactly the scalar loop's results: over every
 * length up to a few KiB (so every tail and scramble boundary), split at
 * odd places, and over a large random buffer. */
static void test_hash_paths_agree(void)
{
    size_t big = 1 << 20;
    unsigned char *buf = malloc(big);
    int same = 1, flips = 1;

    if (!buf) {
        ok(0, "allocating the hash test buffer");
        return;
    }
    srand(7);
    for (size_t i = 0; i < big; i++)
        buf[i] = (unsigned char)rand();
    for (size_t len = 0; len <= 4200 && same; len++) {
        struct image_hash_state a, b;
        size_t cut = len * 13 % (len + 1);

        image_hash_force_scalar(1);
        image_hash_init(&a);
        image_hash_update(&a, buf, cut);
        image_hash_update(&a, buf + cut, len - cut);
        image_hash_force_scalar(0);
        image_hash_init(&b);
        image_hash_update(&b, buf, len);
        same &= image_hash_final(&a) == image_hash_final(&b);
    }
    image_hash_force_scalar(1);
    uint64_t scalar = image_hash(buf, big);
    image_hash_force_scalar(0);
    ok(same && scalar == image_hash(buf, big),
       "the vector and scalar hash loops agree at every length and split");
    for (size_t bit = 0; bit < 2048 * 8; bit += 3) {
        uint64_t before = image_hash(buf, 2048);

        buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
        flips &= image_hash(buf, 2048) != before;
        buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
    }
    ok(flips, "every flipped bit of a 2 KiB buffer changes the hash");
    free(buf);
}

static int refused(unsigned char *img, size_t len)
{
    struct image parsed;

    return image_check(img, len, &parsed) != NULL;
}

static void test_damage(unsigned char *img, size_t len)
{
    unsigned char *copy = malloc(len);
    int all = 1;
    size_t step = len / 997 + 1;

    if (!copy || len < IMAGE_SHEBANG_SIZE) {
        ok(0, "image too small to damage");
        free(copy);
        return;
    }

    for (size_t off = 0; off < len; off += step) {
        memcpy(copy, img, len);
        copy[off] ^= 0x20;
        all &= refused(copy, len);
    }
    memcpy(copy, img, len);
    copy[len - 1] ^= 1;
    all &= refused(copy, len);
    ok(all, "a flipped byte anywhere is refused (%zu offsets)", len / step + 1);
    all = 1;
    for (size_t cut = 0; cut < len; cut += step)
        all &= refused(img, cut);
    ok(all, "every truncation is refused");
    free(copy);
}

/* vmad_check_summed over pieces of size step fed in order, each call
 * feeding up to the next piece's end; 0 if accepted. */
static int summed(const unsigned char *img, size_t len, size_t step)
{
    struct vmad_sum s;

    vmad_sum_init(&s);
    for (size_t upto = 0; upto < len; upto += step)
        vmad_sum_feed(&s, img, upto);
    vmad_sum_feed(&s, img, len);
    return vmad_check_summed(img, len, &s, NULL, 0);
}

/* The checksum taken piece by piece as an image arrives gives the same
 * verdicts as vmad_check: every split accepted, a flipped byte refused. */
static void test_summed(unsigned char *img, size_t len)
{
    static const size_t steps[] = { 1, 3, 7, 8, 61, 64, 4096, 65536 };
    int all = 1, none = 1;
    struct vmad_sum s;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        all &= summed(img, len, steps[i]) == 0;
    ok(all && vmad_check(img, len, NULL, 0) == 0,
       "an image hashed as it arrives, in pieces of 1 byte to 64 KiB, is "
       "accepted");
    for (size_t off = 0; off < len; off += len / 61 + 1) {
        img[off] ^= 0x20;
        none &= summed(img, len, 4096) < 0;
        img[off] ^= 0x20;
    }
    ok(none, "a flipped byte anywhere is refused when hashed as it arrives");
    vmad_sum_init(&s);
    vmad_sum_feed(&s, img, len / 2);
    ok(vmad_check_summed(img, len, &s, NULL, 0) < 0,
       "an image hashed only in part is refused");
}

static void test_header_fields(unsigned char *img, size_t len)
{
    struct image_header *h = (void *)(img + IMAGE_SHEBANG_SIZE);
    struct image parsed;
    const char *why;

    h->magic[0] = 'X';
    why = image_check(img, len, &parsed);
    ok(why && strstr(why, "magic"), "bad magic named: %s", why);
    h->magic[0] = 'V';
    h->version = 99;
    why = image_check(img, len, &parsed);
    ok(why && strstr(why, "version"), "bad version named: %s", why);
    h->version = IMAGE_VERSION;
    h->arch = 183; /* EM_AARCH64 */
    why = image_check(img, len, &parsed);
    ok(why && strstr(why, "architecture"), "foreign arch named: %s", why);
    h->arch = IMAGE_ARCH_X86_64;
    /* Structural checks hold even for an image whose checksum matches. */
    h->nregions = 100000;
    why = image_parse(img, len, &parsed);
    ok(why != NULL, "absurd region count refused without the checksum: %s", why);
}

int main(void)
{
    char *argv[] = { "true", NULL }, err[256] = "";
    struct image parsed;
    void *buf;
    size_t len;

    test_hash_streaming();
    test_hash_paths_agree();
    if (!ok(vmad_dump_to_buffer("/bin/true", argv, environ, NULL, &buf, &len,
                                err, sizeof(err)) == 0, "dump /bin/true: %s", err))
        return done_testing();
    ok(image_check(buf, len, &parsed) == NULL, "dumped image parses");
    ok(parsed.hdr->total_len == len && len % IMAGE_PAGE_SIZE == 0,
       "length %zu is recorded and page aligned", len);
    ok(parsed.cpu->regs[IREG_RIP] != 0 &&
       image_find_region(&parsed, parsed.cpu->regs[IREG_RSP]) != NULL,
       "entry point and stack pointer are inside regions");
    ok(refused(buf, 0), "empty input refused");
    test_damage(buf, len);
    test_summed(buf, len);
    test_header_fields(buf, len);
    free(buf);
    return done_testing();
}
