# VexecTest.pm - shared helpers for the vexec integration tests.
#
# Finds the build under test ($VEXEC_BUILD, else build/ next to tests/),
# runs commands under `timeout` with a given stdin, environment and working
# directory, and captures stdout, stderr and the exit status.  Output goes
# through temporary files rather than pipes so that a command that writes a
# lot to both streams cannot deadlock the test.
package VexecTest;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempfile);
use FindBin;
use POSIX ();
use Test::More ();

our @EXPORT_OK = qw(build_dir bin prog run slurp spew need_vmadump
                    one_line_error dump_image same_result check_roundtrip);

# Every command is bounded: a hung restore must fail the test, not hang it.
our $TIMEOUT = 60;

# Run inside a Slurm or PBS job, vexec would launch on the job's nodes
# where a test names none: the tests name their own.
delete @ENV{qw(SLURM_JOB_NODELIST PBS_NODEFILE)};

sub build_dir {
    return $ENV{VEXEC_BUILD} // "$FindBin::Bin/../build";
}

sub bin  { return build_dir() . "/bin/$_[0]" }
sub prog { return build_dir() . "/tests/progs/$_[0]" }

# The binaries under test and the test programs must be built: when one is
# missing the test file fails at once with one clear message (a skip would
# let a broken build pass).
sub need_vmadump {
    my @missing = grep { !-x $_ } bin('vmadump'), bin('vmad-restore'),
                                   prog('hello-static');
    return unless @missing;
    Test::More::plan(tests => 1);
    Test::More::fail("not built: @missing (run make; tests/progs/module.mk"
                     . " must be included by the Makefile)");
    exit 1;
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "open $path: $!";
    local $/;
    my $data = <$fh>;
    return $data // '';
}

sub spew {
    my ($path, $data) = @_;
    open my $fh, '>:raw', $path or die "open $path: $!";
    print $fh $data;
    close $fh or die "close $path: $!";
}

# run(\@cmd, stdin => STRING | stdin_file => PATH, env => \%replace,
#     cwd => DIR) runs timeout $TIMEOUT CMD and returns a hash reference:
#   out, err    what the command wrote
#   status      its exit status (timeout's 124 when it hung)
#   signal      the signal that killed it, 0 if none (timeout re-raises
#               the command's fatal signal on itself, so this is the
#               command's)
# env, when given, is the whole environment of the command.
sub run {
    my ($cmd, %opt) = @_;
    my ($in_fh, $in_path) = tempfile(UNLINK => 1);
    binmode $in_fh;
    print $in_fh $opt{stdin} if defined $opt{stdin};
    close $in_fh;
    $in_path = $opt{stdin_file} if defined $opt{stdin_file};
    my ($out_fh, $out_path) = tempfile(UNLINK => 1);
    my ($err_fh, $err_path) = tempfile(UNLINK => 1);

    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', $in_path or POSIX::_exit(126);
        open STDOUT, '>&', $out_fh or POSIX::_exit(126);
        open STDERR, '>&', $err_fh or POSIX::_exit(126);
        if ($opt{cwd}) { chdir $opt{cwd} or POSIX::_exit(126) }
        # env -i sets the variables in sorted order: %ENV would set them in
        # Perl's per-process hash order, and environ's order is visible.
        my @env = $opt{env} ? ('env', '-i', map { "$_=$opt{env}{$_}" }
                                          sort keys %{ $opt{env} }) : ();
        { exec @env, 'timeout', $TIMEOUT, @$cmd }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $wait = $?;
    my %r = (out => slurp($out_path), err => slurp($err_path),
             status => $wait >> 8, signal => $wait & 127);
    unlink $in_path unless defined $opt{stdin_file};
    unlink $out_path, $err_path;
    return \%r;
}

# Does the result look like a clean failure: non-zero exit, not killed by
# a signal, not timed out, exactly one line on stderr, nothing on stdout?
# Returns a list of what is wrong (empty when it is a clean error).
sub one_line_error {
    my ($r) = @_;
    my @wrong;
    push @wrong, "killed by signal $r->{signal}" if $r->{signal};
    push @wrong, "timed out" if $r->{status} == 124;
    push @wrong, "exit status 0" if !$r->{signal} && $r->{status} == 0;
    push @wrong, "stdout not empty (" . length($r->{out}) . " bytes)"
        if length $r->{out};
    my $lines = () = $r->{err} =~ /\n/g;
    push @wrong, "stderr is not exactly one line: '$r->{err}'"
        unless $lines == 1 && $r->{err} =~ /\A[^\n]+\n\z/;
    return @wrong;
}

# Describe a result in one line for test diagnostics.
sub describe {
    my ($r) = @_;
    my $err = substr($r->{err}, 0, 300);
    return "status $r->{status} signal $r->{signal} stderr '$err'";
}

# dump_image($img, \@cmd, %opt) dumps CMD into the file $img with the
# options in $opt{dump_opts}; returns the run result.
sub dump_image {
    my ($img, $cmd, %opt) = @_;
    my @dump_opts = @{ $opt{dump_opts} // [] };
    return run([bin('vmadump'), 'dump', '-o', $img, @dump_opts, '--', @$cmd],
               env => $opt{env});
}

# Where two strings first differ, with a little context, for diagnostics.
sub first_difference {
    my ($got, $want) = @_;
    my $i = 0;
    $i++ while $i < length($got) && $i < length($want)
               && substr($got, $i, 1) eq substr($want, $i, 1);
    my $from = $i > 60 ? $i - 60 : 0;
    return sprintf("at byte %d of %d (want %d):\n    got:  '%s'\n    want: '%s'",
                   $i, length $got, length $want,
                   substr($got, $from, 160), substr($want, $from, 160));
}

# same_result($got, $want, $name): one assertion that stdout, stderr, the
# exit status and the fatal signal are all identical.
sub same_result {
    my ($got, $want, $name) = @_;
    my @diff = grep { $got->{$_} ne $want->{$_} } qw(status signal err out);
    my $ok = Test::More::ok(!@diff, $name);
    for my $k (@diff) {
        Test::More::diag("  $k differs: " . first_difference($got->{$k}, $want->{$k}));
    }
    return $ok;
}

# check_roundtrip($name, \@cmd, stdin => ..., dir => TMPDIR, env => ...,
# filter => CODE): runs CMD directly, dumps it, restores the image with
# `vmadump restore` and runs the image directly as ./IMG, all with the same
# stdin; the restored runs must give exactly what the direct run gave,
# after filter (if any) has rewritten each stdout (for output that differs
# on every run).  Returns the direct result, for checks of its own.
sub check_roundtrip {
    my ($name, $cmd, %opt) = @_;
    my $dir = $opt{dir} // die "check_roundtrip needs dir";
    (my $file = $name) =~ s/[^\w.-]+/_/g;
    my $img = "$dir/$file.img";
    my %io = (stdin => $opt{stdin} // '', env => $opt{env});

    my $filter = $opt{filter} // sub { $_[0] };
    my $run = sub {
        my $r = run(@_);
        $r->{out} = $filter->($r->{out});
        return $r;
    };

    my $direct = $run->($cmd, %io);
    my $dump = dump_image($img, $cmd, %opt);
    Test::More::ok($dump->{status} == 0 && !$dump->{signal}
                   && $dump->{out} eq '' && -s $img, "$name: dump")
        or Test::More::diag(describe($dump));
    same_result($run->([bin('vmadump'), 'restore', $img], %io), $direct,
                "$name: vmadump restore gives the same output and status");
    chmod 0755, $img;
    same_result($run->(["./$file.img"], %io, cwd => $dir), $direct,
                "$name: ./image gives the same output and status");
    unlink $img;
    return $direct;
}

1;
