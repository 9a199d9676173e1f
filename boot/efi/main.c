/*
 * boot/efi/main.c - BOOTX64.EFI: start spanheap straight from UEFI
 * firmware, without GRUB (gnu-efi: crt0, elf_x86_64_efi.lds, PE32+ by
 * objcopy; every firmware call goes through uefi_call_wrapper).
 *
 * In order: open the file system the loader itself came from (Loaded
 * Image -> Simple File System), read the head of
 * \EFI\spanheap\spanheap.elf and check it (efiload.c: header, program
 * headers, the "spanheap" entry note; each segment against the loader's
 * own image, the firmware's stack and the memory map), claim the
 * conventional memory under every segment at its physical address with
 * AllocatePages(AllocateAddress), then read the whole file into pages
 * allocated anywhere else (which can no longer overlap a segment). The
 * segments are copied to their addresses after ExitBootServices, because
 * this kernel's image (2 MiB - 8.3 MiB) also covers memory the firmware
 * still owns until then: OVMF's ACPI NVS at 0x806000-0x900000, which GRUB
 * overwrites the same way. Then read the command line from
 * \EFI\spanheap\cmdline, find the ACPI 2.0 RSDP (1.0 as a fallback) and
 * the GOP framebuffer, reserve a multiboot2 block below 4 GiB (the kernel
 * takes its address in 32 bits), then: final memory map -> build the
 * multiboot2 block from it -> ExitBootServices, again with a fresh map as
 * long as the firmware says the map key is stale. Last, with interrupts
 * off, copy the segments into place and call the kernel's _start_efi64
 * (boot/boot.S) with the multiboot2 magic and the block's address; it
 * never returns.
 *
 * Any problem before ExitBootServices prints "spanheap-efi: ..." on the
 * firmware console (OVMF copies it to the serial port) and returns an
 * EFI error status to the firmware: no hang.
 */
#include <efi.h>
#include <efilib.h>
#include "boot/efi/efiload.h"

#define KERNEL_PATH  L"\\EFI\\spanheap\\spanheap.elf"
#define CMDLINE_PATH L"\\EFI\\spanheap\\cmdline"
#define CMDLINE_MAX  4096
/* The digit after "try " says on which try ExitBootServices succeeded. */
#define LOADER_NAME  "spanheap gnu-efi loader (UEFI direct, ExitBootServices try 1)"
#define STALE_KNOB   "efi.stale_map_key"  /* cmdline: make the first map key stale */
#define MAP_SLACK    64       /* descriptors the map may grow by meanwhile */
#define KERNEL_HEAD  (64u << 10) /* read first: ELF header, program headers, notes */

typedef void __attribute__((sysv_abi, noreturn)) (*kernel_entry)(uint64_t magic, uint64_t mbi);

static EFI_STATUS say(EFI_STATUS status, const char *what, const char *detail)
{
	Print(L"spanheap-efi: %a%a%a (status %r)\r\n", what, detail ? ": " : "",
	      detail ? detail : "", status);
	return status;
}

static EFI_STATUS open_root(EFI_HANDLE image, EFI_FILE_HANDLE *root, EFI_LOADED_IMAGE **li)
{
	EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image,
					  &LoadedImageProtocol, (void **)li);
	if (EFI_ERROR(st))
		return say(st, "no Loaded Image protocol", NULL);
	*root = LibOpenRoot((*li)->DeviceHandle);
	if (!*root)
		return say(EFI_NOT_FOUND, "cannot open the loader's file system", NULL);
	return EFI_SUCCESS;
}

/* Open a file; its size in *size. */
static EFI_STATUS open_file(EFI_FILE_HANDLE root, CHAR16 *path, EFI_FILE_HANDLE *fh, UINTN *size)
{
	EFI_STATUS st = uefi_call_wrapper(root->Open, 5, root, fh, path, EFI_FILE_MODE_READ, 0);
	if (EFI_ERROR(st))
		return st;
	EFI_FILE_INFO *info = LibFileInfo(*fh);
	if (!info) {
		uefi_call_wrapper((*fh)->Close, 1, *fh);
		return EFI_DEVICE_ERROR;
	}
	*size = info->FileSize;
	FreePool(info);
	return EFI_SUCCESS;
}

/* Read len bytes from the start of an open file into buf. */
static EFI_STATUS read_at0(EFI_FILE_HANDLE fh, void *buf, UINTN len)
{
	UINTN got = len;
	EFI_STATUS st = uefi_call_wrapper(fh->SetPosition, 2, fh, 0);
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(fh->Read, 3, fh, &got, buf);
	if (!EFI_ERROR(st) && got != len)
		st = EFI_END_OF_FILE;
	return st;
}

/* Read a whole (small) file into pool memory, NUL-terminated. */
static EFI_STATUS read_file(EFI_FILE_HANDLE root, CHAR16 *path, UINT8 **buf, UINTN *size)
{
	EFI_FILE_HANDLE fh;
	EFI_STATUS st = open_file(root, path, &fh, size);
	if (EFI_ERROR(st))
		return st;
	*buf = AllocatePool(*size + 1);
	st = *buf ? read_at0(fh, *buf, *size) : EFI_OUT_OF_RESOURCES;
	uefi_call_wrapper(fh->Close, 1, fh);
	if (!EFI_ERROR(st))
		(*buf)[*size] = 0;
	return st;
}

/* The current memory map, into a buffer of *room bytes. */
static EFI_STATUS get_map(EFI_MEMORY_DESCRIPTOR **map, UINTN *n, UINTN *desc_size,
			  UINT32 *desc_version, UINTN *key, UINTN *room)
{
	UINTN size = *room;
	EFI_STATUS st = uefi_call_wrapper(BS->GetMemoryMap, 5, &size, *map, key,
					  desc_size, desc_version);
	if (!EFI_ERROR(st))
		*n = size / *desc_size;
	return st;
}

/* A pool buffer for the map, with room for MAP_SLACK more descriptors. */
static EFI_STATUS alloc_map(EFI_MEMORY_DESCRIPTOR **map, UINTN *room)
{
	UINTN size = 0, key, dsize;
	UINT32 dver;
	uefi_call_wrapper(BS->GetMemoryMap, 5, &size, NULL, &key, &dsize, &dver);
	*room = size + MAP_SLACK * dsize;
	*map = AllocatePool(*room);
	return *map ? EFI_SUCCESS : EFI_OUT_OF_RESOURCES;
}

static EFI_MEMORY_DESCRIPTOR *desc(EFI_MEMORY_DESCRIPTOR *map, UINTN i, UINTN dsize)
{
	return (void *)((UINT8 *)map + i * dsize);
}

/*
 * Check every segment against the memory map and the loader, then claim
 * the conventional memory under each with AllocateAddress, so that
 * nothing allocated later (the staging copy, the boot information) can
 * land there. The rest under a segment (boot-services memory, ACPI NVS)
 * stays the firmware's until ExitBootServices; place_segments() writes
 * it only then. The stack we run on must not be under a segment.
 */
static EFI_STATUS claim_segments(const struct el_kernel *k, EFI_LOADED_IMAGE *li)
{
	EFI_MEMORY_DESCRIPTOR *map;
	UINTN room, n, dsize, key;
	UINT32 dver;
	EFI_STATUS st = alloc_map(&map, &room);
	if (!EFI_ERROR(st))
		st = get_map(&map, &n, &dsize, &dver, &key, &room);
	if (EFI_ERROR(st))
		return say(st, "cannot read the memory map", NULL);
	struct el_range *ram = AllocatePool(n * sizeof(*ram));
	if (!ram)
		return say(EFI_OUT_OF_RESOURCES, "out of memory", NULL);
	UINTN nram = 0;
	for (UINTN i = 0; i < n; i++)
		if (el_efi_type_placeable(desc(map, i, dsize)->Type))
			ram[nram++] = (struct el_range){ desc(map, i, dsize)->PhysicalStart,
				desc(map, i, dsize)->PhysicalStart + desc(map, i, dsize)->NumberOfPages * EL_PAGE };
	struct el_range loader = { (uint64_t)(UINTN)li->ImageBase,
				   (uint64_t)(UINTN)li->ImageBase + li->ImageSize };
	uint64_t sp = (uint64_t)(UINTN)__builtin_frame_address(0);
	for (unsigned i = 0; i < k->nseg; i++) {
		const struct el_segment *s = &k->seg[i];
		const char *why = el_check_segment(s, loader, ram, nram);
		if (!why && sp + 0x10000 > s->paddr && sp < s->paddr + s->memsz + 0x10000)
			why = "ELF segment overlaps the firmware's stack";
		if (why) {
			Print(L"spanheap-efi: kernel rejected: segment [0x%lx-0x%lx): %a (status %r)\r\n",
			      s->paddr, s->paddr + s->memsz, why, EFI_LOAD_ERROR);
			return EFI_LOAD_ERROR;
		}
	}
	FreePool(ram);
	for (unsigned i = 0; i < k->nseg; i++) {
		const struct el_segment *s = &k->seg[i];
		uint64_t lo = s->paddr & ~(uint64_t)(EL_PAGE - 1);
		uint64_t hi = (s->paddr + s->memsz + EL_PAGE - 1) & ~(uint64_t)(EL_PAGE - 1);
		for (UINTN j = 0; j < n; j++) {
			EFI_MEMORY_DESCRIPTOR *d = desc(map, j, dsize);
			uint64_t a = d->PhysicalStart, b = a + d->NumberOfPages * EL_PAGE;
			a = a > lo ? a : lo;
			b = b < hi ? b : hi;
			if (a >= b)
				continue;
			if (d->Type != EfiConventionalMemory) {
				Print(L"spanheap-efi: kernel [0x%lx-0x%lx) goes over firmware memory of type %d, written after ExitBootServices\r\n",
				      a, b, d->Type);
				continue;
			}
			EFI_PHYSICAL_ADDRESS at = a;
			st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAddress, EfiLoaderData,
					       (b - a) / EL_PAGE, &at);
			if (EFI_ERROR(st)) {
				Print(L"spanheap-efi: kernel memory [0x%lx-0x%lx) cannot be claimed (status %r)\r\n",
				      a, b, st);
				return st;
			}
		}
	}
	FreePool(map);
	return EFI_SUCCESS;
}

/* After ExitBootServices: every segment from the staging copy to its
 * physical address (the two never overlap: see claim_segments). */
static void place_segments(const UINT8 *file, const struct el_kernel *k)
{
	for (unsigned i = 0; i < k->nseg; i++) {
		const struct el_segment *s = &k->seg[i];
		UINT8 *to = (UINT8 *)(UINTN)s->paddr;
		for (uint64_t b = 0; b < s->filesz; b++)
			to[b] = file[s->offset + b];
		for (uint64_t b = s->filesz; b < s->memsz; b++)
			to[b] = 0;
	}
}

/* Read the kernel: its head, checked; its memory claimed; then all of it
 * into pages allocated anywhere else (the staging copy). */
static EFI_STATUS read_kernel(EFI_FILE_HANDLE root, EFI_LOADED_IMAGE *li,
			      struct el_kernel *k, UINT8 **staging)
{
	EFI_FILE_HANDLE fh;
	UINTN size;
	EFI_STATUS st = open_file(root, KERNEL_PATH, &fh, &size);
	if (EFI_ERROR(st))
		return say(st, "cannot open the kernel \\EFI\\spanheap\\spanheap.elf", NULL);
	UINTN head_len = size < KERNEL_HEAD ? size : KERNEL_HEAD;
	UINT8 *head = AllocatePool(head_len + 1);
	st = head ? read_at0(fh, head, head_len) : EFI_OUT_OF_RESOURCES;
	if (EFI_ERROR(st))
		return say(st, "cannot read the kernel", NULL);
	const char *why = el_check_elf(head, head_len, size, k);
	FreePool(head);
	if (why)
		return say(EFI_LOAD_ERROR, "kernel rejected", why);
	st = claim_segments(k, li);
	if (EFI_ERROR(st))
		return st;
	EFI_PHYSICAL_ADDRESS at = 0;
	st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderData,
			       EFI_SIZE_TO_PAGES(size), &at);
	if (!EFI_ERROR(st))
		st = read_at0(fh, (void *)(UINTN)at, size);
	uefi_call_wrapper(fh->Close, 1, fh);
	if (EFI_ERROR(st))
		return say(st, "cannot read the kernel", NULL);
	*staging = (UINT8 *)(UINTN)at;
	return EFI_SUCCESS;
}

/* Trailing white space (the file's newline) is not part of the line. */
static char *read_cmdline(EFI_FILE_HANDLE root)
{
	UINT8 *buf;
	UINTN size;
	if (EFI_ERROR(read_file(root, CMDLINE_PATH, &buf, &size)))
		return NULL;
	if (size > CMDLINE_MAX) {
		say(EFI_BAD_BUFFER_SIZE, "command line file too long, ignored", NULL);
		return NULL;
	}
	while (size > 0 && (buf[size - 1] == '\n' || buf[size - 1] == '\r' ||
			    buf[size - 1] == ' ' || buf[size - 1] == '\t'))
		buf[--size] = 0;
	for (UINTN i = 0; i < size; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == 0)
			buf[i] = ' ';
	return (char *)buf;
}

static const void *find_rsdp(EFI_SYSTEM_TABLE *st)
{
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID, acpi10 = ACPI_TABLE_GUID;
	const void *v1 = NULL;
	for (UINTN i = 0; i < st->NumberOfTableEntries; i++) {
		EFI_CONFIGURATION_TABLE *t = &st->ConfigurationTable[i];
		if (CompareGuid(&t->VendorGuid, &acpi20) == 0)
			return t->VendorTable;
		if (CompareGuid(&t->VendorGuid, &acpi10) == 0)
			v1 = t->VendorTable;
	}
	return v1;
}

static void find_framebuffer(struct el_boot_info *bi)
{
	EFI_GUID gop_guid = EFI_GRAPHICS_OUTPUT_PROTOCOL_GUID;
	EFI_GRAPHICS_OUTPUT_PROTOCOL *gop;
	if (EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &gop_guid, NULL, (void **)&gop)))
		return;
	EFI_GRAPHICS_OUTPUT_MODE_INFORMATION *m = gop->Mode->Info;
	if (m->PixelFormat != PixelRedGreenBlueReserved8BitPerColor &&
	    m->PixelFormat != PixelBlueGreenRedReserved8BitPerColor)
		return;   /* bit masks or no framebuffer at all (BltOnly) */
	bool rgb = m->PixelFormat == PixelRedGreenBlueReserved8BitPerColor;
	bi->has_fb = true;
	bi->fb_addr = gop->Mode->FrameBufferBase;
	bi->fb_pitch = m->PixelsPerScanLine * 4;
	bi->fb_width = m->HorizontalResolution;
	bi->fb_height = m->VerticalResolution;
	bi->fb_red_pos = rgb ? 0 : 16;
	bi->fb_green_pos = 8;
	bi->fb_blue_pos = rgb ? 16 : 0;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	InitializeLib(image, systab);
	Print(L"spanheap-efi: gnu-efi loader starting\r\n");

	EFI_FILE_HANDLE root;
	EFI_LOADED_IMAGE *li;
	EFI_STATUS st = open_root(image, &root, &li);
	if (EFI_ERROR(st))
		return st;
	struct el_kernel k;
	UINT8 *file;
	st = read_kernel(root, li, &k, &file);
	if (EFI_ERROR(st))
		return st;

	static char loader_name[] = LOADER_NAME;
	struct el_boot_info bi = { .loader_name = loader_name };
	bi.cmdline = read_cmdline(root);
	bool stale_once = bi.cmdline && el_has_word(bi.cmdline, STALE_KNOB);
	bi.rsdp = find_rsdp(systab);
	bi.efi_system_table = (uint64_t)(UINTN)systab;
	find_framebuffer(&bi);
	Print(L"spanheap-efi: kernel placed (%d segments), entry 0x%lx, command line \"%a\", ACPI %a, framebuffer %a\r\n",
	      k.nseg, k.entry64, bi.cmdline ? bi.cmdline : "", bi.rsdp ? "found" : "absent",
	      bi.has_fb ? "found" : "absent");

	/* Buffers sized for the map plus slack; the block below 4 GiB. */
	EFI_MEMORY_DESCRIPTOR *map;
	UINTN room, n, dsize, key;
	UINT32 dver;
	st = alloc_map(&map, &room);
	if (!EFI_ERROR(st))
		st = get_map(&map, &n, &dsize, &dver, &key, &room);
	if (EFI_ERROR(st))
		return say(st, "cannot read the memory map", NULL);
	bi.efi_map = map;
	bi.efi_map_n = room / dsize;
	bi.efi_desc_size = dsize;
	UINTN mbi_size = el_mb2_size(&bi);
	EFI_PHYSICAL_ADDRESS mbi = 0xffffffffull;
	st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData,
			       EFI_SIZE_TO_PAGES(mbi_size), &mbi);
	if (EFI_ERROR(st))
		return say(st, "no memory below 4 GiB for the boot information", NULL);
	Print(L"spanheap-efi: exiting boot services, entering the kernel\r\n");

	/* From here on only GetMemoryMap and ExitBootServices: no output.
	 * With efi.stale_map_key on the command line, the first try
	 * allocates a page after reading the map, so that its key is stale
	 * and the retry is exercised (make test does). */
	const char *error = NULL;
	for (int tries = 0; tries < 8; tries++) {
		st = get_map(&map, &n, &dsize, &dver, &key, &room);
		if (EFI_ERROR(st))
			break;
		loader_name[sizeof(loader_name) - 3] = (char)('1' + tries);
		bi.efi_map_n = n;
		bi.efi_desc_version = dver;
		if (el_build_mb2(&bi, (void *)(UINTN)mbi, EFI_SIZE_TO_PAGES(mbi_size) * EL_PAGE,
				 &error) == 0) {
			st = EFI_BUFFER_TOO_SMALL;
			break;
		}
		if (stale_once && tries == 0) {
			EFI_PHYSICAL_ADDRESS page;
			uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderData, 1, &page);
		}
		st = uefi_call_wrapper(BS->ExitBootServices, 2, image, key);
		if (st != EFI_INVALID_PARAMETER)
			break;    /* success, or an error a new map will not fix */
	}
	if (EFI_ERROR(st))
		return say(st, "ExitBootServices failed", error);
	__asm__ volatile("cli");
	place_segments(file, &k);
	((kernel_entry)(UINTN)k.entry64)(EL_MB2_MAGIC, mbi);
}
