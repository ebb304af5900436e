/* big64m.c - a static program whose image really is about 64 MB.
 *
 * The 64 MiB array is initialized, so it lives in .data and every page is
 * carried in the image.  The failover tests stream it to many nodes: long
 * enough to kill a daemon while it does.  It checks a few bytes (two per
 * MiB and the last), so that its run time is its restore's.
 */
#include <stdio.h>

#define BIG_BYTES 67108864
#define BIG_SIZE (64u << 20)
#define MIB (1u << 20)

/* Every byte non-zero, so no page of it can be left out of the image as
 * an all-zero page.  The assembler's .fill makes it: a GNU range
 * initializer of 64 MiB (as in big4m.c) made cc1 take 5.7 GB and be
 * OOM-killed while other tests ran. */
#define STR_(x) #x
#define STR(x) STR_(x)
extern unsigned char big[];
__asm__(".pushsection .data\n"
        ".balign 4096\n"
        ".type big, @object\n"
        ".size big, " STR(BIG_BYTES) "\n"
        "big:\n"
        ".fill " STR(BIG_BYTES) ", 1, 0x5a\n"
        ".popsection\n");

int main(void)
{
    for (unsigned i = 0; i < 64; i++) {
        if (big[i * MIB] != 0x5a || big[i * MIB + MIB / 2] != 0x5a) {
            fprintf(stderr, "big64m: data wrong in MiB %u\n", i);
            return 1;
        }
    }
    if (big[BIG_SIZE - 1] != 0x5a) {
        fprintf(stderr, "big64m: last byte wrong\n");
        return 1;
    }
    /* The data must be writable after restore (a fault here otherwise). */
    *(volatile unsigned char *)&big[MIB + 1] = 0x55;
    puts("big64m ok");
    return 0;
}
