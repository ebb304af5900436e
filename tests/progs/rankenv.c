/* rankenv.c - prints the environment variables named on its command line.
 *
 * For the rank tests: each argument NAME gives one line "NAME=value", or
 * "NAME unset".  Without arguments it prints BPROC_RANK.
 */
#include <stdio.h>
#include <stdlib.h>

static void print_var(const char *name)
{
    const char *value = getenv(name);

    if (value)
        printf("%s=%s\n", name, value);
    else
        printf("%s unset\n", name);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        print_var("BPROC_RANK");
    for (int i = 1; i < argc; i++)
        print_var(argv[i]);
    return 0;
}
