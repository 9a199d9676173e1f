/*
 * kernel/smp.c - start the application processors and give them work.
 *
 * The boot CPU reads the MADT, enables its local APIC, and starts each AP
 * in turn: fresh guarded stacks (kstack_alloc: its kernel stack and its
 * #DF, NMI and #MC stacks, kernel/gdt.c), the trampoline's data
 * slots filled in (boot/trampoline.S), INIT-SIPI-SIPI, then up to
 * AP_TIMEOUT_MS for the AP to say it is online. CPU ids are dense: an AP
 * is offered the next free id (ncpus_online) and keeps it only if it comes
 * online, so the online CPUs are always 0..ncpus_online-1, whatever the
 * MADT listed in between. An AP that stays silent is reported and skipped,
 * and its id goes to the next one: the trampoline's claim word (see
 * boot/trampoline.S) is closed first, so a late waker parks instead of
 * taking an id or a stack that is no longer its own. Each AP then sits in
 * ap_idle(): interrupts on, halted until its mailbox gets a function
 * (smp_call_all) or its timer fires.
 *
 * Mailboxes: each CPU's mailbox is written by the caller of smp_call_all
 * (holding call_lock) and read by its owner; `gen` is the handshake
 * (release/acquire). call_lock (no irqsave needed: never taken from an
 * interrupt) serialises callers.
 */
#include "kernel/smp.h"
#include "kernel/acpi.h"
#include "kernel/lapic.h"
#include "kernel/trap.h"
#include "kernel/printk.h"
#include "kernel/kargs.h"
#include "kernel/panic.h"
#include "kernel/x86.h"
#include "kernel/paging.h"
#include "lib/string.h"
#include "lib/spinlock.h"
#include "mm/kmalloc.h"

#define TRAMPOLINE_BASE 0x8000
#define AP_STACK_PAGES 8
#define IST_STACK_PAGES 2   /* each of the #DF, NMI and #MC stacks (kernel/gdt.c) */
#define AP_TIMEOUT_MS 2000

extern const char trampoline_start[], trampoline_end[];
extern const char tramp_cr3[], tramp_nx[], tramp_stack[], tramp_entry[], tramp_cpu[],
	tramp_claim[];

/* tramp_claim's states (boot/trampoline.S). */
enum { CLAIM_OPEN, CLAIM_TAKEN, CLAIM_CLOSED };

struct mailbox {
	void (*fn)(void *);
	void *arg;
	uint64_t gen;      /* bumped by the caller when fn/arg are ready */
	uint64_t done;     /* set to gen by the CPU when fn returned */
} __attribute__((aligned(64)));

static struct mailbox mailboxes[MAX_CPUS];
unsigned smp_cpus_skipped;
/* call_lock: one smp_call_n at a time, and so the mailboxes' fn/arg/gen
 * (interrupts stay on: no interrupt handler takes it). */
static spinlock_t call_lock = SPINLOCK_INIT("smp_call");
static timer_hook_t timer_hook;
static unsigned timer_hz_all;

static void timer_irq(struct trap_frame *f)
{
	(void)f;
	struct cpu *c = this_cpu();
	c->irq_count++;
	timer_hook_t hook = __atomic_load_n(&timer_hook, __ATOMIC_ACQUIRE);
	if (hook)
		hook(c->id);
	lapic_eoi();
}

static void ipi_irq(struct trap_frame *f)
{
	(void)f;
	lapic_eoi(); /* the wake-up is the point; ap_idle looks at the mailbox */
}

void smp_set_timer_hook(timer_hook_t hook)
{
	__atomic_store_n(&timer_hook, hook, __ATOMIC_RELEASE);
}

unsigned smp_timer_hz(void)
{
	return timer_hz_all;
}

static void run_mailbox(unsigned id)
{
	struct mailbox *m = &mailboxes[id];
	uint64_t gen = __atomic_load_n(&m->gen, __ATOMIC_ACQUIRE);
	if (gen == m->done)
		return;
	m->fn(m->arg);
	__atomic_store_n(&m->done, gen, __ATOMIC_RELEASE);
}

static _Noreturn void ap_idle(unsigned id)
{
	for (;;) {
		arch_irq_disable();
		struct mailbox *m = &mailboxes[id];
		if (__atomic_load_n(&m->gen, __ATOMIC_ACQUIRE) != m->done) {
			arch_irq_enable();
			run_mailbox(id);
			continue;
		}
		/* The heap's background scavenger: an idle CPU trims the free
		 * chunks the heap retains to its policy's target, and answers
		 * a release request (loads only, and no lock, when there is
		 * nothing to do: mm/malloc.c; interrupts are off, the heap's
		 * locks are irqsave ones). */
		kmem_scavenge_idle();
		/* sti's one-instruction shadow makes "sti; hlt" atomic: an IPI
		 * sent after the check above still wakes us. */
		__asm__ volatile("sti; hlt" : : : "memory");
	}
}

/* The AP's first C code, on its own stack, interrupts off. */
_Noreturn void ap_main(unsigned id)
{
	percpu_init(id);
	idt_load();
	lapic_init_cpu();
	struct cpu *c = this_cpu();
	c->apic_id = lapic_id();
	if (timer_hz_all)
		lapic_timer_start(timer_hz_all);
	__atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
	ap_idle(id);
}

static void put_slot(const char *slot, uint64_t v, size_t size)
{
	uint8_t *base = (uint8_t *)DIRECT_MAP_BASE + TRAMPOLINE_BASE;
	memcpy(base + (slot - trampoline_start), &v, size);
}

/* The trampoline's claim word, as the boot CPU sees it (direct map). */
static uint32_t *claim_word(void)
{
	return (uint32_t *)(DIRECT_MAP_BASE + TRAMPOLINE_BASE + (tramp_claim - trampoline_start));
}

static int wait_online(unsigned id, unsigned ms)
{
	for (; ms; ms--) {
		if (__atomic_load_n(&cpus[id].online, __ATOMIC_ACQUIRE))
			return 1;
		udelay(1000);
	}
	return __atomic_load_n(&cpus[id].online, __ATOMIC_ACQUIRE);
}

/* Close the claim so that no AP can take the slots any more. 1 if it was
 * still open (no AP got in: the slots are free again), 0 if an AP had
 * already claimed them. */
static int close_claim(void)
{
	uint32_t open = CLAIM_OPEN;
	return __atomic_compare_exchange_n(claim_word(), &open, CLAIM_CLOSED, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Start the AP with this APIC id as CPU `id` (the next dense id). 0 when
 * it came online; -1 when it stayed silent, and then nothing of it
 * remains: no CPU has the id or runs on the stack. */
static int start_ap(unsigned id, uint32_t apic_id)
{
	void *stack = kstack_alloc(AP_STACK_PAGES);
	for (int i = 0; stack && i < 3; i++)
		if (!(cpus[id].ist_top[i] = kstack_alloc(IST_STACK_PAGES)))
			stack = NULL;
	if (!stack) {
		printk("smp: no memory for CPU %u's stacks\n", id);
		return -1;
	}
	cpus[id].stack_top = stack;
	put_slot(tramp_stack, (uintptr_t)stack, 8);
	put_slot(tramp_cpu, id, 4);
	__atomic_store_n(claim_word(), CLAIM_OPEN, __ATOMIC_SEQ_CST);
	lapic_start_ap(apic_id, TRAMPOLINE_BASE >> 12);
	if (wait_online(id, AP_TIMEOUT_MS))
		return 0;
	if (!close_claim()) {
		/* An AP took the slots just now: it is on its way to ap_main. */
		if (wait_online(id, AP_TIMEOUT_MS))
			return 0;
		panic("smp: an AP took CPU id %u but never came online", id);
	}
	printk("smp: CPU with APIC id %u did not come online within %u ms; skipped\n",
	       apic_id, AP_TIMEOUT_MS);
	/* The stack's guarded area is not reused; the id is. */
	cpus[id].stack_top = NULL;
	for (int i = 0; i < 3; i++)
		cpus[id].ist_top[i] = NULL;
	return -1;
}

/* The MADT position of smp.fake_missing_cpu's APIC id: its value, or the
 * end of the list when it has none. -1 without the argument. */
static int fake_missing_cpu_position(unsigned count)
{
	char val[16];
	if (!kernel_arg("smp.fake_missing_cpu", val, sizeof(val)))
		return -1;
	if (!val[0])
		return (int)count;
	unsigned pos = 0;
	for (const char *p = val; *p >= '0' && *p <= '9'; p++)
		pos = pos * 10 + (unsigned)(*p - '0');
	return pos < count ? (int)pos : (int)count;
}

/* Test aid: one more APIC id that no CPU answers to, at MADT position pos
 * (after the boot CPU's own entry if pos is 0 and that entry is first). */
static void insert_fake_cpu(struct acpi_cpus *ac, unsigned pos)
{
	for (unsigned i = ac->count; i > pos; i--)
		ac->apic_ids[i] = ac->apic_ids[i - 1];
	ac->apic_ids[pos] = SMP_FAKE_APIC_ID;
	ac->count++;
	printk("smp: smp.fake_missing_cpu: APIC id %u, which no CPU has, inserted at MADT position %u\n",
	       SMP_FAKE_APIC_ID, pos);
}

void smp_init(const void *rsdp, size_t rsdp_len, unsigned timer_hz)
{
	struct acpi_cpus ac;
	acpi_find_cpus(rsdp, rsdp_len, &ac);
	if (ac.count == 0)
		printk("smp: CPU discovery failed: %s; running on the boot CPU only\n", ac.error);
	else
		printk("smp: MADT lists %u enabled CPU(s)%s, local APIC at %#lx\n", ac.count,
		       ac.dropped ? " (more than MAX_CPUS; extra ignored)" : "", ac.lapic_phys);

	irq_set_handler(VEC_TIMER, timer_irq);
	irq_set_handler(VEC_IPI_CALL, ipi_irq);
	lapic_init(ac.lapic_phys);
	lapic_init_cpu();
	lapic_timer_calibrate();
	uint32_t bsp_apic = lapic_id();
	cpus[0].apic_id = bsp_apic;
	cpus[0].online = 1;
	timer_hz_all = timer_hz;

	int fake = fake_missing_cpu_position(ac.count);
	if (fake >= 0 && ac.count < MAX_CPUS)
		insert_fake_cpu(&ac, (unsigned)fake);
	if (ac.count > 1) {
		/* The trampoline, reachable at its physical address while APs
		 * switch on paging. */
		memcpy((void *)(DIRECT_MAP_BASE + TRAMPOLINE_BASE), trampoline_start,
		       (size_t)(trampoline_end - trampoline_start));
		put_slot(tramp_cr3, read_cr3(), 4);
		put_slot(tramp_nx, (rdmsr(MSR_EFER) & EFER_NXE) ? EFER_NXE : 0, 4);
		put_slot(tramp_entry, (uintptr_t)ap_main, 8);
		if (paging_map(TRAMPOLINE_BASE, TRAMPOLINE_BASE, 4096,
			       PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
			panic("smp: cannot identity-map the AP trampoline");
		for (unsigned i = 0; i < ac.count && ncpus_online < MAX_CPUS; i++) {
			if (ac.apic_ids[i] == bsp_apic)
				continue;
			if (start_ap(ncpus_online, ac.apic_ids[i]) == 0)
				ncpus_online++;
			else
				smp_cpus_skipped++;
		}
		paging_unmap(TRAMPOLINE_BASE, 4096);
	}
	if (timer_hz)
		lapic_timer_start(timer_hz);
	printk("smp: %u CPU%s online\n", ncpus_online, ncpus_online == 1 ? "" : "s");
}

void smp_call_n(unsigned n, void (*fn)(void *), void *arg)
{
	spin_lock(&call_lock);
	unsigned self = this_cpu_id();
	unsigned sent[MAX_CPUS];
	unsigned nsent = 0;
	for (unsigned id = 0; id < MAX_CPUS && nsent + 1 < n + (self >= n ? 1 : 0); id++) {
		if (id == self || !cpus[id].online)
			continue;
		struct mailbox *m = &mailboxes[id];
		m->fn = fn;
		m->arg = arg;
		__atomic_store_n(&m->gen, m->gen + 1, __ATOMIC_RELEASE);
		lapic_send_ipi(cpus[id].apic_id, VEC_IPI_CALL);
		sent[nsent++] = id;
	}
	fn(arg);
	for (unsigned i = 0; i < nsent; i++) {
		struct mailbox *m = &mailboxes[sent[i]];
		while (__atomic_load_n(&m->done, __ATOMIC_ACQUIRE) != m->gen)
			cpu_relax();
	}
	spin_unlock(&call_lock);
}

void smp_call_all(void (*fn)(void *), void *arg)
{
	smp_call_n(ncpus_online, fn, arg);
}
