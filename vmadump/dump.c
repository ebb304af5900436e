/* dump.c - dump a program at its exec point (BProc's execmove).
 *
 * fork; the child asks to be traced and execs the program; the kernel stops
 * it with SIGTRAP after the exec, before its first instruction.  We read
 * its registers, mm fields (/proc/PID/stat), mappings and memory, then kill
 * it: the program never runs here.  A dynamically linked program holds only
 * itself, ld.so and its stack at that point; its libraries load after
 * restore, from the node's own filesystem.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hash.h"
#include "image_write.h"
#include "maps.h"
#include "util.h"

static const char *const default_rank_vars[] = { "BPROC_RANK", NULL };

struct dump {
    const struct vmad_dump_opts *opts;
    char path[PATH_MAX];         /* the program, resolved */
    struct stat st;              /* of the program */
    pid_t pid;
    int memfd;                   /* /proc/PID/mem, for unreadable pages */
    struct imgw *w;
    char *err;
    size_t errlen;
};

/* Like execvp's search: a name with a slash is used as is. */
static int resolve_program(struct dump *d, const char *prog)
{
    const char *path = getenv("PATH"), *p, *end;

    if (!*prog)
        return errprintf(d->err, d->errlen, "empty program name");
    if (strchr(prog, '/')) {
        snprintf(d->path, sizeof(d->path), "%s", prog);
        return 0;
    }
    for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; ; p = end + 1) {
        end = strchrnul(p, ':');
        snprintf(d->path, sizeof(d->path), "%.*s/%s", (int)(end - p), p, prog);
        if (access(d->path, X_OK) == 0 && stat(d->path, &d->st) == 0 &&
            S_ISREG(d->st.st_mode))
            return 0;
        if (!*end)
            break;
    }
    errno = ENOENT;
    return errprintf(d->err, d->errlen, "%s: command not found", prog);
}

static int check_program(struct dump *d)
{
    if (stat(d->path, &d->st) < 0)
        return errprintf(d->err, d->errlen, "%s: %s", d->path, strerror(errno));
    if (!S_ISREG(d->st.st_mode)) {
        errno = EACCES;
        return errprintf(d->err, d->errlen, "%s: not a regular file", d->path);
    }
    if (!(d->st.st_mode & 0111) || access(d->path, X_OK) < 0) {
        errno = EACCES;
        return errprintf(d->err, d->errlen, "%s: not executable", d->path);
    }
    if (d->st.st_mode & (S_ISUID | S_ISGID)) {
        errno = EPERM;
        return errprintf(d->err, d->errlen,
                         "%s: setuid/setgid program: refusing to dump it "
                         "(it would run without its privileges)", d->path);
    }
    return 0;
}

/* Fork and exec under ptrace; returns with the child stopped at the exec
 * SIGTRAP.  An exec failure comes back through a close-on-exec pipe. */
static int start_stopped(struct dump *d, char *const argv[], char *const envp[])
{
    int pfd[2], status, child_errno = 0;
    ssize_t n;

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return errprintf(d->err, d->errlen, "pipe: %s", strerror(errno));
    if ((d->pid = fork()) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return errprintf(d->err, d->errlen, "fork: %s", strerror(errno));
    }
    if (d->pid == 0) {
        close(pfd[0]);
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) == 0)
            execve(d->path, argv, envp);
        child_errno = errno;
        if (write(pfd[1], &child_errno, sizeof(child_errno)) < 0)
            _exit(126);
        _exit(127);
    }
    close(pfd[1]);
    do
        n = read(pfd[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (n == sizeof(child_errno)) {
        d->pid = -1;
        errno = child_errno;
        return errprintf(d->err, d->errlen, "%s: cannot execute: %s",
                         d->path, strerror(child_errno));
    }
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
        errno = ECHILD;
        return errprintf(d->err, d->errlen, "%s: did not stop at exec", d->path);
    }
    return 0;
}

static int read_cpu(struct dump *d, struct image_cpu *cpu)
{
    struct user_regs_struct regs;

    _Static_assert(sizeof(regs) == sizeof(cpu->regs), "register layout");
    if (ptrace(PTRACE_GETREGS, d->pid, 0, &regs) < 0)
        return errprintf(d->err, d->errlen, "PTRACE_GETREGS: %s", strerror(errno));
    memcpy(cpu->regs, &regs, sizeof(regs));
    return 0;
}

/* The mm fields of /proc/PID/stat: 26-28 and 45-51 (1-based).  Field 2,
 * the command name, may hold spaces and parentheses: skip to its last ')'. */
static int read_mm(struct dump *d, struct image_mm *mm)
{
    char name[64], buf[4096], *p;
    unsigned long long f[53] = { 0 };
    int fd, i;
    ssize_t n;

    snprintf(name, sizeof(name), "/proc/%d/stat", (int)d->pid);
    if ((fd = open(name, O_RDONLY | O_CLOEXEC)) < 0)
        return errprintf(d->err, d->errlen, "%s: %s", name, strerror(errno));
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0 || !(p = strrchr((buf[n] = '\0', buf), ')')))
        return errprintf(d->err, d->errlen, "%s: unreadable", name);
    /* Field 3, the state, is a letter: skip it and start at field 4. */
    p = strchr(p + 2, ' ');
    for (i = 4; p && i <= 52 && *p; i++) {
        p += strspn(p, " ");
        f[i] = strtoull(p, &p, 10);
    }
    if (i <= 51)
        return errprintf(d->err, d->errlen, "%s: too few fields", name);
    *mm = (struct image_mm){
        .start_code = f[26], .end_code = f[27], .start_stack = f[28],
        .start_data = f[45], .end_data = f[46], .start_brk = f[47],
        .brk = f[47], /* at the exec stop brk equals start_brk */
        .arg_start = f[48], .arg_end = f[49], .env_start = f[50], .env_end = f[51],
    };
    return 0;
}

/* Read [addr, addr+len) of the child.  process_vm_readv needs readable
 * pages; /proc/PID/mem (we are the tracer) reads the rest. */
static int read_memory(struct dump *d, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = { buf, len }, remote = { (void *)addr, len };
    ssize_t n = process_vm_readv(d->pid, &local, 1, &remote, 1, 0);
    size_t done = n > 0 ? (size_t)n : 0;

    while (done < len) {
        n = pread(d->memfd, (char *)buf + done, len - done, addr + done);
        if (n <= 0)
            return errprintf(d->err, d->errlen,
                             "cannot read memory at %#llx: %s",
                             (unsigned long long)(addr + done),
                             n < 0 ? strerror(errno) : "end of file");
        done += n;
    }
    return 0;
}

static int name_in(const char *s, const char *const *names)
{
    for (; names && *names; names++)
        if (!strcmp(s, *names))
            return 1;
    return 0;
}

/* Is path inside directory dir (with or without its trailing slash)? */
static int under_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    return !strncmp(path, dir, n) && path[n] == '/';
}

/* Is this file, mapped at the exec point and not the program itself, on
 * the library list: sent as a reference rather than as data?  At the exec
 * point the only such file is the program's interpreter, the dynamic
 * loader, which the default list always includes: the shared libraries in
 * the system directories are mapped later, by the loader, after restore. */
static int on_library_list(const struct dump *d, const struct map_entry *m)
{
    const struct vmad_dump_opts *o = d->opts;

    if (o->all_data)
        return 0;
    if (name_in(m->path, o->lib_files))
        return 1;
    for (const char *const *p = o->lib_dirs; p && *p; p++)
        if (under_dir(m->path, *p))
            return 1;
    if (o->no_default_libs)
        return 0;
    return 1;
}

static int is_program(const struct dump *d, const struct map_entry *m)
{
    return m->inode == d->st.st_ino &&
           makedev(m->dev_major, m->dev_minor) == d->st.st_dev;
}


static int is_kernel_special(const struct map_entry *m)
{
    return m->start >= IMAGE_TASK_SIZE || !strcmp(m->path, "[vdso]") ||
           !strncmp(m->path, "[vvar", 5) || !strcmp(m->path, "[vsyscall]");
}

/* A mapping of a library-list file becomes a reference when what is in
 * memory is exactly what the node will map from the file: same bytes,
 * and no page past the one holding end of file (that would SIGBUS). */
static int try_reference(const struct map_entry *m, const void *mem,
                         struct image_region *r)
{
    uint64_t len = m->end - m->start;
    struct stat st;
    void *file = NULL;
    int fd, same = 0;

    if ((fd = open(m->path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        m->offset + len <= ((uint64_t)st.st_size + IMAGE_PAGE_SIZE - 1) /
                           IMAGE_PAGE_SIZE * IMAGE_PAGE_SIZE &&
        (file = calloc(1, len)) && pread(fd, file, len, m->offset) >= 0)
        same = !memcmp(file, mem, len);
    free(file);
    close(fd);
    if (!same)
        return 0;
    r->kind = REGION_FILE;
    r->file_offset = m->offset;
    r->file_size = st.st_size;
    r->file_hash = image_hash(mem, len);
    return 1;
}

#define HUGE_PAGE (2UL << 20)

/* Memory for a region's copy, which the writer frees.  A large one is
 * 2 MiB aligned with huge pages asked for: the copy into it then takes a
 * few page faults, not one per 4 KiB (the dump of the 4.9 MB big4m spent
 * more time faulting its 4 MB region's buffer in than copying). */
static void *region_buffer(size_t len)
{
    void *mem;

    if (len < HUGE_PAGE)
        return malloc(len);
    if (posix_memalign(&mem, HUGE_PAGE, len))
        return NULL;
    madvise(mem, len & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
    return mem;
}

static int add_mapping(struct dump *d, const struct map_entry *m)
{
    struct image_region r = { .start = m->start, .end = m->end, .prot = m->prot };
    uint64_t len = m->end - m->start;
    long name = imgw_string(d->w, m->path);
    void *mem = NULL;

    if (name < 0)
        return errprintf(d->err, d->errlen, "out of memory");
    r.name = name;
    if (!m->prot) {
        r.kind = REGION_NONE;
        return imgw_add_region(d->w, &r, NULL);
    }
    if (!(mem = region_buffer(len)))
        return errprintf(d->err, d->errlen, "out of memory (%llu bytes)",
                         (unsigned long long)len);
    if (read_memory(d, m->start, mem, len) < 0)
        goto error;
    r.kind = REGION_DATA;
    if (!strcmp(m->path, "[stack]"))
        r.flags = REGION_F_STACK;
    else if (m->path[0] == '/' && !m->shared && !is_program(d, m) &&
             on_library_list(d, m) && try_reference(m, mem, &r)) {
        free(mem);
        mem = NULL;
    }
    if (imgw_add_region(d->w, &r, mem) < 0) {
        errprintf(d->err, d->errlen, "out of memory");
        goto error;
    }
    return 0;
error:
    free(mem);
    return -1;
}

static int add_mappings(struct dump *d)
{
    struct map_entry *maps;
    int n, rc = 0;

    if ((n = maps_read(d->pid, &maps)) < 0)
        return errprintf(d->err, d->errlen, "/proc/%d/maps: %s", (int)d->pid,
                         strerror(errno));
    for (int i = 0; i < n && rc == 0; i++)
        if (!is_kernel_special(&maps[i]))
            rc = add_mapping(d, &maps[i]);
    free(maps);
    return rc;
}

/* Find auxv in the stack: argc, argv[], NULL, envp[], NULL, auxv pairs. */
static int add_auxv(struct dump *d, uint64_t sp)
{
    struct image_auxv aux[IMAGE_MAX_AUXV];
    uint64_t word = 1, addr = sp + 8;
    int nulls = 0, n;

    while (nulls < 2) {
        if (read_memory(d, addr, &word, 8) < 0)
            return -1;
        addr += 8;
        nulls += word == 0;
    }
    for (n = 0; n < IMAGE_MAX_AUXV; n++) {
        if (read_memory(d, addr + 16 * n, &aux[n], sizeof(aux[n])) < 0)
            return -1;
        if (aux[n].type == 0)
            break;
    }
    if (n == IMAGE_MAX_AUXV)
        return errprintf(d->err, d->errlen, "auxv: no AT_NULL");
    if (imgw_set_auxv(d->w, aux, n + 1, addr) < 0)
        return errprintf(d->err, d->errlen, "out of memory");
    return 0;
}

static int add_names(struct dump *d)
{
    const char *const *vars = d->opts->rank_vars ? d->opts->rank_vars
                                                 : default_rank_vars;
    char abs[PATH_MAX];
    long exe, first = -1, off;
    uint32_t n = 0;

    /* Absolute, so the restored /proc/self/exe does not depend on the
     * directory the node restores in. */
    exe = imgw_string(d->w, realpath(d->path, abs) ? abs : d->path);

    for (; *vars; vars++, n++) {
        if ((off = imgw_string(d->w, *vars)) < 0)
            break;
        if (first < 0)
            first = off;
    }
    if (exe < 0 || *vars)
        return errprintf(d->err, d->errlen, "out of memory");
    imgw_set_exe(d->w, exe, d->st.st_size);
    imgw_set_rankvars(d->w, first < 0 ? 0 : first, n);
    return 0;
}

static int dump_stopped(struct dump *d)
{
    struct image_cpu cpu;
    struct image_mm mm;
    char name[64];

    snprintf(name, sizeof(name), "/proc/%d/mem", (int)d->pid);
    if ((d->memfd = open(name, O_RDONLY | O_CLOEXEC)) < 0)
        return errprintf(d->err, d->errlen, "%s: %s", name, strerror(errno));
    if (read_cpu(d, &cpu) < 0 || read_mm(d, &mm) < 0)
        return -1;
    imgw_set_process(d->w, &cpu, &mm);
    if (add_auxv(d, cpu.regs[IREG_RSP]) < 0 || add_names(d) < 0)
        return -1;
    return add_mappings(d);
}

int vmad_dump(const char *prog, char *const argv[], char *const envp[],
              const struct vmad_dump_opts *opts, vmad_writer_fn writer,
              void *arg, char *err, size_t errlen)
{
    static const struct vmad_dump_opts defaults;
    struct dump d = { .opts = opts ? opts : &defaults, .pid = -1, .memfd = -1,
                      .err = err, .errlen = errlen };
    int rc = -1, saved;

    if (resolve_program(&d, prog) < 0 || check_program(&d) < 0)
        return -1;
    if (!(d.w = imgw_create()))
        return errprintf(err, errlen, "out of memory");
    if (start_stopped(&d, argv, envp) == 0 && dump_stopped(&d) == 0)
        rc = 0;
    saved = errno;
    if (d.memfd >= 0)
        close(d.memfd);
    if (d.pid > 0) {
        kill(d.pid, SIGKILL);
        while (waitpid(d.pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (rc == 0)
        rc = imgw_emit(d.w, d.opts->restorer ? d.opts->restorer
                                             : vmad_restorer_path(),
                       writer, arg, err, errlen);
    else
        errno = saved;
    imgw_destroy(d.w);
    return rc;
}

struct membuf {
    char *data;
    size_t len, cap;
};

static int membuf_write(void *arg, const void *data, size_t len)
{
    struct membuf *b = arg;
    char *nd;

    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 20;

        while (cap < b->len + len)
            cap *= 2;
        if (!(nd = realloc(b->data, cap)))
            return -1;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int fd_writer(void *arg, const void *data, size_t len)
{
    return write_all(*(int *)arg, data, len);
}

int vmad_dump_to_fd(const char *prog, char *const argv[], char *const envp[],
                    const struct vmad_dump_opts *opts, int fd, char *err,
                    size_t errlen)
{
    return vmad_dump(prog, argv, envp, opts, fd_writer, &fd, err, errlen);
}

int vmad_dump_to_buffer(const char *prog, char *const argv[], char *const envp[],
                        const struct vmad_dump_opts *opts, void **buf,
                        size_t *len, char *err, size_t errlen)
{
    struct membuf b = { 0 };

    if (vmad_dump(prog, argv, envp, opts, membuf_write, &b, err, errlen) < 0) {
        free(b.data);
        return -1;
    }
    *buf = b.data;
    *len = b.len;
    return 0;
}
