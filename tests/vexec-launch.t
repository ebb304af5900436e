#!/usr/bin/perl
# vexec-launch.t - one launch reaches every rank exactly once: on a cluster
# of 255 nodes, for several sizes and every tree shape, each rank 0..N-1
# runs once with its own BPROC_RANK (zero-padded to 7 digits) and
# VEXEC_SIZE=N, and vexec exits 0; the 4 MB static program runs on all 255
# nodes; -w places rank i on the i-th node of the list.
#
# Matrix: N in 1, 2, 3, 64, 255 with each of chain, kary:2, kary:8,
# binomial and flat (25 launches), plus greedy and auto at 64 and 255.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempfile);
use VexecTest qw(prog bin run slurp dump_image one_line_error);
use VexecCluster qw(need_vexec cluster_up vexec daemon_pids describe lines);

need_vexec();

my $NODES = 255;
cluster_up($NODES);
my %pid_of = daemon_pids();
is(scalar keys %pid_of, $NODES, "the cluster lists $NODES daemons");

my $rank_line = 'echo "$BPROC_RANK $VEXEC_SIZE"';

# check_ranks($name, $r, $n): exit 0 and exactly the lines "RANK N" for
# the ranks 0..N-1, each once.
sub check_ranks {
    my ($name, $r, $n) = @_;
    my %want = map { sprintf("%07d %d", $_, $n) => 1 } 0 .. $n - 1;
    my (%seen, @extra, @dup);
    for my $l (lines($r->{out})) {
        if (!$want{$l}) { push @extra, $l }
        elsif ($seen{$l}++) { push @dup, $l }
    }
    my @missing = grep { !$seen{$_} } sort keys %want;
    my $ok = ok($r->{status} == 0 && !$r->{signal} && !@extra && !@dup
                && !@missing, $name);
    unless ($ok) {
        diag(describe($r));
        diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]") if @missing;
        diag("unexpected: @extra[0 .. ($#extra < 9 ? $#extra : 9)]") if @extra;
        diag("twice: @dup[0 .. ($#dup < 9 ? $#dup : 9)]") if @dup;
    }
    return $ok;
}

for my $n (1, 2, 3, 64, 255) {
    for my $shape (qw(chain kary:2 kary:8 binomial flat)) {
        my $r = vexec(['-n', $n, '--tree', $shape, '/bin/dash', '-c', $rank_line]);
        check_ranks("-n $n --tree $shape: ranks 0..$n-1 once each, size $n", $r, $n);
    }
}
for my $n (64, 255) {
    for my $shape (qw(greedy auto)) {
        my $r = vexec(['-n', $n, '--tree', $shape, '/bin/dash', '-c', $rank_line]);
        check_ranks("-n $n --tree $shape", $r, $n);
    }
}

# Without -n: every node of the cluster.
check_ranks('no -n: one rank per cluster node',
            vexec(['/bin/dash', '-c', $rank_line]), $NODES);

# A compiled program, with -l: the prefix is the rank each line came from.
my $r = vexec(['-l', '-n', 64, '--tree', 'kary:8', prog('rankenv-pie'),
               'BPROC_RANK', 'VEXEC_SIZE']);
my %got;
for my $l (lines($r->{out})) {
    $got{"$1 $2=$3"}++ if $l =~ /^\[(\d+)\] (BPROC_RANK|VEXEC_SIZE)=(\S+)$/;
}
my @bad = grep {
    ($got{"$_ BPROC_RANK=" . sprintf("%07d", $_)} // 0) != 1
        || ($got{"$_ VEXEC_SIZE=64"} // 0) != 1
} 0 .. 63;
ok($r->{status} == 0 && !@bad && (() = lines($r->{out})) == 128,
   'rankenv-pie on 64 nodes prints each rank its own BPROC_RANK and VEXEC_SIZE')
    or diag(describe($r) . "; wrong ranks: @bad[0 .. ($#bad < 9 ? $#bad : 9)]");

# The 4 MB static program on every node.
$r = vexec(['-n', $NODES, '--tree', 'kary:8', prog('big4m-static')]);
is($r->{status}, 0, "big4m-static on $NODES nodes with kary:8 exits 0")
    or diag(describe($r));
is($r->{out}, "big4m ok\n" x $NODES, 'and every rank checked its 4 MB of data');

# The image lands in each node's huge-page buffer at the lead the front
# end signed (vmad_huge_lead), so a rank gets the big data of hugedata
# (6 MiB, not 2 MiB-congruent with its image offset) moved in by whole
# 2 MiB pages: its smaps show them.  Without the lead they were split.
SKIP: {
    my $knob = '/sys/kernel/mm/transparent_hugepage/enabled';
    my $thp = -r $knob ? slurp($knob) : 'absent';
    skip("transparent huge pages are off here ($thp)", 2)
        if $thp !~ /\[(always|madvise)\]/;
    my (undef, $img) = tempfile(UNLINK => 1);
    my $d = dump_image($img, [prog('hugedata-static')]);
    my $info = run([bin('vmadump'), 'info', $img]);
    like($info->{out}, qr/^huge-page lead 0x[1-9a-f]/m,
         "hugedata-static's image wants a lead (else this tests nothing)")
        or diag(describe($d) . ' ' . describe($info));
    $r = vexec(['-n', 3, prog('hugedata-static')]);
    my @kb = map { /^\d+ (\d+)$/ ? $1 : () } lines($r->{out});
    ok($r->{status} == 0 && @kb == 3 && !grep({ $_ < 4096 } @kb),
       'each rank of hugedata-static maps two whole 2 MiB pages of its data '
       . "(AnonHugePages kB: @kb)") or diag(describe($r));
}

# The restorer moves a program's regions into place (in one move where
# they lie back to back) and then protects each: every rank sees its
# header, text, read-only data, data and bss mapped as a plain run of
# the same program does.
for my $v ('static', 'pie') {
    my $native = run([prog("protprobe-$v")]);
    $r = vexec(['-n', 3, prog("protprobe-$v")]);
    ok($native->{status} == 0 && $native->{out} =~ /^header r--p text r-xp /
       && $r->{status} == 0 && $r->{out} eq $native->{out} x 3,
       "each rank of protprobe-$v has its program's protections "
       . "(native: $native->{out})") or diag(describe($r));
}

# A rank's /proc/self/exe is its program (PR_SET_MM_MAP's exe_fd), not
# the daemon it was forked from nor the restorer.
$r = vexec(['-n', 3, '/bin/dash', '-c', 'readlink /proc/$$/exe']);
is($r->{out}, "/usr/bin/dash\n" x 3, "each rank's /proc/self/exe is /usr/bin/dash")
    or diag(describe($r));

# Without -w, -n N takes the first N nodes: rank i on node i.
$r = vexec(['-n', 3, '/bin/dash', '-c', 'echo "$BPROC_RANK $PPID"']);
my %on = map { /^(\d+) (\d+)$/ ? ($1 + 0 => $2) : () } lines($r->{out});
ok($r->{status} == 0 && !grep({ ($on{$_} // 0) != $pid_of{"n$_"} } 0 .. 2),
   '-n 3 runs ranks 0, 1, 2 on n0, n1, n2') or diag(describe($r));

# -w n5,n2: rank 0 runs on n5 and rank 1 on n2.  A rank is a child of its
# node's daemon, so the rank's parent pid names the node.
$r = vexec(['-w', 'n5,n2', '/bin/dash', '-c', 'echo "$BPROC_RANK $VEXEC_SIZE $PPID"']);
my %ppid = map { /^(\d+) 2 (\d+)$/ ? ($1 => $2) : () } lines($r->{out});
ok($r->{status} == 0 && keys %ppid == 2 && (() = lines($r->{out})) == 2,
   '-w n5,n2 runs two ranks, 0 and 1, size 2 (no -n)')
    or diag(describe($r));
is($ppid{'0000000'}, $pid_of{n5}, 'rank 0 runs on n5 (its parent is n5\'s daemon)');
is($ppid{'0000001'}, $pid_of{n2}, 'rank 1 runs on n2');

# A hostlist range, in order.
$r = vexec(['-w', 'n[10-12]', '/bin/dash', '-c', 'echo "$BPROC_RANK $PPID"']);
%ppid = map { /^(\d+) (\d+)$/ ? ($1 => $2) : () } lines($r->{out});
ok($r->{status} == 0
   && ($ppid{'0000000'} // 0) == $pid_of{n10}
   && ($ppid{'0000001'} // 0) == $pid_of{n11}
   && ($ppid{'0000002'} // 0) == $pid_of{n12},
   '-w n[10-12] places ranks 0, 1, 2 on n10, n11, n12')
    or diag(describe($r));

# --nodes is the long form of -w.
$r = vexec(['--nodes', 'n[7-8]', '/bin/dash', '-c', 'echo "$BPROC_RANK $PPID"']);
%ppid = map { /^(\d+) (\d+)$/ ? ($1 => $2) : () } lines($r->{out});
ok($r->{status} == 0 && ($ppid{'0000000'} // 0) == $pid_of{n7}
   && ($ppid{'0000001'} // 0) == $pid_of{n8},
   '--nodes n[7-8] places ranks 0, 1 on n7, n8') or diag(describe($r));

# -n smaller than the list takes the first N names of the list.
$r = vexec(['-n', 2, '-w', 'n[20-23]', '/bin/dash', '-c', 'echo "$BPROC_RANK $VEXEC_SIZE $PPID"']);
%ppid = map { /^(\d+) 2 (\d+)$/ ? ($1 => $2) : () } lines($r->{out});
ok($r->{status} == 0 && (() = lines($r->{out})) == 2
   && ($ppid{'0000000'} // 0) == $pid_of{n20} && ($ppid{'0000001'} // 0) == $pid_of{n21},
   '-n 2 -w n[20-23] runs 2 ranks, on n20 and n21')
    or diag(describe($r));

# --chunk takes K and M suffixes; the image arrives whole at any size.
for my $chunk (qw(1M 64K 8K 65536)) {
    $r = vexec(['-n', 64, '--tree', 'binomial', '--chunk', $chunk, prog('big4m-static')]);
    ok($r->{status} == 0 && $r->{out} eq "big4m ok\n" x 64,
       "big4m-static on 64 nodes with --chunk $chunk") or diag(describe($r));
}
# A very small chunk (about 1200 of them for the 4.9 MB image) either works
# or is refused as one "vexec:" line; either way the cluster stays usable.
$r = vexec(['-n', 64, '--tree', 'binomial', '--chunk', '4K', prog('big4m-static')]);
ok(($r->{status} == 0 && $r->{out} eq "big4m ok\n" x 64)
   || !one_line_error($r) && $r->{err} =~ /\Avexec:/,
   'big4m-static on 64 nodes with --chunk 4K runs, or is refused in one line')
    or diag(describe($r));
$r = vexec(['-n', 64, '/bin/echo', 'hi']);
ok($r->{status} == 0 && $r->{out} eq "hi\n" x 64,
   'after --chunk 4K the cluster still runs 64 ranks') or diag(describe($r));

done_testing();
