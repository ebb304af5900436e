# fanout/module.mk - the tree: topologies (and later broadcast, gather and
# transport), built as libfanout.a.  fanout knows nothing of vmadump or pmi.

FANOUT_OBJS := $(B)/fanout/topo.o

LIBS += $(B)/libfanout.a
UNIT_TESTS += $(B)/fanout/test/test_topo

$(B)/libfanout.a: $(FANOUT_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/fanout/test/test_topo: $(B)/fanout/test/test_topo.o $(B)/libfanout.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
