#!/bin/sh
# bench/run.sh — `make bench`: zonegate vs nginx vs HAProxy side by side (bench/README.md).
# Installs the benchmark-only tools if missing, builds the C upstream, runs
# bench/bench.py (which writes bench/results/latest.md, latest.csv, runs.csv) and draws
# bench/results/chart.png.  Environment: REPS DURATION WARMUP CONNS WORKERS THREADS
# PROXIES SCENARIOS CAPACITY QUICK (see bench/bench.py); QUICK=1 takes ~2 minutes.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh bench
[ -x build/zonegate ] || make all
mkdir -p bench/results
# a private copy: others may rebuild build/ while the benchmark runs
cp "${ZG_BIN:-build/zonegate}" bench/results/zonegate
export ZG_BIN="$PWD/bench/results/zonegate"
cc -O2 -Wall -Wextra -Werror -o bench/results/upstream bench/upstream.c -luv
python3 bench/bench.py
if command -v gnuplot >/dev/null 2>&1 && [ -s bench/results/chart.dat ]; then
    gnuplot -e "datafile='bench/results/chart.dat'; outfile='bench/results/chart.png'" \
        bench/chart.gnuplot && echo "chart: bench/results/chart.png (cp to bench/chart.png to publish)"
fi
