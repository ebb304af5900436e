#!/usr/bin/perl
# vexec-output.t - what the ranks write comes back whole: every line of
# every rank exactly once, never cut or merged with another rank's; -l
# prefixes each line with the rank that wrote it; stderr stays stderr;
# vexec's stdin goes to rank 0 only; a 100 KB line arrives in one piece.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VexecTest qw(spew);
use VexecCluster qw(need_vexec cluster_up vexec describe lines);

need_vexec();

cluster_up(64);
my $tmp = tempdir(CLEANUP => 1);

# Each rank writes 50 lines "rRANK lI" to stdout, and 2 lines to stderr.
my $script = 'i=0; while [ $i -lt 50 ]; do echo "r$BPROC_RANK l$i"; '
           . 'i=$((i+1)); done; echo "e$BPROC_RANK a" >&2; echo "e$BPROC_RANK b" >&2';
my %want = map { my $r = sprintf("%07d", $_); map { ("r$r l$_" => 1) } 0 .. 49 } 0 .. 63;
my %want_err = map { my $r = sprintf("%07d", $_); ("e$r a" => 1, "e$r b" => 1) } 0 .. 63;

# Compare lines with an expected set: returns what is wrong.
sub line_set_errors {
    my ($text, $want, $strip) = @_;
    my (%seen, @bad);
    push @bad, 'output does not end with a newline' if length $text && $text !~ /\n\z/;
    for my $l (lines($text)) {
        my $key = $strip ? $strip->($l) : $l;
        if (!defined $key || !$want->{$key}) { push @bad, "unexpected line '"
                                                   . substr($l, 0, 80) . "'" }
        elsif ($seen{$key}++) { push @bad, "line twice: '$l'" }
    }
    push @bad, map { "missing '$_'" } grep { !$seen{$_} } sort keys %$want;
    return @bad;
}

my $r = vexec(['-n', 64, '/bin/dash', '-c', $script]);
is($r->{status}, 0, '64 ranks x 50 lines: exit 0') or diag(describe($r));
is(scalar(() = lines($r->{out})), 3200, 'exactly 3200 lines on stdout');
my @bad = line_set_errors($r->{out}, \%want);
ok(!@bad, 'each expected line exactly once, none cut or merged')
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
@bad = line_set_errors($r->{err}, \%want_err);
ok(!@bad, 'the 128 stderr lines come back on stderr, each once')
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);

# The lines of one rank keep their order.
my %last;
my @order = grep {
    my ($rk, $i) = /^r(\d+) l(\d+)$/;
    my $wrong = defined $rk && defined $last{$rk} && $i != $last{$rk} + 1;
    $last{$rk} = $i if defined $rk;
    $wrong;
} lines($r->{out});
ok(!@order, 'each rank\'s lines arrive in the order it wrote them')
    or diag("out of order: @order[0 .. ($#order < 4 ? $#order : 4)]");

# -l: "[RANK] " with the rank in decimal, matching the rank in the line.
$r = vexec(['-l', '-n', 64, '/bin/dash', '-c', $script]);
is($r->{status}, 0, '-l: exit 0') or diag(describe($r));
my $prefixed = sub {
    my ($l) = @_;
    my ($prefix, $stream, $rank, $rest) = $l =~ /^\[(\d+)\] ([re])(\d{7}) (.*)$/
        or return undef;
    return $prefix eq ($rank + 0) ? "$stream$rank $rest" : undef;
};
@bad = line_set_errors($r->{out}, \%want, $prefixed);
ok(!@bad, '-l: every stdout line once, prefixed "[RANK] " with its own rank')
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
@bad = line_set_errors($r->{err}, \%want_err, $prefixed);
ok(!@bad, '-l: stderr lines prefixed the same way, on stderr')
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
like($r->{out}, qr/^\[3\] r0000003 l0$/m, '-l: e.g. "[3] r0000003 l0"');

# Stdin goes to rank 0; the other ranks see EOF at once.
my $input = join '', map { "input line $_ " . ('.' x ($_ % 70)) . "\n" } 1 .. 2000;
spew("$tmp/input", $input);
$r = vexec(['-n', 3, '/bin/cat'], stdin_file => "$tmp/input");
is($r->{status}, 0, 'vexec -n 3 /bin/cat < file: exit 0') or diag(describe($r));
ok($r->{out} eq $input, 'prints the file exactly once (rank 0 reads stdin)')
    or diag("got " . length($r->{out}) . " bytes, want " . length($input));
$r = vexec(['-l', '-n', 3, '/bin/cat'], stdin => "one\ntwo\n");
is($r->{out}, "[0] one\n[0] two\n", 'with -l all of it comes from rank 0');

# Hydra's spellings of the same options: -np, -prepend-rank.
$r = vexec(['-np', 3, '-prepend-rank', '/bin/dash', '-c', 'echo "$BPROC_RANK"']);
is(join(',', sort(lines($r->{out}))), '[0] 0000000,[1] 0000001,[2] 0000002',
   'vexec -np 3 -prepend-rank: 3 ranks, each line labelled')
    or diag(describe($r));

# A megabyte of stdin arrives intact too.
my $mb = join '', map { sprintf("%07d %s\n", $_, 'y' x 120) } 1 .. 8000;
spew("$tmp/mb", $mb);
$r = vexec(['-n', 2, '/bin/cat'], stdin_file => "$tmp/mb");
ok($r->{status} == 0 && $r->{out} eq $mb, '1 MB of stdin comes back once, intact')
    or diag(describe($r) . "; got " . length($r->{out}) . " bytes of " . length($mb));

# Without stdin data (EOF at once) cat ends on every rank.
$r = vexec(['-n', 8, '/bin/cat'], stdin => '');
ok($r->{status} == 0 && $r->{out} eq '', 'empty stdin: 8 cats end, exit 0, no output')
    or diag(describe($r));

# A 100 KB line, written in several pieces by each of 4 ranks at once.
my $long = 'printf "%s " "$BPROC_RANK"; head -c 100000 /dev/zero | tr "\\0" x; echo';
$r = vexec(['-n', 4, '/bin/dash', '-c', $long]);
my %want_long = map { (sprintf("%07d ", $_) . ('x' x 100000)) => 1 } 0 .. 3;
@bad = line_set_errors($r->{out}, \%want_long);
ok($r->{status} == 0 && !@bad, 'a 100 KB line from each of 4 ranks arrives whole')
    or diag(describe($r) . "\n" . join("\n", @bad[0 .. ($#bad < 5 ? $#bad : 5)]));
$r = vexec(['-l', '-n', 4, '/bin/dash', '-c', $long]);
@bad = line_set_errors($r->{out}, \%want_long, $prefixed = sub {
    $_[0] =~ /^\[(\d+)\] (\d{7} x+)$/ && $1 == substr($2, 0, 7) ? $2 : undef });
ok($r->{status} == 0 && !@bad, 'and with -l, once prefixed')
    or diag(describe($r) . "\n" . join("\n", @bad[0 .. ($#bad < 5 ? $#bad : 5)]));

# Volume: 8 ranks write 20000 lines (2.5 MB) each as fast as they can.
$r = vexec(['-n', 8, '/bin/dash', '-c',
            'yes "v$BPROC_RANK ' . ('z' x 110) . '" | head -n 20000']);
my %count;
my $bad_lines = 0;
for my $l (lines($r->{out})) {
    if ($l =~ /^v(\d{7}) z{110}$/) { $count{$1}++ } else { $bad_lines++ }
}
my @short = grep { ($count{sprintf '%07d', $_} // 0) != 20000 } 0 .. 7;
ok($r->{status} == 0 && !$bad_lines && !@short,
   '8 ranks x 20000 lines: every line whole, 20000 from each rank')
    or diag(describe($r) . "; $bad_lines bad lines; short ranks: @short");

# --timing adds exactly one "vexec: timing:" line on stderr.
$r = vexec(['--timing', '-n', 4, '/bin/echo', 'hi']);
ok($r->{status} == 0 && $r->{out} eq "hi\n" x 4 && $r->{err} =~ /\Avexec: timing:[^\n]*\n\z/,
   '--timing: output unchanged, one "vexec: timing:" line on stderr')
    or diag(describe($r));
$r = vexec(['-n', 4, '/bin/echo', 'hi']);
is($r->{err}, '', 'without --timing, nothing on stderr');

# A last line without a newline is still delivered.
$r = vexec(['-n', 2, '/bin/dash', '-c', 'printf "tail$BPROC_RANK"']);
my @tails = sort map { s/\n\z//r } grep { length } split /(?<=\n)/, $r->{out};
is_deeply(\@tails, ['tail0000000', 'tail0000001'],
          'an unterminated last line still comes back, not merged with another')
    or diag(describe($r));

done_testing();
