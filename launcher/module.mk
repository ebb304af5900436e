# launcher/module.mk - the launcher's pieces; so far hostlist parsing, built
# into liblauncher.a, with its unit test and its libFuzzer target.

LAUNCHER_OBJS := $(B)/launcher/hostlist.o

LIBS += $(B)/liblauncher.a
UNIT_TESTS += $(B)/launcher/test/test_hostlist
FUZZERS += $(B)/fuzz/fuzz_hostlist

$(B)/liblauncher.a: $(LAUNCHER_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/launcher/test/test_hostlist: $(B)/launcher/test/test_hostlist.o \
		$(B)/liblauncher.a
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
