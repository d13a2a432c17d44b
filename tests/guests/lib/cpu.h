/*
 * CPU helpers for the interrupt and SMP test kernels: interrupt flag,
 * halt, CPUID, MSRs, the TSC, atomics and 64-bit division without libgcc.
 *
 * Everything here runs in the host's instruction emulator (ring 0): plain
 * integer instructions, locked ops, RDTSC, RDMSR/WRMSR and CPUID only.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

static inline void irq_disable(void)
{
	asm volatile("cli" ::: "memory");
}

static inline void irq_enable(void)
{
	asm volatile("sti" ::: "memory");
}

static inline bool irq_enabled(void)
{
	uint32_t flags;

	asm volatile("pushfl; popl %0" : "=r"(flags) :: "memory");
	return flags & (1u << 9);
}

/*
 * Sleep until an interrupt arrives, with no window between the caller's
 * last check (made with IF clear) and the halt: STI delays interrupts by
 * one instruction, so one that is already pending wakes the HLT.  Returns
 * with interrupts disabled again.
 */
static inline void irq_wait_disabled(void)
{
	asm volatile("sti; hlt; cli" ::: "memory");
}

static inline void barrier(void)
{
	asm volatile("" ::: "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
		     : "memory");
}

struct cpuid_regs {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r;

	asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
		     : "a"(leaf), "c"(subleaf));
	return r;
}

/* 32-bit atomics: shared counters between CPUs and interrupt handlers. */
static inline uint32_t atomic_read(const volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void atomic_set(volatile uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline uint32_t atomic_inc(volatile uint32_t *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

static inline uint32_t atomic_add(volatile uint32_t *p, uint32_t v)
{
	return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

/* @n / @d for a 32-bit divisor, with two DIVLs (no __udivdi3). */
static inline uint64_t div64(uint64_t n, uint32_t d)
{
	uint32_t hi = n >> 32, lo = (uint32_t)n, qhi = hi / d, r = hi % d, qlo;

	asm("divl %[d]" : "=a"(qlo), "+d"(r) : "a"(lo), [d] "rm"(d));
	return (uint64_t)qhi << 32 | qlo;
}

/* @a * @b / @d, exact as long as the result fits 64 bits. */
static inline uint64_t muldiv64(uint64_t a, uint32_t b, uint32_t d)
{
	uint64_t lo = (uint64_t)(uint32_t)a * b;
	uint64_t mid = (a >> 32) * b + (lo >> 32);   /* a * b = mid * 2^32 + low */
	uint64_t q1 = div64(mid, d);
	uint32_t r1 = (uint32_t)(mid - q1 * d), q0;

	/* (r1 * 2^32 + low) / d < 2^32 because r1 < d: one DIVL. */
	asm("divl %[d]" : "=a"(q0), "+d"(r1) : "a"((uint32_t)lo), [d] "rm"(d));
	return (q1 << 32) + q0;
}
