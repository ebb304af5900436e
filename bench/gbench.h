/* gbench.h - a small C interface to Google Benchmark.
 *
 * Google Benchmark is C++; our code is C.  The shim (gbench_shim.cc) lets a
 * C file register benchmarks and drive the timing loop through an opaque
 * state handle, so every vexec benchmark (vmadump, launch, PMI fence, tree
 * forwarding) shares one harness, one option set and one JSON format.
 *
 * A benchmark function looks like this:
 *
 *     static void bm_thing(struct gbench_state *st, void *arg)
 *     {
 *         while (gbench_keep_running(st)) {
 *             if (do_thing(arg) < 0) {
 *                 gbench_error(st, "do_thing: %s", strerror(errno));
 *                 return;
 *             }
 *         }
 *     }
 *
 * A benchmark that reports an error is marked as failed in the results,
 * none of its iterations are reported as times, and gbench_main() returns
 * 1 once all benchmarks have run: "failed" stays distinct from "not run".
 */
#ifndef GBENCH_H
#define GBENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gbench_state;

typedef void (*gbench_fn)(struct gbench_state *st, void *arg);

enum gbench_unit {
    GBENCH_UNIT_DEFAULT = 0,      /* Google Benchmark's default: ns */
    GBENCH_NS,
    GBENCH_US,
    GBENCH_MS,
    GBENCH_S,
};

/* Per-benchmark options; zero (or a NULL pointer) keeps the default. */
struct gbench_opts {
    enum gbench_unit unit;
    int manual_time;        /* times come from gbench_set_iteration_time() */
    int real_time;          /* wall clock decides iterations, not CPU time */
    int repetitions;        /* > 0 overrides --benchmark_repetitions */
    double min_time;        /* > 0: seconds per repetition, overrides flag */
    int64_t iterations;     /* > 0: exactly this many, instead of min_time */
};

/* Register fn(st, arg) under name (copied).  Call before gbench_main().
 * Returns 0, or -1 with errno EINVAL if the options contradict each other
 * (iterations with min_time, manual_time with real_time). */
int gbench_register(const char *name, gbench_fn fn, void *arg,
                    const struct gbench_opts *opts);

/* Parse the Google Benchmark flags (--benchmark_*), run every registered
 * benchmark that matches --benchmark_filter, and shut down.  defaults is a
 * NULL-terminated list of flags (or NULL) placed before argv[1..], so the
 * command line overrides them.  Returns the exit status: 0 if every
 * benchmark ran, 1 if one reported an error or an argument is unknown. */
int gbench_main(int argc, char **argv, const char *const *defaults);

/* Loop condition: returns nonzero while another iteration is wanted. */
int gbench_keep_running(struct gbench_state *st);

/* Exclude setup or teardown inside the loop from automatic timing. */
void gbench_pause_timing(struct gbench_state *st);
void gbench_resume_timing(struct gbench_state *st);

/* With manual_time: the duration of the iteration that just ran. */
void gbench_set_iteration_time(struct gbench_state *st, double seconds);

/* Mark the benchmark failed with a printf-style message; the loop ends at
 * the next gbench_keep_running(), and the function may simply return. */
void gbench_error(struct gbench_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns nonzero once gbench_error() has been called on st. */
int gbench_error_occurred(const struct gbench_state *st);

/* User counters, reported in the console and JSON next to the times. */
enum gbench_counter_kind {
    GBENCH_COUNTER_PLAIN = 0,     /* the value as given */
    GBENCH_COUNTER_RATE,          /* value divided by the elapsed time */
    GBENCH_COUNTER_AVG,           /* value divided by the iteration count */
};
void gbench_counter(struct gbench_state *st, const char *name, double value,
                    enum gbench_counter_kind kind);

/* Free text reported with the benchmark's results. */
void gbench_set_label(struct gbench_state *st, const char *label);

/* Total bytes handled by all iterations; reported as bytes per second. */
void gbench_set_bytes_processed(struct gbench_state *st, int64_t bytes);

/* Iterations run so far in this repetition. */
int64_t gbench_iterations(const struct gbench_state *st);

#ifdef __cplusplus
}
#endif

#endif
