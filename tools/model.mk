# tools/model.mk - make check-model: spin checks mm/mcentral.pml and
# mm/tiny.pml (the cross-CPU protocols) exhaustively; make test runs it.
.PHONY: check-model
check-model:
	@tools/need.sh test
	@tools/check-model.sh --build $(BUILD)
