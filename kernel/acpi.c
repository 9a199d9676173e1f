/*
 * kernel/acpi.c - find the local APIC ids of every enabled CPU.
 *
 * RSDP: GRUB's copy (multiboot2 tags 15/14) when present, else a search of
 * the first KiB of the EBDA and of 0xe0000-0xfffff on 16-byte boundaries.
 * Every table is checksummed and length-checked before it is used; tables
 * outside usable RAM are mapped read-only through paging_map_phys. A
 * missing or corrupt table leaves count = 0 with a reason, and the caller
 * falls back to one CPU.
 */
#include "kernel/acpi.h"
#include "kernel/paging.h"
#include "lib/string.h"

struct sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem_id[6], oem_table_id[8];
	uint32_t oem_revision, creator_id, creator_revision;
} __attribute__((packed));

struct rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;       /* v2 */
	uint64_t xsdt_address; /* v2 */
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

int acpi_checksum_ok(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return sum == 0;
}

static const struct rsdp *rsdp_valid(const void *p, size_t avail)
{
	const struct rsdp *r = p;
	if (avail < 20 || memcmp(r->signature, "RSD PTR ", 8) != 0 || !acpi_checksum_ok(r, 20))
		return NULL;
	if (r->revision >= 2 && (avail < 36 || r->length < 36 || r->length > avail ||
				 !acpi_checksum_ok(r, r->length)))
		return NULL;
	return r;
}

static const struct rsdp *rsdp_search(void)
{
	const uint8_t *low = paging_map_phys(0, 0x100000, PROT_READ);
	uint32_t ebda = (uint32_t)(*(const uint16_t *)(low + 0x40e)) << 4;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		for (uint32_t a = ebda; a < ebda + 1024; a += 16)
			if (rsdp_valid(low + a, 0x100000 - a))
				return (const struct rsdp *)(low + a);
	for (uint32_t a = 0xe0000; a < 0x100000; a += 16)
		if (rsdp_valid(low + a, 0x100000 - a))
			return (const struct rsdp *)(low + a);
	return NULL;
}

/* Map a table, check its signature (if sig), length and checksum. */
static const struct sdt_header *map_table(uint64_t phys, const char *sig)
{
	const struct sdt_header *h = paging_map_phys(phys, sizeof(*h), PROT_READ);
	if (!h || (sig && memcmp(h->signature, sig, 4) != 0))
		return NULL;
	if (h->length < sizeof(*h) || h->length > (1u << 20))
		return NULL;
	h = paging_map_phys(phys, h->length, PROT_READ);
	if (!h || !acpi_checksum_ok(h, h->length))
		return NULL;
	return h;
}

static void add_cpu(struct acpi_cpus *out, uint32_t apic_id)
{
	for (unsigned i = 0; i < out->count; i++)
		if (out->apic_ids[i] == apic_id)
			return;
	if (out->count < MAX_CPUS)
		out->apic_ids[out->count++] = apic_id;
	else
		out->dropped++;
}

int acpi_parse_madt(const void *madt, size_t len, struct acpi_cpus *out)
{
	const uint8_t *m = madt;
	out->count = 0;
	out->dropped = 0;
	if (len < sizeof(struct sdt_header) + 8) {
		out->error = "MADT too short";
		return -1;
	}
	uint32_t lapic32;
	memcpy(&lapic32, m + sizeof(struct sdt_header), 4);
	out->lapic_phys = lapic32;
	for (size_t off = sizeof(struct sdt_header) + 8; off + 2 <= len;) {
		uint8_t type = m[off], elen = m[off + 1];
		if (elen < 2 || off + elen > len) {
			out->error = "MADT entry runs past the table";
			out->count = 0;
			return -1;
		}
		uint32_t flags;
		if (type == 0 && elen >= 8) {          /* processor local APIC */
			memcpy(&flags, m + off + 4, 4);
			if (flags & 1)
				add_cpu(out, m[off + 3]);
		} else if (type == 9 && elen >= 16) {  /* processor local x2APIC */
			uint32_t id;
			memcpy(&id, m + off + 4, 4);
			memcpy(&flags, m + off + 8, 4);
			if (flags & 1)
				add_cpu(out, id);
		} else if (type == 5 && elen >= 12) {  /* LAPIC address override */
			memcpy(&out->lapic_phys, m + off + 4, 8);
		}
		off += elen;
	}
	if (out->count == 0) {
		out->error = "MADT lists no enabled CPU";
		return -1;
	}
	out->error = NULL;
	return 0;
}

void acpi_find_cpus(const void *rsdp_copy, size_t rsdp_len, struct acpi_cpus *out)
{
	memset(out, 0, sizeof(*out));
	const struct rsdp *r = rsdp_copy ? rsdp_valid(rsdp_copy, rsdp_len) : NULL;
	if (rsdp_copy && !r) {
		out->error = "the boot loader's RSDP copy fails its checksum";
		return;
	}
	if (!r)
		r = rsdp_search();
	if (!r) {
		out->error = "no RSDP (neither from the boot loader nor in the BIOS areas)";
		return;
	}
	const struct sdt_header *root;
	size_t entry_size;
	if (r->revision >= 2 && r->xsdt_address) {
		root = map_table(r->xsdt_address, "XSDT");
		entry_size = 8;
	} else {
		root = map_table(r->rsdt_address, "RSDT");
		entry_size = 4;
	}
	if (!root) {
		out->error = "RSDT/XSDT missing or corrupt (signature, length or checksum)";
		return;
	}
	size_t n = (root->length - sizeof(*root)) / entry_size;
	const uint8_t *entries = (const uint8_t *)(root + 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t phys = 0;
		memcpy(&phys, entries + i * entry_size, entry_size);
		const struct sdt_header *h = paging_map_phys(phys, sizeof(*h), PROT_READ);
		if (!h || memcmp(h->signature, "APIC", 4) != 0)
			continue;
		const struct sdt_header *madt = map_table(phys, "APIC");
		if (!madt) {
			out->error = "MADT fails its length or checksum";
			return;
		}
		acpi_parse_madt(madt, madt->length, out);
		return;
	}
	out->error = "no MADT in the RSDT/XSDT";
}
