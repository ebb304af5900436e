#!/usr/bin/perl
# vexec-status.t - vexec's exit status is the highest rank code (128+N for
# a rank killed by signal N) with one "vexec: " line naming the failed
# ranks; a clean run says nothing on stderr; SIGINT or SIGTERM to vexec
# ends every rank and vexec, leaving no rank process behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(bin slurp);
use VexecCluster qw(need_vexec cluster_up vexec describe lines stray_procs
                    wait_until start_bg wait_bg pid_alive);

need_vexec();

cluster_up(8);
my $tmp = tempdir(CLEANUP => 1);

# The summary line: exactly one stderr line, starting "vexec: ".
sub summary_line {
    my ($r) = @_;
    my @l = lines($r->{err});
    return @l == 1 && $r->{err} =~ /\n\z/ && $l[0] =~ /^vexec: / ? $l[0] : undef;
}

# The line names exactly the failed ranks: the numbers written after
# "rank" or "ranks" ("rank 3 exited 3, rank 5 exited 2", "ranks 3 and 5").
sub names_exactly {
    my ($line, @failed) = @_;
    return 0 unless defined $line;
    my %named;
    while ($line =~ /\branks?\s+((?:\d+(?:\s*,\s*|\s+and\s+)?)+)/g) {
        $named{$_} = 1 for $1 =~ /(\d+)/g;
    }
    return join(',', sort { $a <=> $b } keys %named) eq join(',', sort { $a <=> $b } @failed);
}

my $r = vexec(['-n', 8, '/bin/dash', '-c',
               'case $BPROC_RANK in 0000003) exit 3;; 0000005) exit 2;; esac; exit 0']);
is($r->{status}, 3, 'rank 3 exits 3, rank 5 exits 2: vexec exits 3')
    or diag(describe($r));
my $line = summary_line($r);
ok(defined $line, 'one stderr line starting "vexec: "') or diag(describe($r));
ok(names_exactly($line, 3, 5), 'it names ranks 3 and 5 and no other')
    or diag("stderr: $r->{err}");
is($line, 'vexec: 2 of 8 ranks failed: rank 3 on n3 exited 3, rank 5 on n5 exited 2',
   'each with its node, as srun names them');
is($r->{out}, '', 'nothing on stdout');

# The highest code wins, whatever rank has it.
$r = vexec(['-n', 8, '/bin/dash', '-c',
            'case $BPROC_RANK in 0000000) exit 1;; 0000007) exit 42;; esac']);
ok($r->{status} == 42 && names_exactly(summary_line($r), 0, 7),
   'rank 0 exits 1, rank 7 exits 42: vexec exits 42, names ranks 0 and 7')
    or diag(describe($r));

$r = vexec(['-n', 4, '/bin/dash', '-c',
            'case $BPROC_RANK in 0000002) kill -SEGV $$;; esac; exit 0']);
ok($r->{status} == 139 && !$r->{signal}, 'a rank killed by SIGSEGV: vexec exits 139')
    or diag(describe($r));
ok(names_exactly(summary_line($r), 2), 'one "vexec: " line naming rank 2')
    or diag("stderr: $r->{err}");

# A signal code above a plain exit code: 128+9 beats exit 100.
$r = vexec(['-n', 3, '/bin/dash', '-c',
            'case $BPROC_RANK in 0000000) exit 100;; 0000001) kill -KILL $$;; esac']);
ok($r->{status} == 137 && names_exactly(summary_line($r), 0, 1),
   'exit 100 on rank 0, SIGKILL on rank 1: vexec exits 137 and names both')
    or diag(describe($r));

$r = vexec(['-n', 8, '/bin/dash', '-c', 'echo ok']);
ok($r->{status} == 0 && $r->{err} eq '' && $r->{out} eq "ok\n" x 8,
   'all ranks exit 0: vexec exits 0 with empty stderr')
    or diag(describe($r));

# SIGINT / SIGTERM while 8 ranks sleep: every rank ends and vexec exits.
for my $sig (qw(INT TERM)) {
    my $marker = "1000.$$" . int(rand(1e6));
    my $pids = tempdir(DIR => $tmp);
    my ($out, $err) = ("$tmp/$sig.out", "$tmp/$sig.err");
    my $pid = start_bg([bin('vexec'), '-n', 8, '/bin/dash', '-c',
                        "echo \$\$ > $pids/\$BPROC_RANK; echo started; exec sleep $marker"],
                       out => $out, err => $err);
    my $started = wait_until(30, sub { (() = slurp($out) =~ /^started$/mg) == 8 });
    ok($started, "SIG$sig: all 8 ranks started") or diag("stdout: " . slurp($out)
                                                       . " stderr: " . slurp($err));
    my @rank_pids = map { my $p = slurp($_); chomp $p; $p } glob("$pids/*");
    my @running = stray_procs(marker => $marker);
    ok(@rank_pids == 8 && !grep({ !pid_alive($_) } @rank_pids) && @running >= 8,
       "SIG$sig: the 8 ranks are running (and seen as launch processes)")
        or diag("pids: @rank_pids; seen: @running");
    kill $sig, $pid;
    my $status = wait_bg($pid, 30);
    ok(defined $status, "SIG$sig: vexec exits within 30 s")
        or diag("stderr: " . slurp($err));
    my $left = wait_until(10, sub {
        !grep { pid_alive($_) } @rank_pids and !stray_procs(marker => $marker) });
    ok($left, "SIG$sig: no rank process is left")
        or diag("left: " . join(', ', stray_procs(marker => $marker)));
    ok(defined $status && $status != 0, "SIG$sig: vexec's exit status is not 0")
        or diag("status " . ($status // 'none'));
    # Take down what a broken vexec left: these are our own processes.
    kill 'KILL', grep { pid_alive($_) } @rank_pids;
}

# --timeout (and Hydra's MPIEXEC_TIMEOUT): past the limit every rank gets
# SIGTERM, and SIGKILL 5 s later; vexec exits 124 (as timeout(1)), having
# said why first.  The test harness's own timeout(1) also exits 124, so
# the checks look for vexec's line.
sub timed_out {
    my ($r, $limit, $signo) = @_;
    my @l = lines($r->{err});
    return $r->{status} == 124 && !$r->{signal} && @l == 2
        && $l[0] eq "vexec: time limit of $limit s reached: ending every rank"
        && $l[1] =~ /^vexec: 4 of 4 ranks failed: rank 0 on n0 killed by signal $signo\b/
        && names_exactly($l[1], 0 .. 3)
        && (() = $r->{out} =~ /^started$/mg) == 4;
}
for my $case (['--timeout 1', 'TERM', 15, ['--timeout', 1], ''],
              ['--timeout 1.5, ranks ignoring SIGTERM', 'KILL', 9,
               ['--timeout', '1.5'], 'trap "" TERM; '],
              ['MPIEXEC_TIMEOUT=1', 'TERM', 15, [], '']) {
    my ($what, $sig, $signo, $opt, $trap) = @$case;
    my $marker = "1001.$$" . int(rand(1e6));
    my @env = @$opt ? () : ('env', 'MPIEXEC_TIMEOUT=1');
    my $limit = @$opt ? $opt->[1] : 1;
    $r = VexecTest::run([@env, bin('vexec'), '-n', 4, @$opt, '/bin/dash', '-c',
                         "${trap}echo started; sleep $marker; echo woke"]);
    ok(timed_out($r, $limit, $signo),
       "$what: 4 sleeping ranks get SIG$sig, vexec says so and exits 124")
        or diag(describe($r));
    ok(wait_until(10, sub { !stray_procs(marker => $marker) }),
       "$what: no rank process is left")
        or diag('left: ' . join(', ', stray_procs(marker => $marker)));
}
$r = vexec(['-n', 4, '--timeout', 30, '/bin/echo', 'hi']);
ok($r->{status} == 0 && $r->{err} eq '' && $r->{out} eq "hi\n" x 4,
   'ranks that end within --timeout: exit 0, nothing said')
    or diag(describe($r));
$r = VexecTest::run(['env', 'MPIEXEC_TIMEOUT=1', bin('vexec'), '-n', 4,
                     '--timeout', 0, '/bin/dash', '-c', 'sleep 2; echo hi']);
ok($r->{status} == 0 && $r->{err} eq '' && $r->{out} eq "hi\n" x 4,
   '--timeout 0 (none) over MPIEXEC_TIMEOUT=1: ranks of 2 s end by themselves')
    or diag(describe($r));
for my $bad (['--timeout', 'abc'], ['--timeout', '-1'], ['--timeout', '1s'],
             ['MPIEXEC_TIMEOUT=soon']) {
    my @env = @$bad == 1 ? ('env', @$bad) : ();
    my @opt = @$bad == 2 ? @$bad : ();
    $r = VexecTest::run([@env, bin('vexec'), '-n', 1, @opt, '/bin/true']);
    my @wrong = VexecTest::one_line_error($r);
    my $name = @$bad == 2 ? "--timeout '$bad->[1]'" : "MPIEXEC_TIMEOUT 'soon'";
    ok(!@wrong && $r->{status} == 2 && $r->{err} =~ /^vexec: \Q$name\E: /,
       "@$bad: one line naming it, exit 2")
        or diag(join('; ', @wrong) . ': ' . describe($r));
}

# And the cluster still launches after an interrupted launch.
$r = vexec(['-n', 8, '/bin/echo', 'hi']);
ok($r->{status} == 0 && $r->{out} eq "hi\n" x 8,
   'after the interrupted launches the cluster still runs 8 ranks')
    or diag(describe($r));

done_testing();
