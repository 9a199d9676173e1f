# tools/lib.mk - the heap packaged for other kernels and programs (included
# by the top Makefile; uses HOST_LIB_SRCS, HOST_DIR and the hosted object
# rules from there). docs/INTEGRATING.md says how to use what it builds.
#
#   make lib          build/lib/libspanheap-freestanding.a: mm/ for a kernel
#                     (x86-64 kernel code model, no SSE/MMX, no red zone,
#                     -ffreestanding), its hooks as plain functions
#                     (packaging/mm_platform.h);
#                     build/lib/libspanheap-host.a: mm/ + the Linux platform
#                     (hosted/), a user-space kmalloc library;
#                     build/include/spanheap/{kmalloc.h,platform.h}.
#                     Each archive is one relocatable object whose only
#                     global definitions are the public API (every function
#                     mm/kmalloc.h declares): every internal symbol is local,
#                     so none can clash with the program's.
#   make install PREFIX=/usr/local   the archives to PREFIX/lib, the headers
#                     to PREFIX/include/spanheap/
#   make export-mm DEST=dir          the files a kernel compiles to have the
#                     heap: every .c and .h of mm/ (nothing else: no model,
#                     no test), into DEST/mm/
#
# build/host/libspanheap.a (make host) is the other hosted archive: the
# per-file objects with every symbol global, for the project's own tests
# and benchmarks, which reach internals.

LIB_DIR     := $(BUILD)/lib
LIB_INC_DIR := $(BUILD)/include/spanheap
LIB_FREE    := $(LIB_DIR)/libspanheap-freestanding.a
LIB_HOST    := $(LIB_DIR)/libspanheap-host.a
PREFIX      ?= /usr/local

LIB_FREE_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-ffreestanding -fno-builtin -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
	-fno-pic -fno-pie -fno-stack-protector -fcf-protection=none \
	-mno-red-zone -mgeneral-regs-only -mno-sse -mno-mmx -mcmodel=kernel \
	-fno-omit-frame-pointer -fno-strict-aliasing -I. -Ipackaging -MMD -MP

LIB_FREE_OBJS := $(patsubst mm/%.c,$(LIB_DIR)/freestanding/%.o,$(wildcard mm/*.c))
LIB_HOST_OBJS := $(patsubst %.c,$(HOST_DIR)/opt/%.o,$(HOST_LIB_SRCS))

# The public API: the functions mm/kmalloc.h declares.
LIB_PUBLIC := $(LIB_DIR)/public-symbols.txt
$(LIB_PUBLIC): mm/kmalloc.h
	@mkdir -p $(dir $@)
	sed -nE 's/^[a-zA-Z_][a-zA-Z0-9_ *]*[ *]([a-z_][a-z0-9_]*)\(.*/\1/p' $< > $@

$(LIB_DIR)/freestanding/%.o: mm/%.c packaging/mm_platform.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_FREE_CFLAGS) -c $< -o $@

# lib_pack OBJECTS, ARCHIVE: one relocatable object, globals but the
# public API made local, as the archive's only member.
define lib_pack
	$(LD) -r -o $(2:.a=.o) $(1)
	$(OBJCOPY) --keep-global-symbols=$(LIB_PUBLIC) $(2:.a=.o)
	rm -f $(2) && ar rcs $(2) $(2:.a=.o)
endef

$(LIB_FREE): $(LIB_FREE_OBJS) $(LIB_PUBLIC)
	$(call lib_pack,$(LIB_FREE_OBJS),$@)
$(LIB_HOST): $(LIB_HOST_OBJS) $(LIB_PUBLIC)
	$(call lib_pack,$(LIB_HOST_OBJS),$@)

$(LIB_INC_DIR)/kmalloc.h: mm/kmalloc.h
	@mkdir -p $(dir $@) && cp $< $@
$(LIB_INC_DIR)/platform.h: packaging/mm_platform.h
	@mkdir -p $(dir $@) && cp $< $@

lib: $(LIB_FREE) $(LIB_HOST) $(LIB_INC_DIR)/kmalloc.h $(LIB_INC_DIR)/platform.h

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/spanheap
	install -m 644 $(LIB_FREE) $(LIB_HOST) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIB_INC_DIR)/kmalloc.h $(LIB_INC_DIR)/platform.h \
		$(DESTDIR)$(PREFIX)/include/spanheap/

export-mm:
	@test -n "$(DEST)" || { echo "usage: make export-mm DEST=dir"; exit 2; }
	install -d $(DEST)/mm
	install -m 644 $(wildcard mm/*.c mm/*.h) $(DEST)/mm/

.PHONY: lib install export-mm
-include $(LIB_FREE_OBJS:.o=.d)
