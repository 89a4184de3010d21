#!/usr/bin/env bash
# Configure and build vitlab on the GPU machine (PyTorch wheel's LibTorch + CUDA, no Debian
# packages). Needs third_party/staged from third_party/stage.sh (carried with the source tree).
set -euo pipefail
cd "$(dirname "$0")/.."
test -f third_party/staged/include/nlohmann/json.hpp || { echo "run third_party/stage.sh on the Debian machine and carry third_party/staged" >&2; exit 2; }
# The device's copy of the tree carries the git metadata of the session's first commit, with this
# session's files over it: without VITLAB_BUILD_COMMIT the binaries (and every result.json and
# bench record they write) name that commit, "-dirty".
[ -n "${VITLAB_BUILD_COMMIT:-}" ] || echo "gpu_build: VITLAB_BUILD_COMMIT is not set; the binaries will name $(git describe --always --dirty --abbrev=7 2>/dev/null || echo unknown), which may not be this tree's commit" >&2
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 > build-gpu.configure.log 2>&1 || { tail -40 build-gpu.configure.log; exit 1; }
cmake --build build-gpu -j "$(nproc)" 2>&1 | tail -5
