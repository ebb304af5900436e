# VexecCluster.pm - shared helpers for the vexec launcher tests: a private
# cluster of node daemons per test file, the launcher run against it, and
# checks that nothing (daemon, rank, shm endpoint) is left behind.
#
# Every cluster lives in its own temporary directory, named to the tools
# through $VEXEC_CLUSTER, so test files can run in parallel.  Each cluster a
# test brings up is taken down by an END block even when the test dies, and
# daemons that survive `vexec-cluster down` are then killed by pid so that a
# broken build cannot leave hundreds of pollers behind.
package VexecCluster;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use POSIX ();
use Test::More ();
use Time::HiRes ();
use VexecTest qw(bin prog run);

our @EXPORT_OK = qw(need_vexec new_cluster_dir cluster cluster_up
                    cluster_down vexec daemon_pids cluster_name pid_alive
                    shm_files stray_procs wait_until describe lines
                    start_bg wait_bg daemon_fds daemon_rss daemon_cpu_ticks
                    guard_cluster expand_hostlist cluster_procs
                    children_of ranks_running gateway_pid
                    kill_under_ranks cgroup_dir procs_running);

# The binaries and test programs these tests need.
sub need_vexec {
    my @missing = grep { !-x $_ } bin('vexec'), bin('vexec-cluster'),
                                   bin('vexecd'), prog('rankenv-pie'),
                                   prog('big4m-static');
    return unless @missing;
    Test::More::plan(tests => 1);
    Test::More::fail("not built: @missing (run make)");
    exit 1;
}

# A fresh, empty directory for a cluster (short, under /tmp: daemons may
# put sockets in it and a socket path is limited to 107 bytes).
sub new_cluster_dir {
    return tempdir('vxc-XXXXXX', TMPDIR => 1, CLEANUP => 1);
}

# Directories of clusters this process brought up, for the END guard.
my @clusters;
my $owner = $$;

# cluster(\@args, dir => DIR, %run_opts): runs vexec-cluster ARGS with
# VEXEC_CLUSTER=DIR (default: $ENV{VEXEC_CLUSTER}).
sub cluster {
    my ($args, %opt) = @_;
    my $dir = delete $opt{dir} // $ENV{VEXEC_CLUSTER};
    local $ENV{VEXEC_CLUSTER} = $dir;
    return run([bin('vexec-cluster'), @$args], %opt);
}

# guard_cluster(DIR): the END block takes down any cluster left in DIR.
sub guard_cluster {
    my ($dir) = @_;
    push @clusters, $dir unless grep { $_ eq $dir } @clusters;
}

# cluster_up(N, dir => DIR): brings up N nodes in DIR (default: a new one),
# points $ENV{VEXEC_CLUSTER} at it and returns DIR; dies if `up` fails,
# since nothing after it could mean anything.
sub cluster_up {
    my ($n, %opt) = @_;
    my $dir = $opt{dir} // new_cluster_dir();
    guard_cluster($dir);
    $ENV{VEXEC_CLUSTER} = $dir;
    # Creating hundreds of endpoints takes seconds on 2 cores.
    local $VexecTest::TIMEOUT = 180;
    my $r = cluster(['up', $n], dir => $dir);
    die "vexec-cluster up $n failed: " . describe($r) . "\n"
        if $r->{status} || $r->{signal};
    return $dir;
}

# cluster_down(DIR): runs `vexec-cluster down` and returns its result.
sub cluster_down {
    my ($dir) = @_;
    $dir //= $ENV{VEXEC_CLUSTER};
    return cluster(['down'], dir => $dir);
}

END {
    if ($$ == $owner) {
        local $?;
        for my $dir (@clusters) {
            next unless -e "$dir/pids" || -e "$dir/name";
            my @pids = cluster_procs($dir);
            cluster_down($dir);
            # Whatever `down` missed: these are our own daemons.
            kill 'KILL', grep { pid_alive($_) } @pids;
            unlink shm_files(cluster_name($dir)) if cluster_name($dir);
        }
    }
}

# vexec(\@args, %run_opts): runs vexec ARGS against $ENV{VEXEC_CLUSTER}.
sub vexec {
    my ($args, %opt) = @_;
    return run([bin('vexec'), @$args], %opt);
}

# daemon_pids(DIR): the daemons' pids as NODE => PID, from DIR/pids.
sub daemon_pids {
    my ($dir) = @_;
    $dir //= $ENV{VEXEC_CLUSTER};
    open my $fh, '<', "$dir/pids" or return ();
    my %pids;
    while (<$fh>) {
        $pids{$1} = $2 if /^(\S+)\s+(\d+)\s*$/;
    }
    return %pids;
}

# cluster_procs(DIR): the pids of all the cluster's processes: the node
# daemons of DIR/pids and, when DIR/gateway names one, the gateway.
sub cluster_procs {
    my ($dir) = @_;
    $dir //= $ENV{VEXEC_CLUSTER};
    my %pids = daemon_pids($dir);
    my $gw = gateway_pid($dir);
    return (values %pids, defined $gw ? $gw : ());
}

# gateway_pid(DIR): the pid DIR/gateway names, or undef.
sub gateway_pid {
    my ($dir) = @_;
    $dir //= $ENV{VEXEC_CLUSTER};
    open my $gw, '<', "$dir/gateway" or return undef;
    my $line = <$gw> // '';
    return $line =~ /^(\d+)/ ? $1 : undef;
}

# cluster_name(DIR): the endpoint prefix from DIR/name, or undef.
sub cluster_name {
    my ($dir) = @_;
    $dir //= $ENV{VEXEC_CLUSTER};
    open my $fh, '<', "$dir/name" or return undef;
    my $name = <$fh> // return undef;
    chomp $name;
    return length $name ? $name : undef;
}

# children_of(PID): the pids whose parent is PID.
sub children_of {
    my ($ppid) = @_;
    opendir my $dh, '/proc' or die "opendir /proc: $!";
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my ($parent) = read_proc_file($pid, 'stat') =~ /\)\s+\S\s+(\d+)/;
        push @kids, $pid if defined $parent && $parent == $ppid;
    }
    return @kids;
}

# ranks_running(\@cmd, @daemons): the children of the daemons' pids whose
# command line is @cmd (the ranks of a launch of @cmd).
sub ranks_running {
    my ($cmd, @daemons) = @_;
    my $line = join("\0", @$cmd) . "\0";
    return grep { read_proc_file($_, 'cmdline') eq $line }
           map { children_of($_) } @daemons;
}

# kill_under_ranks(%opt): start cmd => [vexec ...] (output to out, err),
# wait until ranks => N ranks of rank_cmd => [...] run under daemons =>
# [pids], wait settle seconds more, kill -9 the pids victim => sub (given
# vexec's pid) returns, and wait up to limit seconds for vexec.  Returns
# { all => every rank ran, ranks => [pids], killed => [pids], status =>
# vexec's wait status or undef (hung), err => its stderr }.
sub kill_under_ranks {
    my (%o) = @_;
    my $bg = start_bg($o{cmd}, out => $o{out}, err => $o{err});
    my @ranks;
    my $all = wait_until(120, sub {
        @ranks = ranks_running($o{rank_cmd}, @{ $o{daemons} });
        return @ranks == $o{ranks};
    });
    select(undef, undef, undef, $o{settle}) if $o{settle};
    my @killed = $o{victim}->($bg);
    kill 'KILL', @killed;
    my $status = wait_bg($bg, $o{limit});
    return { all => $all, ranks => \@ranks, killed => \@killed,
             status => $status, err => VexecTest::slurp($o{err}) };
}

# Is PID a live process (a zombie is not)?
sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid && kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // return 0;
    return $stat !~ /\)\s+[ZX]\s/;
}

# shm_files(NAME): files in /dev/shm whose name contains NAME.
sub shm_files {
    my ($name) = @_;
    return () unless defined $name && length $name;
    opendir my $dh, '/dev/shm' or return ();
    return map { "/dev/shm/$_" } grep { index($_, $name) >= 0 } readdir $dh;
}

# cgroup_dir(PID): the directory of process PID's cgroup (v2) as this
# process sees it (the cgroup2 mount in our mountinfo), or undef when it
# is in none but the root.  A daemon's is "vexecd-PID" (launcher/sweep.h).
sub cgroup_dir {
    my ($pid) = @_;
    open my $fh, '<', '/proc/self/mountinfo' or return undef;
    my ($mnt) = map { m{^\S+ \S+ \S+ / (\S+) .* - cgroup2 } ? $1 : () } <$fh>;
    my ($path) = map { /^0::(\/.*)$/ ? $1 : () }
                 split /\n/, read_proc_file($pid, 'cgroup');
    return undef unless defined $mnt && defined $path && $path ne '/';
    return "$mnt$path";
}

sub read_proc_file {
    my ($pid, $file) = @_;
    open my $fh, '<:raw', "/proc/$pid/$file" or return '';
    local $/;
    return <$fh> // '';
}

# procs_running(@cmd): the live processes of this host whose command line
# is exactly @cmd.
sub procs_running {
    my $line = join("\0", @_) . "\0";
    opendir my $dh, '/proc' or die "opendir /proc: $!";
    return grep { pid_alive($_) && read_proc_file($_, 'cmdline') eq $line }
           grep { /^\d+$/ } readdir $dh;
}

# stray_procs(marker => STRING, dir => DIR): live processes other than this
# one and the cluster's daemons that belong to the launch: a child of a
# daemon, a process whose command line contains the marker, or one whose
# environment carries VEXEC_CLUSTER=DIR (vexec itself and every rank have
# it).  Returns "PID: cmdline" strings for diagnostics.
sub stray_procs {
    my (%opt) = @_;
    my $dir = $opt{dir} // $ENV{VEXEC_CLUSTER};
    # The cluster's gateway (launcher/gateway.h) is one of its daemons too.
    my %daemon = map { $_ => 1 } cluster_procs($dir);
    my $env_mark = "VEXEC_CLUSTER=$dir\0";
    my @found;
    opendir my $dh, '/proc' or die "opendir /proc: $!";
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        next if $pid == $$ || $daemon{$pid} || !pid_alive($pid);
        my $cmd = read_proc_file($pid, 'cmdline');
        my $stat = read_proc_file($pid, 'stat');
        my ($ppid) = $stat =~ /\)\s+\S\s+(\d+)/;
        my $mine = ($ppid && $daemon{$ppid})
            || (defined $opt{marker} && index($cmd, $opt{marker}) >= 0)
            || index("\0" . read_proc_file($pid, 'environ'), "\0$env_mark") >= 0;
        next unless $mine;
        $cmd =~ s/\0/ /g;
        push @found, "$pid: " . substr($cmd, 0, 120);
    }
    return @found;
}

# wait_until(SECONDS, CODE): polls CODE every 50 ms until it returns true or
# SECONDS pass; returns CODE's last value.
sub wait_until {
    my ($secs, $code) = @_;
    my $end = Time::HiRes::time() + $secs;
    while (1) {
        my $v = $code->();
        return $v if $v || Time::HiRes::time() >= $end;
        Time::HiRes::sleep(0.05);
    }
}

# expand_hostlist(EXPR): the names of a Slurm hostlist (enough of the
# syntax for the lists the tools print: prefix[a-b,c]suffix, comma lists).
sub expand_hostlist {
    my ($expr) = @_;
    my @names;
    for my $item ($expr =~ /((?:[^,\[]|\[[^\]]*\])+)/g) {
        my @parts = ('');
        for my $piece ($item =~ /(\[[^\]]*\]|[^\[]+)/g) {
            if ($piece =~ /^\[(.*)\]$/) {
                my @nums;
                for my $range (split /,/, $1) {
                    my ($lo, $hi) = $range =~ /^(\d+)(?:-(\d+))?$/ or return ();
                    $hi //= $lo;
                    push @nums, map { sprintf('%0*d', length $lo, $_) } $lo .. $hi;
                }
                @parts = map { my $p = $_; map { "$p$_" } @nums } @parts;
            } else {
                @parts = map { "$_$piece" } @parts;
            }
        }
        push @names, @parts;
    }
    return @names;
}

# Describe a result in one line for test diagnostics.
sub describe {
    my ($r) = @_;
    my $err = substr($r->{err}, 0, 400);
    my $out = substr($r->{out}, 0, 200);
    return "status $r->{status} signal $r->{signal} stderr '$err' stdout '$out'";
}

# The lines of a string, without their newlines.
sub lines {
    my ($s) = @_;
    return split /\n/, $s;
}

# start_bg(\@cmd, out => PATH, err => PATH): starts CMD in the background
# (not under `timeout`: the test sends it signals itself) with INT and TERM
# at their default actions; returns its pid.
sub start_bg {
    my ($cmd, %opt) = @_;
    # Created here, so the caller can read them at once.
    for my $file ($opt{out}, $opt{err}) {
        open my $fh, '>', $file or die "open $file: $!";
        close $fh;
    }
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        $SIG{INT} = $SIG{TERM} = 'DEFAULT';
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>>', $opt{out} or POSIX::_exit(126);
        open STDERR, '>>', $opt{err} or POSIX::_exit(126);
        { exec @$cmd }
        POSIX::_exit(127);
    }
    return $pid;
}

# wait_bg(PID, SECONDS): waits for a start_bg child; returns its wait
# status, or undef (after killing it) if it did not end in time.
sub wait_bg {
    my ($pid, $secs) = @_;
    my $status;
    wait_until($secs, sub {
        my $w = waitpid($pid, POSIX::WNOHANG());
        $status = $? if $w == $pid;
        return $w == $pid || $w < 0;
    });
    return $status if defined $status;
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return undef;
}

# daemon_fds(PID): how many fds PID has open.
sub daemon_fds {
    my ($pid) = @_;
    opendir my $dh, "/proc/$pid/fd" or return -1;
    return scalar grep { /^\d+$/ } readdir $dh;
}

# daemon_rss(PID): VmRSS of PID in KiB.
sub daemon_rss {
    my ($pid) = @_;
    return read_proc_file($pid, 'status') =~ /^VmRSS:\s+(\d+)\s+kB/m ? $1 : -1;
}

# daemon_cpu_ticks(PID...): the sum of utime+stime of the PIDs, in clock
# ticks.
sub daemon_cpu_ticks {
    my $sum = 0;
    for my $pid (@_) {
        my $stat = read_proc_file($pid, 'stat');
        next unless $stat =~ /\)\s+(.*)$/s;
        my @f = split ' ', $1;
        # After the comm: state is field 3; utime and stime are 14 and 15.
        $sum += $f[11] + $f[12];
    }
    return $sum;
}

1;
