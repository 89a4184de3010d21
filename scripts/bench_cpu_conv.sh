#!/usr/bin/env bash
# The small-image BiT (bit_r26_28: a 3x3 stem without max-pool, so 28x28 feature maps at width
# 256) on the CPU at growing batches: training img/s at batch 32, 64 and 128, inference at 64 and
# 512, and `vitlab eval` of the 10,000 Fashion-MNIST test images at --batch 512 (a checkpoint
# trained for one epoch on 512 images first), with each command's peak RSS. README "Performance"
# records the figures (record cpu-conv-*).
#
#   scripts/bench_cpu_conv.sh OUT [VITLAB]     VITLAB: the binary (default build/vitlab)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/bench_cpu_conv.sh OUT [VITLAB]}
vitlab=${2:-build/vitlab}
mkdir -p "$out"
rss() { /usr/bin/time -f "%M" -o "$out/$1.rss" "${@:2}"; }  # peak RSS in KB
for b in 32 64 128; do
  rss train_b$b "$vitlab" bench --model bit_r26_28 --batch $b --precision fp32 --steps 2 --windows 2 --warmup 1 \
      --device cpu --json "$out/train_b$b.json" > /dev/null
done
for b in 64 512; do
  rss infer_b$b "$vitlab" bench --model bit_r26_28 --mode infer --batch $b --precision fp32 --steps $((2048 / b)) \
      --windows 1 --warmup 1 --device cpu --json "$out/infer_b$b.json" > /dev/null
done
cat > "$out/bit_small.json" <<JSON
{"extends": "$PWD/experiments/recipes/fmnist.json", "model": {"name": "bit_r26_28"}, "device": "cpu",
 "data": {"train_size": 512, "val_size": 64},
 "train": {"epochs": 1, "warmup_epochs": 0, "batch_size": 64, "lr": 0.002, "precision": "fp32"}}
JSON
rm -rf "$out/bit_small"
"$vitlab" train "$out/bit_small.json" --out "$out/bit_small" --quiet
start=$(date +%s%N)
rss eval_b512 "$vitlab" eval "$out/bit_small/checkpoints/last.pt" --batch 512 > "$out/eval_b512.json"
echo "$(( ($(date +%s%N) - start) / 1000000 ))" > "$out/eval_b512.ms"
python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {}
for name in ("train_b32", "train_b64", "train_b128", "infer_b64", "infer_b512"):
    r = json.loads((out / f"{name}.json").read_text())
    rows[name] = {"img_s": round(r["images_per_second"], 1), "peak_rss_mb": int((out / f"{name}.rss").read_text()) // 1024}
e = json.loads((out / "eval_b512.json").read_text())
rows["eval_b512"] = {"wall_s": int((out / "eval_b512.ms").read_text()) / 1000,
                     "peak_rss_mb": int((out / "eval_b512.rss").read_text()) // 1024,
                     "accuracy": e["accuracy"], "loss": e["loss"]}
(out / "summary.json").write_text(json.dumps(rows, indent=1))
print(json.dumps(rows, indent=1))
PY
