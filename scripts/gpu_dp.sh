#!/usr/bin/env bash
# Data-parallel training on a machine with 2 GPUs (device kind nvidia-h200-x2): the measurements
# that README "Scaling" records. Needs build-gpu/vitlab (scripts/gpu_build.sh) and the staged
# Fashion-MNIST data (third_party/staged).
#
#   scripts/gpu_dp.sh OUT [PART ...]      PART: smoke fmnist vit_b16 engines kill sweep (default: all)
#
# smoke:   train_tiny on 2 GPUs under torchrun (NCCL, the captured step), and on 1 GPU.
# fmnist:  the Fashion-MNIST reference recipe on 1 GPU and on 2 GPUs at the same global batch.
# vit_b16: ViT-B/16 on synthetic 224 px images: 1 GPU at batch 256; 2 GPUs at 256 each (512);
#          2 GPUs at 256 in all.
# engines: the gradient-averaging engines (VITLAB_GRADIENT_SYNC) on vit_b16's 2-GPU run at 256
#          each: vitlab's buckets and c10d's Reducer, each graph-captured and eager, all four in
#          this part so that one call compares them; and the Fashion-MNIST recipe on 2 GPUs with
#          the Reducer (the same accuracy as the buckets).
# kill:    rank 1 of a 2-GPU run is killed (SIGKILL); rank 0 must stop within --dist-timeout
#          with an error naming rank 1, and both must resume to the end.
# sweep:   a sweep with --jobs 2 --devices cuda:0,cuda:1 places its runs on both GPUs.
# Writes OUT/dp.log (every command and its output tail), OUT/dp.json (the figures) and
# OUT/dp-runs.tgz (each run's config, result and metrics).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_dp.sh OUT [PART ...]}
shift
parts=${*:-smoke fmnist vit_b16 engines kill sweep}
rm -rf dp  # this call's runs only (dp/ is ignored by git)
mkdir -p "$out" dp
# NVLink multicast stays off on shared hosts (device KINDS.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
vitlab=build-gpu/vitlab
log=$out/dp.log
two="python3 -m torch.distributed.run --no-python --standalone --nproc_per_node 2 $vitlab"

step() {  # step NAME COMMAND...: runs it, logs its wall time and the tail of its output
  local name=$1 start rc ms
  shift
  start=$(date +%s%N)
  echo "== $name: $*" >> "$log"
  timeout -k 5 "${STEP_TIMEOUT:-150}" "$@" > "dp/$name.out" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  tail -n 6 "dp/$name.out" >> "$log"
  echo "== $name: rc $rc, $ms ms" >> "$log"
  echo "$name $rc $ms" >> dp/walls.txt
}

$vitlab --version >> "$log" 2>&1
nvidia-smi topo -m >> "$log" 2>&1

for part in $parts; do
  case $part in
    smoke)
      step smoke_1gpu $vitlab train experiments/train_tiny.json --device cuda --out dp/smoke_1gpu --quiet
      step smoke_2gpu $two train experiments/train_tiny.json --device cuda --out dp/smoke_2gpu --quiet ;;
    fmnist)
      step fmnist_1gpu $vitlab train experiments/fmnist_reference.json --out dp/fmnist_1gpu --quiet
      step fmnist_2gpu $two train experiments/fmnist_reference.json --out dp/fmnist_2gpu --quiet ;;
    vit_b16)
      cfg=benchmarks/configs/vit_b16_synthetic.json
      step vit_b16_1gpu $vitlab train $cfg --out dp/vit_b16_1gpu --quiet
      step vit_b16_2gpu $two train $cfg --set train.batch_size=512 --out dp/vit_b16_2gpu --quiet
      step vit_b16_2gpu_b256 $two train $cfg --out dp/vit_b16_2gpu_b256 --quiet ;;
    engines)
      cfg=benchmarks/configs/vit_b16_synthetic.json
      for sync in buckets buckets-eager reducer reducer-eager; do
        step "vit_b16_2gpu_$sync" env VITLAB_GRADIENT_SYNC=$sync $two train $cfg --set train.batch_size=512 \
             --out "dp/vit_b16_2gpu_$sync" --quiet
      done
      step fmnist_2gpu_reducer env VITLAB_GRADIENT_SYNC=reducer $two train experiments/fmnist_reference.json \
           --out dp/fmnist_2gpu_reducer --quiet ;;
    kill)
      # Ranks started as torchrun starts them, but without torchrun's agent (it would stop the
      # other rank itself): what a rank sees when its peer dies on another node.
      port=29611
      envs="WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port"
      args="train experiments/fmnist_reference.json --out dp/kill --dist-timeout 20 --quiet"
      env $envs RANK=1 LOCAL_RANK=1 timeout -k 5 120 $vitlab $args > dp/kill_rank1.out 2>&1 & pid1=$!
      env $envs RANK=0 LOCAL_RANK=0 timeout -k 5 120 $vitlab $args > dp/kill_rank0.out 2>&1 & pid0=$!
      sleep 12
      pkill -9 -P $pid1  # the rank itself, under its timeout
      killed=$(date +%s%N)
      wait $pid0; rc0=$?
      echo "== kill: rank 0 exited with $rc0, $(( ($(date +%s%N) - killed) / 1000000 )) ms after rank 1 was killed" >> "$log"
      tail -n 4 dp/kill_rank0.out >> "$log"
      step kill_resume $two train --resume dp/kill --quiet ;;
    sweep)
      step sweep_2gpu $vitlab sweep experiments/quickstart.json --jobs 2 --devices cuda:0,cuda:1 --out dp/sweep ;;
  esac
done

python3 - "$out/dp.json" <<'PY'
import glob, json, os, sys
runs = {}
for result in sorted(glob.glob("dp/**/result.json", recursive=True)):
    folder = os.path.dirname(result)
    r = json.load(open(result))
    epochs = [json.loads(l) for l in open(os.path.join(folder, "metrics.jsonl")) if l.strip()]
    epochs = [e for e in epochs if "images_per_second" in e]
    warm = [e["images_per_second"] for e in epochs[1:]] or [r.get("images_per_second")]
    runs[folder] = {k: r.get(k) for k in ("status", "device", "world_size", "test_accuracy", "test_loss",
                                          "images_per_second", "train_seconds", "cuda_graph", "gradient_sync",
                                          "git_commit")}
    runs[folder]["warm_images_per_second"] = sum(warm) / len(warm) if warm and warm[0] else None
walls = {}
if os.path.exists("dp/walls.txt"):
    for line in open("dp/walls.txt"):
        name, rc, seconds = line.split()  # milliseconds
        walls[name] = {"rc": int(rc), "wall_s": int(seconds) / 1000}
json.dump({"runs": runs, "steps": walls}, open(sys.argv[1], "w"), indent=1)
PY
tar czf "$out/dp-runs.tgz" --exclude='*.pt' dp
