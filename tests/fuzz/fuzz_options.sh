# libFuzzer settings shared by run_fuzz.sh and run_corpus.sh (sourced).
#
# -timeout=1: an input that takes over a second is a hang (the parsers read small inputs in
# milliseconds). -malloc_limit_mb: no single allocation over 512 MiB, far beyond what any input
# of the allowed length may legitimately need, so a size taken on trust from a header is
# reported as an out-of-memory finding. -rss_limit_mb: room for LibTorch under ASan.
FUZZ_FLAGS=(-timeout=1 -rss_limit_mb=3072 -malloc_limit_mb=512)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1

# Inputs up to this many bytes: a CIFAR record alone is 3,073 bytes, a checkpoint ~40 kB.
max_len_flag() {
  case "$1" in
    cifar) echo -max_len=16384 ;;
    checkpoint) echo -max_len=65536 ;;
    safetensors) echo -max_len=40000 ;;
    *) echo -max_len=8192 ;;
  esac
}
