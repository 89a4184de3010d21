#!/usr/bin/env bash
# A/B of two vitlab source trees on one GPU in one call (the "must not regress" check of a change):
# builds both (in parallel), then alternates A and B over the four workloads of gpu_compare.sh
# (vitlab bench, fast path) and the 20-epoch Fashion-MNIST reference, ROUNDS times, and prints the
# medians. Each tree needs third_party/staged (a link to this tree's is made where missing).
# Usage: [A_COMMIT=..] [B_COMMIT=..] scripts/gpu_ab.sh A_TREE B_TREE OUT [ROUNDS] [--build-only]
# (trees: source roots, "." for this one; the commits go into the records, as VITLAB_BUILD_COMMIT)
set -uo pipefail
a=$(cd "${1:?A_TREE}" && pwd); b=$(cd "${2:?B_TREE}" && pwd); out=$(mkdir -p "${3:?OUT}" && cd "$3" && pwd)
rounds=${4:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
for t in "$a" "$b"; do
  [ -e "$t/third_party/staged" ] || ln -s "$here/third_party/staged" "$t/third_party/staged"
done
build() {  # tree, side, commit
  (cd "$1" && VITLAB_BUILD_COMMIT=${3:-unknown} bash scripts/gpu_build.sh) > "$out/build-$2.log" 2>&1
}
start=$(date +%s)
build "$a" A "${A_COMMIT:-}" & pa=$!; build "$b" B "${B_COMMIT:-}" & pb=$!
wait $pa || { tail -30 "$out/build-A.log"; exit 1; }
wait $pb || { tail -30 "$out/build-B.log"; exit 1; }
echo "builds: $(( $(date +%s) - start )) s"
[ "${5:-}" = --build-only ] && exit 0
workloads=(
  "small --model vit_tiny_p4_28 --set depth=12 --optimizer sgd --batch 256"
  "vit_s16 --model vit_s16 --batch 256"
  "vit_b16 --model vit_b16 --batch 256"
  "bit_r50x1 --model bit_r50x1 --batch 256"
)
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    t=$a; [ $side = B ] && t=$b
    for w in "${workloads[@]}"; do
      set -- $w; name=$1; shift
      "$t/build-gpu/vitlab" bench "$@" --json "$out/$name-$side-$r.json" > /dev/null 2>> "$out/errors.log" ||
        echo "FAILED: $name $side $r"
    done
    t0=$(date +%s.%N)
    (cd "$t" && build-gpu/vitlab train experiments/fmnist_reference.json --device cuda \
       --out "$out/fmnist-$side-$r" --quiet > /dev/null 2>> "$out/errors.log") ||
      echo "FAILED: fmnist $side $r"
    echo "$(date +%s.%N) - $t0" | bc > "$out/fmnist-$side-$r.wall" 2>/dev/null ||
      python3 -c "import time; print(round(time.time() - $t0, 1))" > "$out/fmnist-$side-$r.wall"
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys, glob, os
out, rounds = sys.argv[1], int(sys.argv[2])
print(f"| workload | A img/s (median) | B img/s (median) | B / A | A peak GiB | B peak GiB |")
print("|---|---|---|---|---|---|")
for name in ["small", "vit_s16", "vit_b16", "bit_r50x1"]:
    row = {}
    for side in "AB":
        recs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{name}-{side}-*.json"))]
        ips = [round(r["images_per_second"]) for r in recs]
        mem = [r.get("peak_memory_bytes", 0) / 2**30 for r in recs]
        row[side] = (statistics.median(ips) if ips else 0, max(mem) if mem else 0, ips)
    ratio = row["B"][0] / row["A"][0] if row["A"][0] else float("nan")
    print(f"| {name} | {row['A'][0]:,.0f} {row['A'][2]} | {row['B'][0]:,.0f} {row['B'][2]} | {ratio:.3f} | {row['A'][1]:.2f} | {row['B'][1]:.2f} |")
for side in "AB":
    for r in range(1, rounds + 1):
        res = f"{out}/fmnist-{side}-{r}/result.json"
        wall = open(f"{out}/fmnist-{side}-{r}.wall").read().strip() if os.path.exists(f"{out}/fmnist-{side}-{r}.wall") else "?"
        if os.path.exists(res):
            j = json.load(open(res))
            print(f"fmnist {side} round {r}: wall {wall} s, train {j.get('train_seconds')} s, test {j.get('test_accuracy')}")
PY
