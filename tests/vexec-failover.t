#!/usr/bin/perl
# vexec-failover.t - a daemon that dies (kill -9) or stops (SIGSTOP) while
# a 64 MB image streams through it: every other node still runs its rank
# exactly once, vexec names exactly the dead node in one line and exits
# non-zero (0 with --keep-going), nothing hangs, and the cluster's next
# launch works (no stale receives left on any endpoint).  And a daemon
# killed while its rank runs takes that rank with it; a killed node 0 or
# gateway, above every rank of a running job, leaves none of them running.
#
# The daemon is really killed or stopped, by this test, once it has
# started taking the image: its VmRSS grows by the image buffer when the
# LAUNCH arrives (the buffer is faulted in then, just before the first
# chunk), and the kill comes 50 ms after that.  First the daemon must have
# freed the previous launch's image, or the new launch reuses its buffer
# and the RSS does not grow.  On 16 nodes the chunks are 64 KiB, so that
# the stream through one node lasts long enough on an idle machine too.
#
# First on 16 nodes with --tree kary:2 (1 GB of images in all), then the
# must-hold case: 255 nodes with --tree kary:4, ~16 GB of images; that part
# takes /tmp/vexec-bigmem.lock so only one such run holds the memory on
# the machine, and brings its cluster down before it ends.  It is skipped
# in a sanitizer build (build/san): ASan's own memory in each of 255
# daemons on top of 16 GB of images would not fit a 24 GB machine; the
# 16-node part runs the same code there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);
use VexecTest qw(bin prog slurp);
use VexecCluster qw(need_vexec cluster_up cluster_down daemon_pids
                    daemon_rss describe lines start_bg wait_bg
                    pid_alive wait_until kill_under_ranks gateway_pid
                    ranks_running children_of cgroup_dir procs_running);

need_vexec();

my $PROG = prog('big64m-static');
my $tmp = tempdir(CLEANUP => 1);
# A launch that hangs is a failure, not a wait: far above the ~30 s that
# the slowest case takes on a loaded 2-core machine.
my $LIMIT = 300;

# launch_and_hit($signal, $node, @vexec_args): start vexec in the
# background, wait until $node's daemon has taken the LAUNCH (its RSS
# grew by the image buffer), let the image stream a moment, send $signal
# to the daemon; returns vexec's result (status, out, err) once it ends.
sub launch_and_hit {
    my ($signal, $node, @args) = @_;
    my %pid = daemon_pids();
    my $target = $pid{$node} or die "no daemon $node";
    # A daemon frees the previous launch's image only once its last report
    # has been sent, which may be just after that vexec ended; until then a
    # new launch reuses the buffer and its RSS would not grow.
    my ($idle) = sort { $a <=> $b } grep { $_ > 0 }
                 map { daemon_rss($_) } values %pid;
    my $settle = time() + 30;
    sleep(0.01) while daemon_rss($target) > $idle + 32768 && time() < $settle;
    my $rss0 = daemon_rss($target);
    my ($out, $err) = ("$tmp/out", "$tmp/err");
    my $vexec = start_bg([bin('vexec'), @args, $PROG], out => $out,
                         err => $err);
    my ($took, $end) = (0, time() + 120);
    until (($took = daemon_rss($target) > $rss0 + 32768) || time() > $end) {
        sleep(0.005);
    }
    sleep(0.05);
    kill $signal, $target;
    my $status = wait_bg($vexec, $LIMIT);
    return { status => defined $status ? $status >> 8 : 124,
             hung => !defined $status, took => $took,
             out => slurp($out), err => slurp($err), target => $target };
}

# check_survivors($name, $r, $dead, @ranks): every rank in @ranks printed
# "big64m ok" exactly once and nothing else did.
sub check_survivors {
    my ($name, $r, @ranks) = @_;
    my %want = map { $_ => 1 } @ranks;
    my (%seen, @bad);
    for my $l (lines($r->{out})) {
        if ($l =~ /^\[(\d+)\] big64m ok$/ && $want{$1}) { $seen{$1}++ }
        else { push @bad, $l }
    }
    my @wrong = grep { ($seen{$_} // 0) != 1 } @ranks;
    ok(!$r->{hung} && $r->{took} && !@bad && !@wrong, $name)
        or diag("hung $r->{hung} took " . ($r->{took} // 0)
                . "; ranks not run once: @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]"
                . "; stray lines: @bad[0 .. ($#bad < 4 ? $#bad : 4)]; stderr: "
                . substr($r->{err}, 0, 600));
}

# names_only($r, $node, $how): stderr has one line naming exactly $node
# as failed, for reason $how.
sub names_only {
    my ($r, $node, $how) = @_;
    my @l = grep { /node.* failed:/ } lines($r->{err});
    return @l == 1 && $l[0] =~ /^vexec: 1 node failed: \Q$node\E \($how/;
}

# check_clean($name, $n, @args): a launch on the nodes left works.
sub check_clean {
    my ($name, $n, @args) = @_;
    local $VexecTest::TIMEOUT = $LIMIT;
    my $r = VexecCluster::vexec(['-l', @args, $PROG]);
    my @ok = grep { /^\[\d+\] big64m ok$/ } lines($r->{out});
    ok($r->{status} == 0 && @ok == $n && $r->{err} eq '', $name)
        or diag(describe($r) . "; " . scalar(@ok) . " of $n ran");
}

# The nodes of a cluster of $n but @gone, as a hostlist.
sub nodes_but {
    my ($n, @gone) = @_;
    my %g = map { $_ => 1 } @gone;
    return join(',', map { "n$_" } grep { !$g{$_} } 0 .. $n - 1);
}

sub scenario {
    my ($n, $tree, $kill, $stop, @opt) = @_;
    my @ranks = grep { $_ != $kill } 0 .. $n - 1;

    my $r = launch_and_hit('KILL', "n$kill", '-l', '--tree', $tree, @opt);
    check_survivors("$n nodes, $tree, kill -9 of n$kill mid-stream: every "
                    . "other rank ran once", $r, @ranks);
    ok(names_only($r, "n$kill", 'died') && $r->{status} != 0,
       "vexec names exactly n$kill as dead and exits non-zero")
        or diag("status $r->{status}; stderr: " . substr($r->{err}, 0, 600));
    my $log = slurp("$ENV{VEXEC_CLUSTER}/log");
    like($log, qr/adopted by/, 'the dead node\'s children were adopted');
    check_clean("the next launch on the $n-1 live nodes works", $n - 1,
                '-w', nodes_but($n, $kill), '--tree', $tree);

    # With --keep-going, rank i runs on the i-th node of the list.
    my @list = grep { $_ != $kill } 0 .. $n - 1;
    my ($srank) = grep { $list[$_] == $stop } 0 .. $#list;
    $r = launch_and_hit('STOP', "n$stop", '-l', '--keep-going', '--tree',
                        $tree, @opt, '-w', nodes_but($n, $kill));
    kill 'KILL', $r->{target};
    check_survivors("SIGSTOP of n$stop mid-stream: every other rank ran once",
                    $r, grep { $_ != $srank } 0 .. $#list);
    ok(names_only($r, "n$stop", 'was stopped') && $r->{status} == 0,
       "vexec names exactly n$stop as stopped; --keep-going exits 0")
        or diag("status $r->{status}; stderr: " . substr($r->{err}, 0, 600));
    check_clean('and the next launch works', $n - 2,
                '-w', nodes_but($n, $kill, $stop), '--tree', $tree);
}

# kill_under_job($what, $victim, $expect, @nodes): run /bin/sleep 300 as
# one rank on each of @nodes (kary:2, in that order), kill -9 the pid
# $victim once every rank runs, and check that vexec ends non-zero with a
# line matching $expect, and that every rank ends too: none may run on
# with nothing left to report its exit or to kill it.
sub kill_under_job {
    my ($what, $victim, $expect, @nodes) = @_;
    my %pid = daemon_pids();
    my $r = kill_under_ranks(
        cmd => [bin('vexec'), '-n', scalar(@nodes), '-w', join(',', @nodes),
                '--tree', 'kary:2', '/bin/sleep', '300'],
        out => "$tmp/out", err => "$tmp/err",
        rank_cmd => ['/bin/sleep', '300'], ranks => scalar(@nodes),
        daemons => [map { $pid{$_} or die "no daemon $_" } @nodes],
        victim => sub { $victim }, limit => $LIMIT);
    my ($status, $err, @ranks) = ($r->{status}, $r->{err}, @{ $r->{ranks} });
    ok($r->{all} && defined $status && $status >> 8 != 0 && $err =~ $expect,
       "kill -9 of $what while " . @nodes . " ranks run: vexec says so, "
       . "exits non-zero")
        or diag(scalar(@ranks) . " of " . @nodes . " ranks started; status "
                . ($status // 'hung') . "; stderr: " . substr($err, 0, 400));
    ok($r->{all} && wait_until(30, sub { !grep { pid_alive($_) } @ranks }),
       "and every rank (/bin/sleep 300) ends")
        or diag('still running: '
                . join('; ', VexecCluster::stray_procs()));
}

cluster_up(16);
scenario(16, 'kary:2', 1, 2, '--chunk', '64K');
# n1, n2 are gone now.  The rank of a killed daemon dies with it; a dead
# node 0's subtree (which nothing can adopt) and a dead gateway's whole
# tree end their ranks at once.
my %d = daemon_pids();
kill_under_job('n9', $d{n9}, qr/^vexec: node n9 died/m, 'n9');
my @live = map { "n$_" } 0, 3 .. 8, 10 .. 15;
kill_under_job('node 0 (n0)', $d{n0},
               qr/^vexec: node n0 died; the ranks below it are lost$/m,
               @live);
shift @live;
kill_under_job('the gateway', gateway_pid(),
               qr/^vexec: the cluster's gateway went away/m, @live);
cluster_down();

# --- what a rank started ends with its daemon ---------------------------------
# Each rank is a shell with two sleeps of its own, and a third one in a
# session of its own (setsid) where the test says.  The kernel ends the
# rank with its daemon (PR_SET_PDEATHSIG), not the sleeps: the node (or
# vexec, for node 0) that sees the daemon dead ends the rest of that
# daemon's cgroup and session (launcher/sweep.h).  A job told to end ends
# its ranks' process groups and, in each daemon's cgroup, what left them.

# kill_under_shells($what, $victim, @nodes): run a shell as one rank on
# each of @nodes (kary:2, in that order), kill -9 the daemon of node
# $victim (if one is named; its rank alone runs the setsid sleep, else
# every rank does) once every rank runs its sleeps, and check that its
# rank and all three sleeps end, and its cgroup goes; then interrupt
# vexec (one SIGINT, which the shells' background sleeps ignore) and check
# that nothing of the job is left.
sub kill_under_shells {
    my ($what, $victim, @nodes) = @_;
    my ($vrank) = grep { defined $victim && $nodes[$_] eq $victim } 0 .. $#nodes;
    my $setsid = defined $victim ? "[ \$BPROC_RANK -eq $vrank ]" : 'true';
    my @sh = ('/bin/sh', '-c', '/bin/sleep 3001 & '
              . "if $setsid; then setsid /bin/sleep 3004 & fi; "
              . '/bin/sleep 3002; wait');
    my %pid = daemon_pids();
    my $bg = start_bg([bin('vexec'), '-n', scalar(@nodes), '-w',
                       join(',', @nodes), '--tree', 'kary:2', @sh],
                      out => "$tmp/sh.out", err => "$tmp/sh.err");
    my (%rank, %kids);
    my $all = wait_until(60, sub {
        %rank = ();
        for my $node (@nodes) {
            my @r = ranks_running(\@sh, $pid{$node});
            $rank{$node} = $r[0] if @r == 1;
        }
        return 0 unless keys %rank == @nodes;
        %kids = map { $_ => [children_of($rank{$_})] } @nodes;
        return !grep { @{ $kids{$_} }
                       != (!defined $victim || $_ eq $victim ? 3 : 2) } @nodes;
    });
    ok($all, "$what: every rank runs its sleeps")
        or diag(scalar(keys %rank) . ' of ' . @nodes . ' ranks found');
    if (defined $victim) {
        my $cgroup = cgroup_dir($pid{$victim});
        kill 'KILL', $pid{$victim};
        my @left = ($rank{$victim} // (), @{ $kids{$victim} // [] });
        ok($all && wait_until(30, sub { !grep { pid_alive($_) } @left }),
           "$what: kill -9 of $victim ends its rank and the three sleeps that rank "
           . 'started, the setsid one too')
            or diag('still running: ' . join(', ', grep { pid_alive($_) } @left));
        ok(defined $cgroup && wait_until(10, sub { !-d $cgroup }),
           "$what: and the cgroup of $victim is removed")
            or diag('cgroup: ' . ($cgroup // 'none'));
    }
    kill 'INT', $bg;
    my $status = wait_bg($bg, $LIMIT);
    my @job = map { ($rank{$_}, @{ $kids{$_} }) } keys %rank;
    ok(defined $status && wait_until(30, sub { !grep { pid_alive($_) } @job }),
       "$what: once vexec has ended, nothing of the job runs")
        or diag('vexec ' . ($status // 'hung') . '; still running: '
                . join(', ', grep { pid_alive($_) } @job));
}

cluster_up(4);
kill_under_shells('SIGINT', undef, 'n0', 'n1', 'n2');
kill_under_shells('a leaf', 'n2', 'n1', 'n2');
kill_under_shells('node 0', 'n3', 'n3', 'n0');

# A rank that has exited while what it started holds its output open:
# vexec waits for that output (as ssh does) until one SIGINT, which ends
# what is left of the rank's process group.
{
    my @bgsh = ('/bin/sh', '-c', '/bin/sleep 3003 &');
    my $bg = start_bg([bin('vexec'), '-n', 2, '-w', 'n0,n1', @bgsh],
                      out => "$tmp/bg.out", err => "$tmp/bg.err");
    my @sleeps;
    my $waiting = wait_until(60, sub {
        @sleeps = procs_running('/bin/sleep', '3003');
        return @sleeps == 2 && !procs_running(@bgsh);
    });
    ok($waiting && pid_alive($bg),
       'ranks gone, their background sleeps holding their output: vexec waits')
        or diag(scalar(@sleeps) . ' sleeps');
    kill 'INT', $bg;
    my $status = wait_bg($bg, 60);
    ok(defined $status && wait_until(30, sub { !grep { pid_alive($_) } @sleeps }),
       'one SIGINT then ends vexec and both sleeps')
        or diag('vexec ' . ($status // 'hung') . '; still running: '
                . join(', ', grep { pid_alive($_) } @sleeps));
}

# A job that ends by itself (no signal) ends what its ranks left running
# once their output is closed: a background sleep that let go of it, and
# one taken out of the rank's session (setsid), on each node, as srun
# ends what is left of a step.  The daemons stay, and serve the next job
# (n2 and n3 are gone: killed above).
{
    my @sh = ('/bin/sh', '-c', '/bin/sleep 3005 >/dev/null 2>&1 & '
              . 'setsid /bin/sleep 3006 >/dev/null 2>&1 & echo started');
    my %before = daemon_pids();
    my $r = VexecCluster::vexec(['-n', 2, '-w', 'n0,n1', @sh]);
    is($r->{status}, 0, 'a job whose ranks leave two sleeps each ends by itself')
        or diag(describe($r));
    is(scalar(() = $r->{out} =~ /^started$/mg), 2, 'each of its 2 ranks ran');
    my @left;
    ok(wait_until(30, sub {
        @left = (procs_running('/bin/sleep', '3005'),
                 procs_running('/bin/sleep', '3006'));
        return !@left;
    }), 'once vexec has ended, none of the 4 sleeps runs, the setsid ones too')
        or diag('still running: ' . join(', ', @left));
    is_deeply({ daemon_pids() }, \%before, 'every daemon still runs');
    $r = VexecCluster::vexec(['-n', 2, '-w', 'n0,n1', '/bin/echo', 'again']);
    is($r->{status} . scalar(() = $r->{out} =~ /^again$/mg), '02',
       'and the next job runs on them all');
}

# A process a rank takes out of its session and into another cgroup
# itself is out of reach of the daemon's cgroup and of its rank's group,
# but it is still below the daemon (a rank's orphans come to it): it
# ends with its job.
SKIP: {
    my %daemon = daemon_pids();
    my $cgroup = cgroup_dir($daemon{n0});
    skip('the daemons have no cgroup here', 2) unless defined $cgroup;
    (my $away = $cgroup) =~ s{/[^/]+$}{/vexec-test-away-$$};
    mkdir $away or skip("mkdir $away: $!", 2);
    my @sh = ('/bin/sh', '-c', 'setsid /bin/sh -c \'echo $$ > ' . $away
              . '/cgroup.procs && exec /bin/sleep 3007\' >/dev/null 2>&1 & '
              . 'for i in 1 2 3 4 5 6 7 8 9 10; do '
              . "grep -qx \$! $away/cgroup.procs && break; sleep 0.3; done; "
              . "grep -qx \$! $away/cgroup.procs && echo moved");
    my $r = VexecCluster::vexec(['-n', 2, '-w', 'n0,n1', @sh]);
    is($r->{status} . scalar(() = $r->{out} =~ /^moved$/mg), '02',
       'a job whose ranks each move a sleep into another cgroup ends')
        or diag(describe($r));
    my @left;
    ok(wait_until(30, sub { !(@left = procs_running('/bin/sleep', '3007')) }),
       'and neither sleep runs on')
        or diag('still running: ' . join(', ', @left) . '; in the cgroup: '
                . VexecTest::slurp("$away/cgroup.procs"));
    kill 'KILL', @left;
    wait_until(10, sub { rmdir $away });
}
cluster_down();

SKIP: {
    skip('255 x 64 MB under a sanitizer does not fit this machine', 8)
        if VexecTest::build_dir() =~ m{/san/?$};
    # 255 daemons x a 64 MB image: one such run at a time on the machine.
    open my $lock, '>>', '/tmp/vexec-bigmem.lock' or die "lock: $!";
    flock($lock, LOCK_EX) or die "flock: $!";
    cluster_up(255);
    # n5 (kary:4) has children 21..24 and 20 nodes below it; with n5 left
    # out, n6 is rank 5 there, with four children and their subtrees to
    # be adopted by rank 1.
    scenario(255, 'kary:4', 5, 6);
    my $r = cluster_down();
    ok($r->{status} == 0, 'the 255-node cluster comes down')
        or diag(describe($r));
    close $lock;
}

done_testing();
