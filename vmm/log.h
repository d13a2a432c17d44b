#pragma once
#include <stdio.h>
#include <stdlib.h>

/* Messages go to stderr; the guest's console owns stdout. */
extern int log_verbose;
#define pr_err(fmt, ...)  fprintf(stderr, "vmm: error: " fmt "\n", ##__VA_ARGS__)
#define pr_warn(fmt, ...) fprintf(stderr, "vmm: warning: " fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...) do { if (log_verbose) fprintf(stderr, "vmm: " fmt "\n", ##__VA_ARGS__); } while (0)
