# Guest test kernels: 32-bit multiboot ELFs built freestanding, one per
# tests/guests/*.c, each linked with the small library in tests/guests/lib.
#
# The host's KVM runs guest ring-0 code in its instruction emulator, which
# stops on SSE/AVX, x87, POPCNT, BMI and int3/int n: the flags below keep
# the compiler to general registers and plain i686 integer code.  They do
# not depend on SAN, so every build variant shares build/guests.
GUEST_DIR     := build/guests
GUEST_CC      ?= gcc
GUEST_CFLAGS  := -m32 -march=i686 -std=gnu11 -O2 -g -Wall -Wextra -Werror \
                 -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector \
                 -fcf-protection=none -fno-asynchronous-unwind-tables \
                 -fno-tree-loop-distribute-patterns \
                 -mgeneral-regs-only -mno-sse -mno-mmx -mno-80387 \
                 -Itests/guests/lib -MMD -MP
GUEST_LDFLAGS := -m32 -nostdlib -static -no-pie -Wl,-m,elf_i386 \
                 -Wl,-T,tests/guests/lib/guest.ld -Wl,--build-id=none \
                 -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack

GUEST_LIB_SRCS := $(wildcard tests/guests/lib/*.c tests/guests/lib/*.S)
GUEST_LIB_OBJS := $(patsubst tests/guests/lib/%,$(GUEST_DIR)/lib/%.o,$(GUEST_LIB_SRCS))
GUEST_SRCS     := $(wildcard tests/guests/*.c)
GUEST_ELFS     := $(GUEST_SRCS:tests/guests/%.c=$(GUEST_DIR)/%.elf)

.PHONY: guests
guests: $(GUEST_ELFS)

$(GUEST_DIR)/lib/%.o: tests/guests/lib/%
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_DIR)/%.o: tests/guests/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

# The linker script puts the multiboot header first, whatever the order.
$(GUEST_DIR)/%.elf: $(GUEST_DIR)/%.o $(GUEST_LIB_OBJS) tests/guests/lib/guest.ld \
		tests/guests/lib/check-insns.sh
	$(GUEST_CC) $(GUEST_LDFLAGS) $(filter %.o,$^) -o $@
	@tests/guests/lib/check-insns.sh $@ || { rm -f $@; exit 1; }

.PRECIOUS: $(GUEST_DIR)/%.o $(GUEST_DIR)/lib/%.o

# Header dependencies of the guests (-MMD above).
-include $(wildcard $(GUEST_DIR)/*.d $(GUEST_DIR)/lib/*.d)
