/* big64m.c - a static program whose image really is about 64 MB.
 *
 * The 64 MiB array is initialized, so it lives in .data and every page is
 * carried in the image.  The failover tests stream it to many nodes: long
 * enough to kill a daemon while it does.  It checks a few bytes (two per
 * MiB and the last), so that its run time is its restore's.
 */
#include <stdio.h>

#define BIG_SIZE (64u << 20)
#define MIB (1u << 20)

/* Every byte non-zero (a GNU range initializer), so no page of it can be
 * left out of the image as an all-zero page. */
static unsigned char big[BIG_SIZE] = { [0 ... BIG_SIZE - 1] = 0x5a };

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
