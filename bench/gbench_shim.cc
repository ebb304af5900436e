/* gbench_shim.cc - the C API of gbench.h on top of Google Benchmark.
 *
 * A struct gbench_state * is a benchmark::State * under another name; the
 * C side never looks inside it.  Registration wraps the C function pointer
 * and its argument in a lambda.  Errors are counted here as well as inside
 * Google Benchmark, whose exit status does not reflect them, so that
 * gbench_main() can fail the run.
 */
#include "bench/gbench.h"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <vector>

namespace {

std::atomic<int> errors_reported{0};

benchmark::State *state_of(struct gbench_state *st)
{
    return reinterpret_cast<benchmark::State *>(st);
}

const benchmark::State *state_of(const struct gbench_state *st)
{
    return reinterpret_cast<const benchmark::State *>(st);
}

bool opts_valid(const struct gbench_opts *o)
{
    if (o->unit < GBENCH_UNIT_DEFAULT || o->unit > GBENCH_S)
        return false;
    if (o->repetitions < 0 || o->min_time < 0 || o->iterations < 0)
        return false;
    if (o->iterations > 0 && o->min_time > 0)
        return false;
    return !(o->manual_time && o->real_time);
}

benchmark::TimeUnit time_unit(enum gbench_unit u)
{
    switch (u) {
    case GBENCH_US: return benchmark::kMicrosecond;
    case GBENCH_MS: return benchmark::kMillisecond;
    case GBENCH_S: return benchmark::kSecond;
    default: return benchmark::kNanosecond;
    }
}

void apply_opts(benchmark::internal::Benchmark *b, const struct gbench_opts *o)
{
    if (o->unit != GBENCH_UNIT_DEFAULT)
        b->Unit(time_unit(o->unit));
    if (o->manual_time)
        b->UseManualTime();
    if (o->real_time)
        b->UseRealTime();
    if (o->repetitions > 0)
        b->Repetitions(o->repetitions);
    if (o->min_time > 0)
        b->MinTime(o->min_time);
    if (o->iterations > 0)
        b->Iterations(o->iterations);
}

} // namespace

extern "C" int gbench_register(const char *name, gbench_fn fn, void *arg,
                               const struct gbench_opts *opts)
{
    const struct gbench_opts none = {};

    if (!opts)
        opts = &none;
    if (!name || !fn || !opts_valid(opts)) {
        errno = EINVAL;
        return -1;
    }
    auto run = [fn, arg](benchmark::State &st) {
        fn(reinterpret_cast<struct gbench_state *>(&st), arg);
    };
    apply_opts(benchmark::RegisterBenchmark(name, run), opts);
    return 0;
}

extern "C" int gbench_main(int argc, char **argv, const char *const *defaults)
{
    std::vector<char *> args{argv[0]};

    for (const char *const *d = defaults; d && *d; d++)
        args.push_back(const_cast<char *>(*d));
    args.insert(args.end(), argv + 1, argv + argc);
    args.push_back(nullptr);

    int n = static_cast<int>(args.size()) - 1;
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data()))
        return 1;
    size_t ran = benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return ran == 0 || errors_reported.load() > 0 ? 1 : 0;
}

extern "C" int gbench_keep_running(struct gbench_state *st)
{
    return state_of(st)->KeepRunning();
}

extern "C" void gbench_pause_timing(struct gbench_state *st)
{
    state_of(st)->PauseTiming();
}

extern "C" void gbench_resume_timing(struct gbench_state *st)
{
    state_of(st)->ResumeTiming();
}

extern "C" void gbench_set_iteration_time(struct gbench_state *st,
                                          double seconds)
{
    state_of(st)->SetIterationTime(seconds);
}

extern "C" void gbench_error(struct gbench_state *st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    errors_reported++;
    state_of(st)->SkipWithError(msg);
}

extern "C" int gbench_error_occurred(const struct gbench_state *st)
{
    return state_of(st)->error_occurred();
}

extern "C" void gbench_counter(struct gbench_state *st, const char *name,
                               double value, enum gbench_counter_kind kind)
{
    benchmark::Counter::Flags flags = benchmark::Counter::kDefaults;

    if (kind == GBENCH_COUNTER_RATE)
        flags = benchmark::Counter::kIsRate;
    else if (kind == GBENCH_COUNTER_AVG)
        flags = benchmark::Counter::kAvgIterations;
    state_of(st)->counters[name] = benchmark::Counter(value, flags);
}

extern "C" void gbench_set_label(struct gbench_state *st, const char *label)
{
    state_of(st)->SetLabel(label);
}

extern "C" void gbench_set_bytes_processed(struct gbench_state *st,
                                           int64_t bytes)
{
    state_of(st)->SetBytesProcessed(bytes);
}

extern "C" int64_t gbench_iterations(const struct gbench_state *st)
{
    return state_of(st)->iterations();
}
