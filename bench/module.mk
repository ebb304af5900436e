# bench/module.mk - benchmark binaries and gbench_shim.o, the C interface to
# Google Benchmark that they all link.  Built by `make bench` only: they
# are listed in BENCHES, not in `all`.  The Google Benchmark ones link with
# $(CXX) because it is a C++ library; vexec-bench-spawn, the posix_spawn
# baseline of scripts/run-launch-bench, and vexec-bench-ring, the cost of
# a wake-up among many processes, are plain C.

GBENCH_OBJ  := $(B)/bench/gbench_shim.o
GBENCH_LIBS := -lbenchmark -lpthread

BENCHES += $(BIN)/vexec-bench-vmadump

$(BIN)/vexec-bench-vmadump: $(B)/bench/vmad_bench.o $(GBENCH_OBJ) $(B)/libvmad.a
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(GBENCH_LIBS) $(LDLIBS)

BENCHES += $(BIN)/vexec-bench-spawn

$(BIN)/vexec-bench-spawn: $(B)/bench/spawn_many.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BENCHES += $(BIN)/vexec-bench-ring

$(BIN)/vexec-bench-ring: $(B)/bench/switch_ring.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
