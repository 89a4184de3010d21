# The two commands README promises on a fresh Debian 12 machine:
#   make run   - install missing packages, build Release, run the quickstart job
#   make test  - install missing packages, build Release, run every test through ctest
PACKAGES := build-essential cmake git libtorch-dev libcxxopts-dev nlohmann-json3-dev catch2 libfmt-dev \
            libopenblas0-pthread zlib1g-dev libstb-dev libgloo-dev libzip-dev libturbojpeg0-dev libjpeg62-turbo-dev \
            dataset-fashion-mnist
# Only the tests need these: the report test opens report.html in headless Chromium; the
# data-parallel tests start ranks with torchrun (python3-torch).
TEST_PACKAGES := chromium python3-torch
# Only `make fuzz` needs these: clang 14 with libFuzzer and the sanitizer runtimes.
FUZZ_PACKAGES := clang libclang-rt-14-dev
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
VITLAB := $(BUILD_DIR)/vitlab
RUN_OUT ?= runs/quickstart

.PHONY: run test build program deps test-deps configure clean bench-cpu \
        fuzz fuzz-regress fuzz-build fuzz-deps test-sanitize

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

# Fuzzing (tests/fuzz/README.md): the parsers' libFuzzer targets, built with clang, ASan and UBSan
# in their own folder. `make fuzz` fuzzes each target FUZZ_SECONDS; `make fuzz-regress` only runs
# the committed corpora once. FUZZ_TARGETS picks some (e.g. FUZZ_TARGETS="npy npz"); default all.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
# Line tables are all a sanitizer's stack trace needs; full debug info and -O2 would cost CI's
# sanitizer job minutes of compiling.
FUZZ_OPT ?= -O1 -gline-tables-only -DNDEBUG

fuzz-deps:
	@bash .ci/install-deps.sh $(PACKAGES) $(FUZZ_PACKAGES)

$(FUZZ_BUILD_DIR)/CMakeCache.txt:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(FUZZ_OPT)" -DVITLAB_FUZZ=ON -DVITLAB_BUILD_TESTS=OFF

fuzz-build: fuzz-deps $(FUZZ_BUILD_DIR)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target vitlab_fuzzers

fuzz: fuzz-build
	tests/fuzz/run_fuzz.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	tests/fuzz/run_corpus.sh $(FUZZ_BUILD_DIR) $(FUZZ_TARGETS)

# CI's sanitizer job, after `make test`: in the same ASan + UBSan folder, every committed corpus
# input once (no fuzzing), then the parsers', config, runner and IO Catch2 cases
# (cmake/fuzz.cmake lists them; README "Reliability" says what is left out).
test-sanitize: fuzz-deps test-deps $(FUZZ_BUILD_DIR)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target vitlab_fuzzers vitlab_sanitize_tests
	tests/fuzz/run_corpus.sh $(FUZZ_BUILD_DIR)
	cd $(FUZZ_BUILD_DIR) && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./vitlab_sanitize_tests --durations yes
