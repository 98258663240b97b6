# bench/chart.gnuplot — draws bench/results/chart.dat (written by bench/bench.py):
#   gnuplot -e "datafile='bench/results/chart.dat'; outfile='bench/results/chart.png'" bench/chart.gnuplot
# Top: requests/s per scenario (higher is better); bottom: proxy CPU µs per request
# (lower is better).  Bars: zonegate, nginx, HAProxy.
if (!exists("datafile")) datafile = 'bench/results/chart.dat'
if (!exists("outfile")) outfile = 'bench/results/chart.png'
set terminal pngcairo size 1100,700 font "sans,9" noenhanced
set output outfile
set datafile missing "nan"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside right top vertical
set xtics rotate by -30 scale 0
set multiplot layout 2,1
set title "requests/s (median) — higher is better"
set yrange [0:*]
plot datafile using 2:xtic(1) title "zonegate" lc rgb "#1b9e77", \
     '' using 3 title "nginx" lc rgb "#7570b3", \
     '' using 4 title "haproxy" lc rgb "#d95f02"
set title "proxy CPU µs per request (median) — lower is better"
plot datafile using 5:xtic(1) title "zonegate" lc rgb "#1b9e77", \
     '' using 6 title "nginx" lc rgb "#7570b3", \
     '' using 7 title "haproxy" lc rgb "#d95f02"
unset multiplot
