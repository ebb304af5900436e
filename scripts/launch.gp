# launch.gp - launch time against node count: one line per vexec tree
# shape, plus Hydra mpiexec and posix_spawn.
#
# Called by scripts/run-launch-bench as
#     gnuplot -e "csv='results/launch.csv'; png='results/launch.png'" launch.gp
# The CSV is tool,shape,nodes,runs,median_s,min_s,max_s,failed with a header
# line, each series' rows together in node order (the vexec-cluster,up row
# is not plotted).  A case that failed or did not run has no median and
# leaves a gap; a series with no median at all is left out (gnuplot warns).
# Both axes are logarithmic: times run from a millisecond (one node) to
# seconds (a thousand).
set terminal pngcairo size 1000,600 font "sans,10"
set output png
set datafile separator ","
set title "Launch of a 4 MiB static program on N emulated nodes: median wall time (lower is better)"
set xlabel "nodes"
set ylabel "median launch time (s)"
set logscale xy
set grid xtics ytics mxtics mytics
set key outside right top noenhanced
set xrange [0.8:*]
set offsets 0, graph 0.05, 0, 0

# Series: tool and shape as in the CSV, and the legend title.
array key[8] = ["vexec kary:2", "vexec kary:8", "vexec kary:16", \
                "vexec binomial", "vexec chain", "vexec flat", \
                "hydra ", "spawn "]
array title[8] = ["vexec kary:2", "vexec kary:8", "vexec kary:16", \
                  "vexec binomial", "vexec chain", "vexec flat", \
                  "Hydra mpiexec", "posix_spawn N times"]
series(i) = strcol(1) . " " . strcol(2) eq key[i]
# Only series with a median get a legend entry.
array have[8]
do for [i=1:8] {
    stats csv every ::1 using (series(i) && valid(5) ? 1 : 0) nooutput
    have[i] = STATS_sum
}
# Six colours that stay apart on white; dashed greys for the two
# baselines, so the vexec shapes stand out.
set linetype 1 lc rgb "#4477aa" pt 1
set linetype 2 lc rgb "#228833" pt 2
set linetype 3 lc rgb "#ee6677" pt 3
set linetype 4 lc rgb "#aa3377" pt 5
set linetype 5 lc rgb "#ccbb44" pt 7
set linetype 6 lc rgb "#66ccee" pt 9
set linetype 7 dashtype 2 lc rgb "black" pt 4
set linetype 8 dashtype 3 lc rgb "#555555" pt 6
plot for [i=1:8] csv every ::1 \
         using 3:(series(i) && valid(5) ? $5 : 1/0) \
         with linespoints lt i lw 2 title (have[i] > 0 ? title[i] : "")
