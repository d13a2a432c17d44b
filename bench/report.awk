# Writes doc/bench/RESULTS.md from the driver's files (bench/run.sh):
#   header.tsv   key <TAB> value: machine, versions, date
#   summary.tsv  part case x metric n median min max
#   errors.txt   one problem per line; notes.txt: parts not run
# Variables: out (where the plots are), threads ("1 2 4 8").
# Plain POSIX awk (Debian's mawk): no asort, no gensub.
BEGIN { FS = "\t"; nerr = 0; nnote = 0 }

FILENAME ~ /header\.tsv$/ { hdr[$1] = $2; next }
FILENAME ~ /summary\.tsv$/ {
	k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
	med[k] = $6; lo[k] = $7; hi[k] = $8; have[$1 SUBSEP $2] = 1
	next
}
FILENAME ~ /errors\.txt$/ { if ($0 != "") err[++nerr] = $0; next }
FILENAME ~ /notes\.txt$/ { if ($0 != "") notes[++nnote] = $0; next }

function num(v,   a) {
	a = v < 0 ? -v : v
	if (a >= 100) return sprintf("%.0f", v)
	if (a >= 10) return sprintf("%.1f", v)
	if (a >= 1) return sprintf("%.2f", v)
	return sprintf("%.3f", v)
}

# "median [min–max]" of a figure times @scale, or why it is missing.
function cell(part, c, x, metric, scale,   k) {
	k = part SUBSEP c SUBSEP x SUBSEP metric
	if (!(k in med) && c ~ /^qemu/ && hdr["qemu"] ~ /^not /)
		return "no QEMU"
	if (!(k in med))
		return failed(part, c) ? "failed" : "–"
	return num(med[k] * scale) " [" num(lo[k] * scale) "–" num(hi[k] * scale) "]"
}

function failed(part, c,   i) {
	for (i = 1; i <= nerr; i++)
		if (index(err[i], part "/" c " ") == 1) return 1
	return 0
}

function ratio(name, x) { return cell("ratio", name, x, "x", 1) }

# The cells after a row's label: " | " and cell(part, c, x, metric, scale) for
# each "x:metric" word of @spec.  The caller closes the row.
function cells(part, c, spec, scale,   n, s, i, xm, r) {
	n = split(spec, s, " ")
	for (i = 1; i <= n; i++) {
		split(s[i], xm, ":")
		r = r " | " cell(part, c, xm[1], xm[2], scale)
	}
	return r
}

# A row per word of @cfgs: the configuration, then cells(part, c, spec, 1).
function cfg_rows(part, cfgs, spec,   n, c, i) {
	n = split(cfgs, c, " ")
	for (i = 1; i <= n; i++)
		print "| " cfg[c[i]] cells(part, c[i], spec, 1) " |"
}

# Table rows of same-run ratios: one per word of @names, labelled by the
# "|"-separated @labels, with a column per word of @xs.
function ratio_rows(xs, names, labels,   n, nx, nm, lb, x, i, j) {
	nx = split(xs, x, " ")
	n = split(names, nm, " ")
	split(labels, lb, "|")
	for (i = 1; i <= n; i++) {
		printf "| %s |", lb[i]
		for (j = 1; j <= nx; j++) printf " %s |", ratio(nm[i], x[j])
		printf "\n"
	}
}

function exists(f,   line, r) {
	r = (getline line < f) >= 0
	close(f)
	return r
}

# A table's header row, and under it the |---| rule for as many columns.
function head(row,   r, n) {
	r = row
	n = gsub(/\|/, "", r)
	r = "|"
	while (--n > 0) r = r "---|"
	print row
	print r
}

function bus_table(title, metric, scale, rows,   n, r, i, t, nt, ts) {
	nt = split(threads, ts, " ")
	printf "### %s\n\n| path |", title
	for (t = 1; t <= nt; t++) printf " %s sender%s |", ts[t], ts[t] == 1 ? "" : "s"
	printf "\n|---|"
	for (t = 1; t <= nt; t++) printf "---|"
	printf "\n"
	n = split(rows, r, " ")
	for (i = 1; i <= n; i++) {
		printf "| %s |", buslabel[r[i]]
		for (t = 1; t <= nt; t++) printf " %s |", cell("bus", r[i], ts[t], metric, scale)
		printf "\n"
	}
	printf "\n"
}

function ratio_table(title, names, labels,   t, nt, ts) {
	nt = split(threads, ts, " ")
	printf "### %s\n\n| ratio (same run) |", title
	for (t = 1; t <= nt; t++) printf " %s |", ts[t]
	printf "\n|---|"
	for (t = 1; t <= nt; t++) printf "---|"
	printf "\n"
	ratio_rows(threads, names, labels)
	printf "\n"
}

END {
	buslabel["empty"] = "timing loop alone (subtract from the rest)"
	buslabel["claimed"] = "claimed: read on the sender"
	buslabel["iothread-sync"] = "I/O thread, sync read (VMM spin policy)"
	buslabel["iothread-sync-nospin"] = "I/O thread, sync read, no spin"
	buslabel["iothread-async"] = "I/O thread, posted write"
	buslabel["lock-sync"] = "global lock, sync read"
	buslabel["lock-async"] = "global lock, posted write"
	buslabel["classic-sync"] = "classic I/O thread, sync read"
	buslabel["classic-async"] = "classic I/O thread, posted write"
	buslabel["iothread-async-slow"] = "I/O thread, posted write, 1 µs device"
	buslabel["lock-async-slow"] = "global lock, posted write, 1 µs device"
	buslabel["classic-async-slow"] = "classic I/O thread, posted write, 1 µs device"
	cfg["floor"] = "raw KVM floor (kvm_floor: KVM_RUN loop, no bus)"
	cfg["thread"] = "ours, `--io thread`: testdev behind the I/O thread"
	cfg["lock"] = "ours, `--io lock`: testdev under the global lock"
	cfg["claimed"] = "ours, claimed testdev (on the vCPU thread)"
	cfg["unassigned"] = "ours, unassigned port (no device)"
	cfg["qemu-off"] = "QEMU, `kernel-irqchip=off`"
	cfg["qemu-on"] = "QEMU, in-kernel irqchip"
	cfg["qemu-unassigned"] = "QEMU, unassigned port"
	pioqemu["qemu-off"] = " (pc-testdev at 0xe0, under the BQL)"
	pioqemu["qemu-on"] = " (pc-testdev at 0xe0, under the BQL)"

	print "# Benchmark results: global lock vs I/O thread"
	print ""
	print "Written by `make bench` (bench/run.sh); [README.md](README.md) explains every figure, how to"
	print "reproduce it and what it says.  Every figure is the **median of " hdr["reps"] " runs [min–max]**;"
	print "every ratio is taken between two figures of the same run, then summarised the same way."
	print ""
	head("| | |")
	print "| date | " hdr["date"] " |"
	print "| machine | `" hdr["machine"] "` |"
	print "| CPU | " hdr["cpu"] " |"
	print "| KVM | " hdr["kvm"] " |"
	print "| compiler | " hdr["gcc"] " |"
	print "| QEMU | " hdr["qemu"] " |"
	print "| gnuplot | " hdr["gnuplot"] " |"
	print "| commit | " hdr["commit"] " |"
	print "| bench time | " hdr["seconds"] " s |"
	print "| host load average (1, 5, 15 min) | " hdr["load_start"] " at the start, " hdr["load_end"] " at the end |"
	print ""
	print "## Problems in this run"
	print ""
	if (!nerr) print "None: every tool ran and every guest passed."
	for (i = 1; i <= nerr; i++) print "- " err[i]
	for (i = 1; i <= nnote; i++) print "- " notes[i]
	print ""

	print "## 1. Bus messages (`bus_bench`, no KVM)"
	print ""
	print "Port-I/O messages to a testdev; N sender threads stand in for vCPUs (2 host cores)."
	print ""
	rows = "empty claimed lock-sync iothread-sync iothread-sync-nospin classic-sync lock-async iothread-async classic-async lock-async-slow iothread-async-slow classic-async-slow"
	bus_table("Latency p50 per send (ns)", "p50_ns", 1, rows)
	bus_table("Latency p99 per send (ns)", "p99_ns", 1, rows)
	bus_table("Throughput (million messages/s handled, all senders)", "mps", 1e-6, rows)
	ratio_table("I/O thread vs global lock", \
		"sync_iothread_over_lock posted_iothread_over_lock async_iothread_over_lock slow_posted_iothread_over_lock slow_async_iothread_over_lock claimed_over_lock", \
		"sync read p50: I/O thread / lock|posted write, sender p50: I/O thread / lock|posted writes/s: I/O thread / lock|1 µs device, posted write, sender p50: I/O thread / lock|1 µs device, posted writes/s: I/O thread / lock|claimed p50 / lock sync p50")

	print "## 2. The classic I/O thread"
	print ""
	print "Mutex-protected queue, counting semaphore for the worker, one semaphore per waiting caller"
	print "(bench/classic_iothread.c), driven through the same bus send path: rows `classic` above."
	print ""
	ratio_table("Ours vs classic", "sync_iothread_over_classic async_iothread_over_classic slow_async_iothread_over_classic", \
		"sync read p50: ours (no spin) / classic|posted writes/s: ours / classic|1 µs device, posted writes/s: ours / classic")

	print "## 3. Interrupt controllers (`irqstress`)"
	print ""
	if (!(("irq" SUBSEP "lockfree") in have) && !(("irq" SUBSEP "lock") in have)) {
		print "No figures: see Problems above."
	} else {
		nt = split(threads, ts, " ")
		print "| sender threads (4 vCPUs) | lock-free: interrupts/s | p50 µs | p99 µs | global lock: interrupts/s | p50 µs | p99 µs | lock-free / lock, interrupts/s |"
		print "|---|---|---|---|---|---|---|---|"
		for (t = 1; t <= nt; t++)
			print "| " ts[t] " | " cell("irq", "lockfree", ts[t], "eps", 1) " | " \
				cell("irq", "lockfree", ts[t], "p50_us", 1) " | " cell("irq", "lockfree", ts[t], "p99_us", 1) \
				" | " cell("irq", "lock", ts[t], "eps", 1) " | " cell("irq", "lock", ts[t], "p50_us", 1) \
				" | " cell("irq", "lock", ts[t], "p99_us", 1) " | " ratio("irq_lockfree_over_lock", ts[t]) " |"
	}
	print ""

	print "## 4. Guests (in-guest TSC) and 5. QEMU"
	print ""
	print "### Port I/O: one access, exit included (µs)"
	print ""
	print "`p50`: median of 40 blocks of 100 accesses; `best`: the fastest block."
	print ""
	head("| configuration | `out` p50 | `out` best | `in` p50 | `in` best | `out` / floor | `in` / floor |")
	n = split("floor lock thread claimed unassigned qemu-off qemu-on qemu-unassigned", c, " ")
	for (i = 1; i <= n; i++)
		print "| " cfg[c[i]] pioqemu[c[i]] \
			cells("pio", c[i], "out:p50_ns out:best_ns in:p50_ns in:best_ns", 1e-3) " | " \
			(c[i] == "floor" ? "1" : ratio("pio_" c[i] "_over_floor", "out")) " | " \
			(c[i] == "floor" ? "1" : ratio("pio_" c[i] "_over_floor", "in")) " |"
	print ""
	head("| ratio (same run, p50) | `out` | `in` |")
	ratio_rows("out in", "pio_thread_over_lock pio_qemu-on_over_lock pio_qemu-unassigned_over_unassigned", \
		"ours: I/O thread / global lock|QEMU in-kernel irqchip (pc-testdev) / ours `--io lock` (testdev)|unassigned port: QEMU / ours")
	print ""

	print "### IPI ping-pong between two vCPUs: round trip (µs)"
	print ""
	head("| configuration | CPU 0 halted: p50 | p99 | CPU 0 spinning: p50 | p99 |")
	cfg_rows("ipi", "lock thread qemu-off qemu-on", "hlt:p50_us hlt:p99_us spin:p50_us spin:p99_us")
	print ""
	head("| ratio (same run, halted p50) | |")
	ratio_rows("hlt", "ipi_thread_over_lock ipi_qemu-on_over_thread ipi_qemu-off_over_thread", \
		"ours: I/O thread / global lock|QEMU in-kernel irqchip / ours `--io thread`|QEMU `kernel-irqchip=off` / ours `--io thread`")
	print ""

	print "### LAPIC timer: interrupts delivered per second, and one-shot lateness"
	print ""
	head("| configuration | period 1000 µs (1,000/s) | 100 µs (10,000/s) | 20 µs (50,000/s) | one-shot 100 µs, late by p50 µs | p99 µs | timer clock MHz |")
	cfg_rows("timer", "lock thread qemu-off qemu-on",
		 "1000:rate 100:rate 20:rate oneshot:p50_us oneshot:p99_us clock:mhz")
	print ""
	head("| ratio (same run, one-shot lateness p50) | |")
	ratio_rows("oneshot", "timer_thread_over_lock timer_qemu-off_over_thread timer_qemu-on_over_thread", \
		"ours: I/O thread / global lock|QEMU `kernel-irqchip=off` / ours `--io thread`|QEMU in-kernel irqchip / ours `--io thread`")
	print ""

	# 6 (Linux, LINUX=1) and 7 (migration) are appended by bench/linux.sh and bench/migrate.sh.

	np = split("bus_latency bus_posted bus_throughput irqstress guest_pio guest_irq", p, " ")
	print "## Plots"
	print ""
	shown = 0
	for (i = 1; i <= np; i++)
		if (exists(out "/" p[i] ".svg")) {
			print "![" p[i] "](" p[i] ".svg)"
			print ""
			shown++
		}
	if (!shown) print "None (see Problems above)."
}
