# fanout/module.mk - the tree: topologies, libfabric endpoints (fabric.o)
# and the pipelined broadcast over a topology (bcast.o), built as
# libfanout.a.  fanout knows nothing of vmadump or pmi.  Anything linking
# libfanout.a links $(FANOUT_LDLIBS) too.

FANOUT_OBJS := $(B)/fanout/topo.o $(B)/fanout/bell.o $(B)/fanout/fabric.o \
	$(B)/fanout/fabric_wait.o $(B)/fanout/netaddr.o \
	$(B)/fanout/bcast.o
FANOUT_LDLIBS := -lfabric

LIBS += $(B)/libfanout.a
UNIT_TESTS += $(B)/fanout/test/test_topo

$(B)/libfanout.a: $(FANOUT_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/fanout/test/test_topo: $(B)/fanout/test/test_topo.o $(B)/libfanout.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

UNIT_TESTS += $(B)/fanout/test/test_bcast

$(B)/fanout/test/test_bcast: $(B)/fanout/test/test_bcast.o $(B)/libfanout.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS)

UNIT_TESTS += $(B)/fanout/test/test_fabric_tcp

$(B)/fanout/test/test_fabric_tcp: $(B)/fanout/test/test_fabric_tcp.o $(B)/libfanout.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS)

UNIT_TESTS += $(B)/fanout/test/test_fabric_drop

$(B)/fanout/test/test_fabric_drop: $(B)/fanout/test/test_fabric_drop.o $(B)/libfanout.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS)

UNIT_TESTS += $(B)/fanout/test/test_bcast_resume

$(B)/fanout/test/test_bcast_resume: $(B)/fanout/test/test_bcast_resume.o $(B)/libfanout.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS)

UNIT_TESTS += $(B)/fanout/test/test_fabric_rings

$(B)/fanout/test/test_fabric_rings: $(B)/fanout/test/test_fabric_rings.o $(B)/libfanout.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FANOUT_LDLIBS)
