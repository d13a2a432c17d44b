# The plots of doc/bench/README.md, from the files bench/run.sh writes.
# gnuplot -e "raw='build/bench/raw'; out='doc/bench'" bench/plots.gp
# Every point is a median over the runs; the bars span min to max.
set terminal svg size 820,480 dynamic enhanced font "sans,11" background rgb "white"
set grid ytics
set key below horizontal maxcols 3

have(f) = int(system("[ -s '" . f . "' ] && echo 1 || echo 0"))
line(f, u, t) = have(f) ? sprintf("'%s' using %s with yerrorlines lw 2 title '%s', ", f, u, t) : ""
strip(s) = strlen(s) > 2 ? s[1:strlen(s) - 2] : ""
bus(c, m) = raw . "/plot-bus-" . c . "-" . m . ".dat"
irq(c, m) = raw . "/plot-irq-" . c . "-" . m . ".dat"

# The bar charts scale to their medians (before any range is set: stats obeys
# ranges), so that one outlier run cannot flatten the bars; its bar is clipped.
pio_top = 1; irq_top = 1
if (have(raw . "/bars-pio-out.dat")) {
	stats raw . "/bars-pio-out.dat" using 2 nooutput name "O"
	stats raw . "/bars-pio-in.dat" using 2 nooutput name "I"
	pio_top = 1.6 * (O_max > I_max ? O_max : I_max)
}
if (have(raw . "/bars-ipi.dat")) {
	stats raw . "/bars-ipi.dat" using 2 nooutput name "P"
	stats raw . "/bars-timer.dat" using 2 nooutput name "T"
	irq_top = 1.6 * (P_max > T_max ? P_max : T_max)
}

set logscale x 2
set xtics ("1" 1, "2" 2, "4" 4, "8" 8)
set xrange [0.8:10]
set xlabel "sender threads (2 host cores)"

# 1. Synchronous round trips on the bus.
set output out . "/bus_latency.svg"
set title "Bus: a synchronous read, p50 latency per send"
set ylabel "ns (log scale)"
set logscale y
cmd = line(bus("claimed", "p50_ns"), "1:2:3:4", "claimed (on the sender)") . \
      line(bus("lock-sync", "p50_ns"), "1:2:3:4", "global lock") . \
      line(bus("iothread-sync", "p50_ns"), "1:2:3:4", "I/O thread (VMM spin policy)") . \
      line(bus("iothread-sync-nospin", "p50_ns"), "1:2:3:4", "I/O thread, no spin") . \
      line(bus("classic-sync", "p50_ns"), "1:2:3:4", "classic I/O thread")
if (strlen(cmd) > 0) { eval "plot " . strip(cmd) }
unset logscale y

# 2. What a posted write costs its sender.
set output out . "/bus_posted.svg"
set title "Bus: a posted write, p50 time until the sender may go on"
set ylabel "ns (log scale)"
set logscale y
cmd = line(bus("lock-async", "p50_ns"), "1:2:3:4", "global lock") . \
      line(bus("iothread-async", "p50_ns"), "1:2:3:4", "I/O thread") . \
      line(bus("classic-async", "p50_ns"), "1:2:3:4", "classic I/O thread") . \
      line(bus("lock-async-slow", "p50_ns"), "1:2:3:4", "global lock, 1 µs device") . \
      line(bus("iothread-async-slow", "p50_ns"), "1:2:3:4", "I/O thread, 1 µs device") . \
      line(bus("classic-async-slow", "p50_ns"), "1:2:3:4", "classic, 1 µs device")
if (strlen(cmd) > 0) { eval "plot " . strip(cmd) }
unset logscale y

# 3. Posted writes and reads per second.
set output out . "/bus_throughput.svg"
set title "Bus: messages handled per second, all senders together"
set ylabel "million messages/s"
set yrange [0:*]
u = "1:($2/1e6):($3/1e6):($4/1e6)"
cmd = line(bus("lock-async", "mps"), u, "posted writes, global lock") . \
      line(bus("iothread-async", "mps"), u, "posted writes, I/O thread") . \
      line(bus("classic-async", "mps"), u, "posted writes, classic I/O thread") . \
      line(bus("lock-sync", "mps"), u, "sync reads, global lock") . \
      line(bus("iothread-sync", "mps"), u, "sync reads, I/O thread") . \
      line(bus("lock-async-slow", "mps"), u, "posted writes, lock, 1 µs device") . \
      line(bus("iothread-async-slow", "mps"), u, "posted writes, I/O thread, 1 µs device")
if (strlen(cmd) > 0) { eval "plot " . strip(cmd) }

# 4. The interrupt controllers.
if (have(irq("lockfree", "eps"))) {
	set output out . "/irqstress.svg"
	set title "irqstress: interrupts taken per second (4 vCPUs)"
	set ylabel "thousand interrupts/s"
	u = "1:($2/1e3):($3/1e3):($4/1e3)"
	eval "plot " . strip(line(irq("lockfree", "eps"), u, "lock-free models") . \
	                     line(irq("lock", "eps"), u, "every model behind one lock"))
}
set yrange [*:*]
unset logscale x
set xrange [*:*]
set xtics auto

# 5. Guests: bars with min-max.
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.9
set xtics scale 0 nomirror
set bmargin 4
set xlabel ""
set key below horizontal
set yrange [0:*]

pio_out = raw . "/bars-pio-out.dat"
if (have(pio_out)) {
	set yrange [0:pio_top]
	set output out . "/guest_pio.svg"
	set title "Guest port loop: one access, exit included (p50 of blocks; min-max bars clipped)"
	set ylabel "µs per access"
	# The driver writes every configuration, in this order (NaN where one failed).
	set xtics ("KVM\nfloor" 0, "ours\nlock" 1, "ours\nI/O thread" 2, "ours\nclaimed" 3, \
	           "ours\nno device" 4, "QEMU\nirqchip=off" 5, "QEMU\nin-kernel" 6, "QEMU\nno device" 7)
	plot pio_out using 2:3:4 title "out (posted write)", \
	     raw . "/bars-pio-in.dat" using 2:3:4 title "in (read, vCPU waits)"
}

ipi = raw . "/bars-ipi.dat"
if (have(ipi)) {
	set yrange [0:irq_top]
	set output out . "/guest_irq.svg"
	set title "Guest interrupts: IPI round trip (CPU 0 halted) and one-shot timer lateness, p50"
	set ylabel "µs"
	set xtics ("ours\nlock" 0, "ours\nI/O thread" 1, "QEMU\nirqchip=off" 2, "QEMU\nin-kernel" 3)
	plot ipi using 2:3:4 title "IPI ping-pong round trip", \
	     raw . "/bars-timer.dat" using 2:3:4 title "LAPIC one-shot 100 µs: late by"
}
