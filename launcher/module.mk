# launcher/module.mk - the launcher: hostlist parsing, the wire protocol,
# the cluster record, the node daemon and the front end, built into
# liblauncher.a; the binaries vexec, vexecd and vexec-cluster; unit tests
# and libFuzzer targets.

LAUNCHER_OBJS := $(B)/launcher/hostlist.o $(B)/launcher/proto.o \
	$(B)/launcher/cluster.o $(B)/launcher/daemon.o $(B)/launcher/frontend.o \
	$(B)/launcher/gateway.o $(B)/launcher/hosts.o \
	$(B)/launcher/gwspawn.o $(B)/launcher/auth.o \
	$(B)/launcher/nodestat.o $(B)/launcher/nodequery.o \
	$(B)/launcher/nodes.o $(B)/launcher/cli.o \
	$(B)/launcher/rank.o $(B)/launcher/image_in.o $(B)/launcher/adopt.o \
	$(B)/launcher/daemon_wait.o $(B)/launcher/fe_image.o \
	$(B)/launcher/sweep.o

# Credentials (auth.c) use libsodium's HMAC-SHA256 and random bytes.
LAUNCHER_LDLIBS := -lsodium

LIBS += $(B)/liblauncher.a
UNIT_TESTS += $(B)/launcher/test/test_hostlist
FUZZERS += $(B)/fuzz/fuzz_hostlist
BINS += $(BIN)/vexec $(BIN)/vexecd $(BIN)/vexec-cluster $(BIN)/vexec-gateway

# Everything a launcher binary links, in dependency order.
LAUNCHER_LINK := $(B)/liblauncher.a $(B)/libfanout.a $(B)/libvmad.a \
	$(B)/libcommon.a

$(B)/liblauncher.a: $(LAUNCHER_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

# vexec does not link libfabric: loading Debian's costs ~0.3 s per run
# (launcher/gateway.h).  A link error here means it started to.
$(BIN)/vexec: $(B)/launcher/vexec.o $(LAUNCHER_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LAUNCHER_LDLIBS)

$(BIN)/vexecd: $(B)/launcher/vexecd.o $(LAUNCHER_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS) $(LAUNCHER_LDLIBS)

$(BIN)/vexec-gateway: $(B)/launcher/vexec_gateway.o $(LAUNCHER_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS) $(LAUNCHER_LDLIBS)

$(BIN)/vexec-cluster: $(B)/launcher/vexec_cluster.o $(LAUNCHER_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS) $(LAUNCHER_LDLIBS)

$(B)/launcher/test/test_hostlist: $(B)/launcher/test/test_hostlist.o \
		$(B)/liblauncher.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

UNIT_TESTS += $(B)/launcher/test/test_proto

$(B)/launcher/test/test_proto: $(B)/launcher/test/test_proto.o \
		$(B)/liblauncher.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# gcc has no libFuzzer, so fuzz targets are built by clang from source, with
# their own sanitizers whatever SANITIZE says.
FUZZ_CC ?= clang
FUZZ_FLAGS ?= -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=all

$(B)/fuzz/fuzz_hostlist: launcher/fuzz/fuzz_hostlist.c launcher/hostlist.c \
		launcher/hostlist.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -D_GNU_SOURCE -I. $(FUZZ_FLAGS) $(WARN) -o $@ \
		launcher/fuzz/fuzz_hostlist.c launcher/hostlist.c

FUZZERS += $(B)/fuzz/fuzz_proto

$(B)/fuzz/fuzz_proto: launcher/fuzz/fuzz_proto.c launcher/proto.c \
		launcher/proto.h launcher/hostlist.c fanout/topo.c common/err.c \
		launcher/nodestat.c launcher/nodestat.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -D_GNU_SOURCE -I. $(FUZZ_FLAGS) $(WARN) -o $@ \
		launcher/fuzz/fuzz_proto.c launcher/proto.c launcher/hostlist.c \
		launcher/nodestat.c fanout/topo.c common/err.c -lm

UNIT_TESTS += $(B)/launcher/test/test_auth

$(B)/launcher/test/test_auth: $(B)/launcher/test/test_auth.o \
		$(B)/liblauncher.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LAUNCHER_LDLIBS)

# A rogue or replaying tree root for tests/vexec-auth.t.
all: $(B)/launcher/test/vexec_inject

$(B)/launcher/test/vexec_inject: $(B)/launcher/test/vexec_inject.o \
		$(LAUNCHER_LINK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS) $(LAUNCHER_LDLIBS)

# Runs a command as on a kernel without epoll_pwait2 (tests/vexec-cluster.t).
all: $(B)/launcher/test/no_pwait2

$(B)/launcher/test/no_pwait2: $(B)/launcher/test/no_pwait2.o
	$(CC) $(LDFLAGS) -o $@ $^

FUZZERS += $(B)/fuzz/fuzz_auth

$(B)/fuzz/fuzz_auth: launcher/fuzz/fuzz_auth.c launcher/auth.c launcher/auth.h \
		launcher/proto.c launcher/proto.h common/err.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -D_GNU_SOURCE -I. $(FUZZ_FLAGS) $(WARN) -o $@ \
		launcher/fuzz/fuzz_auth.c launcher/auth.c launcher/proto.c \
		common/err.c -lsodium

UNIT_TESTS += $(B)/launcher/test/test_nodestat

$(B)/launcher/test/test_nodestat: $(B)/launcher/test/test_nodestat.o \
		$(B)/liblauncher.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
