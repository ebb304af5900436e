# vmadump: libvmad.a, the vmadump CLI, the static restorer, tests, fuzzer.

VMAD_SRCS := vmadump/dump.c vmadump/hash.c vmadump/image.c vmadump/image_write.c \
             vmadump/info.c vmadump/leanfork.c vmadump/maps.c vmadump/restore.c \
             vmadump/spawn.c \
             vmadump/util.c
VMAD_OBJS := $(VMAD_SRCS:%.c=$(B)/%.o)
LIBVMAD   := $(B)/libvmad.a
RESTORER  := $(BIN)/vmad-restore

LIBS += $(LIBVMAD)
BINS += $(BIN)/vmadump $(RESTORER)

# The library execs the restorer built beside it (VMAD_RESTORER overrides).
$(B)/vmadump/restore.o: CPPFLAGS += -DVMAD_RESTORER_PATH='"$(abspath $(RESTORER))"'

$(LIBVMAD): $(VMAD_OBJS)
	$(AR) rcs $@ $^

$(BIN)/vmadump: $(B)/vmadump/vmadump_cli.o $(LIBVMAD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The restorer: static, no libc, never instrumented, linked far from every
# usual mapping.  -fpie -no-pie: non-PIC code cannot address 0x2000_0000_0000
# (R_X86_64_32S truncation); RIP-relative code can.
RESTORER_BASE   := 0x200000000000
RESTORER_CFLAGS := -std=gnu11 -O2 -g $(WARN) -ffreestanding -fno-builtin \
                   -fno-stack-protector -fno-asynchronous-unwind-tables \
                   -fcf-protection=none -fpie -mgeneral-regs-only
RESTORER_SRCS   := vmadump/restorer/restorer.c vmadump/restorer/rlib.c \
                   vmadump/image.c vmadump/hash.c
RESTORER_OBJS   := $(RESTORER_SRCS:%.c=$(B)/rst/%.o) $(B)/rst/vmadump/restorer/start.o

$(B)/rst/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) -MMD -MP $(RESTORER_CFLAGS) -c -o $@ $<

$(B)/rst/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ $<

$(RESTORER): $(RESTORER_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -static -nostdlib -no-pie -Wl,-Ttext-segment=$(RESTORER_BASE) \
	      -Wl,-z,noexecstack -Wl,--build-id=none -o $@ $^ -lgcc

# Unit tests of the parser and the hash.
UNIT_TESTS += $(B)/vmadump/test/test_image
$(B)/vmadump/test/test_image: $(B)/vmadump/test/test_image.o $(LIBVMAD)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# vmad_spawn_image's lean fork, as a daemon uses it.
UNIT_TESTS += $(B)/vmadump/test/test_spawn
$(B)/vmadump/test/test_spawn: $(B)/vmadump/test/test_spawn.o $(LIBVMAD) | $(RESTORER)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer target over the image parser (clang only).
FUZZERS += $(B)/fuzz/fuzz_image
$(B)/fuzz/fuzz_image: vmadump/fuzz/fuzz_image.c vmadump/image.c vmadump/hash.c
	@mkdir -p $(dir $@)
	clang -g -O1 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined -o $@ $^
