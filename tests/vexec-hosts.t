#!/usr/bin/perl
# vexec-hosts.t - vexec across hosts over tcp;ofi_rxm: 4 hosts made of
# network namespaces (scripts/netns-hosts), 2 vexecd per host, 8 ranks.
# The same programs give the same results as on a one-host emulated
# cluster (ranks, output, stdin, exit status); rank i runs on the host the
# list puts it on; the daemons of different hosts hold TCP connections
# between their addresses; -f HOSTFILE (with comments) and --hosts in
# hostlist syntax both work; a bad list or a host without a daemon is one
# line and a non-zero exit with nothing left running; idle daemons stay
# idle; a killed one-shot gateway or daemon is noticed and leaves no rank
# running; teardown leaves no namespace, link or process.
#
# Skipped unless root and `ip netns add` works.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(prog bin one_line_error);
use VexecCluster qw(need_vexec cluster_up vexec describe lines pid_alive
                    daemon_cpu_ticks kill_under_ranks start_bg wait_bg
                    wait_until children_of ranks_running cgroup_dir
                    procs_running);

my $HOSTS = 4;
my $DAEMONS = 2;
my $N = $HOSTS * $DAEMONS;

plan skip_all => 'needs root for network namespaces' if $> != 0;
my $probe_ns = "vxprobe$$";
plan skip_all => 'ip netns add does not work here'
    if system("ip netns add $probe_ns >/dev/null 2>&1") != 0;
system("ip netns del $probe_ns");

need_vexec();
my $script = "$FindBin::Bin/../scripts/netns-hosts";
my $build = VexecTest::build_dir();
my $prefix = "vxt$$";
my $state = tempdir('vxh-XXXXXX', TMPDIR => 1, CLEANUP => 1) . "/state";
my $owner = $$;
my $torn_down = 0;

sub netns {
    my (@args) = @_;
    local $VexecTest::TIMEOUT = 180;
    return VexecTest::run([$script, @args]);
}

END {
    if ($$ == $owner && !$torn_down && -e "$state/names") {
        local $?;
        netns('down', '--state', $state);
    }
}

my $r = netns('up', $HOSTS, '--daemons', $DAEMONS, '--prefix', $prefix,
              '--state', $state, '--build', $build);
ok($r->{status} == 0, "netns-hosts up $HOSTS --daemons $DAEMONS")
    or BAIL_OUT('no hosts: ' . describe($r));
my %daemon_pid = map { /^(\d+) \S+ (\S+)$/ ? ($2 => $1) : () }
                 lines(VexecTest::slurp("$state/pids"));
my @addr = map { /^(\S+):\d+$/ ? $1 : () } lines(VexecTest::slurp("$state/hostfile"));
is(scalar @addr, $HOSTS, "$HOSTS hosts, each its own address: @addr");
my ($subnet) = $addr[0] =~ /^(\d+\.\d+\.\d+)\./;

# A host file in Hydra's format, with comments and a blank line.
my $hostfile = "$state/../hostfile";
VexecTest::spew($hostfile, "# $HOSTS namespaced hosts\n\n"
                . join('', map { "$_:$DAEMONS   # two daemons\n" } @addr));
# A host file in PBS_NODEFILE's form, a line per slot, here the hosts
# in turn, each on $DAEMONS lines.
my $pbsfile = "$state/../pbs_nodefile";
VexecTest::spew($pbsfile, join('', map { map { "$_\n" } @addr } 1 .. $DAEMONS));
# Launches on the hosts are signed with the key their daemons check.
my @key = ('--key', "$state/key");
my @via_file = (@key, '-f', $hostfile);
my @via_list = (@key, '--hosts', "$subnet.[2-" . ($HOSTS + 1) . "]:$DAEMONS");

# The one-host cluster to compare with.
cluster_up($N);

# Runs the program on the hosts and on the one-host cluster.
sub both {
    my ($args, %opt) = @_;
    return (vexec([@via_file, @$args], %opt), vexec([@$args], %opt));
}

sub sorted_lines { return join("\n", sort(lines($_[0]))) }

# Ranks and sizes.
my $rank_line = 'echo "$BPROC_RANK $VEXEC_SIZE"';
my ($tcp, $one) = both(['/bin/dash', '-c', $rank_line]);
my $want = join("\n", map { sprintf("%07d %d", $_, $N) } 0 .. $N - 1);
ok($tcp->{status} == 0 && sorted_lines($tcp->{out}) eq $want,
   "-f: ranks 0..7 once each, size 8, exit 0") or diag(describe($tcp));
ok(sorted_lines($tcp->{out}) eq sorted_lines($one->{out})
   && $tcp->{status} == $one->{status}, 'the same as on one host')
    or diag(describe($one));

# Hydra's spellings: -hosts, -host, -machinefile.
for my $via (['-hosts', $via_list[3]], ['-host', $via_list[3]],
             ['-machinefile', $hostfile]) {
    $r = vexec([@key, @$via, '/bin/dash', '-c', $rank_line]);
    ok($r->{status} == 0 && sorted_lines($r->{out}) eq $want,
       "vexec $via->[0]: ranks 0..7 once each") or diag(describe($r));
}

# Rank i on the host the list puts it: two per host, in order.
$r = vexec([@via_list, '/bin/dash', '-c', 'echo "$BPROC_RANK $(hostname -I)"']);
my %host_of = map { /^(\d+) (\S+)/ ? ($1 + 0 => $2) : () } lines($r->{out});
my @misplaced = grep { ($host_of{$_} // '') ne $addr[int($_ / $DAEMONS)] } 0 .. $N - 1;
ok($r->{status} == 0 && !@misplaced,
   "--hosts '$via_list[1]': ranks 2k and 2k+1 run on host k's address")
    or diag(describe($r) . " misplaced: @misplaced");

# Whole lines, long ones too, labelled.
my $lines_prog = 'x=$(head -c 60000 /dev/zero | tr "\0" r); for i in 1 2 3; do echo "$BPROC_RANK:$i:$x"; done';
($tcp, $one) = both(['-l', '/bin/dash', '-c', $lines_prog]);
my @bad = grep { !/^\[(\d+)\] (\d{7}):[123]:r{60000}$/ || $1 != $2 } lines($tcp->{out});
ok($tcp->{status} == 0 && (() = lines($tcp->{out})) == 3 * $N && !@bad,
   '-l: 24 lines of 60 kB, each whole and labelled with its rank')
    or diag(describe($tcp) . ' bad lines: ' . scalar(@bad));
ok(sorted_lines($tcp->{out}) eq sorted_lines($one->{out}), 'the same as on one host');

# Stdin goes to rank 0 only.
my $count = 'printf "%s %s\n" "$BPROC_RANK" "$(wc -l)"';
($tcp, $one) = both(['/bin/dash', '-c', $count], stdin => "a\nb\nc\n");
$want = join("\n", map { sprintf("%07d %d", $_, $_ ? 0 : 3) } 0 .. $N - 1);
ok($tcp->{status} == 0 && sorted_lines($tcp->{out}) eq $want,
   'stdin: rank 0 reads 3 lines, the others end of file') or diag(describe($tcp));
ok(sorted_lines($tcp->{out}) eq sorted_lines($one->{out}), 'the same as on one host');

# Exit status: rank 3 exits 3.
($tcp, $one) = both(['/bin/dash', '-c', '[ "$BPROC_RANK" = 0000003 ] && exit 3; exit 0']);
ok($tcp->{status} == 3
   && $tcp->{err} =~ /^vexec: 1 of 8 ranks failed: rank 3 on \Q$addr[1]:7401\E exited 3$/m,
   'rank 3 exiting 3: exit 3 and the summary line, naming its host and port')
    or diag(describe($tcp));
ok($tcp->{status} == $one->{status}
   && $one->{err} eq "vexec: 1 of 8 ranks failed: rank 3 on n3 exited 3\n",
   'the same status as on one host, whose line names node n3')
    or diag(describe($one));

# The 4.9 MB image, over a tree that crosses every host.
$r = vexec([@via_list, '--tree', 'kary:2', prog('big4m-static')]);
is($r->{out}, "big4m ok\n" x $N, 'big4m-static: every rank checked its 4 MB over tcp')
    or diag(describe($r));

# The image crossed TCP between addresses: with kary:2, ranks 2-3 (host 2)
# and 4-5 (host 3) have parents on host 1, ranks 6-7 (host 4) on host 2.
# Each of hosts 2-4 holds an established connection with another host.
for my $h (2 .. $HOSTS) {
    my $ss = `ip netns exec $prefix-h$h ss -Htn state established`;
    my @peers = grep { $_ ne $addr[$h - 1] } ($ss =~ /\s(\d+\.\d+\.\d+\.\d+):\d+\s*$/mg);
    ok(@peers, "host $h ($addr[$h - 1]) has TCP connections with other hosts: "
       . join(' ', sort(keys %{ { map { $_ => 1 } @peers } })))
        or diag($ss);
}

# Errors: one line, non-zero, nothing started.
sub gateways_left {
    return grep { pid_alive($_) && VexecTest::slurp("/proc/$_/cmdline") =~ /^vexec-gateway\x00--address\x00\Q$subnet\E\./ }
           map { m{^/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
}
for my $case (['--hosts', 'x[1-'], ['--hosts', "$subnet.2:300"],
              ['--hosts', 'no-such-host.invalid'], ['-f', "$state/none"],
              ['--hosts', "$subnet.2:$DAEMONS", '--port', 7490],
              ['-n', 9, '-f', $hostfile],
              ['-f', $pbsfile, '--port', 65535]) {
    $r = vexec([@$case, '/bin/true']);
    my @wrong = one_line_error($r);
    ok(!@wrong && $r->{err} =~ /^vexec: /, "@$case: one-line error, exit $r->{status}")
        or diag("@wrong");
}
# A daemon named twice in --hosts: one line naming it, for a launch as
# for `vexec nodes`.
for my $sub (['/bin/true'], ['nodes']) {
    my $what = $sub->[0] eq 'nodes' ? 'nodes: ' : '';
    $r = vexec([$what ? @$sub : (), @key, '--hosts', "$subnet.2,$subnet.2",
                $what ? () : @$sub]);
    ok(!one_line_error($r) && $r->{status} == 2
       && $r->{err} =~ /^vexec: \Q$what\Ethe daemon at \Q$subnet\E\.2:7400 is listed twice$/,
       "vexec " . ($what ? "nodes " : "") . "--hosts $subnet.2,$subnet.2: one line naming the daemon, exit 2")
        or diag(describe($r));
}
$r = vexec([@key, '--hosts', "$subnet.2:$DAEMONS", '--port', 7490, '/bin/true']);
like($r->{err}, qr/^vexec: no vexecd answers at \Q$subnet\E\.2:7490 .*refused/,
     'a host without a daemon is named with its address');
# Over tcp as on one host, a launch is signed: none, or the wrong key,
# runs nothing.
$r = vexec([@via_list[2 .. $#via_list], '/bin/true']);
like($r->{err}, qr/^vexec: --hosts and -f need the cluster's key/,
     'no key: one line saying the hosts need the key');
my $wrong = "$state/../wrong-key";
VexecTest::spew($wrong, 'k' x 32);
chmod 0600, $wrong;
$r = vexec(['--key', $wrong, @via_list[2 .. $#via_list], '/bin/dash', '-c', 'echo ran']);
ok($r->{status} != 0 && $r->{out} eq ''
   && $r->{err} =~ /^vexec: node \S+ refused the launch: credential does not verify/,
   'a wrong key over tcp: refused by node 0, nothing runs')
    or diag(describe($r));
# vexec nodes over tcp: a one-shot gateway asks the daemons down the tree.
sub node_states {
    my ($out) = @_;
    return { map { /^(\S+)\s+(up|busy|down)\s/ ? ($1 => $2) : () } lines($out) };
}
for my $via ([@via_list], [@via_file]) {
    $r = vexec(['nodes', @$via]);
    my $st = node_states($r->{out});
    ok($r->{status} == 0 && (grep { $_ eq 'up' } values %$st) == $N
       && $r->{out} =~ /^$N nodes: $N up, 0 down$/m,
       "vexec nodes @$via[2 .. $#$via]: all $N up, exit 0")
        or diag(describe($r));
}
# The PBS_NODEFILE-like file (above): the k-th line of a host is its
# daemon at BASE+k, as a host listed k times has k slots in Hydra's host
# file; ranks go in the file's order.
my @pbs_order = map { my $k = $_; map { "$_:" . (7400 + $k) } @addr }
                0 .. $DAEMONS - 1;
$r = vexec(['nodes', @key, '-f', $pbsfile]);
my @pbs_seen = map { /^(\S+)\s+up\s/ ? $1 : () } lines($r->{out});
ok($r->{status} == 0 && "@pbs_seen" eq "@pbs_order",
   "vexec nodes -f with each host on $DAEMONS lines: its $DAEMONS daemons, "
   . 'up, in the order of the lines')
    or diag("want @pbs_order; " . describe($r));
$r = vexec([@key, '-f', $pbsfile, '-l', '/bin/dash', '-c', 'echo ran']);
ok($r->{status} == 0 && scalar(() = $r->{out} =~ /^\[\d+\] ran$/mg) == $N,
   "vexec -f with it runs all $N ranks") or diag(describe($r));

# Inside a batch job, naming no nodes (and no VEXEC_CLUSTER) means the
# job's, as for mpiexec: SLURM_JOB_NODELIST as --hosts, else PBS_NODEFILE
# as -f.
sub in_job {
    my ($env, @args) = @_;
    return VexecTest::run(['env', '-u', 'VEXEC_CLUSTER',
                           map({ "$_=$env->{$_}" } sort keys %$env),
                           bin('vexec'), @args]);
}
my %job_key = (VEXEC_KEY => "$state/key");
my $where = 'echo "$BPROC_RANK $(hostname -I)"';
$r = in_job({ %job_key, SLURM_JOB_NODELIST => "$subnet.[4-5]" },
            '/bin/dash', '-c', $where);
%host_of = map { /^(\d+) (\S+)/ ? ($1 + 0 => $2) : () } lines($r->{out});
is_deeply([$r->{status}, \%host_of], [0, { 0 => $addr[2], 1 => $addr[3] }],
          "SLURM_JOB_NODELIST=$subnet.[4-5], no nodes named: a rank on "
          . 'each of those hosts, in order') or diag(describe($r));
$r = in_job({ %job_key, PBS_NODEFILE => $pbsfile }, '-l', '/bin/dash', '-c',
            'echo ran');
ok($r->{status} == 0 && scalar(() = $r->{out} =~ /^\[\d+\] ran$/mg) == $N,
   "PBS_NODEFILE: all $N ranks of its lines") or diag(describe($r));
$r = in_job({ %job_key, SLURM_JOB_NODELIST => "$subnet.4",
              PBS_NODEFILE => $pbsfile }, 'nodes');
ok($r->{status} == 0 && $r->{out} =~ /^1 nodes: 1 up, 0 down$/m
   && $r->{out} =~ /^\S+\s+up\s+\Q$addr[2]:7400\E\s/m,
   'vexec nodes with both: Slurm\'s list, one node up')
    or diag(describe($r));
for my $case ([{ SLURM_JOB_NODELIST => 'x[1-' }, qr/^vexec: SLURM_JOB_NODELIST: invalid hostlist/],
              [{ SLURM_JOB_NODELIST => "$subnet.4" }, qr/^vexec: the daemons of SLURM_JOB_NODELIST need the cluster's key/],
              [{ PBS_NODEFILE => "$state/none" }, qr/^vexec: PBS_NODEFILE: \Q$state\E\/none: No such file/]) {
    $r = in_job($case->[0], '/bin/true');
    my ($var) = keys %{$case->[0]};
    ok(!one_line_error($r) && $r->{err} =~ $case->[1],
       "$var=$case->[0]{$var}: one line naming it, exit $r->{status}")
        or diag(describe($r));
}
{
    local $ENV{SLURM_JOB_NODELIST} = "$subnet.4";
    $r = vexec(['/bin/dash', '-c', $where]);
    ok($r->{status} == 0 && (() = lines($r->{out})) == $N
       && !grep({ $r->{out} =~ /(?<![\d.])\Q$_\E(?![\d.])/ } @addr),
       'with VEXEC_CLUSTER set, the emulated cluster, not the job\'s nodes')
        or diag(describe($r));
}

$r = vexec(['nodes', @via_list, 'n1']);
ok(!one_line_error($r) && $r->{err} =~ /^vexec: nodes: LIST 'n1' names nodes of the emulated cluster/,
   'vexec nodes --hosts with a LIST: one-line error') or diag(describe($r));
$r = vexec(['nodes', @via_list[2 .. $#via_list]]);
ok(!one_line_error($r) && $r->{err} =~ /^vexec: vexec nodes --hosts need the cluster's key/,
   'vexec nodes --hosts without a key: one-line error') or diag(describe($r));
my @left = gateways_left();
ok(!@left, 'no gateway is left running') or diag("pids: @left");
ok(!grep({ !pid_alive($_) } values %daemon_pid), 'every daemon still runs');

# Idle daemons stay idle after all those jobs, probes and refusals.
my $t0 = daemon_cpu_ticks(values %daemon_pid);
select(undef, undef, undef, 2);
my $ticks = daemon_cpu_ticks(values %daemon_pid) - $t0;
ok($ticks <= 20, "the 8 idle daemons used $ticks ticks of CPU in 2 s");

# kill_under_job($what, $victim, $expect, $settle): run /bin/sleep 300 on
# the 8 daemons, kill -9 what $victim returns (given vexec's pid) $settle
# seconds after every rank runs; vexec must end non-zero with stderr
# matching $expect (or be the one killed), every rank must end, and a
# launch right after must run: node 0 holds it until its old job has
# ended.
sub kill_under_job {
    my ($what, $victim, $expect, $settle) = @_;
    my $r = kill_under_ranks(
        cmd => [bin('vexec'), @via_list, '--tree', 'kary:2', '/bin/sleep',
                '300'],
        out => "$state/../victim.out", err => "$state/../victim.err",
        rank_cmd => ['/bin/sleep', '300'], ranks => $N,
        daemons => [values %daemon_pid], settle => $settle,
        victim => $victim, limit => 180);
    my ($all, $status, $text) = @$r{qw(all status err)};
    my @ranks = @{ $r->{ranks} };
    my @pids = @{ $r->{killed} };
    ok($all && @pids == 1 && defined $status && $status != 0
       && $text =~ $expect,
       "kill -9 of $what while $N ranks run: vexec ends, non-zero")
        or diag(scalar(@ranks) . " ranks, killed @pids, status "
                . ($status // 'hung') . ": $text");
    ok($all && wait_until(40, sub { !grep { pid_alive($_) } @ranks }),
       'and every rank (/bin/sleep 300) ends')
        or diag('still running: ' . join(' ', grep { pid_alive($_) } @ranks));
    my $next = vexec([@via_list, '/bin/dash', '-c', 'echo $BPROC_RANK']);
    is_deeply([sort(lines($next->{out}))],
              [map { sprintf('%07d', $_) } 0 .. $N - 1],
              'and a launch right after runs every rank')
        or diag(describe($next));
}

# The one-shot gateway killed: node 0, whose probes of the gateway's
# address are refused from then on, ends the job.  It judges them once
# one was accepted; the first goes out as node 0 takes the job, so the
# kill comes as soon as every rank runs (it came 2 s in while the first
# probe waited 0.5 s, and a kill before its answer went unseen).  vexec killed: its
# gateway sends the cancel vexec signed at the start, and node 0 holds the
# next launch until it sees that gateway gone (its last reports have no
# one to go to).  Whether node 0 has ended the job before the next launch
# comes is a race (1 in 3 lost it without the hold), so five rounds.
kill_under_job('the one-shot gateway', sub { gateways_left() },
               qr/^vexec: the gateway went away/m, 0);
kill_under_job("vexec (round $_ of 5)", sub { $_[0] }, qr/^$/) for 1 .. 5;

# A daemon that dies while the ranks run, after the broadcast: no send to
# it is pending, so its parent notices that it hears no ALIVE from it for
# 3 s, finds its address refusing a connection, reports it dead, and
# adopts its children, whose ranks' exits still arrive.  With kary:2, rank 1 (host 1's second daemon) is the parent of
# ranks 3 (host 2) and 4 (host 3).  Last: the cluster has 7 daemons after.
my $dead = "$addr[0]:7401";
my ($kout, $kerr) = map { "$state/../kill.$_" } qw(out err);
my $bg = start_bg([bin('vexec'), @via_list, '--tree', 'kary:2',
                                 '/bin/dash', '-c',
                                 'sleep 5; echo "$BPROC_RANK done"'],
                                out => $kout, err => $kerr);
select(undef, undef, undef, 2.5);
kill 'KILL', $daemon_pid{$dead};
my $kstatus = wait_bg($bg, 180);
my @done = sort(lines(VexecTest::slurp($kout)));
my @kerr = lines(VexecTest::slurp($kerr));
is_deeply(\@done, [map { sprintf('%07d done', $_) } 0, 2 .. $N - 1],
          'kill -9 of an interior daemon over tcp while its rank runs: '
          . 'every other rank finishes')
    or diag(join("\n", @kerr));
ok(defined $kstatus && $kstatus >> 8 != 0
   && (grep { /^vexec: 1 node failed: \Q$dead\E \(died/ } @kerr)
   && !(grep { /failed:/ && !/\Q$dead\E/ } @kerr),
   "vexec names exactly $dead as dead, exits non-zero, and does not hang")
    or diag('status ' . ($kstatus // 'hung') . ': ' . join("\n", @kerr));
delete $daemon_pid{$dead};

# A daemon killed while its rank runs processes in the background, one of
# them taken out of the rank's session (setsid): its keeper ends them all,
# the one that left the session too (it is still in the daemon's cgroup),
# and removes the cgroup.  Then a SIGINT to vexec, before its parent has
# found it dead (3-4 s over tcp): the dead node's children cannot take it
# then, and get it from their adopter; every daemon ends its rank's
# process group and what left it (setsid) with it.  With kary:2 on the 7 daemons left,
# rank 1 ($addr[1]:7400) is the parent of ranks 3 and 4.
my @seven = (@key, '--hosts', "$addr[0]:1,$addr[1]:2,$addr[2]:2,$addr[3]:2");
my $victim = "$addr[1]:7400";
my @bg_cmd = ('/bin/dash', '-c', 'sleep 3021 >/dev/null 2>&1 & '
              . 'setsid sleep 3023 >/dev/null 2>&1 & sleep 3022');
$bg = start_bg([bin('vexec'), @seven, '--tree', 'kary:2', @bg_cmd],
               out => $kout, err => $kerr);
my (@ranks, @sleeps);
ok(wait_until(120, sub {
       @ranks = ranks_running(\@bg_cmd, values %daemon_pid);
       @sleeps = map { children_of($_) } @ranks;
       return @ranks == 7 && @sleeps == 21;
   }), '7 ranks run, each with two sleeps in the background, one setsid')
    or diag(scalar(@ranks) . ' ranks: ' . VexecTest::slurp($kerr));
my @orphaned = map { children_of($_) } children_of($daemon_pid{$victim});
my @escaped = grep { VexecCluster::read_proc_file($_, 'cmdline') =~ /^sleep\x{0}3023/ }
              @orphaned;
is(scalar(@orphaned), 3, "the rank on $victim started its three sleeps");
is(scalar(@escaped), 1, 'one of them in a session of its own');
my $cgroup = cgroup_dir($daemon_pid{$victim});
ok(defined $cgroup && -d $cgroup, "$victim runs in a cgroup of its own")
    or diag('cgroup: ' . ($cgroup // 'none') . '; log: '
            . VexecTest::slurp("$state/h2.0.log"));
kill 'KILL', $daemon_pid{$victim};
ok(wait_until(20, sub { !grep { pid_alive($_) } @orphaned }),
   "kill -9 of $victim: its keeper ends what its rank started, "
   . 'the setsid one too')
    or diag("left running: " . join(' ', grep { pid_alive($_) } @orphaned));
ok(defined $cgroup && wait_until(10, sub { !-d $cgroup }),
   'and removes its cgroup') or diag("left: " . ($cgroup // 'none'));
kill 'INT', $bg;
$kstatus = wait_bg($bg, 120);
@kerr = lines(VexecTest::slurp($kerr));
ok(defined $kstatus && $kstatus >> 8 != 0
   && (grep { /^vexec: 1 node failed: \Q$victim\E/ } @kerr),
   'then a SIGINT to vexec: it names the dead node and ends')
    or diag('status ' . ($kstatus // 'hung') . ': ' . join("\n", @kerr));
ok(wait_until(20, sub { !grep { pid_alive($_) } @ranks, @sleeps }),
   'and every rank and sleep ends, under the dead node too')
    or diag('left running: ' . join(' ', grep { pid_alive($_) } @ranks, @sleeps));
delete $daemon_pid{$victim};

# vexec nodes with those two daemons dead: over tcp nothing shows them
# gone but their silence, and their children, asked directly, answer the
# nearest ancestor that takes it.
$r = vexec(['nodes', @via_list]);
my $st = node_states($r->{out});
is_deeply([map { "$_ $st->{$_}" } sort keys %$st],
          [map { my $a = $_; "$a " . ($a eq $dead || $a eq $victim ? 'down' : 'up') }
               sort keys %{ { map { $_ => 1 } keys %$st, $dead, $victim } }],
          "vexec nodes: $dead and $victim down, the other 6 up")
    or diag(describe($r));
ok($r->{status} == 1 && $r->{out} =~ /^$N nodes: 6 up, 2 down$/m,
   'and it exits 1') or diag(describe($r));

# A job over tcp that ends by itself ends what its ranks left running, in
# their sessions or out of them (setsid), once their output is closed: each
# daemon's cgroup holds it.
my @left_cmd = ('/bin/dash', '-c', 'sleep 3041 >/dev/null 2>&1 & '
                . 'setsid sleep 3042 >/dev/null 2>&1 & echo started');
$r = vexec([@key, '--hosts', "$addr[2]:2,$addr[3]:2", @left_cmd]);
ok($r->{status} == 0 && (() = $r->{out} =~ /^started$/mg) == 4,
   'over tcp, 4 ranks that leave two sleeps each end by themselves')
    or diag(describe($r));
my @sleeps_left;
ok(wait_until(20, sub { !(@sleeps_left = (procs_running('sleep', 3041),
                                          procs_running('sleep', 3042))) }),
   'and none of their 8 sleeps runs on, the setsid ones too')
    or diag("left running: @sleeps_left");

# scripts/slurm-prolog, as Slurm runs it: one launch of a check on every
# node of SLURM_JOB_NODELIST (here two hosts' daemons at port 7400).
my $prolog = "$FindBin::Bin/../scripts/slurm-prolog";
sub prolog {
    my (%env) = @_;
    return VexecTest::run(['env', "VEXEC=" . bin('vexec'),
                           "VEXEC_KEY=$state/key",
                           map({ "$_=$env{$_}" } sort keys %env), $prolog]);
}
my $alloc = "$addr[2],$addr[3]";
$r = prolog(SLURM_JOB_NODELIST => $alloc);
ok($r->{status} == 0 && $r->{err} eq '', "slurm-prolog on $alloc: every node passes")
    or diag(describe($r));
$r = prolog(SLURM_JOB_NODELIST => $alloc,
            VEXEC_PROLOG_CHECK => 'echo checked; [ $BPROC_RANK -ne 1 ]');
ok($r->{status} == 1 && $r->{out} =~ /^\[0\] checked$/m && $r->{out} =~ /^\[1\] checked$/m
   && $r->{err} =~ /^vexec: 1 of 2 ranks failed: rank 1 on \Q$addr[3]:7400\E exited 1$/m,
   'a check that fails on the second node: exit 1, rank 1 and its node named, '
   . 'output labelled')
    or diag(describe($r));
# Then every node's line of `vexec nodes`: its address, up, and its
# check's exit code (the EXIT column).
my %exit_of = map { /^\S+\s+up\s+(\S+)\s.*\s(\d+)\s+\S+$/ ? ($1 => $2) : () }
              lines($r->{err});
is_deeply(\%exit_of, { "$addr[2]:7400" => 0, "$addr[3]:7400" => 1 },
          'and then a report of each node: up, and its check\'s exit code')
    or diag($r->{err});
$r = prolog(SLURM_JOB_NODELIST => $alloc, VEXEC_PROLOG_CHECK => 'sleep 3061',
            VEXEC_PROLOG_TIMEOUT => 1);
ok($r->{status} == 124 && $r->{err} =~ /^vexec: time limit of 1 s reached/m,
   'a check that hangs: ended at VEXEC_PROLOG_TIMEOUT, exit 124')
    or diag(describe($r));
ok(wait_until(20, sub { !procs_running('sleep', 3061) }), 'and no check is left');
$r = prolog(SLURM_JOB_NODELIST => "$addr[2],$addr[1]");
ok($r->{status} != 0 && !$r->{signal} && $r->{err} =~ /\Avexec: [^\n]*\Q$addr[1]\E/
   && $r->{err} =~ /^\S+\s+down\s+\Q$addr[1]:7400\E\s/m,
   "a node whose daemon is dead ($addr[1]:7400): a line naming it, "
   . 'non-zero, and the report shows it down')
    or diag(describe($r));
$r = VexecTest::run(['env', '-u', 'SLURM_JOB_NODELIST', $prolog]);
ok($r->{status} == 2 && $r->{err} =~ /^slurm-prolog: SLURM_JOB_NODELIST is not set/,
   'no SLURM_JOB_NODELIST: one line, exit 2') or diag(describe($r));

# scripts/pbs-prolog, as Torque's pbs_mom runs it: an empty environment,
# its settings from a root-owned file, the job's hosts as the ninth
# argument, else from the job's node file (a line per core).
my $pbs_prolog = "$FindBin::Bin/../scripts/pbs-prolog";
my $pbs_home = "$state/pbs";
mkdir $pbs_home; mkdir "$pbs_home/aux";
my $conf = "$state/prolog.conf";
sub pbs_prolog {
    my ($check, @args) = @_;
    VexecTest::spew($conf, "VEXEC=" . bin('vexec') . "\nVEXEC_KEY=$state/key\n"
                    . "PBS_HOME=$pbs_home\nVEXEC_PROLOG_CHECK='$check'\n");
    chmod 0644, $conf;
    return VexecTest::run(['env', '-i', "VEXEC_PROLOG_CONF=$conf", $pbs_prolog, @args]);
}
my @torque_args = ('7.server', 'alice', 'users', 'job', 'nodes=2', 'batch',
                   '', '/var/spool/torque/mom_priv/jobs/7.server.SC');
$r = pbs_prolog('echo checked', @torque_args, "$addr[2],$addr[3]");
ok($r->{status} == 0 && $r->{err} eq '' && $r->{out} =~ /^\[0\] checked$/m
   && $r->{out} =~ /^\[1\] checked$/m,
   "pbs-prolog, empty environment, hosts $addr[2],$addr[3] as argument 9: "
   . 'both check, exit 0') or diag(describe($r));
# Torque before 6 and OpenPBS pass three arguments; the node file has a
# line per core: the hosts are its distinct lines, in order.
VexecTest::spew("$pbs_home/aux/8.server",
                join('', map { "$_\n" } $addr[3], $addr[3], $addr[2], $addr[2]));
$r = pbs_prolog('[ $BPROC_RANK -ne 1 ]', '8.server', 'alice', 'users');
ok($r->{status} == 1
   && $r->{err} =~ /^vexec: 1 of 2 ranks failed: rank 1 on \Q$addr[2]:7400\E exited 1$/m
   && $r->{err} =~ /^\S+\s+up\s+\Q$addr[3]:7400\E\s/m,
   'from the node file (2 hosts on 2 lines each): 2 ranks, rank 1 on the '
   . 'second host fails, exit 1, then the report') or diag(describe($r));
for my $case (['no job id', []],
              ['no node file', ['9.server', 'alice', 'users']]) {
    $r = pbs_prolog('true', @{$case->[1]});
    ok(!one_line_error($r) && $r->{status} == 2 && $r->{err} =~ /^pbs-prolog: /,
       "pbs-prolog with $case->[0]: one line, exit 2") or diag(describe($r));
}
VexecTest::spew($conf, "VEXEC_PROLOG_CHECK='touch $state/pwned'\n");
chmod 0666, $conf;
$r = VexecTest::run(['env', '-i', "VEXEC_PROLOG_CONF=$conf", $pbs_prolog,
                     @torque_args, $addr[2]]);
ok(!one_line_error($r) && $r->{status} == 2
   && $r->{err} =~ /^pbs-prolog: \Q$conf\E: not ours, or writable by others$/
   && !-e "$state/pwned",
   'a settings file others can write: refused (one line, exit 2), not read')
    or diag(describe($r));
unlink $conf;

# A vexecd started as a job of an interactive shell: it leads its process
# group, so it cannot start a session of its own.  Its cgroup alone then
# holds what its rank starts, and its keeper ends all of it once it is
# killed (before: "no keeper", and both sleeps ran on).
# start_in_h4($log, $port, @cmd): run @cmd (which becomes a vexecd at
# $addr[3]:$port) in host h4's namespace, its output to $log; returns its
# pid and whether its daemon came to listen.
sub start_in_h4 {
    my ($log, $port, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log;
        open STDERR, '>&', \*STDOUT;
        exec('ip', 'netns', 'exec', "$prefix-h4", @cmd)
            or POSIX::_exit(127);
    }
    return ($pid, wait_until(30, sub {
        `ip netns exec $prefix-h4 ss -Hltn 'sport = :$port'` =~ /LISTEN/ }));
}
my $job_log = "$state/../job.log";
my ($job, $job_up) = start_in_h4($job_log, 7402, '/bin/sh', '-c',
    q{mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null; }
    . q{exec perl -e 'setpgrp(0, 0); exec { $ARGV[0] } @ARGV' "$@"},
    'vexecd', bin('vexecd'), '--address', "$addr[3]:7402",
    '--key', "$state/key", '--node', 'job');
ok($job_up, 'a vexecd started as a shell\'s job listens')
    or diag(VexecTest::slurp($job_log));
my ($job_sid) = VexecCluster::read_proc_file($job, 'stat') =~ /\) \S+ \d+ \d+ (\d+)/;
ok(defined $job_sid && $job_sid != $job,
   'it is not the leader of a session (it could not start one)');
my $job_cgroup = cgroup_dir($job);
ok(defined $job_cgroup && $job_cgroup =~ m{/vexecd-$job$},
   'but it is in a cgroup of its own')
    or diag('cgroup ' . ($job_cgroup // 'none') . ': ' . VexecTest::slurp($job_log));
my @job_cmd = ('/bin/dash', '-c', 'sleep 3031 >/dev/null 2>&1 & '
               . 'setsid sleep 3033 >/dev/null 2>&1 & sleep 3032');
$bg = start_bg([bin('vexec'), @key, '--hosts', "$addr[3]:1", '--port', 7402,
                @job_cmd], out => $kout, err => $kerr);
my @job_left;
ok(wait_until(60, sub {
       my @r = ranks_running(\@job_cmd, $job);
       @job_left = (@r, map { children_of($_) } @r);
       return @r == 1 && @job_left == 4;
   }), 'its rank runs, with three sleeps, one setsid')
    or diag(VexecTest::slurp($kerr));
kill 'KILL', $job;
waitpid($job, 0);
ok(wait_until(20, sub { !grep { pid_alive($_) } @job_left }),
   'kill -9 of it: its keeper ends its rank and all three sleeps')
    or diag('left running: ' . join(' ', grep { pid_alive($_) } @job_left)
            . '; ' . VexecTest::slurp($job_log));
ok(defined $job_cgroup && wait_until(10, sub { !-d $job_cgroup }),
   'and removes its cgroup');
$kstatus = wait_bg($bg, 120);
ok(defined $kstatus && $kstatus >> 8 != 0, 'vexec ends, non-zero')
    or diag('status ' . ($kstatus // 'hung') . ': ' . VexecTest::slurp($kerr));

# A vexecd that can make no cgroup (none mounted where it runs): it says
# so, and still ends, when a job ends by itself, all its rank left
# running: in its process group, in another group of its session, in a
# session of its own (each came to the daemon as an orphan: it is their
# reaper, PR_SET_CHILD_SUBREAPER).
my $nocg_log = "$state/../nocg.log";
my ($nocg, $nocg_up) = start_in_h4($nocg_log, 7403, 'setsid', bin('vexecd'),
                                   '--address', "$addr[3]:7403",
                                   '--key', "$state/key", '--node', 'nocg');
ok($nocg_up, 'a vexecd with no cgroup listens')
    or diag(VexecTest::slurp($nocg_log));
like(VexecTest::slurp($nocg_log), qr/no cgroup: /,
     'and says in one line that it has no cgroup');
$r = vexec([@key, '--hosts', "$addr[3]:1", '--port', 7403, '/bin/dash', '-c',
            'sleep 3051 >/dev/null 2>&1 & '
            . 'perl -e \'setpgrp(0, 0); exec "sleep", 3052\' >/dev/null 2>&1 & '
            . 'setsid sleep 3053 >/dev/null 2>&1 & '
            . 'for i in 1 2 3 4 5 6 7 8 9 10; do '
            . '[ "$(pgrep -cxf \'sleep 305[1-3]\')" = 3 ] && break; sleep 0.3; '
            . 'done; echo started $(pgrep -cxf \'sleep 305[1-3]\')']);
ok($r->{status} == 0 && $r->{out} eq "started 3\n",
   'its rank, which leaves three sleeps in the background, ends by itself')
    or diag(describe($r));
my @nocg_left;
ok(wait_until(20, sub {
       !(@nocg_left = map { procs_running('sleep', $_) } 3051 .. 3053) }),
   'and none of the sleeps runs on, in its group, out of it, or in a '
   . 'session of its own') or diag("left running: @nocg_left");
# Ended by SIGTERM under a running job, it ends all that job's rank left
# too, the setsid one as well (its keeper, with no cgroup, has only its
# session).
my @term_cmd = ('/bin/dash', '-c',
                'setsid sleep 3054 >/dev/null 2>&1 & exec sleep 3055');
$bg = start_bg([bin('vexec'), @key, '--hosts', "$addr[3]:1", '--port', 7403,
                @term_cmd], out => $kout, err => $kerr);
ok(wait_until(60, sub { procs_running('sleep', 3054)
                            && procs_running('sleep', 3055) }),
   'a job on it runs, its rank with a setsid sleep')
    or diag(VexecTest::slurp($kerr));
kill 'TERM', $nocg;
ok(wait_until(20, sub {
       !(@nocg_left = map { procs_running('sleep', $_) } 3054, 3055) }),
   'SIGTERM to the daemon ends its rank and the setsid sleep')
    or diag("left running: @nocg_left");
$kstatus = wait_bg($bg, 120);
ok(defined $kstatus && $kstatus >> 8 != 0, 'and vexec ends, non-zero')
    or diag('status ' . ($kstatus // 'hung') . ': ' . VexecTest::slurp($kerr));
kill 'KILL', $nocg;
waitpid($nocg, 0);

# A host that goes away while its ranks run (its link cut: nothing
# refuses, nothing answers): its daemons' parent hears no ALIVE from them
# for 3 s, then its probes of their addresses go unanswered (or find no
# route), and it gives them up as unreachable within seconds, not after
# 30 s of silence.  With kary:2 on 5 daemons, ranks 3 and 4 (host 4) are
# children of rank 1 (host 3); theirs run on (sleep 3081).  Cut off, each
# finds its parent's host gone by its own probes, waits the 60 s an
# orphan waits for an adopter, and ends its rank (before: it ran on).
# Once the link is back, host 4 takes launches again.
my @five = (@key, '--hosts', "$addr[0]:1,$addr[2]:2,$addr[3]:2", '--tree', 'kary:2');
my @cut_cmd = ('/bin/dash', '-c', '[ $BPROC_RANK -lt 3 ] || exec sleep 3081; '
                                  . 'sleep 6; echo "$BPROC_RANK done"');
$bg = start_bg([bin('vexec'), @five, @cut_cmd], out => $kout, err => $kerr);
ok(wait_until(60, sub { procs_running('sleep', 3081) == 2 }),
   "the ranks on host 4 ($addr[3]) run") or diag(VexecTest::slurp($kerr));
select(undef, undef, undef, 1.5);   # their first probes of their parent read
my $cut_at = time;
system('ip', 'link', 'set', "${prefix}v4", 'down') == 0 or diag("ip link: $?");
$kstatus = wait_bg($bg, 120);
my $cut_took = time - $cut_at;
@done = sort(lines(VexecTest::slurp($kout)));
@kerr = lines(VexecTest::slurp($kerr));
is_deeply(\@done, [map { sprintf('%07d done', $_) } 0 .. 2],
          'host 4 cut off under a job: the ranks of the other hosts finish')
    or diag(join("\n", @kerr));
my @gone = grep { /^vexec: 2 nodes failed: / } @kerr;
ok(defined $kstatus && $kstatus >> 8 != 0 && @gone == 1
   && $gone[0] =~ /\Q$addr[3]:7400\E \(stopped answering \(its host (is unreachable|did not answer a connection for 5 s)\)/
   && $gone[0] =~ /\Q$addr[3]:7401\E \(stopped answering \(its host /
   && !(grep { /failed:/ && !/\Q$addr[3]\E/ } @kerr),
   "vexec names both daemons of host 4 as unreachable and exits non-zero "
   . "(after ${cut_took} s)")
    or diag('status ' . ($kstatus // 'hung') . ': ' . join("\n", @kerr));
ok(wait_until(120, sub { !procs_running('sleep', 3081) }),
   'cut off, host 4\'s daemons end their ranks (after ' . (time - $cut_at)
   . ' s)') or diag('log: ' . VexecTest::slurp("$state/h4.0.log"));
like(VexecTest::slurp("$state/h4.0.log"),
     qr/parent \S+ is unreachable \(its host .*waiting to be adopted/,
     'its log says its parent\'s host went away');
system('ip', 'link', 'set', "${prefix}v4", 'up') == 0 or diag("ip link: $?");
$r = vexec([@key, '--hosts', "$addr[3]:2", '/bin/dash', '-c', 'echo back']);
ok($r->{status} == 0 && $r->{out} eq "back\nback\n",
   'its link back, host 4\'s daemons run a launch') or diag(describe($r));

# Node 0's daemon killed under a job: over tcp its children cannot see
# its process, but their probes of its address are refused from then on;
# no one can adopt them, so they end the job (before 2026-12-08 their
# ranks ran on).  Last: node 0 ($addr[0]:7400) is gone.
my $n0 = "$addr[0]:7400";
$bg = start_bg([bin('vexec'), @key, '--hosts', "$addr[0]:1,$addr[2]:2",
                '/bin/sleep', 3091], out => $kout, err => $kerr);
ok(wait_until(60, sub { procs_running('/bin/sleep', 3091) == 3 }),
   'a job of 3 ranks runs') or diag(VexecTest::slurp($kerr));
select(undef, undef, undef, 1.5);     # the children's first probes read
kill 'KILL', $daemon_pid{$n0};
ok(wait_until(30, sub { !procs_running('/bin/sleep', 3091) }),
   "kill -9 of node 0's daemon ($n0): every rank ends")
    or diag('logs: ' . VexecTest::slurp("$state/h3.0.log")
            . VexecTest::slurp("$state/h3.1.log"));
like(VexecTest::slurp("$state/h3.0.log") . VexecTest::slurp("$state/h3.1.log"),
     qr/parent \Q$n0\E died \(its address refused a connection\) and no one can adopt us/,
     'its children say why');
$kstatus = wait_bg($bg, 60);
ok(defined $kstatus && $kstatus >> 8 != 0, 'and vexec ends, non-zero')
    or diag('status ' . ($kstatus // 'hung') . ': ' . VexecTest::slurp($kerr));
delete $daemon_pid{$n0};

# Teardown.
my @cgroups = grep { defined } map { cgroup_dir($_) } values %daemon_pid;
is(scalar(@cgroups), scalar(keys %daemon_pid), 'each daemon left has a cgroup');
$r = netns('down', '--state', $state);
$torn_down = 1;
ok($r->{status} == 0, 'netns-hosts down') or diag(describe($r));
ok(!grep({ /^\Q$prefix\E-/ } `ip netns list`), 'no namespace left');
ok(!grep({ /: \Q$prefix\E/ } `ip -o link show`), 'no link left');
ok(!grep({ pid_alive($_) } values %daemon_pid), 'no daemon left');
# Each daemon's keeper (sweep.h) leaves once its daemon has ended.
sub keepers_left {
    return grep { pid_alive($_)
                  && VexecCluster::read_proc_file($_, 'comm') eq "vexecd-keeper\n"
                  && index(VexecCluster::read_proc_file($_, 'cmdline'), $state) >= 0 }
           map { m{^/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
}
my @keepers;
ok(wait_until(10, sub { !(@keepers = keepers_left()) }), 'no keeper left')
    or diag("keepers: @keepers");
ok(wait_until(10, sub { !grep { -d } @cgroups }), 'no cgroup left')
    or diag('cgroups: ' . join(' ', grep { -d } @cgroups));

done_testing();
