/* hugedata.c - a static program with 6 MiB of .data that reports how much
 * of it its own page tables map with 2 MiB pages.
 *
 * Prints "RANK KB": BPROC_RANK, and the AnonHugePages of the mapping that
 * holds its array (/proc/self/smaps).  Run from an image by a node daemon,
 * whose buffer has huge pages and puts the image so that the array lies
 * 2 MiB-congruent with its address (vmad_huge_lead), at least two whole
 * 2 MiB pages of the array are mapped whole: KB >= 4096.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_BYTES 6291456
#define STR_(x) #x
#define STR(x) STR_(x)
/* Every byte non-zero, so every page is in the image (see big64m.c for
 * why .fill and not an initializer).  Aligned to 64 bytes, not a page:
 * then no zero-filled padding page is left out of the image before it,
 * its data lies in the image as big4m's does, not 2 MiB-congruent with
 * its address, and only a lead (vmad_huge_lead) makes it so. */
extern unsigned char big[];
__asm__(".pushsection .data\n"
        ".balign 64\n"
        ".type big, @object\n"
        ".size big, " STR(BIG_BYTES) "\n"
        "big:\n"
        ".fill " STR(BIG_BYTES) ", 1, 0x5a\n"
        ".popsection\n");

/* AnonHugePages in kB of the smaps entry that holds addr, or -1. */
static long huge_kb_at(unsigned long addr)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    char line[512];
    unsigned long lo, hi;
    long kb = -1;
    int in = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = addr >= lo && addr < hi;
        else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

int main(void)
{
    const char *rank = getenv("BPROC_RANK");
    long kb = huge_kb_at((unsigned long)big + BIG_BYTES / 2);

    if (big[0] != 0x5a || big[BIG_BYTES - 1] != 0x5a) {
        fprintf(stderr, "hugedata: data wrong\n");
        return 1;
    }
    printf("%s %ld\n", rank ? rank : "-", kb);
    return kb < 0;
}
