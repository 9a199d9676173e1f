/*
 * kernel/kmain.c - the boot CPU's C entry: bring every layer up in order,
 * run the boot jobs (kernel/bootjob.h: the self-tests, then the
 * benchmarks, whichever are linked in), report, and leave QEMU with the
 * verdict.
 *
 * Arguments (kernel/kargs.h) come from the multiboot2 command line (a PVH
 * boot's command line, `-append`, becomes one) and from QEMU's fw_cfg file
 * opt/spanheap/args (tests/run-qemu uses the latter). The kernel's own:
 *   smp.fake_missing_cpu          also try to start a CPU that does not
 *                                 exist, after the real ones (tests the
 *                                 AP time-out path)
 *   smp.fake_missing_cpu=N        insert it at position N of the MADT's
 *                                 CPU list instead (N=1: a gap between the
 *                                 boot CPU and the first real AP)
 * and those of the boot jobs, each documented where it is read:
 *   ktest=SUITE[,SUITE.NAME...], notests, soak=long  (tests/kernel/)
 *   bench, wl[=smoke|NAME,...]                       (tests/bench/)
 * and gdbstop: after the self-tests' report, the heap map, stop in
 * kmain_gdb_stop() (a debugger's breakpoint; tools/gdb/check-gdb.sh) and
 * wait there until the debugger kills QEMU.
 *
 * A kernel built with `make KTESTS=0` has no boot jobs: it says so, prints
 * the heap's state and exits with success.
 */
#include <stdbool.h>
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
#include "kernel/bootjob.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/smp.h"
#include "mm/kmalloc.h"
#include "mm/mcache.h"
#include "lib/irqflags.h"

extern char _kernel_phys_start[], _kernel_end[];

#define TIMER_HZ 100

static struct mb2_info mbi;
#define MAX_RANGES 64
static struct pmm_range ram[MAX_RANGES], reserved[MAX_RANGES + MB2_MAX_MODULES + 3];
static size_t nram, nreserved;

/* The multiboot2 block made from PVH's start information (kernel/pvh.c). */
static uint64_t pvh_mbi[1024];

/* Drop the RAM at or above DIRECT_MAP_RAM_LIMIT from ram[] (kernel/
 * paging.h: the heap's page map covers only the direct map below it), and
 * say how much was dropped. */
static void drop_ram_above_limit(void)
{
	uint64_t dropped = 0;
	size_t n = 0;
	for (size_t i = 0; i < nram; i++) {
		struct pmm_range r = ram[i];
		if (r.end > DIRECT_MAP_RAM_LIMIT) {
			uint64_t from = r.start > DIRECT_MAP_RAM_LIMIT ? r.start : DIRECT_MAP_RAM_LIMIT;
			dropped += r.end - from;
			r.end = from;
		}
		if (r.start < r.end)
			ram[n++] = r;
	}
	nram = n;
	if (dropped)
		printk("spanheap: %llu MiB of RAM at or above %llu GiB ignored (the heap's page "
		       "map covers the direct map below DIRECT_MAP_RAM_LIMIT, kernel/paging.h)\n",
		       (unsigned long long)(dropped >> 20),
		       (unsigned long long)(DIRECT_MAP_RAM_LIMIT >> 30));
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
	drop_ram_above_limit();
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

/* Each CPU's mcache counters (what `make run` ends with). Frees of small
 * objects are no CPU's count (the heap's total takes them from the
 * bitmaps: kmem_dump's "objects" line); tiny and large frees are. */
static void kmem_dump_cpus(void)
{
	printk("mcache per CPU:   mallocs  tiny allocs  tiny frees  large allocs  large frees  timer irqs\n");
	for (unsigned id = 0; id < ncpus_online; id++) {
		struct mcache *mc = &mcaches[id];
		uint64_t nm = mc->large_alloc;
		for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
			nm += mcache_nmalloc(mc, spc);
		printk("  cpu %-3u %14lu %12lu %11lu %13lu %12lu %11lu\n", id, nm,
		       mcache_nmalloc(mc, TINY_SPAN_CLASS), mc->tiny_nfree,
		       mc->large_alloc, mc->large_free, cpus[id].irq_count);
	}
}

/* Before a stop for gdb: objects of many classes, tiny ones and a large
 * one left live, so the debugger's view of the heap has something to
 * check against kmem_dump's. */
static void gdb_keep_live_objects(void)
{
	static void *live[80] __attribute__((used));
	for (unsigned i = 0; i < 64; i++)
		live[i] = kmalloc(1 + i * 97, 0);
	for (unsigned i = 64; i < 79; i++)
		live[i] = kmalloc(1 + i % 8, KM_NOSCAN);
	live[79] = kmalloc(100 * 1024, 0);
}

/* Where a debugger stops the kernel (kernel argument gdbstop): the heap
 * quiescent after the self-tests, every CPU but this one idle. Never
 * returns. */
static __attribute__((noinline, noreturn, used)) void kmain_gdb_stop(void)
{
	printk("spanheap: stopped for gdb in kmain_gdb_stop\n");
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}

extern const struct boot_job __start_boot_jobs[], __stop_boot_jobs[];

static unsigned boot_jobs_linked(void)
{
	return (unsigned)(__stop_boot_jobs - __start_boot_jobs);
}

/* Run every boot job of this stage, in link order; their failures summed. */
static int run_boot_jobs(enum boot_job_stage stage)
{
	int failed = 0;
	for (const struct boot_job *j = __start_boot_jobs; j < __stop_boot_jobs; j++)
		if (j->stage == stage)
			failed += j->run();
	return failed;
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
	mm_platform_detect_cpu();
	kmalloc_init();
	if (mbi.cmdline && *mbi.cmdline)
		kargs_append(mbi.cmdline);
	char fw[256];
	if (fwcfg_read_file("opt/spanheap/args", fw, sizeof(fw)) > 0)
		kargs_append(fw);
	printk("spanheap: args \"%s\"\n", kargs_line());

	const void *rsdp = mbi.rsdp_v2 ? mbi.rsdp_v2 : mbi.rsdp_v1;
	smp_init(rsdp, mbi.rsdp_v2 ? mbi.rsdp_v2_len : mbi.rsdp_v1_len, TIMER_HZ);
	arch_irq_enable();

	if (boot_jobs_linked() == 0) {
		printk("spanheap: no tests or benchmarks linked (built with KTESTS=0); "
		       "nothing more to do\n");
		kmem_dump();
		qemu_exit(QEMU_EXIT_SUCCESS);
	}
	int failed = run_boot_jobs(BOOT_JOB_TESTS);
	bool gdbstop = kernel_arg("gdbstop", NULL, 0);
	if (gdbstop)
		gdb_keep_live_objects();
	kmem_dump();
	kmem_dump_cpus();
	kmem_heap_map();
	if (gdbstop)
		kmain_gdb_stop();
	failed += run_boot_jobs(BOOT_JOB_BENCH);
	qemu_exit(failed ? QEMU_EXIT_FAILURE : QEMU_EXIT_SUCCESS);
}
