/* hello.c - the smallest round-trip program.
 *
 * Built four ways (static, static-pie, dynamic non-PIE, dynamic PIE) so a
 * restore is proven for every kind of executable the loader knows.  It
 * checks that its own initialized data, its bss and a string in .rodata
 * came through, then prints one line naming its argument count.
 */
#include <stdio.h>
#include <string.h>

static int initialized = 0x5eed;
static int zeroed[1024];
static const char greeting[] = "hello from a restored program";

int main(int argc, char **argv)
{
    (void)argv;
    if (initialized != 0x5eed) {
        fprintf(stderr, "hello: .data lost: %#x\n", initialized);
        return 1;
    }
    for (size_t i = 0; i < sizeof zeroed / sizeof zeroed[0]; i++) {
        if (zeroed[i] != 0) {
            fprintf(stderr, "hello: .bss not zero at %zu\n", i);
            return 1;
        }
    }
    if (strlen(greeting) != 29) {
        fprintf(stderr, "hello: .rodata lost\n");
        return 1;
    }
    printf("%s, argc=%d\n", greeting, argc);
    return 0;
}
