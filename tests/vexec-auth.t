#!/usr/bin/perl
# vexec-auth.t - only launches signed with the cluster key run.  A LAUNCH
# with no credential, a wrong key, a flipped byte, or a byte-identical
# resend of a valid one runs nothing on any node and is logged by the
# daemon that refused it, whether that is node 0 or a node further down
# (launcher/test/vexec_inject plays the rogue or replaying root).  vexec
# with a wrong or badly protected key ends with one line and runs nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(build_dir bin run slurp spew one_line_error);
use VexecCluster qw(need_vexec cluster cluster_up cluster_down new_cluster_dir
                    vexec describe stray_procs wait_until);

need_vexec();
my $inject = build_dir() . '/launcher/test/vexec_inject';
unless (-x $inject) {
    plan(tests => 1);
    fail("not built: $inject (run make)");
    exit 1;
}

my $dir = cluster_up(4);
my $tmp = tempdir('vxauth-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $marks = "$tmp/marks";
mkdir $marks or die "mkdir $marks: $!";

# Every rank that runs appends a line to $marks/rank-RANK.
my $img = "$tmp/img";
{
    local $ENV{BPROC_RANK} = 'XXXXXXX';
    my $r = run([bin('vmadump'), 'dump', '-o', $img, '--', '/bin/sh', '-c',
                 "echo x >> $marks/rank-\$BPROC_RANK"]);
    die 'dumping the marker program failed: ' . describe($r) . "\n"
        if $r->{status};
}

sub marks {
    my $n = 0;
    $n += () = slurp($_) =~ /\n/g for glob("$marks/*");
    return $n;
}

# The log lines added since the last call.
my $seen = 0;
sub new_log {
    my $log = -e "$dir/log" ? slurp("$dir/log") : '';
    my $new = substr($log, $seen);
    $seen = length $log;
    return $new;
}

sub inject {
    # A later --to in @_ wins.
    return run([$inject, '--cluster', $dir, '-n', 4, '--image', $img,
                '--to', 'n0', @_]);
}

# refused($name, $node, $reason_re, @inject_args): the injected LAUNCH runs
# nothing, and $node's daemon logs its refusal.
sub refused {
    my ($name, $node, $why, @args) = @_;
    my $before = marks();
    my $r = inject(@args);
    ok($r->{status} != 0 && $r->{out} !~ /^accepted/m && marks() == $before,
       "$name: nothing runs on any node")
        or diag(describe($r) . ' marks ' . marks());
    my $log = '';
    wait_until(5, sub { ($log .= new_log()) =~ /^vexecd $node: refused/m });
    like($log, qr/^vexecd $node: refused .*$why/m,
         "$name: the daemon of $node logs the refusal and why");
    return $r;
}

new_log();
my $r = refused('no credential', 'n0', 'LAUNCH of job 0x1: no credential',
                '--no-credential');
like($r->{out}, qr/^refused: node n0 refused the launch: no credential$/m,
     'no credential: the sender is told node n0 refused it');
refused('a wrong key', 'n0', 'does not verify', '--key', make_key('wrong'));
# Flip one byte: in the header (type, job, length), the body, and the
# credential (time, nonce, MAC).
my %flips = ('type' => 4, 'job' => 8, 'length' => 16, 'image length' => 32,
             'node list' => -70, 'issue time' => -56, 'nonce' => -40,
             'MAC' => -1);
for my $what (sort keys %flips) {
    refused("a flipped byte in the $what", 'n0', '',
            '--key', "$dir/key", '--flip', $flips{$what}, '--wait', 2);
}
# A node below node 0 checks for itself: it is sent a LAUNCH directly, as
# if by its parent.
refused('no credential, sent to n2 as its parent would', 'n2',
        'no credential', '--to', 'n2', '--no-credential', '--wait', 2);

# The valid request runs, once.
$r = inject('--key', "$dir/key", '--save', "$tmp/valid");
ok($r->{status} == 0 && marks() == 4 && (() = $r->{out} =~ /^rank \d exit 0$/mg) == 4,
   'a LAUNCH signed with the cluster key runs on all 4 nodes')
    or diag(describe($r) . ' marks ' . marks());
is(new_log(), '', 'and nothing is logged for it');
refused('a replay of the valid LAUNCH to n0', 'n0', 'replayed',
        '--replay', "$tmp/valid", '--wait', 2);
refused('a replay of the valid LAUNCH to n1', 'n1', 'replayed',
        '--to', 'n1', '--replay', "$tmp/valid", '--wait', 2);
is(marks(), 4, 'after the replays each rank still ran exactly once');

# A signed LAUNCH whose image is not the one broadcast.
$r = inject('--key', "$dir/key", '--wrong-sum');
ok($r->{status} != 0 && marks() == 4
   && (() = $r->{out} =~ /^rank \d fail: the image received is not the one the launch was signed for/mg) == 4,
   'an image other than the signed one runs nowhere, each rank says why')
    or diag(describe($r));
like(new_log(), qr/^vexecd n0: refused the image of job/m,
     'and the daemons log it');

# vexec itself with a wrong key, from --key and from $VEXEC_KEY.
my @prog = ('/bin/sh', '-c', "echo x >> $marks/vexec-\$BPROC_RANK");
my $wrong = make_key('wrong2');
for my $how ('--key', 'VEXEC_KEY') {
    local %ENV = %ENV;
    $ENV{VEXEC_KEY} = $wrong if $how eq 'VEXEC_KEY';
    $r = vexec([$how eq '--key' ? ('--key', $wrong) : (), '-n', 4, @prog]);
    my @bad = one_line_error($r);
    ok(!@bad && $r->{status} == 1
       && $r->{err} =~ /^vexec: node n0 refused the launch: credential does not verify/,
       "vexec with a wrong key ($how): one line, exit 1")
        or diag("@bad " . describe($r));
    ok(!glob("$marks/vexec-*"), "vexec with a wrong key ($how): nothing ran");
    like(new_log(), qr/^vexecd n0: refused LAUNCH/m,
         "vexec with a wrong key ($how): n0 logs the refusal");
}

# A key file others may read is refused before anything is sent.
my $open = make_key('open');
chmod 0644, $open;
$r = vexec(['--key', $open, '-n', 4, @prog]);
ok(!(my @bad = one_line_error($r)) && $r->{err} =~ /^vexec: key file \Q$open\E has mode 0644/,
   'vexec with a 0644 key file: one line naming the file and its mode')
    or diag(describe($r));
ok(!glob("$marks/vexec-*"), 'vexec with a 0644 key file: nothing ran');

# The cluster still launches after all that.
$r = vexec(['-n', 4, @prog]);
ok($r->{status} == 0 && (() = glob("$marks/vexec-*")) == 4,
   'after every refusal vexec with the cluster key runs 4 ranks')
    or diag(describe($r));

# vexec-cluster up --key: refused when the file is open to others; with a
# private hex key file, launches signed with it run.
{
    my $other = new_cluster_dir();
    $r = cluster(['--key', $open, 'up', 2], dir => $other);
    ok($r->{status} != 0 && $r->{err} =~ /^vexec-cluster: key file \Q$open\E has mode 0644/
       && !-e "$other/name", 'vexec-cluster up --key with a 0644 file is refused')
        or diag(describe($r));
    my $hex = "$tmp/hex.key";
    spew($hex, join('', map { sprintf '%02x', int rand 256 } 1 .. 32) . "\n");
    chmod 0600, $hex;
    VexecCluster::guard_cluster($other);
    $r = cluster(['--key', $hex, 'up', 2], dir => $other);
    ok($r->{status} == 0 && -l "$other/key",
       'vexec-cluster up --key with a private hex key file links it')
        or diag(describe($r));
    {
        local $ENV{VEXEC_CLUSTER} = $other;
        $r = vexec(['-n', 2, '/bin/echo', 'hi']);
        ok($r->{status} == 0 && $r->{out} eq "hi\n" x 2,
           'vexec signs with it from the cluster record') or diag(describe($r));
    }
    $r = vexec(['--key', $hex, '-n', 2, '/bin/echo', 'hi']);
    ok($r->{status} == 1 && $r->{out} eq '',
       'the first cluster, which has another key, refuses it')
        or diag(describe($r));
    ok(cluster_down($other)->{status} == 0, 'the second cluster goes down');
}

$r = run([bin('vexecd'), '--endpoint', "vxauth$$"]);
ok($r->{status} == 2 && $r->{err} =~ /--key FILE/,
   'vexecd without --key is a usage error');

ok(cluster_down($dir)->{status} == 0, 'the cluster goes down');
my @left = stray_procs(dir => $dir);
ok(!@left, 'nothing of the cluster is left running') or diag("left: @left");
done_testing();

# make_key(NAME): a fresh private key file of 32 random bytes.
sub make_key {
    my ($name) = @_;
    my $path = "$tmp/$name.key";
    spew($path, join('', map { chr int rand 256 } 1 .. 32));
    chmod 0600, $path;
    return $path;
}
