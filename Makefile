# Soma — entry points. Everything goes through CMake presets (CMakePresets.json); build trees
# live in build/<preset>/.
#   make test          deps (test set) + configure/build 'release' + ctest (incl. format, install)
#   make demo          deps (all) + build 'release' + train cnn-fashion for one epoch (a few
#                      minutes on 2 cores): test accuracy, curves, checkpoint, sample predictions
#   make bench         deps (all) + build 'release' + run build/release/bench/soma_bench
#   make asan          deps (test set) + configure/build/ctest the 'asan' preset
#   make debug         deps (test set) + configure/build/ctest the 'debug' preset
#   make build         configure + build 'release' only
#   make format        clang-format -i every source file
#   make check-format  fail if any source file is not clang-formatted
#   make deps          install every package (make deps-test: only the test set)
#   make clean         remove build/
# Variables: PRESET (build: release), JOBS (ctest -j, default 2), CTEST_ARGS (extra ctest args).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PRESET ?= release
JOBS ?= 2
CTEST_ARGS ?=
SOMA := build/release/soma
DEMO_EPOCHS ?= 1

.PHONY: test demo bench asan debug build deps deps-test format check-format clean

deps:
	scripts/install-deps.sh --set all

deps-test:
	scripts/install-deps.sh --set test

# configure + build + test one preset: $(call preset_test,<name>)
define preset_test
	cmake --preset $(1)
	cmake --build --preset $(1)
	ctest --preset $(1) -j $(JOBS) $(CTEST_ARGS)
endef

test: deps-test
	$(call preset_test,release)

asan: deps-test
	$(call preset_test,asan)

debug: deps-test
	$(call preset_test,debug)

build:
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET)

demo: deps
	cmake --preset release
	cmake --build --preset release
	@test -x $(SOMA) || { echo "make demo: $(SOMA) was not built" >&2; exit 1; }
	$(SOMA) train cnn-fashion --epochs $(DEMO_EPOCHS) --out runs/demo-cnn-fashion
	@echo "demo: curves in runs/demo-cnn-fashion/curves.png, checkpoint in runs/demo-cnn-fashion/checkpoint.safetensors,"
	@echo "      sample predictions in runs/demo-cnn-fashion/predictions.png; try:"
	@echo "      $(SOMA) predict runs/demo-cnn-fashion/checkpoint.safetensors 7"

bench: deps
	cmake --preset release
	cmake --build --preset release
	/usr/bin/python3 bench/run.py --build build/release

format:
	scripts/check-format.sh --fix

check-format:
	scripts/check-format.sh

clean:
	rm -rf build
