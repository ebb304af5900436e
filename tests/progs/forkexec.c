/* forkexec.c - a restored program starts other programs.
 *
 * fork + execvp of /bin/echo (output through a pipe, read back and
 * compared), sh -c with a chosen exit status, and a plain fork whose child
 * exits with a status computed from memory it inherited.  A restored
 * process whose mm is inconsistent tends to break on fork or exec.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "forkexec: %s\n", what);
    return 1;
}

/* Run argv with stdout into a pipe; the output goes to out, and the exit
 * status is returned (-1 on failure to run). */
static int run_capture(char *const argv[], char *out, size_t size)
{
    int fds[2], status;
    size_t len = 0;
    ssize_t n;

    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    while (len + 1 < size && (n = read(fds[0], out + len, size - 1 - len)) > 0)
        len += n;
    out[len] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int check_fork_memory(void)
{
    static int inherited[256];
    int status;

    for (int i = 0; i < 256; i++)
        inherited[i] = i;
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork failed");
    if (pid == 0) {
        int sum = 0;
        for (int i = 0; i < 256; i++)
            sum += inherited[i];
        _exit(sum % 251);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != (255 * 256 / 2) % 251)
        return fail("forked child saw the wrong memory");
    return 0;
}

int main(void)
{
    char out[256];
    char *echo[] = { "/bin/echo", "spawned", "echo", NULL };
    char *sh[] = { "sh", "-c", "printf '%s' \"$0\"; exit 7", "from-sh", NULL };

    if (run_capture(echo, out, sizeof out) != 0 || strcmp(out, "spawned echo\n"))
        return fail("echo did not run");
    if (run_capture(sh, out, sizeof out) != 7 || strcmp(out, "from-sh"))
        return fail("sh -c did not exit 7");
    if (check_fork_memory())
        return 1;
    puts("forkexec ok");
    return 0;
}
