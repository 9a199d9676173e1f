/*
 * kernel/kmain.c - the boot CPU's C entry: bring every layer up in order,
 * run the self-tests, report, and leave QEMU with the verdict.
 *
 * Arguments come from the multiboot2 command line and from QEMU's fw_cfg
 * file opt/spanheap/args (the host runner uses the latter):
 *   ktest=SUITE[,SUITE.NAME...]   run only these tests
 *   bench                         run the in-kernel benchmarks after the tests
 *   notests                       skip the self-tests
 */
#include <stdint.h>
#include "kernel/printk.h"
#include "kernel/panic.h"
#include "kernel/serial.h"
#include "kernel/percpu.h"
#include "kernel/trap.h"
#include "kernel/qemu.h"
#include "kernel/fwcfg.h"
#include "kernel/x86.h"
#include "lib/string.h"
#include "tests/kernel/ktest_runner.h"

#define MB2_BOOT_MAGIC 0x36d76289

static char args[512];

/* Value of "key=" in args (copied into out), or whether bare "key" is set. */
static int arg_get(const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = args;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *end = p;
		while (*end && *end != ' ')
			end++;
		if ((size_t)(end - p) >= klen && strncmp(p, key, klen) == 0 &&
		    (p[klen] == '=' || p + klen == end)) {
			if (out && size) {
				const char *v = p[klen] == '=' ? p + klen + 1 : end;
				size_t n = (size_t)(end - v) < size - 1 ? (size_t)(end - v) : size - 1;
				memcpy(out, v, n);
				out[n] = 0;
			}
			return 1;
		}
		p = end;
	}
	return 0;
}

static void append_args(const char *s)
{
	size_t len = strlen(args);
	if (len && len + 1 < sizeof(args))
		args[len++] = ' ';
	strlcpy(args + len, s, sizeof(args) - len);
}

void kmain(uint32_t magic, uint32_t mbi_phys)
{
	serial_init();
	printk("\nspanheap: booting (multiboot2 magic %#x, boot info at %#x)\n", magic, mbi_phys);
	if (magic != MB2_BOOT_MAGIC)
		panic("bad multiboot2 magic %#x", magic);
	percpu_init(0);
	idt_init();
	idt_load();

	char fw[256];
	if (fwcfg_read_file("opt/spanheap/args", fw, sizeof(fw)) > 0)
		append_args(fw);
	printk("spanheap: args \"%s\"\n", args);

	int failed = 0;
	if (!arg_get("notests", NULL, 0)) {
		char filter[256] = "";
		arg_get("ktest", filter, sizeof(filter));
		failed = ktest_run_all(filter);
	}
	printk("spanheap: %s\n", failed ? "self-tests FAILED" : "all self-tests passed");
	qemu_exit(failed ? QEMU_EXIT_FAILURE : QEMU_EXIT_SUCCESS);
}
