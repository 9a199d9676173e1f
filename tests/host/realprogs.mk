# tests/host/realprogs.mk - real programs on the heap (included by the top
# Makefile).
#
#   make host-realprogs   tests/host/realprogs.sh: python3 (threads), GNU
#                         sort, gcc, git on this repository and the project's
#                         own build, each run without and with LD_PRELOAD of
#                         $(HOST_SO), outputs compared; last line
#                         "N passed, N failed". Work files in
#                         $(BUILD)/realprogs/ (kept for the programs that
#                         failed; REALPROGS_KEEP=1 keeps all).

host-realprogs: $(HOST_SO)
	@REALPROGS_WORK=$(BUILD)/realprogs tests/host/realprogs.sh $(HOST_SO)

.PHONY: host-realprogs
