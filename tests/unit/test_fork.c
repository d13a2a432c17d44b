/*
 * Fork safety: a child forked from a VMM shares its KVM descriptors but
 * must never use them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "vmm/kvm.h"
#include "vmm/machine.h"
#include "vmm/pause.h"
#include "vmm/state_dump.h"
#include "vmm/vcpu.h"

static void test_child_refuses_kvm(void **state)
{
	struct vm vm;
	struct vcpu_state_dump st;
	uint64_t tsc;
	uint32_t khz;
	pid_t pid;
	int status;

	(void)state;
	if (kvm_unavailable_reason()) {
		printf("########## SKIPPED: %s ##########\n", kvm_unavailable_reason());
		skip();
	}
	assert_int_equal(machine_create(&vm, 1, 16u << 20, IO_MODE_LOCK), 0);
	assert_false(kvm_forbidden_here());
	assert_int_equal(vcpu_guest_tsc(vm.vcpu[0], &tsc, &khz), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Each refusal is a bit: the parent checks all of them arrived. */
		int bits = 0;

		bits |= kvm_forbidden_here() << 0;
		bits |= (vm_pause(&vm) == -EPERM) << 1;
		bits |= (vcpu_state_read(vm.vcpu[0], &st) == -EPERM) << 2;
		bits |= (vcpu_guest_tsc(vm.vcpu[0], &tsc, &khz) == -EPERM) << 3;
		_exit(bits);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0xf);
	/* The parent still owns its VM. */
	assert_false(kvm_forbidden_here());
	assert_int_equal(vcpu_guest_tsc(vm.vcpu[0], &tsc, &khz), 0);
	machine_destroy(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_refuses_kvm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
