# `make bench`: the global-lock vs I/O-thread benchmark (doc/bench/README.md).
# Not part of `make test`.  Included by the top Makefile after guests.mk:
# it uses CORE_OBJS, VMM, IRQSTRESS, STRESS_SRCS and the guest build flags.
#
#   make bench            build, run every part, write doc/bench/RESULTS.md
#                         and doc/bench/*.svg, print the tables
#   make bench REPS=3     fewer repetitions (default 5)
#   make bench QEMU=0     leave the QEMU peer out (reported as not run)
#   make bench LINUX=1    add the Linux boot milestones (needs make linux-guest)
#   make bench-deps       install gnuplot and QEMU from Debian
BENCH_DIR        := $(BUILD)/bench
BENCH_GUEST_DIR  := build/bench/guests
BENCH_BUS        := $(BENCH_DIR)/bus_bench
BENCH_FLOOR      := $(BENCH_DIR)/kvm_floor
BENCH_GUEST_SRCS := $(wildcard bench/guests/*.c)
BENCH_GUESTS     := $(BENCH_GUEST_SRCS:bench/guests/%.c=$(BENCH_GUEST_DIR)/%.elf)
BENCH_BINS       := $(VMM) $(BENCH_BUS) $(BENCH_FLOOR) $(BENCH_GUESTS)
REPS             ?= 5
QEMU             ?= 1
LINUX            ?= 0

.PHONY: bench bench-bins bench-deps bench-no-san

# The figures are of the plain build; a sanitizer would measure itself.
bench-no-san:
	@echo "make bench measures the plain build: run it without SAN=$(SAN)" >&2; exit 2

$(BENCH_BUS): $(addprefix $(BUILD)/obj/bench/,bus_bench.o classic_iothread.o hist.o) \
		$(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BENCH_FLOOR): $(BUILD)/obj/bench/kvm_floor.o $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BENCH_GUEST_DIR)/%.o: bench/guests/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(BENCH_GUEST_DIR)/%.elf: $(BENCH_GUEST_DIR)/%.o $(GUEST_LIB_OBJS) tests/guests/lib/guest.ld \
		tests/guests/lib/check-insns.sh
	$(GUEST_CC) $(GUEST_LDFLAGS) $(filter %.o,$^) -o $@
	@tests/guests/lib/check-insns.sh $@ || { rm -f $@; exit 1; }

.PRECIOUS: $(BENCH_GUEST_DIR)/%.o

bench-bins: $(BENCH_BINS)

# irqstress is built on the way, but a build failure is reported in the
# results (BENCH_IRQSTRESS_BUILD) instead of stopping the other parts.
bench: $(if $(SAN),bench-no-san) bench-bins $(if $(filter 1,$(LINUX)),linux-guest)
	@status=none; if [ -n "$(STRESS_SRCS)" ]; then \
		if $(MAKE) --no-print-directory $(IRQSTRESS); then status=ok; else status=failed; fi; \
	fi; \
	BENCH_VMM=$(VMM) BENCH_BUS=$(BENCH_BUS) BENCH_FLOOR=$(BENCH_FLOOR) \
	BENCH_GUESTS=$(BENCH_GUEST_DIR) BENCH_IRQSTRESS=$(IRQSTRESS) \
	BENCH_IRQSTRESS_BUILD=$$status BENCH_REPS=$(REPS) BENCH_QEMU=$(QEMU) \
	BENCH_LINUX=$(LINUX) bench/run.sh
	bench/migrate.sh $(VMM) $(BENCH_GUEST_DIR) $(REPS) $(QEMU) >>doc/bench/RESULTS.md

# gnuplot draws the plots; QEMU is the peer.  Both from Debian.
BENCH_SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
bench-deps:
	$(BENCH_SUDO) apt-get update
	$(BENCH_SUDO) apt-get install -y --no-install-recommends gnuplot-nox qemu-system-x86

-include $(wildcard $(BENCH_GUEST_DIR)/*.d)
