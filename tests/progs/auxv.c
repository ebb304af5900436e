/* auxv.c - the auxiliary vector describes the restored process.
 *
 * The restorer rebuilds auxv: AT_RANDOM must be fresh per restore (printed
 * as hex so a test can compare two restores), AT_PHDR/AT_PHNUM/AT_ENTRY
 * must describe this program where it really sits (checked against the ELF
 * header the linker placed at __ehdr_start, found PC-relative and so
 * independent of auxv, and against dl_iterate_phdr), AT_BASE must be the
 * loader a dynamic program really has, and AT_SYSINFO_EHDR the vDSO that
 * /proc/self/maps shows.
 */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

static int failures;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "auxv: %s\n", what);
        failures++;
    }
}

/* Difference between where the program sits and where it was linked. */
static uintptr_t own_load_bias(void)
{
    const ElfW(Phdr) *ph = (const void *)((const char *)&__ehdr_start +
                                          __ehdr_start.e_phoff);
    uintptr_t lowest = UINTPTR_MAX;

    for (int i = 0; i < __ehdr_start.e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < lowest)
            lowest = ph[i].p_vaddr & ~(uintptr_t)(ph[i].p_align - 1);
    return (uintptr_t)&__ehdr_start - lowest;
}

static int has_interp(void)
{
    const ElfW(Phdr) *ph = (const void *)getauxval(AT_PHDR);

    for (unsigned long i = 0; i < getauxval(AT_PHNUM); i++)
        if (ph[i].p_type == PT_INTERP)
            return 1;
    return 0;
}

struct seen {
    const ElfW(Phdr) *first_phdr;
    uintptr_t first_addr;
    int count;
    int base_found;
};

static int note_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct seen *seen = arg;

    (void)size;
    if (seen->count++ == 0) {
        seen->first_phdr = info->dlpi_phdr;
        seen->first_addr = info->dlpi_addr;
    }
    if (info->dlpi_addr == getauxval(AT_BASE))
        seen->base_found = 1;
    return 0;
}

static void check_program_headers(void)
{
    const char *own = (const char *)&__ehdr_start;
    struct seen seen = { 0 };
    uintptr_t bias = own_load_bias();

    check(getauxval(AT_PHDR) == (uintptr_t)(own + __ehdr_start.e_phoff),
          "AT_PHDR is not this program's program headers");
    check(getauxval(AT_PHNUM) == __ehdr_start.e_phnum, "AT_PHNUM wrong");
    check(getauxval(AT_PHENT) == sizeof(ElfW(Phdr)), "AT_PHENT wrong");
    check(getauxval(AT_ENTRY) == bias + __ehdr_start.e_entry,
          "AT_ENTRY is not this program's entry point");
    dl_iterate_phdr(note_object, &seen);
    check(seen.first_phdr == (const void *)getauxval(AT_PHDR),
          "dl_iterate_phdr disagrees with AT_PHDR");
    check(seen.first_addr == bias, "dl_iterate_phdr load bias wrong");
    if (has_interp()) {
        const unsigned char *base = (const void *)getauxval(AT_BASE);
        check(base && memcmp(base, ELFMAG, SELFMAG) == 0,
              "AT_BASE is not the loader's ELF header");
        check(seen.base_found, "no loaded object sits at AT_BASE");
    } else {
        check(getauxval(AT_BASE) == 0, "AT_BASE set in a static program");
    }
}

/* Is addr the start of the [vdso] line of /proc/self/maps? */
static int vdso_mapped_at(uintptr_t addr)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;

    if (!maps)
        return 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long start;
        if (strstr(line, "[vdso]") && sscanf(line, "%lx-", &start) == 1)
            found = start == addr;
    }
    fclose(maps);
    return found;
}

static void check_vdso(void)
{
    uintptr_t ehdr = getauxval(AT_SYSINFO_EHDR);

    check(ehdr && memcmp((const void *)ehdr, ELFMAG, SELFMAG) == 0,
          "AT_SYSINFO_EHDR does not point at an ELF header");
    check(vdso_mapped_at(ehdr), "AT_SYSINFO_EHDR is not where [vdso] is mapped");
}

static void check_process_facts(void)
{
    unsigned long pagesz = getauxval(AT_PAGESZ);

    check(pagesz >= 4096 && (pagesz & (pagesz - 1)) == 0, "AT_PAGESZ wrong");
    check(getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid() &&
          getauxval(AT_GID) == getgid() && getauxval(AT_EGID) == getegid(),
          "AT_UID/AT_GID do not match the process");
    check(getauxval(AT_SECURE) == 0, "AT_SECURE set");
    check(getauxval(AT_HWCAP) != 0, "AT_HWCAP missing");
    check(getauxval(AT_CLKTCK) > 0, "AT_CLKTCK missing");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    check(execfn && *execfn, "AT_EXECFN missing");
}

static void print_random(void)
{
    const unsigned char *rnd = (const void *)getauxval(AT_RANDOM);

    check(rnd != NULL, "AT_RANDOM missing");
    if (!rnd)
        return;
    printf("AT_RANDOM=");
    for (int i = 0; i < 16; i++)
        printf("%02x", rnd[i]);
    printf("\n");
}

int main(void)
{
    check_program_headers();
    check_vdso();
    check_process_facts();
    print_random();
    if (failures)
        return 1;
    puts("auxv ok");
    return 0;
}
