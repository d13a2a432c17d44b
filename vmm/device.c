/*
 * The registry of device models and "name:args" device creation.
 */
#include <errno.h>
#include <string.h>
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

static struct device_model *models;

void device_model_register(struct device_model *model)
{
	model->next = models;
	models = model;
}

const struct device_model *device_model_first(void)
{
	return models;
}

const struct device_model *device_model_find(const char *name)
{
	size_t len = strcspn(name, ":");

	for (const struct device_model *m = models; m; m = m->next)
		if (strlen(m->name) == len && !strncmp(m->name, name, len))
			return m;
	return NULL;
}

int device_create(struct vm *vm, const char *spec)
{
	const struct device_model *m = device_model_find(spec);
	const char *colon = strchr(spec, ':');

	if (!m) {
		pr_err("unknown device '%s' (see --device help)", spec);
		return -ENOENT;
	}
	return m->create(vm, colon ? colon + 1 : "");
}

static struct vm_named_device *named_slot(struct vm *vm, const char *name)
{
	for (unsigned i = 0; i < VM_MAX_NAMED_DEVICES; i++)
		if (vm->named[i].name && !strcmp(vm->named[i].name, name))
			return &vm->named[i];
	return NULL;
}

int vm_device_claim(struct vm *vm, const char *name, void *dev)
{
	struct vm_named_device *free_slot = NULL;
	int err = -ENOSPC;

	pthread_mutex_lock(&vm->named_lock);
	if (named_slot(vm, name)) {
		err = -EEXIST;
	} else {
		for (unsigned i = 0; i < VM_MAX_NAMED_DEVICES && !free_slot; i++)
			if (!vm->named[i].name)
				free_slot = &vm->named[i];
		if (free_slot) {
			*free_slot = (struct vm_named_device){ .name = name, .dev = dev };
			err = 0;
		}
	}
	pthread_mutex_unlock(&vm->named_lock);
	return err;
}

void *vm_device_find(struct vm *vm, const char *name)
{
	struct vm_named_device *slot;
	void *dev;

	if (!vm)
		return NULL;
	pthread_mutex_lock(&vm->named_lock);
	slot = named_slot(vm, name);
	dev = slot ? slot->dev : NULL;
	pthread_mutex_unlock(&vm->named_lock);
	return dev;
}

void vm_device_release(struct vm *vm, const char *name, void *dev)
{
	struct vm_named_device *slot;

	pthread_mutex_lock(&vm->named_lock);
	slot = named_slot(vm, name);
	if (slot && slot->dev == dev)
		*slot = (struct vm_named_device){ 0 };
	pthread_mutex_unlock(&vm->named_lock);
}
