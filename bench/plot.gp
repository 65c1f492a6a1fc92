# bench/plot.gp: the chart of a benchmark run (called by bench/run.sh).
#
#   gnuplot -c bench/plot.gp RAND.dat SEQ.dat OUT.png TITLE NSYSTEMS COLOURS
#
# RAND.dat: 4k random jobs, thousands of IOPS; SEQ.dat: 1M sequential jobs,
# MiB/s.  Rows are jobs, columns are systems (first line: quoted names),
# "-" where a system has no figure.  COLOURS: one "#rrggbb" per system,
# separated by spaces.

rand = ARG1
seq = ARG2
n = int(ARG5)

set terminal pngcairo size 1500,1000 enhanced font "DejaVu Sans,11"
set output ARG3
set datafile separator "\t"
set datafile missing "-"

do for [i = 1:n] { set linetype i linecolor rgb word(ARG6, i) }

set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.9 border rgb "#333333"
set boxwidth 0.95
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set key outside right top vertical Left reverse noenhanced samplen 2 spacing 1.2
set xtics noenhanced nomirror
set tics scale 0

set multiplot layout 2,1 title ARG4 noenhanced font ",14"

set title "4k random, queue depth 16 (whole origin, every block once)"
set ylabel "thousand IOPS"
plot for [i = 2:n + 1] rand using i:xtic(1) title columnheader(i) lt (i - 1)

set title "1 MiB sequential writes, queue depth 16"
set ylabel "MiB/s"
plot for [i = 2:n + 1] seq using i:xtic(1) title columnheader(i) lt (i - 1)

unset multiplot
