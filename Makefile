# The two commands README promises on a fresh Debian 12 machine:
#   make run   - install missing packages, build Release, run the quickstart job
#   make test  - install missing packages, build Release, run every test through ctest
PACKAGES := build-essential cmake git libtorch-dev libcxxopts-dev nlohmann-json3-dev catch2 libfmt-dev \
            libopenblas0-pthread zlib1g-dev libstb-dev libgloo-dev libzip-dev dataset-fashion-mnist
# Only the tests need these: the report test opens report.html in headless Chromium; the
# data-parallel tests start ranks with torchrun (python3-torch).
TEST_PACKAGES := chromium python3-torch
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
VITLAB := $(BUILD_DIR)/vitlab
RUN_OUT ?= runs/quickstart

.PHONY: run test build program deps test-deps configure clean bench-cpu

deps:
	@bash .ci/install-deps.sh $(PACKAGES)

test-deps:
	@bash .ci/install-deps.sh $(PACKAGES) $(TEST_PACKAGES)

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

configure: deps $(BUILD_DIR)/CMakeCache.txt

# Everything: the program and the tests.
build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The program alone: `make run` needs no tests.
program: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target vitlab

run: program
	$(VITLAB) models
	$(VITLAB) sweep experiments/quickstart.json --out $(RUN_OUT)

test: test-deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 1

clean:
	rm -rf $(BUILD_DIR)
