/*
 * kernel/fwcfg.c - QEMU's fw_cfg interface (I/O ports 0x510 selector,
 * 0x511 data), used to pass run-time arguments to the kernel without
 * rebuilding the ISO: `qemu ... -fw_cfg name=opt/spanheap/args,string=...`.
 * The file directory (selector 0x19) is a big-endian count followed by
 * 64-byte entries {be32 size, be16 select, u16 reserved, char name[56]}.
 */
#include <stdint.h>
#include "kernel/fwcfg.h"
#include "kernel/x86.h"
#include "lib/string.h"

#define FWCFG_SELECTOR 0x510
#define FWCFG_DATA     0x511
#define FWCFG_SIGNATURE 0x0000
#define FWCFG_FILE_DIR  0x0019

static void read_bytes(void *dst, size_t n)
{
	uint8_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = inb(FWCFG_DATA);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int fwcfg_read_file(const char *name, char *buf, size_t size)
{
	char sig[4];
	outw(FWCFG_SELECTOR, FWCFG_SIGNATURE);
	read_bytes(sig, 4);
	if (memcmp(sig, "QEMU", 4) != 0)
		return -1;
	uint8_t raw[4];
	outw(FWCFG_SELECTOR, FWCFG_FILE_DIR);
	read_bytes(raw, 4);
	uint32_t count = be32(raw);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t e[64];
		read_bytes(e, sizeof(e));
		e[63] = 0;
		if (strcmp((const char *)e + 8, name) != 0)
			continue;
		uint32_t len = be32(e);
		uint16_t sel = (uint16_t)(e[4] << 8 | e[5]);
		if (size == 0)
			return (int)len;
		size_t n = len < size - 1 ? len : size - 1;
		outw(FWCFG_SELECTOR, sel);
		read_bytes(buf, n);
		buf[n] = 0;
		return (int)n;
	}
	return -1;
}
