#!/bin/sh
# tools/need.sh WHAT... - make sure the tools a target needs are installed.
#   iso   grub-mkrescue, GRUB's BIOS and UEFI images, xorriso, mtools
#   run   iso + qemu-system-x86_64 + OVMF
#   test  run + gnu-efi + clang's libFuzzer and sanitizer runtimes + spin
#   bench the peer allocators (mimalloc, jemalloc, tcmalloc), valgrind, gnuplot
# When something is missing and we are root, install it from Debian's
# archive with apt-get, non-interactively; otherwise print the exact
# command and fail. Nothing is ever downloaded from anywhere else.
set -u
missing=""
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_file() { [ -e "$1" ] || missing="$missing $2"; }

for what in "$@"; do
	case $what in
	iso|run|test)
		need_cmd grub-mkrescue grub-common
		need_file /usr/lib/grub/i386-pc/modinfo.sh grub-pc-bin
		need_file /usr/lib/grub/x86_64-efi/modinfo.sh grub-efi-amd64-bin
		need_cmd xorriso xorriso
		need_cmd mformat mtools
		;;
	esac
	case $what in
	run|test)
		need_cmd qemu-system-x86_64 qemu-system-x86
		need_file /usr/share/OVMF/OVMF_CODE_4M.fd ovmf
		;;
	esac
	case $what in
	test)
		need_file /usr/include/efi/efi.h gnu-efi
		need_cmd clang clang
		need_file "$(ls -d /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | head -n1)" libclang-rt-dev
		need_cmd spin spin
		;;
	esac
	case $what in
	bench)
		need_file /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 libmimalloc-dev
		need_file /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 libjemalloc-dev
		need_file /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 libgoogle-perftools-dev
		need_cmd valgrind valgrind
		need_cmd gnuplot gnuplot-nox
		;;
	esac
done

missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
[ -z "$missing" ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing"
if [ "$(id -u)" = 0 ]; then
	echo "need: installing $missing" >&2
	apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2 || {
		echo "need: installing failed; run: $cmd" >&2
		exit 1
	}
else
	echo "need: missing $missing; as root run:" >&2
	echo "  $cmd" >&2
	exit 1
fi
