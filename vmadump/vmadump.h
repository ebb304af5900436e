/* vmadump.h - VMADump-style process images: dump a program at its exec
 * point, restore it into a fresh process anywhere.
 *
 * The image format is specified in docs/image-format.md.  Dumping runs the
 * program under ptrace up to its first instruction, reads it and kills it:
 * the program never runs on the dumping host.  Restoring execs the small
 * static restorer (vmad-restore), which maps the image and jumps into it.
 *
 * Errors follow one convention: -1 with errno set, and a one-line message in
 * the caller's err buffer (may be NULL) naming the cause.
 */
#ifndef VMADUMP_H
#define VMADUMP_H

#include <stddef.h>
#include <spawn.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmadump/hash.h"

/* Receives the image in order, in pieces; returns 0, or -1 to abort. */
typedef int (*vmad_writer_fn)(void *arg, const void *data, size_t len);

struct vmad_dump_opts {
    /* Library list.  By default the dynamic loader and files under the
     * system library directories are sent as references. */
    int all_data;                 /* send every region as data */
    int no_default_libs;          /* drop the default library directories */
    const char *const *lib_dirs;  /* extra directories, NULL-terminated */
    const char *const *lib_files; /* extra single files, NULL-terminated */
    /* Environment variables whose all-X value becomes the rank on restore;
     * NULL means the default list, { "BPROC_RANK", NULL }. */
    const char *const *rank_vars;
    /* Restorer named on the image's #! line; NULL: vmad_restorer_path(). */
    const char *restorer;
};

/* Dump PROG (looked up in PATH like execvp) run with argv and envp into the
 * writer.  Returns 0 or -1. */
int vmad_dump(const char *prog, char *const argv[], char *const envp[],
              const struct vmad_dump_opts *opts,
              vmad_writer_fn writer, void *arg, char *err, size_t errlen);

/* Same, written to fd (all of it, retrying short writes). */
int vmad_dump_to_fd(const char *prog, char *const argv[], char *const envp[],
                    const struct vmad_dump_opts *opts, int fd, char *err,
                    size_t errlen);

/* Same, into a malloc'd buffer that the caller frees. */
int vmad_dump_to_buffer(const char *prog, char *const argv[], char *const envp[],
                        const struct vmad_dump_opts *opts,
                        void **buf, size_t *len, char *err, size_t errlen);

struct vmad_restore_opts {
    long rank;                    /* < 0: leave rank placeholders as they are */
    const int *keep_fds;          /* fds >= 3 to keep open, or NULL */
    size_t nkeep_fds;
    int verified;                 /* the caller has already checked the
                                     checksum of this exact image */
    const char *label;            /* names the image in error messages */
};

/* Replace the calling process with the program in the image read from fd,
 * which must be mmap-able (a regular file or memfd that nobody rewrites).
 * Returns only on failure: -1.  The restored program keeps fds 0-2 and
 * keep_fds; every other fd is closed. */
int vmad_restore_fd(int fd, const struct vmad_restore_opts *opts,
                    char *err, size_t errlen);

/* Start the restored program as a child, the way posix_spawn starts a
 * program (no copy of the caller's address space); actions and attr may
 * be NULL, or set up its stdio, signal mask, process group.  fd loses FD_CLOEXEC in the caller.  Returns 0 with
 * the child's pid in *pid, or -1.  A bad image makes the child exit 127
 * with a one-line message on its stderr. */
int vmad_restore_spawn(int fd, const struct vmad_restore_opts *opts,
                       const posix_spawn_file_actions_t *actions,
                       const posix_spawnattr_t *attr, pid_t *pid,
                       char *err, size_t errlen);

/* Start the restored program as a child from an image in anonymous,
 * private, page-aligned memory that the caller keeps (vmadump/spawn.c):
 * the child gets it copy-on-write and moves its pages into place, so the
 * caller may rewrite buf at once without the child noticing.  The child
 * takes io->fds as its stdin, stdout, stderr (-1: /dev/null), gets default
 * signal handling, an empty signal mask and, with io->new_pgroup, its own
 * process group; it keeps no other fd.  With io->lean, every mapping of
 * the caller that the child does not need is marked MADV_DONTFORK first
 * (fork copies less, the child unmaps less, the caller takes fewer
 * copy-on-write faults), and stays marked: set it only in a process that
 * forks nothing else (the node daemon).  No atfork handler runs: the
 * child is a raw clone that runs on a stack and plan of its own, made
 * once per process, so call it from one thread at a time.  Returns
 * 0 with the child's pid in *pid, or -1.  A bad image makes the child
 * exit 127 with a one-line message on its stderr. */
struct vmad_spawn_io {
    int fds[3];
    int new_pgroup;
    int lean;
    /* A signal the child gets when the calling thread ends (the caller
     * dies), set before the restorer runs (PR_SET_PDEATHSIG); if the
     * caller is gone already, the child sends it to itself at once.
     * 0: none.  It reaches the restored program only, not processes that
     * program starts. */
    int death_sig;
    /* Bytes of the caller's memory right before buf (a page multiple),
     * given to the child with the image: with buf - lead 2 MiB aligned in
     * huge-page memory and lead from vmad_huge_lead(), the restorer moves
     * whole huge pages of the image into place, not 512 page entries
     * each.  The first 2 MiB
     * from buf - lead may be a mapping of its own (small pages: it never
     * holds a whole huge page of the image, which starts with its
     * header). */
    size_t lead;
};
int vmad_spawn_image(void *buf, size_t len, const struct vmad_restore_opts *opts,
                     const struct vmad_spawn_io *io, pid_t *pid,
                     char *err, size_t errlen);

/* Where the image should begin in a 2 MiB-aligned huge-page buffer, for
 * vmad_spawn_image (io->lead): the offset, a page multiple below 2 MiB,
 * at which the data extent spanning the most whole 2 MiB pages of its
 * target lies 2 MiB-congruent with its target address, so that the
 * restorer moves those pages whole (no split into 4 KiB entries, which
 * every rank pays for again at its exit).  0 when no extent spans a whole
 * 2 MiB page, or for an image that does not parse. */
size_t vmad_huge_lead(const void *buf, size_t len);

/* Same as vmad_restore_fd, from an image in memory: copied into a sealed
 * memfd first. */
int vmad_restore_buffer(const void *buf, size_t len,
                        const struct vmad_restore_opts *opts,
                        char *err, size_t errlen);

/* Check an image in memory (header, structure, checksum) without restoring
 * it.  Returns 0 or -1. */
int vmad_check(const void *buf, size_t len, char *err, size_t errlen);

/* The checksum of an image that arrives in order, taken piece by piece
 * soon after it lands, when more of it is in cache than once the whole
 * image is in (a 4.9 MB image hashed after the fact is read back from
 * memory).  vmad_sum_feed(s, buf, upto) hashes
 * buf[s->done..upto), the checksum field counted as zero; then
 * vmad_check_summed checks the structure and that the bytes hashed, all
 * len of them, match the header's checksum (vmad_check's result, without
 * reading the bytes again). */
struct vmad_sum {
    struct image_hash_state h;
    size_t done;                /* bytes hashed */
};

void vmad_sum_init(struct vmad_sum *s);
void vmad_sum_feed(struct vmad_sum *s, const void *buf, size_t upto);
int vmad_check_summed(const void *buf, size_t len, const struct vmad_sum *s,
                      char *err, size_t errlen);

/* The checksum recorded in the header of the image in buf (len bytes), or
 * 0 if buf holds no image header.  vmad_check() proves the bytes match it;
 * a launcher binds it into its signed request so a received image is the
 * one the requester dumped.  It is a 64-bit non-cryptographic hash: it
 * catches damage and mix-ups, not a forger who can compute collisions. */
uint64_t vmad_image_checksum(const void *buf, size_t len);

/* Print the header and regions of an image as text.  Returns 0 or -1. */
int vmad_print_info(const void *buf, size_t len, FILE *out,
                    char *err, size_t errlen);

/* The restorer binary: $VMAD_RESTORER if set, else the one built with us. */
const char *vmad_restorer_path(void);

#endif
