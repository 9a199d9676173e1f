# tests/bench/plots.gp - the benchmark's plots, from the data files that
# tests/bench/run-bench report writes into the output directory.
#
#   gnuplot -e "dir='build/bench'" tests/bench/plots.gp
#
# Each plot is drawn only when its data file exists, so a partial run (no
# kernel boot, one thread count, no memory workload) still gets the rest:
#   ratio.dat          workload, then one column per allocator: time as a
#                      ratio to the best peer (geometric mean over cases)
#   liveset.dat        glibc-simple: live objects against ns/op, one block
#                      (separated by two blank lines, titled by its first
#                      line) per allocator and variant
#   threads-*.dat      Mops/s against threads, a block per allocator
#   kernel-cpus.dat    in-kernel operations per 1000 ticks against CPUs
#   mem-rss.dat        RSS (MiB) against seconds, a block per allocator
#   mem-phases.dat     or, without samples: RSS per phase per allocator
# Terminal: svg (gnuplot-nox has it), one file per plot.

if (!exists("dir")) dir = "build/bench"
# only='ratio' (or liveset, threads, kernel, mem) draws that plot alone:
# run-bench calls gnuplot once per plot, so one that fails costs no other.
if (!exists("only")) only = ""
want(name) = (only eq "" || only eq name)
exists_file(f) = system("test -e '" . f . "' && echo 1 || echo 0") eq "1"

set terminal svg size 960,540 dynamic enhanced font "sans,12" background "white"
set grid ytics
set key outside right top
set style line 1 lc rgb "#d62728" lw 2 pt 7
set style line 2 lc rgb "#7f7f7f" lw 2 pt 5
set style line 3 lc rgb "#1f77b4" lw 2 pt 9
set style line 4 lc rgb "#2ca02c" lw 2 pt 11
set style line 5 lc rgb "#9467bd" lw 2 pt 13
set style increment user

# Time per workload per allocator, as a ratio to the best peer.
f = dir . "/ratio.dat"
if (want("ratio") && exists_file(f)) {
	set output dir . "/ratio.svg"
	set title "Time per operation relative to the best peer (lower is better; 1 = best of mimalloc, jemalloc, tcmalloc)"
	set style data histograms
	set style histogram clustered gap 1
	set style fill solid 0.85 border -1
	set boxwidth 0.9
	set xtics rotate by -30 noenhanced
	set ylabel "time / best peer (geometric mean over cases)"
	set logscale y 2
	set yrange [0.25:*]
	set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb "black" dt 2 front
	plot for [i=2:*] f using i:xtic(1) title columnheader(i) ls i-1
	unset arrow 1
	unset logscale y
	set yrange [*:*]
	set xtics norotate
	unset style data
	set style data points
}

# Time against the size of the live set (glibc-simple).
f = dir . "/liveset.dat"
if (want("liveset") && exists_file(f)) {
	set output dir . "/liveset.svg"
	set title "glibc-simple: time per operation against live objects (1 thread)"
	set logscale x 10
	set logscale y 2
	set xlabel "live objects"
	set ylabel "ns per operation (median)"
	# Colour: the allocator; dashes: the variant (fifo, lifo, ...).
	K = int(system("sed -n 's/^# allocators: //p' '" . f . "'"))
	plot for [i=0:*] f index i using 1:2 with linespoints ls (i % K + 1) dt 1+i/K \
		title columnheader(1) noenhanced
	unset logscale x
	unset logscale y
	set xlabel
}

# Throughput against threads, one plot per workload.
files = want("threads") ? system("ls " . dir . "/threads-*.dat 2>/dev/null") : ""
do for [f in files] {
	name = f[strstrt(f, "threads-") + 8 : strlen(f) - 4]
	set output dir . "/threads-" . name . ".svg"
	set title "Throughput against threads: " . name noenhanced
	set xlabel "threads"
	set ylabel "million operations per second (all threads)"
	set xtics 1
	set yrange [0:*]
	plot for [i=0:*] f index i using 1:2 with linespoints title columnheader(1) noenhanced
	set yrange [*:*]
	set xtics autofreq
	set xlabel
}

# In-kernel throughput against CPUs.
f = dir . "/kernel-cpus.dat"
if (want("kernel") && exists_file(f)) {
	set output dir . "/kernel-cpus.svg"
	set title "In the kernel (TCG -icount): operations per 1000 instructions against CPUs"
	set xlabel "CPUs"
	set ylabel "operations per 1000 instructions (geometric mean over cases)"
	set logscale x 2
	set logscale y 10
	set key outside right top font ",9"
	plot for [i=0:*] f index i using 1:2 with linespoints title columnheader(1) noenhanced
	set key font ",12"
	unset logscale x
	unset logscale y
	set xlabel
}

# RSS against time for the memory workload.
f = dir . "/mem-rss.dat"
if (want("mem") && exists_file(f)) {
	set output dir . "/mem-rss.svg"
	set title "Memory workload: RSS against time (one run, 1 thread)"
	set xlabel "seconds"
	set ylabel "RSS MiB"
	set yrange [0:*]
	plot for [i=0:*] f index i using 1:2 with lines title columnheader(1) noenhanced
	set yrange [*:*]
	set xlabel
}
f = dir . "/mem-phases.dat"
if (want("mem") && exists_file(f)) {
	set output dir . "/mem-rss.svg"
	set title "Memory workload: live bytes, peak RSS and RSS after the free, per allocator"
	set style data histograms
	set style histogram clustered gap 1
	set style fill solid 0.85 border -1
	set ylabel "MiB"
	set yrange [0:*]
	plot for [i=2:*] f using i:xtic(1) title columnheader(i) ls i-1
}
