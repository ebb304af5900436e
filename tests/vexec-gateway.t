#!/usr/bin/perl
# vexec-gateway.t - the memfd the cluster's gateway lends vexec for the
# image (launcher/gateway.h): images of every size in any order arrive
# whole through the one memfd, which the gateway keeps (one, not one per
# launch) and trims after a big image; a client of another user is lent
# nothing; two vexecs at once each run their own program.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use VexecTest qw(bin prog run);
use VexecCluster qw(need_vexec cluster_up vexec describe lines cluster_name
                    start_bg wait_bg gateway_pid);

need_vexec();

my $dir = cluster_up(8);
my $gw = gateway_pid($dir) or die "no gateway pid in $dir/gateway\n";

# The gateway's fds that are its lent image memfd.
sub lent_fds {
    opendir my $dh, "/proc/$gw/fd" or return ();
    return grep { (readlink("/proc/$gw/fd/$_") // '') =~ /vexec-gw-image/ }
           grep { /^\d+$/ } readdir $dh;
}

# Large, small, large, very large (over the 64 MiB kept), small, large:
# each image is written over the last, shorter or longer than it.
my @runs = (
    [ 'big4m-static' => [prog('big4m-static')], "big4m ok\n" ],
    [ 'echo' => ['/bin/echo', 'small'], "small\n" ],
    [ 'big4m-static again' => [prog('big4m-static')], "big4m ok\n" ],
    [ 'big64m' => [prog('big64m-static')], "big64m ok\n" ],
    [ 'echo again' => ['/bin/echo', 'after'], "after\n" ],
    [ 'big4m-static last' => [prog('big4m-static')], "big4m ok\n" ],
);
for my $run (@runs) {
    my ($name, $cmd, $want) = @$run;
    my $r = vexec(['-n', 8, @$cmd]);
    ok($r->{status} == 0 && $r->{out} eq $want x 8,
       "$name on 8 nodes through the lent memfd") or diag(describe($r));
}

my @fds = lent_fds();
is(scalar @fds, 1, 'the gateway holds one image memfd after six launches');
if (@fds) {
    my @st = stat("/proc/$gw/fd/$fds[0]");
    my $held = ($st[12] // 0) * 512;
    ok($st[7] > 64 << 20 && $held <= (64 << 20) + (1 << 20),
       'after the 67 MB image it holds at most 64 MiB of pages'
       . " (size $st[7], held $held)");
}

# Another user connecting to the gateway's socket is lent no fd: the memfd
# holds the last launch's image.
SKIP: {
    skip 'needs root to connect as another user', 2 if $> != 0;
    my $py = <<'PY';
import os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("\0vexec-gw." + sys.argv[1])
msg, fds, flags, addr = socket.recv_fds(s, 64, 4)
print(msg.decode(), len(fds))
PY
    my $r = run(['python3', '-c', $py, cluster_name($dir)]);
    is($r->{out}, "vexec-gw-lend 0\n", 'a client of another user gets the offer without an fd')
        or diag(describe($r));
    my $after = vexec(['-n', 8, '/bin/echo', 'still']);
    ok($after->{status} == 0 && $after->{out} eq "still\n" x 8,
       'and the gateway then serves the next launch') or diag(describe($after));
}

# Two vexecs at once: the second waits for the gateway, then dumps into
# the memfd the first's launch no longer needs.
my $tmp = "$dir/bg";
mkdir $tmp;
my @pids = map {
    start_bg([bin('vexec'), '-n', 8, '/bin/dash', '-c',
              "echo job$_ \$BPROC_RANK"],
             out => "$tmp/out$_", err => "$tmp/err$_")
} 1 .. 2;
my @status = map { wait_bg($_, 120) } @pids;
for my $i (1 .. 2) {
    open my $o, '<', "$tmp/out$i" or die;
    my %got = map { $_ => 1 } <$o>;
    my @missing = grep { !$got{sprintf("job$i %07d\n", $_)} } 0 .. 7;
    ok(defined $status[$i - 1] && $status[$i - 1] == 0 && !@missing && keys %got == 8,
       "concurrent vexec $i ran its own program on all 8 ranks")
        or diag("status " . ($status[$i - 1] // 'timeout') . ", missing @missing");
}

done_testing();
