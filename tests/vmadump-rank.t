#!/usr/bin/perl
# vmadump-rank.t - rank placeholders: an environment variable named as a
# rank variable whose value is all X is overwritten in place with the
# zero-padded rank at restore; nothing else changes; a rank wider than the
# placeholder is a clean error.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(bin prog run need_vmadump dump_image one_line_error);

need_vmadump();

my $dir = tempdir(CLEANUP => 1);
my $vmadump = bin('vmadump');
my @vars = qw(BPROC_RANK PMI_RANK OTHER NOTX MY_BPROC_RANK);
my %env = (%ENV, BPROC_RANK => 'XXXXXXX', PMI_RANK => 'XXXXX', OTHER => 'XXXX',
           NOTX => 'XXXY', MY_BPROC_RANK => 'XXXX');

# Dump rankenv printing @vars with %env into $img; returns the dump result.
sub dump_rank_image {
    my ($img, @opts) = @_;
    my $d = dump_image($img, [prog('rankenv-pie'), @vars], env => \%env,
                       dump_opts => \@opts);
    is($d->{status}, 0, "dump @opts") or diag($d->{err});
    return $d;
}

sub expect {
    my (%v) = @_;
    return join '', map { "$_=$v{$_}\n" } @vars;
}

my %placeholders = map { $_ => $env{$_} } @vars;
my $img = "$dir/rank.img";
dump_rank_image($img);

my $r = run([$vmadump, 'restore', '--rank', 42, $img]);
is($r->{out}, expect(%placeholders, BPROC_RANK => '0000042'),
   '--rank 42 gives BPROC_RANK=0000042 and leaves the other variables alone');
is($r->{status}, 0, 'and the program exits 0');

$r = run([$vmadump, 'restore', $img]);
is($r->{out}, expect(%placeholders), 'without --rank the placeholders stay');

$r = run([$vmadump, 'restore', '--rank', 0, $img]);
is($r->{out}, expect(%placeholders, BPROC_RANK => '0000000'), 'rank 0');

$r = run([$vmadump, 'restore', '--rank', 9999999, $img]);
is($r->{out}, expect(%placeholders, BPROC_RANK => '9999999'),
   'a rank exactly as wide as the placeholder');

$r = run([$vmadump, 'restore', '--rank', 12345678, $img]);
ok(!one_line_error($r), 'a rank wider than the placeholder is a one-line error')
    or diag(join '; ', one_line_error($r));

# The image run directly takes --rank too.
chmod 0755, $img;
$r = run(['./rank.img', '--rank', 3], cwd => $dir);
is($r->{out}, expect(%placeholders, BPROC_RANK => '0000003'), './image --rank 3');

# --rank-var names the variables; PMI_RANK's placeholder is 5 wide.
my $pmi = "$dir/pmi.img";
dump_rank_image($pmi, '--rank-var', 'PMI_RANK');
$r = run([$vmadump, 'restore', '--rank', 42, $pmi]);
like($r->{out}, qr/^PMI_RANK=00042$/m, '--rank-var PMI_RANK is substituted');
like($r->{out}, qr/^OTHER=XXXX$/m, 'OTHER is still untouched');

my $both = "$dir/both.img";
dump_rank_image($both, '--rank-var', 'BPROC_RANK', '--rank-var', 'PMI_RANK');
$r = run([$vmadump, 'restore', '--rank', 7, $both]);
is($r->{out}, expect(%placeholders, BPROC_RANK => '0000007', PMI_RANK => '00007'),
   'two --rank-var options substitute both');
$r = run([$vmadump, 'restore', '--rank', 123456, $both]);
ok(!one_line_error($r), 'a rank too wide for one of them is a one-line error')
    or diag(join '; ', one_line_error($r));

# Each restore gets fresh AT_RANDOM bytes even at the same rank.
my $auxv = "$dir/auxv.img";
dump_image($auxv, [prog('auxv-static')]);
my @rnd = map {
    my $o = run([$vmadump, 'restore', '--rank', 5, $auxv])->{out};
    $o =~ /^AT_RANDOM=([0-9a-f]{32})$/m ? $1 : '';
} 1 .. 2;
ok($rnd[0] && $rnd[1] && $rnd[0] ne $rnd[1],
   'two restores of one image at one rank get different AT_RANDOM')
    or diag("got '$rnd[0]' and '$rnd[1]'");

done_testing();
