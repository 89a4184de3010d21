#!/usr/bin/env bash
# Issue 22's measurements on the GPU machine: the streaming pipeline's decode speed on its cores,
# ViT-B/16 trained from a folder of JPEGs against the same run from tensors held on the GPU, and
# nvJPEG (through torchvision) on the same files. Needs build-gpu/vitlab (scripts/gpu_build.sh).
#
#   scripts/gpu_stream.sh OUT [PART ...]     PART: bench train nvjpeg decoder shards dp
#                                            (default: bench train nvjpeg)
#
# bench:  `vitlab data bench` on the synthetic folder: RandomResizedCrop + flip at 224 px on
#         16, 8, 4, 2 and 1 threads; with rand-m9-mstd0.5 on 16; the eval crop on 16.
# train:  ViT-B/16 (benchmarks/configs/vit_b16_folder.json) from the folder with every core
#         decoding and with 8 and 4, and vit_b16_synthetic.json (6,144 images: making more takes
#         minutes) with the same classes held on the GPU. Peak host memory of each run too.
# nvjpeg: scripts/bench_nvjpeg.py on the same folder.
# decoder: data.decoder "nvjpeg" against the CPU's decoding: `vitlab data bench --decoder nvjpeg`
#         and the CPU's on 16, 4 and 2 threads; ViT-B/16 from the folder with nvJPEG and every
#         core reading and drawing crops, and with 4 and 2 threads, beside the CPU decoder on
#         CPU_THREADS (default 4) and the in-memory run.
# shards: the folder written as WebDataset shards (scripts/folder_to_shards.py, 1,000 samples a
#         shard) and ViT-B/16 trained from them with every core decoding, beside the same run
#         from the folder.
# dp:     benchmarks/configs/stream_dp_mix.json (a small ViT, streamed, mixup and cutmix) on one GPU
#         and on two under torchrun (device kind nvidia-h200-x2), on a folder of 2,048 JPEGs in 8
#         classes (/tmp/synth2k).
# The folder (FOLDER, default /tmp/synth20k) is written first by `vitlab data synth` when absent.
# Writes OUT/stream.log (each command and its output's tail) and OUT/stream.json (the figures).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_stream.sh OUT [PART ...]}
shift
parts=${*:-bench train nvjpeg}
folder=${FOLDER:-/tmp/synth20k}
vitlab=build-gpu/vitlab
log=$out/stream.log
mkdir -p "$out" stream
rm -rf stream/runs
step() {  # step NAME COMMAND...: runs it under a timeout, logs its wall time, peak RSS and output tail
  local name=$1
  shift
  echo "== $name: $*" >> "$log"
  timeout -k 5 "${STEP_TIMEOUT:-240}" python3 - "$name" "$@" >> "$log" 2>&1 <<'PY'
import resource, subprocess, sys, time
name, cmd = sys.argv[1], sys.argv[2:]
t0 = time.time()
with open(f"stream/{name}.out", "w") as f:
    rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
wall = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print("".join(open(f"stream/{name}.out").readlines()[-4:]), end="")
print(f"== {name}: rc {rc}, {wall:.1f} s, peak RSS {rss} MB")
with open("stream/walls.txt", "a") as f:
    f.write(f"{name} {rc} {wall:.1f} {rss}\n")
PY
}

$vitlab --version >> "$log" 2>&1
nproc >> "$log"
[ -d "$folder/train" ] || step synth $vitlab data synth "$folder"

for part in $parts; do
  case $part in
    bench)
      for t in ${BENCH_THREADS:-16 8 4 2 1}; do
        n=$(( t >= 4 ? 40 : 10 ))
        step "bench_rrc_t$t" $vitlab data bench "$folder" --threads $t --batches $n --json "stream/bench_rrc_t$t.json"
      done
      step bench_randaug_t16 $vitlab data bench "$folder" --threads 16 --batches 40 --rand-augment rand-m9-mstd0.5 \
           --json stream/bench_randaug_t16.json
      step bench_eval_t16 $vitlab data bench "$folder" --split val --eval --threads 16 --batches 7 \
           --json stream/bench_eval_t16.json ;;
    train)
      step vit_b16_memory $vitlab train benchmarks/configs/vit_b16_synthetic.json --out stream/runs/memory --quiet \
           --set model.num_classes=100 --set data.synthetic_classes=100
      for t in ${TRAIN_THREADS:-0 8 4}; do
        step "vit_b16_folder_t$t" $vitlab train benchmarks/configs/vit_b16_folder.json --out "stream/runs/folder_t$t" \
             --quiet --set model.num_classes=100 --set data.path="$folder" --set data.decode_threads=$t
      done ;;
    nvjpeg)
      step nvjpeg env PYTHONUNBUFFERED=1 python3 scripts/bench_nvjpeg.py "$folder" --json stream/nvjpeg.json ;;
    decoder)
      for t in 16 4 2; do
        for d in nvjpeg cpu; do
          step "bench_${d}_t$t" $vitlab data bench "$folder" --decoder $d --threads $t \
               --batches $(( t >= 4 ? 40 : 10 )) --json "stream/bench_${d}_t$t.json"
        done
      done
      step vit_b16_memory $vitlab train benchmarks/configs/vit_b16_synthetic.json --out stream/runs/memory --quiet \
           --set model.num_classes=100 --set data.synthetic_classes=100
      for t in ${DECODER_THREADS:-0 4 2}; do
        for d in nvjpeg cpu; do
          [ $d = cpu ] && ! [[ " ${CPU_THREADS-4} " == *" $t "* ]] && continue
          step "vit_b16_${d}_t$t" $vitlab train benchmarks/configs/vit_b16_folder.json --out "stream/runs/${d}_t$t" \
               --quiet --set model.num_classes=100 --set data.path="$folder" --set data.decode_threads=$t \
               --set data.decoder=$d
        done
      done ;;
    shards)
      [ -d /tmp/shards20k/train ] || step to_shards python3 scripts/folder_to_shards.py "$folder" /tmp/shards20k
      for source in folder shards; do
        path=$folder
        [ $source = shards ] && path=/tmp/shards20k
        step "vit_b16_${source}_t0" $vitlab train benchmarks/configs/vit_b16_folder.json --out "stream/runs/${source}_t0" \
             --quiet --set model.num_classes=100 --set data.path="$path" --set data.decode_threads=0
      done ;;
    dp)
      [ -d /tmp/synth2k/train ] || step synth2k $vitlab data synth /tmp/synth2k --images 2048 --classes 8
      step dp_one $vitlab train benchmarks/configs/stream_dp_mix.json --out stream/runs/dp_one --quiet
      step dp_two python3 -m torch.distributed.run --no-python --standalone --nproc_per_node 2 \
           $vitlab train benchmarks/configs/stream_dp_mix.json --out stream/runs/dp_two --quiet ;;
  esac
done

python3 - "$out/stream.json" <<'PY'
import glob, json, os, sys
figures = {"bench": {}, "runs": {}, "steps": {}}
for f in sorted(glob.glob("stream/bench_*.json")):
    figures["bench"][os.path.basename(f)[:-5]] = json.load(open(f))
if os.path.exists("stream/nvjpeg.json"):
    figures["nvjpeg"] = json.load(open("stream/nvjpeg.json"))
for result in sorted(glob.glob("stream/runs/*/result.json")):
    folder = os.path.dirname(result)
    r = json.load(open(result))
    epochs = [json.loads(l) for l in open(os.path.join(folder, "metrics.jsonl")) if l.strip()]
    warm = [e["images_per_second"] for e in epochs if "images_per_second" in e][1:]
    figures["runs"][os.path.basename(folder)] = {
        **{k: r.get(k) for k in ("status", "test_accuracy", "images_per_second", "train_seconds",
                                 "bad_images", "cuda_graph", "git_commit", "test_loss", "world_size")},
        "warm_images_per_second": sum(warm) / len(warm) if warm else None}
if os.path.exists("stream/walls.txt"):
    for line in open("stream/walls.txt"):
        name, rc, wall, rss = line.split()
        figures["steps"][name] = {"rc": int(rc), "wall_s": float(wall), "peak_rss_mb": int(rss)}
json.dump(figures, open(sys.argv[1], "w"), indent=1)
PY
tar czf "$out/stream-runs.tgz" --exclude='*.pt' stream
