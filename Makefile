# vexec top-level Makefile.
#
# Every module brings a fragment, <module>/module.mk, that appends to the
# variables below; this file holds the flags and the generic rules only.
# Outputs go under $(B): build/ normally, build/san/ with SANITIZE=1, so a
# sanitizer run never leaves instrumented objects behind for a plain build.

CC      ?= gcc
CXX     ?= g++
WARN    := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Werror
OPT     ?= -O2 -g
CPPFLAGS := -D_GNU_SOURCE -I. -MMD -MP
CFLAGS  := -std=gnu11 $(OPT) $(WARN)
CXXFLAGS := -std=c++17 $(OPT) -Wall -Wextra -Werror
# -z now: every PLT slot is bound at start-up.  vmad_spawn_image's child
# calls libc without the dynamic loader's data (leanfork.c), so a lazy
# binding there would fault; eager binding also spares each forked rank
# the loader's lookups.
LDFLAGS := -Wl,-z,now
LDLIBS  :=

ifeq ($(SANITIZE),1)
B       := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS  += $(SANFLAGS)
CXXFLAGS += $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
else
B       := build
endif

BIN     := $(B)/bin
# Filled in by the module fragments.
LIBS    :=
BINS    :=
UNIT_TESTS :=
FUZZERS :=
BENCHES :=

.PHONY: all test bench demo fuzz clean deps
all:

include $(sort $(wildcard */module.mk */*/module.mk))

all: $(LIBS) $(BINS) $(UNIT_TESTS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

deps:
	@scripts/install-deps

# prove runs the unit tests (TAP programs) and the integration tests (TAP
# scripts) together and ends with its summary.  VEXEC_BUILD tells the
# scripts which build to exercise.
test: deps
	$(MAKE) all
	VEXEC_BUILD=$(abspath $(B)) prove $(PROVE_FLAGS) $(UNIT_TESTS) $(sort $(wildcard tests/*.t))

demo: deps
	$(MAKE) all
	scripts/demo $(B)

bench: deps
	$(MAKE) all $(BENCHES)
	scripts/run-bench $(abspath $(B))
	scripts/run-launch-bench $(abspath $(B))

fuzz: $(FUZZERS)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
