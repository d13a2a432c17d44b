/*
 * Device models register themselves (kvmtool style) and the machine is a
 * list of device parameter strings (Seoul style): "uart:0x3f8,4".  Each
 * model's create() attaches its receivers to the VM's buses; it is the only
 * place a model touches the VM directly.
 */
#pragma once

struct vm;

struct device_model {
	const char *name;
	const char *help;          /* "uart:port,irq  16550A serial port ..." */
	int (*create)(struct vm *vm, const char *args);
	struct device_model *next;
};

void device_model_register(struct device_model *model);
const struct device_model *device_model_find(const char *name);
const struct device_model *device_model_first(void);
/* Create a device from "name:args" on @vm: 0, or a negative errno. */
int device_create(struct vm *vm, const char *spec);

/*
 * The one instance of a model a VM has (its PIC, its PIT ...), for models
 * that must find each other: the bios initialises the PIC and PIT.
 * claim: 0, or -EEXIST if the VM has one already (-ENOSPC if full).
 */
int vm_device_claim(struct vm *vm, const char *name, void *dev);
void *vm_device_find(struct vm *vm, const char *name);
void vm_device_release(struct vm *vm, const char *name, void *dev);

#define DEVICE_MODEL(var, ...)                                              \
	static struct device_model var = { __VA_ARGS__ };                   \
	__attribute__((constructor)) static void var##_register(void)       \
	{                                                                   \
		device_model_register(&var);                                \
	}
