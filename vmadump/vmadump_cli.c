/* vmadump_cli.c - the vmadump command: dump, restore, info.
 *
 *   vmadump dump [-o FILE] [library-list options] [--rank-var NAME]... -- PROG [ARGS...]
 *   vmadump restore [--rank R] [--keep-fd N]... FILE|-
 *   vmadump info FILE|-
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmadump/util.h"
#include "vmadump/vmadump.h"

#define MAX_LIST 64

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: vmadump dump [-o FILE] [--all-data] [--no-default-libs]\n"
        "                    [--lib-dir DIR]... [--lib FILE]... [--rank-var NAME]...\n"
        "                    [--] PROG [ARGS...]\n"
        "       vmadump restore [--rank R] [--keep-fd N]... FILE|-\n"
        "       vmadump info FILE|-\n");
}

/* Misuse gets one line too: what is wrong, and where the usage is. */
static int misuse(const char *what, const char *arg)
{
    fprintf(stderr, "vmadump: %s%s%s (see vmadump --help)\n", what,
            arg ? " " : "", arg ? arg : "");
    return 2;
}

static int die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "vmadump: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 1;
}

/* Append s to a NULL-terminated list of at most MAX_LIST names. */
static int list_add(const char **list, int *n, const char *s)
{
    if (*n >= MAX_LIST)
        return -1;
    list[(*n)++] = s;
    list[*n] = NULL;
    return 0;
}

static int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, 0, 'o' },
        { "all-data", no_argument, 0, 'a' },
        { "no-default-libs", no_argument, 0, 'N' },
        { "lib-dir", required_argument, 0, 'L' },
        { "lib", required_argument, 0, 'l' },
        { "rank-var", required_argument, 0, 'r' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *dirs[MAX_LIST + 1] = { 0 }, *files[MAX_LIST + 1] = { 0 };
    const char *vars[MAX_LIST + 2] = { "BPROC_RANK", 0 }, *out = NULL;
    struct vmad_dump_opts o = { .lib_dirs = dirs, .lib_files = files, .rank_vars = vars };
    int ndirs = 0, nfiles = 0, nvars = 1, c, fd = 1, rc;
    char err[512];

    while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
        int bad = 0;

        switch (c) {
        case 'o': out = optarg; break;
        case 'a': o.all_data = 1; break;
        case 'N': o.no_default_libs = 1; break;
        case 'L': bad = list_add(dirs, &ndirs, optarg); break;
        case 'l': bad = list_add(files, &nfiles, optarg); break;
        case 'r': bad = list_add(vars, &nvars, optarg); break;
        case 'h': usage(stdout); return 0;
        default: return misuse("dump: invalid option", argv[optind - 1]);
        }
        if (bad)
            return die("too many %s%s (at most 64)", "list entries", "");
    }
    if (optind >= argc)
        return misuse("dump: no program given", NULL);
    if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755)) < 0)
        return die("%s: %s", out, strerror(errno));
    rc = vmad_dump_to_fd(argv[optind], argv + optind, environ, &o, fd,
                         err, sizeof(err));
    if (out && (close(fd) < 0 && rc == 0)) {
        rc = -1;
        snprintf(err, sizeof(err), "%s: %s", out, strerror(errno));
    }
    if (rc < 0) {
        if (out)
            unlink(out);
        return die("%s%s", err, "");
    }
    return 0;
}

/* The image from stdin: the restorer maps it, so it goes through a sealed
 * memfd (vmad_restore_buffer).  Returns only on failure. */
static void restore_stdin(const struct vmad_restore_opts *o, char *err,
                          size_t errlen)
{
    void *buf;
    size_t len;

    if (read_all(0, &buf, &len) < 0) {
        errprintf(err, errlen, "reading the image from stdin: %s", strerror(errno));
        return;
    }
    vmad_restore_buffer(buf, len, o, err, errlen);
    free(buf);
}

static int parse_num(const char *s, long max, long *v)
{
    char *end;

    errno = 0;
    *v = strtol(s, &end, 10);
    return errno || end == s || *end || *v < 0 || *v > max ? -1 : 0;
}

static int cmd_restore(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "rank", required_argument, 0, 'r' },
        { "keep-fd", required_argument, 0, 'k' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    struct vmad_restore_opts o = { .rank = -1 };
    int keep[MAX_LIST], c, fd;
    char err[512];
    long v;

    /* Options may follow FILE here: restore has one operand, nothing to
     * pass through. */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'r' && parse_num(optarg, 999999999999L, &o.rank) == 0)
            continue;
        if (c == 'k' && o.nkeep_fds < MAX_LIST && parse_num(optarg, INT_MAX, &v) == 0) {
            keep[o.nkeep_fds++] = v;
            continue;
        }
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c == 'r' || c == 'k')
            return die("invalid --%s value '%s'", c == 'r' ? "rank" : "keep-fd", optarg);
        return misuse("restore: invalid option", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return misuse("restore: expected one image (FILE or -)", NULL);
    o.keep_fds = keep;
    o.label = argv[optind];
    if (!strcmp(argv[optind], "-"))
        restore_stdin(&o, err, sizeof(err));
    else if ((fd = open(argv[optind], O_RDONLY | O_CLOEXEC)) < 0)
        snprintf(err, sizeof(err), "%s: %s", argv[optind], strerror(errno));
    else
        vmad_restore_fd(fd, &o, err, sizeof(err));
    return die("%s%s", err, ""), 127;
}

static int cmd_info(int argc, char **argv)
{
    char err[512];
    void *buf;
    size_t len;
    int fd = 0;

    if (argc != 2)
        return misuse("info: expected one image (FILE or -)", NULL);
    if (strcmp(argv[1], "-") && (fd = open(argv[1], O_RDONLY | O_CLOEXEC)) < 0)
        return die("%s: %s", argv[1], strerror(errno));
    if (read_all(fd, &buf, &len) < 0)
        return die("%s: %s", argv[1], strerror(errno));
    if (vmad_print_info(buf, len, stdout, err, sizeof(err)) < 0) {
        free(buf);
        return die("%s: %s", argv[1], err);
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    opterr = 0;    /* misuse() reports bad options, in one line */
    if (argc < 2)
        return misuse("no command given", NULL);
    if (!strcmp(argv[1], "dump"))
        return cmd_dump(argc - 1, argv + 1);
    if (!strcmp(argv[1], "restore"))
        return cmd_restore(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    return misuse("unknown command", argv[1]);
}
