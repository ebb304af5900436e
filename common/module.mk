# common: helpers shared by fanout, launcher and pmi, built as libcommon.a.

LIBCOMMON := $(B)/libcommon.a
LIBS += $(LIBCOMMON)

$(LIBCOMMON): $(B)/common/err.o
	$(AR) rcs $@ $^
