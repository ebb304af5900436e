/* stack.c - the stack grows after restore.
 *
 * The dumped stack is only a few pages; a restored stack mapped without
 * MAP_GROWSDOWN would stay that size.  This recurses through about 4 MiB
 * (half the usual 8 MiB limit), writing every frame, and checks the values
 * on the way back up.
 */
#include <stdio.h>
#include <string.h>

#define FRAME 4096
#define DEPTH 1024              /* DEPTH * FRAME = 4 MiB */

static unsigned long descend(unsigned depth)
{
    volatile unsigned char frame[FRAME];

    memset((void *)frame, depth & 0xff, sizeof frame);
    unsigned long below = depth ? descend(depth - 1) : 0;
    for (size_t i = 0; i < sizeof frame; i += 512)
        if (frame[i] != (depth & 0xff))
            return (unsigned long)-1;
    return below == (unsigned long)-1 ? below : below + depth;
}

int main(void)
{
    unsigned long sum = descend(DEPTH);

    if (sum != (unsigned long)DEPTH * (DEPTH + 1) / 2) {
        fprintf(stderr, "stack: deep recursion corrupted frames\n");
        return 1;
    }
    puts("stack ok");
    return 0;
}
