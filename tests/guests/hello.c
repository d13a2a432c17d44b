/*
 * The demo guest (`make run`): greets on COM1 with its command line and
 * what the loader said about memory, then exits with "pass".
 */
#include "guest.h"

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("hello", magic, mbi);

	printf("Hello from the guest\n");
	printf("arguments: \"%s\"\n", args);
	if (mbi->flags & MB_INFO_MEMORY)
		printf("memory: %u KiB low, %u KiB above 1 MiB\n",
		       mbi->mem_lower, mbi->mem_upper);
	else
		printf("memory: the loader gave no sizes\n");
	test_pass();
}
