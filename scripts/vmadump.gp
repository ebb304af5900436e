# vmadump.gp - bar chart of the vmadump benchmark medians.
#
# Called by scripts/run-bench as
#     gnuplot -e "csv='results/vmadump.csv'; png='results/vmadump.png'" vmadump.gp
# The CSV is name,median_us,ratio_vs_posix_spawn,status with a header line;
# a benchmark that failed or did not run keeps its place on the axis, with
# its status under the name and no bar.
set terminal pngcairo size 1000,500 font "sans,10"
set output png
set datafile separator ","
set title "vmadump and baselines, 4 MiB static program: median time per run (lower is better)"
set ylabel "median time (µs)"
set style fill solid 0.7 border -1
set boxwidth 0.6
set yrange [0:*]
stats csv every ::1 using 0 nooutput
set xrange [-0.6:STATS_records - 0.4]
set offsets 0, 0, graph 0.1, 0
set bmargin 5
set grid ytics
set xtics noenhanced
unset key
# "family/bench" on two lines, the status below unless it is ok.
split(n) = n[1:strstrt(n, "/")] . "\n" . n[strstrt(n, "/") + 1:]
name(s) = s eq "ok" ? split(strcol(1)) : split(strcol(1)) . "\n(" . s . ")"
plot csv every ::1 using 0:(valid(2) ? $2 : 0):xtic(name(strcol(4))) \
         with boxes lc rgb "#4477aa", \
     ''  every ::1 using 0:(valid(2) ? $2 : 1/0):(sprintf("%.0f", $2)) \
         with labels offset 0,0.8
