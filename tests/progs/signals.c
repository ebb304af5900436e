/* signals.c - signals work in a restored program.
 *
 * A handler installed after restore runs on raise(), on a timer (SIGALRM
 * from setitimer) and on an alternate signal stack; the signal mask the
 * program starts with is empty, as after a plain exec from the test.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count, alarm_count, on_altstack;
static char *altstack;

static void on_usr1(int sig)
{
    int local;

    (void)sig;
    usr1_count++;
    on_altstack = (char *)&local >= altstack &&
                  (char *)&local < altstack + SIGSTKSZ * 4;
}

static void on_alarm(int sig)
{
    (void)sig;
    alarm_count++;
}

static int fail(const char *what)
{
    fprintf(stderr, "signals: %s\n", what);
    return 1;
}

int main(void)
{
    sigset_t mask;
    struct sigaction sa;
    struct itimerval tick = { .it_value = { 0, 10000 } };

    if (sigprocmask(SIG_SETMASK, NULL, &mask) != 0 || !sigisemptyset(&mask))
        return fail("started with signals blocked");
    altstack = malloc(SIGSTKSZ * 4);
    stack_t ss = { .ss_sp = altstack, .ss_size = SIGSTKSZ * 4 };
    if (!altstack || sigaltstack(&ss, NULL) != 0)
        return fail("sigaltstack failed");
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_alarm;
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    raise(SIGUSR1);
    if (usr1_count != 1 || !on_altstack)
        return fail("SIGUSR1 handler did not run on the alternate stack");
    setitimer(ITIMER_REAL, &tick, NULL);
    for (int i = 0; i < 500 && !alarm_count; i++)
        usleep(1000);
    if (alarm_count != 1)
        return fail("SIGALRM did not arrive");
    puts("signals ok");
    return 0;
}
