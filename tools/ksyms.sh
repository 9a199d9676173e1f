#!/bin/sh
# tools/ksyms.sh - turn `nm -n kernel.elf` (on stdin) into an assembly file
# holding the kernel's text symbols, sorted by address, for panic()'s stack
# traces (kernel/ksyms.c looks them up). Empty input gives an empty table.
awk '
BEGIN { n = 0 }
$2 ~ /^[tTwW]$/ && $3 !~ /^\./ && $1 ~ /^ffffffff8/ { addr[n] = $1; name[n] = $3; n++ }
END {
	print "\t.section .note.GNU-stack, \"\", @progbits"
	print "\t.section .ksyms, \"a\""
	print "\t.globl ksyms_count, ksyms_addrs, ksyms_offsets, ksyms_names"
	print "\t.balign 8"
	print "ksyms_count:\n\t.quad " n
	print "ksyms_addrs:"
	for (i = 0; i < n; i++) print "\t.quad 0x" addr[i]
	print "ksyms_offsets:"
	for (i = 0; i < n; i++) print "\t.long .Lks" i " - ksyms_names"
	print "ksyms_names:"
	for (i = 0; i < n; i++) print ".Lks" i ":\t.asciz \"" name[i] "\""
}'
