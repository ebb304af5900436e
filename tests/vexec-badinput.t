#!/usr/bin/perl
# vexec-badinput.t - every bad input is refused cleanly: one line on stderr
# starting "vexec:", a non-zero exit, nothing on stdout, no process left
# running but the cluster's daemons; and the cluster still launches after
# it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use VexecTest qw(one_line_error);
use VexecCluster qw(need_vexec cluster_up new_cluster_dir vexec daemon_pids
                    describe stray_procs wait_until pid_alive);

need_vexec();

my $dir = cluster_up(4);
my $marker = "vexec-badinput-$$-" . int(rand(1e6));
my @prog = ('/bin/dash', '-c', 'echo ran', $marker);

# check_refused($name, \@args, %opt): vexec ARGS is a clean one-line
# "vexec:" error that leaves nothing running.
sub check_refused {
    my ($name, $args, %opt) = @_;
    my $r = vexec($args);
    my @wrong = one_line_error($r);
    push @wrong, "stderr does not start with 'vexec:'" unless $r->{err} =~ /\Avexec:/;
    ok(!@wrong, "$name: one 'vexec:' line, non-zero exit, empty stdout")
        or diag(join('; ', @wrong) . ' -- ' . describe($r));
    my @left;
    wait_until(2, sub { !(@left = stray_procs(marker => $marker, dir => $opt{dir})) });
    ok(!@left, "$name: no process left running") or diag("left: @left");
}

# after_ok($name): the normal launch still works on the cluster.
sub after_ok {
    my ($name) = @_;
    my $r = vexec(['-n', 4, '/bin/echo', 'hi']);
    ok($r->{status} == 0 && $r->{out} eq "hi\n" x 4,
       "after $name: vexec -n 4 /bin/echo hi still prints 4 lines")
        or diag(describe($r));
}

my @cases = (
    ['more ranks than nodes (-n 5 on 4)', ['-n', 5, @prog]],
    ['-n 3 with a 2-node -w list',        ['-n', 3, '-w', 'n[0-1]', @prog]],
    ['unknown node -w n9',                ['-w', 'n9', @prog]],
    ['unknown nodes -w x[1-2]',           ['-w', 'x[1-2]', @prog]],
    ['-w list with one unknown node',     ['-w', 'n0,n7', @prog]],
    ['reversed range -w n[3-1]',          ['-w', 'n[3-1]', @prog]],
    ['unbalanced bracket -w n[1-2',       ['-w', 'n[1-2', @prog]],
    ['program does not exist',            ['-n', 4, "/nonexistent/$marker"]],
    ['program is not executable',         ['-n', 4, '/etc/passwd']],
    ['unknown --tree bogus',              ['--tree', 'bogus', '-n', 4, @prog]],
    ['--tree kary:0',                     ['--tree', 'kary:0', '-n', 4, @prog]],
    ['--chunk abc',                       ['--chunk', 'abc', '-n', 4, @prog]],
    ['--chunk 64Q',                       ['--chunk', '64Q', '-n', 4, @prog]],
    ['--chunk 0',                         ['--chunk', '0', '-n', 4, @prog]],
    ['-n 0',                              ['-n', 0, @prog]],
    ['-n -2',                             ['-n', -2, @prog]],
    ['-n abc',                            ['-n', 'abc', @prog]],
);
for my $c (@cases) {
    check_refused(@$c);
    after_ok($c->[0]);
}

# No cluster at all: VEXEC_CLUSTER names an empty directory.
{
    my $empty = new_cluster_dir();
    local $ENV{VEXEC_CLUSTER} = $empty;
    check_refused('no cluster (empty VEXEC_CLUSTER dir)', ['-n', 4, @prog], dir => $empty);
    check_refused('no cluster, without -n', [@prog], dir => $empty);
}
after_ok('no cluster');

# A daemon that is not running: kill -9 one of a second cluster's daemons.
{
    my $main = $ENV{VEXEC_CLUSTER};
    my $dead = cluster_up(4);
    my %pids = daemon_pids($dead);
    ok(kill('KILL', $pids{n2}) && wait_until(10, sub { !pid_alive($pids{n2}) }),
       'killed daemon n2 of a second cluster');
    check_refused('a node\'s daemon is not running', ['-n', 4, @prog], dir => $dead);
    check_refused('-w naming only the dead node', ['-w', 'n2', @prog], dir => $dead);
    $ENV{VEXEC_CLUSTER} = $main;
}
after_ok('a dead daemon in another cluster');

done_testing();
