#!/usr/bin/env bash
# Builds scripts/bench_gemm_epilogue.cu (cuBLASLt against CUTLASS fused-epilogue GEMMs, sm_90a)
# into build-gemm/bench_gemm_epilogue, for the GPU machine (carry build-gemm there). CUTLASS 4.x is
# header-only and not a vitlab dependency: CUTLASS_DIR names a checkout (or the nvidia-cutlass
# wheel's unpacked tree) holding include/cutlass and tools/util/include. The binary links cudart
# statically and cuBLAS/cuBLASLt dynamically. About 1.5 minutes on two cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NVCC="${NVCC:-nvcc}"
if [[ -z "${CUTLASS_DIR:-}" || ! -f "$CUTLASS_DIR/include/cutlass/cutlass.h" ]]; then
  echo "build_gemm_epilogue: set CUTLASS_DIR to a CUTLASS 4.x tree (include/cutlass/cutlass.h not found under '${CUTLASS_DIR:-}')" >&2
  exit 2
fi
mkdir -p "$ROOT/build-gemm"
"$NVCC" -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -DNDEBUG \
  -I"$CUTLASS_DIR/include" -I"$CUTLASS_DIR/tools/util/include" \
  -cudart static -o "$ROOT/build-gemm/bench_gemm_epilogue" "$ROOT/scripts/bench_gemm_epilogue.cu" \
  -lcublasLt -lcublas
