/* threads.c - threads started after restore.
 *
 * Several threads each sum a disjoint range and keep a thread-local
 * counter; the main thread joins them and checks every sum against the
 * closed form, and that each thread saw its own TLS copy.  A restored
 * process whose TLS, clone or futex state is wrong fails here.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define NTHREADS 4
#define PER_THREAD 1000000ull

static __thread uint64_t tls_counter = 7;

struct work {
    uint64_t first;
    uint64_t sum;
    uint64_t tls_seen;
};

static void *sum_range(void *arg)
{
    struct work *w = arg;

    for (uint64_t i = w->first; i < w->first + PER_THREAD; i++) {
        w->sum += i;
        tls_counter++;
    }
    w->tls_seen = tls_counter;
    return w;
}

int main(void)
{
    pthread_t tid[NTHREADS];
    struct work work[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        work[i] = (struct work){ .first = i * PER_THREAD };
        if (pthread_create(&tid[i], NULL, sum_range, &work[i]) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        if (pthread_join(tid[i], &ret) != 0 || ret != &work[i]) {
            fprintf(stderr, "threads: join %d failed\n", i);
            return 1;
        }
        if (work[i].tls_seen != 7 + PER_THREAD) {
            fprintf(stderr, "threads: thread %d shared TLS\n", i);
            return 1;
        }
        total += work[i].sum;
    }
    uint64_t n = NTHREADS * PER_THREAD;
    if (total != n * (n - 1) / 2 || tls_counter != 7) {
        fprintf(stderr, "threads: wrong sum %llu\n", (unsigned long long)total);
        return 1;
    }
    printf("threads ok: %d threads, sum %llu\n", NTHREADS,
           (unsigned long long)total);
    return 0;
}
