#!/usr/bin/perl
# vmadump-roundtrip-progs.t - our test programs (tests/progs) survive a dump
# and restore and report, from inside the restored process, that their
# state is right: static, static-pie, dynamic non-PIE and PIE executables,
# heap growth, threads, the vDSO, argv/environ and /proc/self/cmdline,
# auxv, fork+exec, signals, a growing stack, stdin/stdout/stderr and the
# exit status, and a 4 MB image.  Also the image file itself: its #! line
# and header fields, `vmadump info`, the dump options.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(bin prog run slurp need_vmadump check_roundtrip dump_image);

need_vmadump();

my $dir = tempdir(CLEANUP => 1);
my $vmadump = bin('vmadump');

# Each program checks itself and prints its "ok" line only when all is
# well; the round trip must also match the direct run exactly.  auxv prints
# AT_RANDOM, which differs on every run, so that line is masked.
my $mask_random = sub { $_[0] =~ s/^AT_RANDOM=[0-9a-f]{32}$/AT_RANDOM=<random>/mr };
my @self_checking = (
    (map { ["auxv-$_", qr/^AT_RANDOM=<random>\nauxv ok\n\z/] }
         qw(static static-pie nopie pie)),
    (map { ["heap-$_", qr/^heap ok\n\z/] } qw(static pie)),
    (map { ["threads-$_", qr/^threads ok: 4 threads, sum 7999998000000\n\z/] }
         qw(static pie)),
    (map { ["vdso-$_", qr/^vdso ok\n\z/] } qw(static pie)),
    (map { ["forkexec-$_", qr/^forkexec ok\n\z/] } qw(static pie)),
    (map { ["signals-$_", qr/^signals ok\n\z/] } qw(static pie)),
    (map { ["stack-$_", qr/^stack ok\n\z/] } qw(static pie)),
    ['big4m-static', qr/^big4m ok\n\z/],
);

for my $c (@self_checking) {
    my ($name, $want) = @$c;
    my $direct = check_roundtrip($name, [prog($name)], dir => $dir,
                                 filter => $mask_random);
    ok($direct->{status} == 0 && $direct->{out} =~ $want,
       "$name passes when run directly")
        or diag("status $direct->{status} out '$direct->{out}' err '$direct->{err}'");
}

# hello, built four ways, with arguments.
for my $v (qw(static static-pie nopie pie)) {
    my $direct = check_roundtrip("hello-$v", [prog("hello-$v"), 'one', 'two'],
                                 dir => $dir);
    is($direct->{out}, "hello from a restored program, argc=3\n",
       "hello-$v prints its greeting");
}

# argv and environ, with awkward strings, and /proc/self/cmdline.
# A small, known environment: the programs print all of it.
my %env = (PATH => '/usr/bin:/bin', EMPTY => '', SPACED => 'a b  c',
           UTF8 => "caf\xc3\xa9", EQUALS => 'x=y=z');
for my $v (qw(static pie)) {
    my $direct = check_roundtrip("cmdline-$v",
                                 [prog("cmdline-$v"), '', 'two words', "tab\there",
                                  'x' x 5000, "caf\xc3\xa9"],
                                 dir => $dir, env => \%env);
    like($direct->{out}, qr/^argv\[2\]=two words$/m, "cmdline-$v prints argv");
    like($direct->{out}, qr/^env SPACED=a b  c$/m, "cmdline-$v prints environ");
    like($direct->{out}, qr/cmdline ok\n\z/, "cmdline-$v: /proc/self agrees");
}

# The environment is the one at dump time, not the one at restore time.
{
    my $img = "$dir/env.img";
    dump_image($img, [prog('cmdline-pie')], env => { %env, MARK => 'dumped' });
    my $r = run([$vmadump, 'restore', $img], env => { %env, MARK => 'restored' });
    ok($r->{status} == 0 && $r->{out} =~ /^env MARK=dumped$/m
       && $r->{out} !~ /restored/, 'the restored program has the dump-time environment')
        or diag("status $r->{status} out '$r->{out}' err '$r->{err}'");
}

# stdin, stdout, stderr and a chosen exit status.
my $text = join '', map { "line $_ of some text\n" } 1 .. 50000;
for my $v (qw(static pie)) {
    my $direct = check_roundtrip("catlike-$v", [prog("catlike-$v"), 3],
                                 stdin => $text, dir => $dir);
    ok($direct->{status} == 3 && $direct->{out} eq uc($text)
       && $direct->{err} eq "catlike: " . length($text) . " bytes\n",
       "catlike-$v transforms stdin and exits 3");
    check_roundtrip("catlike-$v empty stdin", [prog("catlike-$v")], dir => $dir);
}

# Two restores of one auxv image: different AT_RANDOM, same everything else.
{
    my $img = "$dir/auxv.img";
    dump_image($img, [prog('auxv-pie')]);
    my @r = map { run([$vmadump, 'restore', $img]) } 1 .. 2;
    my @rnd = map { $_->{out} =~ /^AT_RANDOM=([0-9a-f]{32})$/m ? $1 : '' } @r;
    ok($rnd[0] && $rnd[1] && $rnd[0] ne $rnd[1],
       'two restores of one image get different AT_RANDOM bytes')
        or diag("got '$rnd[0]' and '$rnd[1]'");
}

# PROG is looked up in PATH.
{
    my $img = "$dir/path.img";
    my $d = dump_image($img, ['hello-pie', 'x'],
                       env => { %ENV, PATH => prog('') . ":$ENV{PATH}" });
    is($d->{status}, 0, 'dump finds PROG in PATH') or diag($d->{err});
    my $r = run([$vmadump, 'restore', $img]);
    is($r->{out}, "hello from a restored program, argc=2\n",
       'and the image restores');
}

# The image file: #! line, header fields (docs/image-format.md), size.
{
    my $img = "$dir/big.img";
    dump_image($img, [prog('big4m-static')]);
    my $data = slurp($img);
    my ($shebang) = $data =~ /\A#!([^\n]*)\n/;
    ok(defined $shebang && $shebang =~ m{^/} && -x $shebang,
       'the image starts with #! and the absolute path of the restorer')
        or diag("first line: " . substr($data, 0, 80));
    ok(length($data) >= 256 && substr($data, length($shebang // '') + 3,
                                       253 - length($shebang // '')) =~ /\A\0*\z/,
       'the #! line is zero-padded to 256 bytes');
    my ($magic, $version, $arch, $page, $flags, $total) =
        unpack('a8 V V V V Q<', substr($data, 256, 32));
    is($magic, "VMADIMG\0", 'magic');
    is($version, 2, 'format version 2');
    is($arch, 62, 'arch EM_X86_64');
    is($page, 4096, 'page size');
    is($total, length($data), 'total length is the file length');
    ok(length($data) >= 4 << 20, 'big4m image carries its 4 MiB of data')
        or diag(length($data) . ' bytes');
    my $r = run([$vmadump, 'info', $img]);
    ok($r->{status} == 0 && length($r->{out}) > 0 && $r->{err} eq '',
       'vmadump info prints a good image')
        or diag("status $r->{status} err '$r->{err}'");
}

# Dump options: every region as data makes a bigger image that restores
# just the same; so does a dump without the default library list.
{
    my ($plain, $all, $nolibs) = map { "$dir/opt-$_.img" } qw(plain all nolibs);
    dump_image($plain, [prog('hello-pie')]);
    my $d = dump_image($all, [prog('hello-pie')], dump_opts => ['--all-data']);
    is($d->{status}, 0, 'dump --all-data') or diag($d->{err});
    ok(-s $all > -s $plain, '--all-data sends the loader as data too')
        or diag((-s $all) . ' vs ' . (-s $plain) . ' bytes');
    $d = dump_image($nolibs, [prog('hello-pie')], dump_opts => ['--no-default-libs']);
    is($d->{status}, 0, 'dump --no-default-libs') or diag($d->{err});
    ok(-s $nolibs > -s $plain, '--no-default-libs sends the loader as data')
        or diag((-s $nolibs) . ' vs ' . (-s $plain) . ' bytes');
    for my $img ($all, $nolibs) {
        my $r = run([$vmadump, 'restore', $img]);
        is($r->{out}, "hello from a restored program, argc=1\n",
           "$img restores");
    }
}

# --keep-fd: a descriptor above 2 survives into the restored program only
# when asked for.
{
    my $img = "$dir/keepfd.img";
    dump_image($img, ['sh', '-c', 'echo through-fd-5 >&5 && echo written']);
    my $out = "$dir/fd5.out";
    my $r = run(['sh', '-c', "exec 5>$out; $vmadump restore --keep-fd 5 $img"]);
    ok($r->{status} == 0 && $r->{out} eq "written\n" && slurp($out) eq "through-fd-5\n",
       '--keep-fd 5 passes fd 5 to the restored program')
        or diag("status $r->{status} out '$r->{out}' err '$r->{err}'");
    $r = run(['sh', '-c', "exec 5>$out; $vmadump restore $img"]);
    ok($r->{status} != 0 && $r->{out} eq '',
       'without --keep-fd, fd 5 is closed in the restored program')
        or diag("status $r->{status} out '$r->{out}'");
}

done_testing();
