# tests/progs: small real programs that the integration tests dump, restore
# and let check their own state (CRIU's ZDTM way).
#
# They are built without the sanitizer: an instrumented program is not what
# a user dumps, and ASan's shadow mappings would dominate every image.  So
# the flags are spelled here instead of taken from $(CFLAGS).

PROGS_DIR   := $(B)/tests/progs
PROGS_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE $(WARN)

# Link variants: every kind of executable the kernel and ld.so know.
PROGS_static     := -fno-pie -static
PROGS_static-pie := -fPIE -static-pie
PROGS_nopie      := -fno-pie -no-pie
PROGS_pie        := -fPIE -pie
# No libc, position-independent code at a fixed address: the only way to
# link a static program as high as 0x200000000000 (see far.c).
PROGS_nolibc     := -fpie -no-pie -static -nostdlib

TEST_PROGS :=

# $(call test_prog,SOURCE,VARIANT[,EXTRA LINK FLAGS]) builds
# $(PROGS_DIR)/SOURCE-VARIANT from tests/progs/SOURCE.c.
define test_prog
TEST_PROGS += $(PROGS_DIR)/$(1)-$(2)
$(PROGS_DIR)/$(1)-$(2): tests/progs/$(1).c tests/progs/module.mk
	@mkdir -p $$(dir $$@)
	$$(CC) $$(PROGS_CFLAGS) $$(PROGS_$(2)) -o $$@ $$< $(3)
endef

$(foreach v,static static-pie nopie pie,$(eval $(call test_prog,hello,$(v))))
$(foreach v,static static-pie nopie pie,$(eval $(call test_prog,auxv,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,heap,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,threads,$(v),-pthread)))
$(foreach v,static pie,$(eval $(call test_prog,vdso,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,cmdline,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,forkexec,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,catlike,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,stack,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,signals,$(v))))
$(foreach v,static pie,$(eval $(call test_prog,protprobe,$(v))))
$(eval $(call test_prog,rankenv,pie))
# The benchmark program: static, and about 4 MB of it is .data.
$(eval $(call test_prog,big4m,static))
# The failover tests' program: a 64 MB image takes long enough to stream
# to many nodes that one can be killed while it does.
$(eval $(call test_prog,big64m,static))
# Reports how much of its 6 MiB of .data is mapped by 2 MiB pages.
$(eval $(call test_prog,hugedata,static))
# Linked over the restorer's own address range.
FAR_LDFLAGS := -Wl,-Ttext-segment=0x200000000000
$(eval $(call test_prog,far,nolibc,$(FAR_LDFLAGS)))

all: $(TEST_PROGS)
