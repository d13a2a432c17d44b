#include "vmm/log.h"

int log_verbose;
