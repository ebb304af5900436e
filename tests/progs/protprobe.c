/* protprobe.c - print the protection of the mapping that holds each part
 * of this program: its ELF header, text, read-only data, data and bss.
 * A restorer that moves these regions into place must leave each with
 * the protection the kernel's exec gives it; run natively and restored,
 * the output is the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char __ehdr_start[];

static const char rodata[] = "read-only data";
static int data = 42;
static int bss;

/* The permissions column of the /proc/self/maps line holding addr, or
 * "none". */
static const char *perms_of(const void *addr, char *out)
{
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long lo, hi, a = (unsigned long)addr;
    char line[512];

    strcpy(out, "none");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, out) == 3 && lo <= a && a < hi)
            break;
        else
            strcpy(out, "none");
    if (f)
        fclose(f);
    return out;
}

int main(void)
{
    char p[5][8];

    printf("header %s text %s rodata %s data %s bss %s\n",
           perms_of(__ehdr_start, p[0]), perms_of((const void *)main, p[1]),
           perms_of(rodata, p[2]), perms_of(&data, p[3]),
           perms_of(&bss, p[4]));
    return data == 42 && bss == 0 ? 0 : 1;
}
