# User-level VMM on /dev/kvm.  `make` builds everything into build/;
# `make SAN=address|thread` builds a sanitized variant into build/<san>/.
CC      ?= gcc
SAN     ?=
BUILD   := build$(if $(SAN),/$(SAN))
CFLAGS  := -std=gnu11 -O2 -g -Wall -Wextra -Werror -I. -pthread -MMD -MP \
           -D_GNU_SOURCE $(EXTRA_CFLAGS)
LDFLAGS := -pthread
LDLIBS  := -lurcu-memb -lurcu-common -lcmocka -lz -llzma -lzstd -llz4 -ljansson

ifeq ($(SAN),address)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SAN),thread)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=thread
else ifneq ($(SAN),)
$(error SAN must be address or thread)
endif

# Core objects: everything but the frontend's main and the test programs.
CORE_SRCS := $(wildcard bus/*.c vmm/*.c devices/*.c) $(filter-out unix/main.c,$(wildcard unix/*.c))
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
STRESS_SRCS := $(wildcard tests/stress/*.c)

VMM := $(BUILD)/vmm
IRQSTRESS := $(BUILD)/irqstress

.PHONY: all test unit-tests guest-tests tsan-tests linux-tests clean run run-demo
all: $(VMM) $(BUILD)/snapcmp $(UNIT_BINS) $(if $(STRESS_SRCS),$(IRQSTRESS)) guests

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(VMM): $(BUILD)/obj/unix/main.o $(CORE_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/snapcmp: $(BUILD)/obj/tests/snapshot/snapcmp.o $(BUILD)/obj/vmm/stream.o
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(IRQSTRESS): $(STRESS_SRCS:%.c=$(BUILD)/obj/%.o) $(CORE_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

include tests/guests/guests.mk
include tests/guests/linux/linux.mk
include bench/bench.mk

# The README's test command.  Unit tests, guest tests in both I/O modes,
# then the concurrency tests again under ThreadSanitizer.
test: all
	$(MAKE) unit-tests
	$(MAKE) guest-tests
	$(MAKE) SAN=thread tsan-tests
	$(MAKE) linux-tests

# Linux guests (issue 7): builds the test kernel on first use (minutes).
linux-tests: $(VMM) linux-guest linux-stock
	tests/linux/run.sh $(VMM) $(LINUX_OUT)

unit-tests: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
	ACPI_REQUIRE_IASL=1 tests/acpi/run.sh $(BUILD)/tests/test_acpi

guest-tests: $(VMM) $(BUILD)/snapcmp guests
	tests/cli/run.sh $(VMM)
	ACPI_REQUIRE_IASL=1 ACPI_VMM=$(VMM) ACPI_KERNEL=$(GUEST_DIR)/hello.elf tests/acpi/run.sh
	tests/guests/run.sh $(VMM) $(GUEST_DIR)
	tests/qmp/run.sh $(VMM) $(GUEST_DIR)
	tests/snapshot/run.sh $(VMM) $(GUEST_DIR)
	tests/migrate/run.sh $(VMM) $(GUEST_DIR)
	tests/reset/run.sh $(VMM) $(GUEST_DIR)

# Concurrency tests only: the bus, the I/O thread and the stress harness.
TSAN_TESTS := $(filter %/test_bus %/test_range %/test_iothread %/test_timer %/test_testdev \
                         %/test_lapic %/test_pic8259 %/test_rtc_cmos %/test_acpi_pm \
                         %/test_platform %/test_qmp,$(UNIT_BINS))
tsan-tests: $(TSAN_TESTS) $(if $(STRESS_SRCS),$(IRQSTRESS))
	@set -e; for t in $(TSAN_TESTS); do echo "== $$t (TSan)"; \
		TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" $$t; done
	$(if $(STRESS_SRCS),tests/stress/run-short.sh $(IRQSTRESS))

# The main job: the Linux test guest on 2 vCPUs to a shell on the terminal
# (KERNEL=debian: Debian's stock kernel, for hosts with VT-x or AMD-V).
# Ctrl-A x quits; `poweroff` in the guest ends the VMM with status 0.
LINUX_ARGS := console=ttyS0 panic=-1 noxsave nowatchdog no_ipi_broadcast=1 \
	cryptomgr.notests clearcpuid=cx16,popcnt,smap,fsgsbase,rdpid,rdtscp,rdseed,invpcid,pcid,erms,fsrm,ssse3,pku
KERNEL ?= test
run: $(VMM) linux-guest $(if $(filter debian,$(KERNEL)),linux-stock)
	$(VMM) --cpus 2 --mem 256M --initrd $(LINUX_OUT)/initramfs.cpio \
		--kernel $(if $(filter debian,$(KERNEL)),$(LINUX_OUT)/debian/vmlinuz,$(LINUX_OUT)/bzImage) \
		--cmdline "$(LINUX_ARGS) vmmtest=shell"

# The multiboot demo guest; it reports success through debug-exit value 0: status 1.
run-demo: $(VMM) guests
	$(VMM) --kernel $(GUEST_DIR)/hello.elf --cmdline "hello from the demo guest" || [ $$? -eq 1 ]

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' -type f 2>/dev/null)
