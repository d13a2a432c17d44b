/*
 * The registry of device models and "name:args" device creation.
 */
#include <errno.h>
#include <string.h>
#include "vmm/device.h"
#include "vmm/log.h"

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
