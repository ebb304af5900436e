#!/usr/bin/perl
# vmadump-badinput.t - every bad input is a clean error: non-zero exit, not
# a crash, exactly one line on stderr, and the program does not run (its
# stdout stays empty).  Damaged images (truncated, wrong magic, version or
# arch, any flipped byte, random bytes, empty), referenced libraries that
# are missing or different where the image is restored, programs that
# cannot be dumped, a region that cannot be placed, and CLI misuse.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(bin prog run slurp spew need_vmadump dump_image one_line_error);

need_vmadump();

my $dir = tempdir(CLEANUP => 1);
my $vmadump = bin('vmadump');
my $HEADER = 256;               # the header follows the 256-byte #! area

# clean_error($r, $name[, qr/cause/]): one assertion that $r is a clean
# one-line error (and, when given, that the line names the cause).
sub clean_error {
    my ($r, $name, $cause) = @_;
    my @wrong = one_line_error($r);
    push @wrong, "stderr does not match $cause: '$r->{err}'"
        if $cause && $r->{err} !~ $cause;
    return ok(!@wrong, $name) || diag(join '; ', @wrong);
}

# Restore $data written to a file; also checks `vmadump info` on it when
# asked.
sub restore_bytes {
    my ($data, $name, %opt) = @_;
    my $img = "$dir/bad.img";
    spew($img, $data);
    clean_error(run([$vmadump, 'restore', $img]), "restore: $name", $opt{cause});
    clean_error(run([$vmadump, 'info', $img]), "info: $name", $opt{cause})
        if $opt{info};
}

# A good image of a static program, and proof that it is good.
my $good_img = "$dir/good.img";
my $d = dump_image($good_img, [prog('hello-static')]);
is($d->{status}, 0, 'dump a good image') or diag($d->{err});
my $good = slurp($good_img);
my $len = length $good;
my $want = "hello from a restored program, argc=1\n";
is(run([$vmadump, 'restore', $good_img])->{out}, $want, 'the good image restores');
is(run([$vmadump, 'info', $good_img])->{status}, 0, 'info accepts the good image');

# Truncated: inside the #! area, inside the header, in the metadata after
# it, and inside region data.
for my $cut (1, 100, 255, $HEADER, $HEADER + 8, $HEADER + 20, $HEADER + 39,
             $HEADER + 40, 400, 1000, 4096, 8192, 65536,
             int($len / 2), $len - 4096, $len - 1) {
    next if $cut >= $len;
    restore_bytes(substr($good, 0, $cut), "truncated to $cut of $len bytes",
                  info => $cut == int($len / 2));
}

# Header fields.
sub with_field {
    my ($offset, $bytes) = @_;
    my $data = $good;
    substr($data, $offset, length $bytes) = $bytes;
    return $data;
}
restore_bytes(with_field($HEADER, "VMADIMX\0"), 'wrong magic', info => 1,
              cause => qr/magic|not an? (vmadump )?image/i);
restore_bytes(with_field($HEADER + 8, pack('V', 1)), 'version 1 (the earlier checksum)',
              cause => qr/version/i);
restore_bytes(with_field($HEADER + 12, pack('V', 3)), 'arch EM_386',
              cause => qr/arch|machine/i);
restore_bytes(with_field($HEADER + 16, pack('V', 65536)), 'page size 64 KiB');
restore_bytes(with_field($HEADER + 24, pack('Q<', $len + 4096)),
              'total length longer than the file');
restore_bytes(with_field($HEADER + 24, pack('Q<', $len - 4096)),
              'total length shorter than the file');

# Any flipped byte is caught by the checksum: spread over the whole file,
# every header field, and the last byte.
my %offsets = map { int($_ * ($len - 1) / 31) => 1 } 0 .. 31;
$offsets{$_} = 1 for 2, 200, map { $HEADER + $_ } 0, 8, 12, 16, 20, 24, 32, 40, 100;
for my $off (sort { $a <=> $b } keys %offsets) {
    my $data = $good;
    substr($data, $off, 1) = chr(ord(substr($data, $off, 1)) ^ 0xff);
    restore_bytes($data, "byte $off of $len flipped",
                  info => $off == int(16 * ($len - 1) / 31));
}
{
    my $data = $good;
    substr($data, int($len * 3 / 4), 1) = chr(ord(substr($data, int($len * 3 / 4), 1)) ^ 1);
    restore_bytes($data, 'one bit flipped in region data', info => 1);
}

# Not images at all.
open my $urandom, '<:raw', '/dev/urandom' or die "urandom: $!";
my $noise;
read $urandom, $noise, $len;
restore_bytes(substr($noise, 0, 65536), 'random bytes', info => 1);
restore_bytes(substr($good, 0, $HEADER + 40) . substr($noise, 0, $len - $HEADER - 40),
              'a good header followed by random bytes');
restore_bytes('', 'an empty file', info => 1);
restore_bytes("#!/bin/sh\necho should not run\n", 'a shell script');
clean_error(run([$vmadump, 'restore', "$dir/no-such.img"]), 'restore: no such file');
clean_error(run([$vmadump, 'restore', $dir]), 'restore: a directory');
clean_error(run([$vmadump, 'restore', '-'], stdin => substr($good, 0, $len - 1)),
            'restore -: a truncated image on stdin');
{
    my $data = $good;
    substr($data, $len - 1, 1) = chr(ord(substr($data, $len - 1, 1)) ^ 0xff);
    clean_error(run([$vmadump, 'restore', '-'], stdin => $data),
                'restore -: a damaged image on stdin');
    spew("$dir/run-bad.img", $data);
    chmod 0755, "$dir/run-bad.img";
    clean_error(run(['./run-bad.img'], cwd => $dir), './image: a damaged image');
}

# Libraries sent as references: the program's loader is a copy in $lib,
# named on --lib-dir; where the image is restored it is missing or differs.
{
    my $lib = "$dir/lib";
    mkdir $lib or die "mkdir: $!";
    copy('/lib64/ld-linux-x86-64.so.2', "$lib/ld.so") or die "copy: $!";
    chmod 0755, "$lib/ld.so";
    my $cc = run(['gcc', '-O2', '-o', "$lib/prog", "$FindBin::Bin/progs/hello.c",
                  "-Wl,--dynamic-linker=$lib/ld.so"]);
    is($cc->{status}, 0, 'gcc links a program to a copy of the loader')
        or diag($cc->{err});
    my $img = "$dir/lib.img";
    $d = dump_image($img, ["$lib/prog"], dump_opts => ['--lib-dir', $lib]);
    is($d->{status}, 0, 'dump a program whose loader is in --lib-dir') or diag($d->{err});
    my $r = run([$vmadump, 'restore', $img]);
    is($r->{out}, $want, 'it restores while the loader is in place')
        or diag($r->{err});
    like(run([$vmadump, 'info', $img])->{out}, qr{\Q$lib/ld.so\E},
         'info names the loader as a referenced file');

    my $loader = slurp("$lib/ld.so");
    unlink "$lib/ld.so";
    clean_error(run([$vmadump, 'restore', $img]), 'the referenced loader is missing',
                qr{\Q$lib/ld.so\E});

    my $changed = $loader;
    my $mid = int(length($loader) / 2);
    substr($changed, $mid, 1) = chr(ord(substr($changed, $mid, 1)) ^ 0xff);
    spew("$lib/ld.so", $changed);
    chmod 0755, "$lib/ld.so";
    clean_error(run([$vmadump, 'restore', $img]),
                'the referenced loader has one byte changed', qr{\Q$lib/ld.so\E});

    spew("$lib/ld.so", $loader . ("\0" x 4096));
    chmod 0755, "$lib/ld.so";
    clean_error(run([$vmadump, 'restore', $img]),
                'the referenced loader has a different size', qr{\Q$lib/ld.so\E});

    spew("$lib/ld.so", $loader);
    chmod 0755, "$lib/ld.so";
    is(run([$vmadump, 'restore', $img])->{out}, $want,
       'with the right loader back, the image restores again');

    # --lib names one file to send as a reference; without it (and without
    # the default list) the loader travels as data and need not be there.
    my $one = "$dir/lib-one.img";
    $d = dump_image($one, ["$lib/prog"],
                    dump_opts => ['--no-default-libs', '--lib', "$lib/ld.so"]);
    is($d->{status}, 0, 'dump with --lib FILE') or diag($d->{err});
    my $self_contained = "$dir/lib-none.img";
    $d = dump_image($self_contained, ["$lib/prog"], dump_opts => ['--no-default-libs']);
    is($d->{status}, 0, 'dump with --no-default-libs') or diag($d->{err});
    unlink "$lib/ld.so";
    clean_error(run([$vmadump, 'restore', $one]),
                'the loader named by --lib is missing', qr{\Q$lib/ld.so\E});
    is(run([$vmadump, 'restore', $self_contained])->{out}, $want,
       'an image with the loader as data restores without it');
}

# Programs that cannot be dumped.
my $nox = "$dir/not-executable";
copy(prog('hello-static'), $nox) or die "copy: $!";
chmod 0644, $nox;
my $suid = "$dir/setuid";
copy(prog('hello-static'), $suid) or die "copy: $!";
chmod 04755, $suid;
for my $case (['/nonexistent/prog', 'a program that does not exist'],
              ['no-such-program-in-path', 'a program not found in PATH'],
              [$nox, 'a program that is not executable'],
              [$dir, 'a directory'],
              [$suid, 'a setuid program']) {
    my ($p, $name) = @$case;
    my $img = "$dir/undumpable.img";
    clean_error(run([$vmadump, 'dump', '-o', $img, '--', $p]), "dump: $name");
    clean_error(run([$vmadump, 'dump', '--', $p]), "dump to stdout: $name");
}

# A program linked where the restorer itself lives (far.c) cannot be
# placed: restoring it must fail with one line, never crash or hang.  (If
# the restorer learns to move out of the way, it may really work instead.)
{
    my $far = prog('far-nolibc');
    is(run([$far])->{out}, "far ok\n", 'the far program runs directly');
    my $img = "$dir/far.img";
    my $dump = dump_image($img, [$far]);
    my $r = $dump->{status} ? $dump : run([$vmadump, 'restore', $img]);
    my @wrong = one_line_error($r);
    ok(!@wrong || ($r->{status} == 0 && $r->{out} eq "far ok\n" && $r->{err} eq ''),
       'a program linked over the restorer fails cleanly (or really works)')
        or diag(join '; ', @wrong);
}

# CLI misuse is bad input too: one line naming what is wrong.
for my $case ([[], 'no command'],
              [['frobnicate'], 'an unknown command'],
              [['dump'], 'dump without a program'],
              [['dump', '--no-such-option', '--', 'true'], 'an unknown option'],
              [['restore'], 'restore without an image'],
              [['restore', '--rank', 'abc', $good_img], 'a rank that is not a number'],
              [['restore', '--rank', '-1', $good_img], 'a negative rank'],
              [['info'], 'info without an image']) {
    my ($args, $name) = @$case;
    my $r = run([$vmadump, @$args]);
    my @wrong = one_line_error($r);
    ok(!@wrong, "usage: $name") or diag(join '; ', @wrong);
}

# The restorer's options for vmad_spawn_image, used by hand: --view with
# no image at the view address, and a malformed --own-vdso range.
my $restorer = bin('vmad-restore');
clean_error(run([$restorer, '--view', 4096]), 'vmad-restore --view with no image mapped',
            qr/no image is mapped at the view address/);
for my $bad ('1000-zz', '2000-1000', '1001-2000', 'x') {
    my $r = run([$restorer, '--own-vdso', $bad, '--view', 4096]);
    ok($r->{status} == 2 && $r->{err} =~ /\Ausage: vmad-restore .*--own-vdso/
       && (() = $r->{err} =~ /\n/g) == 1,
       "vmad-restore --own-vdso $bad: the usage line, exit 2")
        or diag("status $r->{status} err '$r->{err}'");
}
# --view-at: a page-aligned address with --view only, nothing mapped
# there is the same clean error as at the view address.
clean_error(run([$restorer, '--view', 4096, '--view-at', 0x300000000000]),
            'vmad-restore --view-at with no image mapped there',
            qr/no image is mapped at the view address/);
for my $bad ([4096, '--view-at', 4097], ['--view-at', 8192], [4096, '--view-at', 'x'],
             [4096, '--view-at', 0x7ffffffff000]) {
    my @args = $bad->[0] =~ /^--/ ? @$bad : ('--view', @$bad);
    my $r = run([$restorer, @args]);
    ok($r->{status} == 2 && $r->{err} =~ /\Ausage: vmad-restore .*--view-at/
       && (() = $r->{err} =~ /\n/g) == 1,
       "vmad-restore @args: the usage line, exit 2")
        or diag("status $r->{status} err '$r->{err}'");
}

done_testing();
