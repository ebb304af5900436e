/* heap.c - the heap grows after restore, by brk and by mmap.
 *
 * The program break must sit after the program's bss and move when asked
 * (sbrk), small mallocs come from the brk heap, large ones from mmap, and
 * realloc moves data intact.  Each step writes a pattern and reads it back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char end;                /* first byte after bss, from the linker */

#define SBRK_STEP (1 << 20)
#define SMALL_COUNT 10000
#define LARGE_SIZE (64u << 20)  /* well above the mmap threshold */

static int fail(const char *what)
{
    fprintf(stderr, "heap: %s\n", what);
    return 1;
}

static int check_sbrk(void)
{
    char *before = sbrk(0);

    if (before == (char *)-1 || before < &end)
        return fail("break is not after bss");
    char *grown = sbrk(SBRK_STEP);
    if (grown == (char *)-1)
        return fail("sbrk could not grow");
    memset(grown, 0xa5, SBRK_STEP);
    if ((char *)sbrk(0) != grown + SBRK_STEP)
        return fail("break did not move");
    for (size_t i = 0; i < SBRK_STEP; i += 4096)
        if ((unsigned char)grown[i] != 0xa5)
            return fail("sbrk memory lost a write");
    if (sbrk(-SBRK_STEP) == (void *)-1)
        return fail("sbrk could not shrink");
    return 0;
}

static int check_small(void)
{
    static uint32_t *blocks[SMALL_COUNT];

    for (uint32_t i = 0; i < SMALL_COUNT; i++) {
        blocks[i] = malloc(16 + i % 200);
        if (!blocks[i])
            return fail("small malloc failed");
        *blocks[i] = i * 2654435761u;
    }
    for (uint32_t i = 0; i < SMALL_COUNT; i++) {
        if (*blocks[i] != i * 2654435761u)
            return fail("small block corrupted");
        free(blocks[i]);
    }
    return 0;
}

static int check_large(void)
{
    unsigned char *p = malloc(LARGE_SIZE);

    if (!p)
        return fail("large malloc failed");
    for (size_t i = 0; i < LARGE_SIZE; i += 4096)
        p[i] = (unsigned char)(i >> 12);
    unsigned char *q = realloc(p, 2 * LARGE_SIZE);
    if (!q) {
        free(p);
        return fail("realloc failed");
    }
    for (size_t i = 0; i < LARGE_SIZE; i += 4096) {
        if (q[i] != (unsigned char)(i >> 12)) {
            free(q);
            return fail("realloc lost data");
        }
    }
    free(q);
    return 0;
}

int main(void)
{
    if (check_sbrk() || check_small() || check_large())
        return 1;
    puts("heap ok");
    return 0;
}
