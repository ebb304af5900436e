#!/usr/bin/perl
# vmadump-roundtrip-debian.t - ordinary Debian programs survive a dump and
# restore: each runs directly, then from its image (vmadump restore, and
# the image run as ./IMG), with the same stdin, and stdout, stderr and the
# exit status must be identical.  Also restoring from a pipe (restore -)
# and restored programs joined by pipes (xz and gzip round trips).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(bin run spew need_vmadump check_roundtrip dump_image);

need_vmadump();

my $dir = tempdir(CLEANUP => 1);
my $vmadump = bin('vmadump');

# A fixed directory for ls, and inputs known byte for byte.
my $fixed = "$dir/fixed";
mkdir $fixed or die "mkdir: $!";
for my $f (qw(alpha beta gamma)) {
    spew("$fixed/$f", "$f\n" x 3);
    utime 1000000000, 1000000000, "$fixed/$f";
}
my $words = join '', map { "word$_ " . ($_ * 7919 % 1000) . "\n" } 1 .. 5000;
my $big = join '', map { sprintf "%08d the quick brown fox\n", $_ } 1 .. 100000;

my @cases = (
    [ 'echo' => [qw(echo hello world)] ],
    [ 'seq' => [qw(seq 1 100000)] ],
    [ 'sort' => ['sort', '-k2,2n', '-k1,1'], $words ],
    [ 'wc' => ['wc'], $big ],
    [ 'sha256sum' => ['sha256sum'], $big ],
    [ 'md5sum' => ['md5sum'], $words ],
    [ 'tr' => [qw(tr a-z A-Z)], $words ],
    [ 'cat 2.9 MB' => ['cat'], $big ],
    [ 'head' => [qw(head -n 5)], $words ],
    [ 'cut' => [qw(cut -d), ' ', '-f2'], $words ],
    [ 'sed' => ['sed', '-n', 's/^word\(1.\) /W\1:/p'], $words ],
    [ 'grep' => [qw(grep -c 7$)], $words ],
    [ 'awk' => ['awk', '{ s += $2 } END { print NR, s }'], $words ],
    [ 'od' => [qw(od -An -tx1)], "\x00\x01binary\xff\n" ],
    [ 'base64' => ['base64'], $words ],
    [ 'expr' => [qw(expr 6 * 7)] ],
    [ 'date -u -d @0' => [qw(date -u -d @0)] ],
    [ 'ls fixed dir' => ['ls', '-l', '--time-style=+%s', $fixed] ],
    [ 'ls /nonexistent (status 2, stderr)' => [qw(ls /nonexistent)] ],
    [ 'false (status 1)' => ['false'] ],
    [ 'env -i (exec from restored)' => [qw(env -i A=1 B=2 env)] ],
    [ 'uname -m' => [qw(uname -m)] ],
    [ 'id -u' => [qw(id -u)] ],
    [ 'perl' => ['/usr/bin/perl', '-MPOSIX=floor', '-MList::Util=sum', '-e',
                 'print join(",", map { $_ * $_ } 1 .. 10), "\n";'
                 . 'print floor(sum(1 .. 100) / 3), "\n";'
                 . 'my %h = map { $_ => 1 } qw(c a b);'
                 . 'print join(" ", sort keys %h), "\n";'
                 . 'print STDERR "perl to stderr\n"; exit 3'] ],
    [ 'perl reads stdin' => ['/usr/bin/perl', '-ne', 'print scalar reverse $_'],
      $words ],
    [ 'python3' => ['/usr/bin/python3', '-c',
                    'import sys, json, hashlib, math;'
                    . 'print(json.dumps({"sum": sum(range(100)),'
                    . ' "sha": hashlib.sha256(b"x").hexdigest(),'
                    . ' "pi": math.pi}, sort_keys=True));'
                    . 'sys.stderr.write("py err\n"); sys.exit(4)'] ],
    [ 'python3 reads stdin' => ['/usr/bin/python3', '-c',
                                'import sys; print(len(sys.stdin.read().split()))'],
      $words ],
    [ 'sqlite3' => ['sqlite3', ':memory:'],
      "create table t(a, b);\n"
      . "insert into t values (1, 'one'), (2, 'two'), (3, 'three');\n"
      . "select sum(a), group_concat(b, '+') from t;\n"
      . "select count(*) from t where b like 't%';\n" ],
    [ 'sqlite3 error' => ['sqlite3', ':memory:'], "select * from nosuchtable;\n" ],
    [ 'bc' => [qw(bc -l)], "scale=40; 4*a(1)\n2^200\n" ],
    [ 'dash -c' => ['dash', '-c',
                    'for i in 1 2 3; do echo "line $i"; done;'
                    . ' echo piped | tr a-z A-Z; x=$((6 * 7)); echo $x;'
                    . ' echo oops >&2; exit 5'] ],
    [ 'dash: /proc/self/exe' => ['dash', '-c', 'readlink /proc/$$/exe'] ],
    [ 'xz -c' => [qw(xz -c)], $big ],
    [ 'gzip -cn' => [qw(gzip -cn)], $big ],
);

my %direct;
for my $case (@cases) {
    my ($name, $cmd, $stdin) = @$case;
    $direct{$name} = check_roundtrip($name, $cmd, stdin => $stdin, dir => $dir);
}

# Identical output only means something if the programs really ran:
# spot-check what the direct runs gave.
is($direct{'ls /nonexistent (status 2, stderr)'}{status}, 2,
   'ls of a missing file exits 2');
like($direct{'ls /nonexistent (status 2, stderr)'}{err}, qr/nonexistent/,
     'and says so on stderr');
is($direct{perl}{status}, 3, 'perl exits 3');
is($direct{python3}{status}, 4, 'python3 exits 4');
is($direct{'dash -c'}{out}, "line 1\nline 2\nline 3\nPIPED\n42\n",
   'dash ran its script');
is($direct{'sha256sum'}{out}, sha256_hex($big) . "  -\n", 'sha256sum hashed stdin');
is($direct{'cat 2.9 MB'}{out}, $big, 'cat copied stdin');
isnt($direct{'sqlite3 error'}{status}, 0, 'sqlite3 fails on a missing table');

# Compressors joined by pipes: restored xz -c | restored xz -dc gives the
# input back, and so does gzip.
for my $z (['xz', [qw(xz -c)], [qw(xz -dc)]],
           ['gzip', [qw(gzip -c)], [qw(gzip -dc)]]) {
    my ($name, $compress, $decompress) = @$z;
    my ($c, $d) = ("$dir/$name-c.img", "$dir/$name-d.img");
    dump_image($c, $compress);
    dump_image($d, $decompress);
    my $in = "$dir/$name.in";
    spew($in, $big);
    my $p = run(['sh', '-c', "$vmadump restore $c < $in | $vmadump restore $d"]);
    ok($p->{status} == 0 && $p->{out} eq $big && $p->{err} eq '',
       "$name: restored compressor piped into restored decompressor"
       . " gives the input back")
        or diag("status $p->{status}, " . length($p->{out}) . " bytes, err '$p->{err}'");
}

# restore - : the image arrives on stdin (a file, then a real pipe).
my $img = "$dir/seq.img";
dump_image($img, [qw(seq 1 5)]);
my $want = "1\n2\n3\n4\n5\n";
my $r = run([$vmadump, 'restore', '-'], stdin_file => $img);
ok($r->{status} == 0 && $r->{out} eq $want && $r->{err} eq '',
   'restore - reads the image from stdin (a file)')
    or diag("status $r->{status} out '$r->{out}' err '$r->{err}'");
$r = run(['sh', '-c', "cat $img | $vmadump restore -"]);
ok($r->{status} == 0 && $r->{out} eq $want && $r->{err} eq '',
   'restore - reads the image from a pipe')
    or diag("status $r->{status} out '$r->{out}' err '$r->{err}'");
$r = run(['sh', '-c', "$vmadump dump -- echo straight through | $vmadump restore -"]);
ok($r->{status} == 0 && $r->{out} eq "straight through\n" && $r->{err} eq '',
   'dump to stdout piped into restore -')
    or diag("status $r->{status} out '$r->{out}' err '$r->{err}'");

done_testing();
