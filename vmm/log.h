#pragma once
#include <stdio.h>
#include <stdlib.h>

/* Messages go to stderr; the guest's console owns stdout. */
extern int log_verbose;
#define pr_err(fmt, ...)  fprintf(stderr, "vmm: error: " fmt "\n", ##__VA_ARGS__)
#define pr_warn(fmt, ...) fprintf(stderr, "vmm: warning: " fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...) do { if (log_verbose) fprintf(stderr, "vmm: " fmt "\n", ##__VA_ARGS__); } while (0)

/*
 * Write a message into a caller's error buffer (the loaders' style: they
 * return a negative errno and say why in err[]) and return @code.
 */
__attribute__((format(printf, 4, 5)))
int report_error(char *err, size_t errlen, int code, const char *fmt, ...);
