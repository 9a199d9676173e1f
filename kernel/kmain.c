/*
 * kernel/kmain.c - the boot CPU's C entry: bring every layer up in order,
 * run the self-tests, report, and leave QEMU with the verdict.
 *
 * Arguments come from the multiboot2 command line (a PVH boot's command
 * line, `-append`, becomes one) and from QEMU's fw_cfg file
 * opt/spanheap/args (tests/run-qemu uses the latter):
 *   ktest=SUITE[,SUITE.NAME...]   run only these tests
 *   bench                         run the in-kernel benchmarks after the tests
 *   wl[=smoke|NAME,...]           the benchmark workloads (tests/bench/wl_kernel.h)
 *   notests                       skip the self-tests
 *   smp.fake_missing_cpu          also try to start a CPU that does not
 *                                 exist (tests the AP time-out path)
 *   soak=long                     the soak self-test runs 10M operations
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
#include "kernel/multiboot2.h"
#include "kernel/pvh.h"
#include "kernel/kargs.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/smp.h"
#include "mm/kmalloc.h"
#include "mm/mcache.h"
#include "tests/bench/kbench.h"
#include "tests/bench/wl_kernel.h"
#include "lib/string.h"
#include "lib/irqflags.h"
#include "tests/kernel/ktest_runner.h"

extern char _kernel_phys_start[], _kernel_end[];

#define TIMER_HZ 100

static struct mb2_info mbi;
#define MAX_RANGES 64
static struct pmm_range ram[MAX_RANGES], reserved[MAX_RANGES + MB2_MAX_MODULES + 3];
static size_t nram, nreserved;

static char args[512];

/* The multiboot2 block made from PVH's start information (kernel/pvh.c). */
static uint64_t pvh_mbi[1024];

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

int kernel_arg(const char *key, char *out, size_t size)
{
	return arg_get(key, out, size);
}

static void append_args(const char *s)
{
	size_t len = strlen(args);
	if (len && len + 1 < sizeof(args))
		args[len++] = ' ';
	strlcpy(args + len, s, sizeof(args) - len);
}

/* Parse the boot information (still through the boot tables' direct map)
 * and collect usable RAM and everything that must never be handed out:
 * every non-usable map entry, the first MiB, the kernel image, the boot
 * information and the modules. */
static void read_boot_info(uint32_t mbi_phys)
{
	if (mb2_parse((const void *)(DIRECT_MAP_BASE + mbi_phys), &mbi) != 0)
		panic("multiboot2: boot information at %#x rejected: %s (tag at offset %u)",
		      mbi_phys, mbi.error, mbi.error_offset);
	mb2_print_info(&mbi);
	size_t dropped = 0;
	nram = mb2_mmap_ranges(&mbi, true, ram, MAX_RANGES, &dropped);
	if (nram == 0)
		panic("multiboot2: no usable memory in the memory map or basic meminfo");
	nreserved = mb2_mmap_ranges(&mbi, false, reserved, MAX_RANGES, &dropped);
	reserved[nreserved++] = (struct pmm_range){ 0, 0x100000 }; /* BIOS data, AP trampoline */
	reserved[nreserved++] = (struct pmm_range){ (uintptr_t)_kernel_phys_start,
						    (uintptr_t)_kernel_end - KERNEL_VMA };
	nreserved += mb2_boot_ranges(&mbi, mbi_phys, reserved + nreserved,
				     sizeof(reserved) / sizeof(reserved[0]) - nreserved, &dropped);
	if (dropped)
		printk("multiboot2: %zu memory ranges beyond our tables ignored\n", dropped);
}

/* Entered through the PVH note: convert the start information at
 * si_phys into pvh_mbi and return that block's physical address. */
static uint32_t boot_info_from_pvh(uint32_t si_phys)
{
	const char *error;
	if (pvh_to_mb2(si_phys, DIRECT_MAP_BASE, pvh_mbi, sizeof(pvh_mbi), &error) == 0)
		panic("pvh: start information at %#x rejected: %s", si_phys, error);
	uint32_t mbi_phys = (uint32_t)((uintptr_t)pvh_mbi - KERNEL_VMA);
	printk("spanheap: PVH start information at %#x converted to multiboot2 at %#x\n",
	       si_phys, mbi_phys);
	return mbi_phys;
}

/* Each CPU's mcache counters (what `make run` ends with). */
static void kmem_dump_cpus(void)
{
	printk("mcache per CPU:   mallocs      frees  tiny allocs  large allocs  timer irqs\n");
	for (unsigned id = 0; id < ncpus_online; id++) {
		struct mcache *mc = &mcaches[id];
		uint64_t nm = mc->large_alloc, nf = mc->large_free;
		for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
			nm += mc->nmalloc[spc];
			nf += mc->nfree[spc];
		}
		printk("  cpu %-3u %14lu %10lu %12lu %13lu %11lu\n", id, nm, nf, mc->nmalloc[TINY_SPAN_CLASS],
		       mc->large_alloc, cpus[id].irq_count);
	}
}

void kmain(uint32_t magic, uint32_t mbi_phys)
{
	serial_init();
	printk("\nspanheap: booting (%s magic %#x, boot info at %#x)\n",
	       magic == PVH_START_MAGIC ? "PVH" : "multiboot2", magic, mbi_phys);
	if (magic == PVH_START_MAGIC) {
		mbi_phys = boot_info_from_pvh(mbi_phys);
		magic = MB2_BOOTLOADER_MAGIC;
	}
	if (magic != MB2_BOOTLOADER_MAGIC)
		panic("bad multiboot2 magic %#x", magic);
	percpu_init(0);
	idt_init();
	idt_load();

	read_boot_info(mbi_phys);
	paging_init(ram, nram);
	/* Keep the boot information reachable (it need not be usable RAM). */
	paging_map_phys(mbi_phys, mbi.total_size, PROT_READ);
	struct paging_info pi;
	paging_get_info(&pi);
	uint64_t top = 0;
	for (size_t i = 0; i < nram; i++)
		top = ram[i].end > top ? ram[i].end : top;
	printk("paging: direct map %#lx-%#lx (%lu MiB RAM) with %lu x 1G, %lu x 2M, %lu x 4K pages; NX %s\n",
	       DIRECT_MAP_BASE, DIRECT_MAP_BASE + top - 1,
	       pi.direct_map_bytes >> 20, pi.pages_1g, pi.pages_2m, pi.pages_4k,
	       pi.nx ? "on" : "off (CPU lacks it)");
	if (pmm_init(ram, nram, reserved, nreserved, DIRECT_MAP_BASE) != 0)
		panic("pmm: initialisation failed");
	pmm_dump();
	kmalloc_init();
	if (mbi.cmdline && *mbi.cmdline)
		append_args(mbi.cmdline);
	char fw[256];
	if (fwcfg_read_file("opt/spanheap/args", fw, sizeof(fw)) > 0)
		append_args(fw);
	printk("spanheap: args \"%s\"\n", args);

	const void *rsdp = mbi.rsdp_v2 ? mbi.rsdp_v2 : mbi.rsdp_v1;
	smp_init(rsdp, mbi.rsdp_v2 ? mbi.rsdp_v2_len : mbi.rsdp_v1_len, TIMER_HZ);
	arch_irq_enable();

	int failed = 0;
	if (!arg_get("notests", NULL, 0)) {
		char filter[256] = "";
		arg_get("ktest", filter, sizeof(filter));
		failed = ktest_run_all(filter);
	}
	printk("spanheap: %s\n", failed ? "self-tests FAILED" : "all self-tests passed");
	kmem_dump();
	kmem_dump_cpus();
	if (arg_get("bench", NULL, 0))
		kbench_run();
	char wl[128];
	if (arg_get("wl", wl, sizeof(wl)))
		failed += wl_kernel_run(wl);
	qemu_exit(failed ? QEMU_EXIT_FAILURE : QEMU_EXIT_SUCCESS);
}
