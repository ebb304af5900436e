# bench/module.mk - benchmark binaries and gbench_shim.o, the C interface to
# Google Benchmark that they all link.  Built by `make bench` only: they
# are listed in BENCHES, not in `all`.  They link with $(CXX) because
# Google Benchmark is a C++ library.

GBENCH_OBJ  := $(B)/bench/gbench_shim.o
GBENCH_LIBS := -lbenchmark -lpthread

BENCHES += $(BIN)/vexec-bench-vmadump

$(BIN)/vexec-bench-vmadump: $(B)/bench/vmad_bench.o $(GBENCH_OBJ) $(B)/libvmad.a
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(GBENCH_LIBS) $(LDLIBS)
