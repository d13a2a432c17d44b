/*
 * The message types of the VMM, one bus each.  Receivers write results
 * (read values) back into the message they were given.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Port I/O: a range bus keyed by port. */
struct msg_pio {
	uint16_t port;
	uint8_t size;      /* 1, 2 or 4 */
	bool write;
	uint32_t value;    /* written value, or the value read */
};

/* Memory-mapped I/O: a range bus keyed by guest-physical address. */
struct msg_mmio {
	uint64_t addr;
	uint8_t size;      /* 1, 2, 4 or 8 */
	bool write;
	uint64_t value;
};

/* Interrupt lines (GSIs): edge pulses and level changes from devices. */
enum irq_action { IRQ_ASSERT, IRQ_DEASSERT, IRQ_EDGE };
struct msg_irq {
	uint8_t line;
	uint8_t action;    /* enum irq_action */
};

/*
 * Legacy processor signals.  INTR/INTA travel between the 8259 pair and the
 * LAPIC LINT0 of the boot CPU (virtual wire); NMI, INIT and SIPI are the
 * signals a LAPIC raises at another CPU.
 */
enum legacy_signal {
	LEGACY_INTR,          /* the PIC's output went high */
	LEGACY_DEASSERT_INTR, /* the PIC's output went low */
	LEGACY_INTA,          /* acknowledge: the PIC writes the vector to @value */
	LEGACY_INTR_LEVEL,    /* query: the PIC writes its output now to @level */
	LEGACY_NMI,
	LEGACY_INIT,
	LEGACY_SIPI,          /* @value is the start vector */
};
struct msg_legacy {
	uint8_t type;      /* enum legacy_signal */
	bool level;        /* LEGACY_INTR_LEVEL reply: the PIC's output */
	uint32_t cpu;      /* target vCPU for NMI/INIT/SIPI */
	uint32_t value;
};

/*
 * Interrupt delivery to LAPICs, as an IOAPIC redirection entry, an MSI or an
 * IPI describes it.  Every LAPIC sees the message and accepts it when the
 * destination matches; lowest-priority delivery is arbitrated by the sender.
 */
enum apic_delivery {
	APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4,
	APIC_DM_INIT = 5, APIC_DM_SIPI = 6, APIC_DM_EXTINT = 7,
};
enum apic_shorthand { APIC_SH_NONE, APIC_SH_SELF, APIC_SH_ALL, APIC_SH_ALL_BUT_SELF };
struct msg_apic {
	uint8_t vector;
	uint8_t delivery;  /* enum apic_delivery */
	uint8_t shorthand; /* enum apic_shorthand */
	bool logical;
	bool level;        /* level-triggered: the LAPIC sets TMR, EOI is broadcast */
	uint32_t dest;     /* APIC ID or logical destination */
	uint32_t source;   /* sending CPU, for shorthands */
	uint32_t accepted; /* receivers count the CPUs that took it */
};

/* EOI broadcast from a LAPIC to the IOAPIC for level-triggered vectors. */
struct msg_eoi {
	uint8_t vector;
};

/* Per-vCPU messages: MSR accesses the VMM emulates, and events. */
enum cpu_msg_type {
	CPU_MSG_RDMSR,
	CPU_MSG_WRMSR,
};
struct msg_cpu {
	uint8_t type;      /* enum cpu_msg_type */
	uint32_t index;    /* MSR index */
	uint64_t value;
	bool fault;        /* the access raises #GP */
};

/* A timer expired: the receiver owning @timer handles it. */
struct msg_timer {
	unsigned timer;
	uint64_t now;      /* VM clock at expiry, ns */
};

/* Bytes typed on the host console, for the serial port. */
struct msg_console {
	uint8_t len;
	uint8_t bytes[15];
};

/*
 * Snapshots: every device saves itself into, or loads itself from, the
 * stream's section named after it (vmm/stream.h).  Sent to all receivers
 * while the VM is paused; a receiver that fails sets @error (-errno) and
 * says why with stream_fail().
 */
enum restore_type { RESTORE_SAVE, RESTORE_LOAD };
struct stream;
struct msg_restore {
	uint8_t type;      /* enum restore_type */
	/*
	 * RESTORE_LOAD of the power-on checkpoint (a machine reset): state that
	 * survives a reset on real hardware (the RTC's battery-backed CMOS and
	 * clock) is kept rather than loaded.
	 */
	bool reset;
	struct stream *s;
	int error;
};
