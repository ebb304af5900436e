#!/usr/bin/perl
# vexec-nodes.t - `vexec nodes [LIST]` answers through the tree: one line
# per node listed, the last launch each node served, busy nodes during a
# launch, exactly the killed daemons down (the children of a dead
# interior node still up), exit 0 only when every node listed is up; a
# bad LIST, no cluster or a query signed with another key give a clear
# error, and the refused query is logged and answered by no node.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes ();
use Test::More;
use VexecTest qw(bin slurp one_line_error);
use VexecCluster qw(need_vexec cluster_up cluster_down new_cluster_dir vexec
                    describe lines daemon_pids pid_alive wait_until start_bg
                    wait_bg daemon_cpu_ticks cluster_procs);

need_vexec();

my $dir = cluster_up(16);
my $tmp = tempdir('vxnodes-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# nodes(@args): runs `vexec nodes ARGS`; returns the result with
# {rows} = { NODE => [columns] } in {order}, and {summary}.
sub nodes {
    my $r = vexec(['nodes', @_]);
    my @l = lines($r->{out});
    $r->{header} = shift @l // '';
    $r->{summary} = pop @l // '';
    for (@l) {
        my @c = split ' ', $_, 4;
        my @rest = $c[1] eq 'down' ? ($c[3]) : split ' ', $c[3] // '';
        push @{ $r->{order} }, $c[0];
        $r->{rows}{$c[0]} = [ $c[1], $c[2], @rest ];
    }
    $r->{order} //= [];
    return $r;
}

sub state_of { my ($r, $n) = @_; return $r->{rows}{$n} ? $r->{rows}{$n}[0] : 'missing' }

my @all = map { "n$_" } 0 .. 15;

# ---- all up ----
my $r = nodes();
ok($r->{status} == 0 && $r->{err} eq '', 'all up: exit 0, nothing on stderr')
    or diag(describe($r));
like($r->{header}, qr/^NODE\s+STATE\s+ADDRESS\s+LOAD\s+RSS\s+JOB\s+RANK\s+IMAGE\s+RAN\s+EXIT\s+AGO$/,
     'a header names the columns');
is(join(' ', @{ $r->{order} }), join(' ', @all), 'one line per node, n0 .. n15 in order');
is(scalar(grep { state_of($r, $_) eq 'up' } @all), 16, 'every node is up');
is($r->{summary}, '16 nodes: 16 up, 0 down', 'the summary counts them');
my $name = slurp("$dir/name");
chomp $name;
ok(!grep({ $r->{rows}{$_}[1] ne "$name.$_" } @all),
   'each line gives the node\'s endpoint address') or diag($r->{out});
ok(!grep({ $r->{rows}{$_}[3] !~ /^\d+\.\dM$/ || $r->{rows}{$_}[4] ne '-' } @all),
   'each up node reports its daemon\'s RSS, and no launch yet') or diag($r->{out});

my $again = 0;
$again += nodes()->{status} == 0 for 1 .. 10;
is($again, 10, 'ten queries back to back are all answered');

# ---- a daemon that does not answer (stopped): down after a bounded time ----
my %pid = daemon_pids($dir);
kill 'STOP', $pid{n15};
my $t0 = Time::HiRes::time();
$r = nodes('--tree', 'kary:2');
my $took = Time::HiRes::time() - $t0;
kill 'CONT', $pid{n15};
ok($r->{status} == 1 && $r->{summary} eq '16 nodes: 15 up, 1 down'
   && state_of($r, 'n15') eq 'down'
   && $r->{rows}{n15}[2] =~ /^(no answer within|\S+\.n15 is stopped \(asked by \S+\.n7\))/,
   "a stopped daemon is reported down (no answer) after ${\ sprintf('%.1f', $took)} s, the others up")
    or diag(describe($r) . "\n$r->{out}");
ok($took < 20, 'within the bounded time');
$r = nodes();
ok($r->{status} == 0, 'once it runs again, every node is up') or diag($r->{out});

# ---- after a launch: the last-launch columns show that job ----
my $l = vexec(['-n', 16, '/bin/dash', '-c',
               'case $BPROC_RANK in 0000005) exit 3;; esac; exit 0']);
is($l->{status}, 3, 'a 16-rank launch where rank 5 exits 3') or diag(describe($l));
$r = nodes();
my %jobs = map { $r->{rows}{$_}[4] => 1 } @all;
my ($job) = keys %jobs;
ok(keys(%jobs) == 1 && $job =~ /^[0-9a-f]{16}$/,
   "every node names the same last job ($job)") or diag($r->{out});
ok(!grep({ $r->{rows}{"n$_"}[5] != $_ } 0 .. 15), 'node i ran rank i')
    or diag($r->{out});
ok(!grep({ $r->{rows}{$_}[8] ne ($_ eq 'n5' ? '3' : '0') } @all),
   'EXIT is 3 on n5 and 0 everywhere else') or diag($r->{out});
ok(!grep({ $r->{rows}{$_}[6] !~ /^[\d.]+(ms|s)$/ || $r->{rows}{$_}[7] !~ /^[\d.]+(ms|s)$/ } @all),
   'IMAGE and RAN are durations') or diag($r->{out});

# ---- during a launch: busy ----
my ($out, $err) = ("$tmp/bg.out", "$tmp/bg.err");
my $bg = start_bg([bin('vexec'), '-n', 2, '/bin/dash', '-c',
                   'echo started; exec sleep 30'], out => $out, err => $err);
ok(wait_until(30, sub { (() = slurp($out) =~ /^started$/mg) == 2 }),
   'a 2-rank launch runs') or diag(slurp($err));
$r = nodes('n[0-2]');
ok($r->{status} == 0 && state_of($r, 'n0') eq 'busy' && state_of($r, 'n1') eq 'busy'
   && state_of($r, 'n2') eq 'up' && $r->{rows}{n0}[7] =~ /\+$/,
   'while it runs, n0 and n1 are busy (RAN ends in +), n2 is up')
    or diag(describe($r) . "\n$r->{out}");
is($r->{summary}, '3 nodes: 3 up (2 busy), 0 down', 'busy nodes count as up');
kill 'TERM', $bg;
ok(defined wait_bg($bg, 30), 'the launch ends on SIGTERM');

# ---- LIST ----
$r = nodes('n[3-5],n9');
ok($r->{status} == 0 && join(' ', @{ $r->{order} }) eq 'n3 n4 n5 n9'
   && $r->{summary} eq '4 nodes: 4 up, 0 down',
   'a LIST asks only its nodes, in its order') or diag(describe($r) . "\n$r->{out}");

for my $bad (['n[1-', 'bad hostlist'], ['n99', 'unknown node'],
             ['n1,n1', 'a node twice']) {
    $r = vexec(['nodes', $bad->[0]]);
    my @wrong = one_line_error($r);
    ok($r->{status} == 2 && !@wrong && $r->{err} =~ /^vexec: /,
       "$bad->[1] '$bad->[0]': one vexec: line, exit 2") or diag(describe($r), @wrong);
}
$r = vexec(['nodes', '--tree', 'nosuch']);
ok($r->{status} == 2 && !one_line_error($r), 'a bad --tree: exit 2, one line')
    or diag(describe($r));

# ---- a query signed with another key ----
my $wrong = "$tmp/wrong.key";
sysopen(my $kf, $wrong, POSIX::O_WRONLY() | POSIX::O_CREAT(), 0600) or die "$wrong: $!";
print $kf map { chr(int(rand(256))) } 1 .. 32;
close $kf;
my $log_before = length slurp("$dir/log");
$r = nodes('--key', $wrong, 'n[0-1]');
ok($r->{status} == 1 && $r->{summary} eq '2 nodes: 0 up, 2 down'
   && !grep({ state_of($r, $_) ne 'down' || $r->{rows}{$_}[2] !~ /^no answer/ } 'n0', 'n1'),
   'another key: no node answers, both are reported down with no answer, exit 1')
    or diag(describe($r) . "\n$r->{out}");
like($r->{err}, qr/^vexec: no node answered: .*key/, 'and vexec says why that may be');
my $log = '';
wait_until(5, sub { ($log = substr(slurp("$dir/log"), $log_before)) =~ /refused QUERY/ });
like($log, qr/^vexecd n0: refused QUERY of job 0x[0-9a-f]+: credential does not verify/m,
     'node 0 logs the refused query');
unlike($log, qr/^vexecd n1: /m, 'and the query went no further');

# ---- two dead daemons, one of them interior ----
kill 'KILL', $pid{n1}, $pid{n6};
ok(wait_until(10, sub { !pid_alive($pid{n1}) && !pid_alive($pid{n6}) }),
   'n1 and n6 are killed with SIGKILL');
for my $tree ('kary:2', 'kary:4', 'binomial') {
    $r = nodes('--tree', $tree);
    my @down = grep { state_of($r, $_) eq 'down' } @all;
    ok($r->{status} == 1 && "@down" eq 'n1 n6' && $r->{summary} eq '16 nodes: 14 up, 2 down',
       "tree $tree: exactly n1 and n6 are down, the 14 others up, exit 1")
        or diag(describe($r) . "\n$r->{out}");
    like($r->{rows}{n1}[2] // '', qr/not running/, "tree $tree: n1's line says its daemon is gone");
}
# In kary:2, n1's children are n3 and n4, and theirs n7 .. n10.
$r = nodes('--tree', 'kary:2', 'n[0-15]');
ok(!grep({ state_of($r, "n$_") ne 'up' } 3, 4, 7 .. 10),
   'kary:2: the subtree below the dead n1 is reported up') or diag($r->{out});
$r = nodes('--tree', 'kary:2', 'n1,n3,n4');
ok($r->{status} == 1 && state_of($r, 'n1') eq 'down' && state_of($r, 'n3') eq 'up'
   && state_of($r, 'n4') eq 'up',
   'the tree\'s root dead: the gateway asks its children itself, and they answer')
    or diag(describe($r) . "\n$r->{out}");
$r = nodes('n[1,6]');
ok($r->{status} == 1 && $r->{summary} eq '2 nodes: 0 up, 2 down',
   'a LIST of dead nodes only (the root dead too): both down, exit 1')
    or diag(describe($r) . "\n$r->{out}");

# ---- idle: no CPU after the queries ----
my @procs = grep { pid_alive($_) } cluster_procs($dir);
my $ticks = daemon_cpu_ticks(@procs);
sleep 2;
is(daemon_cpu_ticks(@procs) - $ticks, 0, 'after the queries, daemons and gateway use no CPU');

# ---- no cluster ----
{
    local $ENV{VEXEC_CLUSTER} = new_cluster_dir();
    $r = vexec(['nodes']);
    ok($r->{status} == 1 && !one_line_error($r) && $r->{err} =~ /^vexec: .*vexec-cluster up/,
       'no cluster: one vexec: line, exit 1') or diag(describe($r));
}

$r = cluster_down($dir);
ok($r->{status} == 0, 'the cluster comes down') or diag(describe($r));

done_testing();
