#!/usr/bin/env bash
# Runs sweeps on the GPU machine within one device call and packs what comes back (issue: only 8
# files return from a call, and a call lasts at most 10 minutes).
#
#   scripts/gpu_sweep.sh SECONDS JOBS SWEEP.json [SWEEP.json ...]
#
# Each sweep runs in runs/<name> with --jobs JOBS, one after the other, all within SECONDS: the
# sweep running at the limit is killed, and its unfinished runs resume from their checkpoints on
# the next call (runs/ stays on a warm machine; `vitlab sweep` skips finished runs). A folder
# carried in as runs-<name>.tgz is unpacked first when runs/<name> is absent (a fresh machine).
# Then $OUT/<name>.tgz holds the sweep folder without checkpoints (sweep.json, summaries,
# report.html, analysis/, each run's config, result, metrics and log) and $OUT/<name>.log the
# sweep's output, ending with its wall time. Needs build-gpu/vitlab (scripts/gpu_build.sh).
# MPS=1 first starts CUDA's Multi-Process Service daemon (it outlives the call, as a daemon), so
# that the runs of --jobs JOBS share the GPU's SMs instead of taking turns on it; the log says
# whether MPS was on. DEVICES=cuda:0 passes --devices to the sweeps (one GPU of several). While a
# sweep runs, nvidia-smi samples each GPU's utilization every second into <sweep>/gpu_busy.csv, and
# the log's last line gives each GPU's mean: the share of the sweep's wall time that a kernel ran.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=$1 jobs=$2
shift 2
deadline=$(( $(date +%s) + seconds ))
out=${OUT:-out}
mkdir -p "$out"
mps=off
if [ "${MPS:-0}" = 1 ]; then
  # A daemon whose server cannot start fails every CUDA client, so one is tried before the runs.
  if { echo get_server_list | nvidia-cuda-mps-control > /dev/null 2>&1 || nvidia-cuda-mps-control -d; } &&
     python3 -c 'import torch; torch.ones(1, device="cuda").sum().item()' 2> "$out/mps.log"; then mps=on
  else
    echo quit | nvidia-cuda-mps-control > /dev/null 2>&1
    echo "gpu_sweep: MPS requested but it did not start (see mps.log); running without it" | tee -a "$out/mps.log" >&2
  fi
fi
for file in "$@"; do
  name=$(basename "$file" .json)
  dir=runs/$name
  [ -d "$dir" ] || [ ! -f "runs-$name.tgz" ] || tar xzf "runs-$name.tgz"
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 30 ]; then echo "$name: not started, the call's time is spent" >> "$out/$name.log"; continue; fi
  start=$(date +%s)
  mkdir -p "$dir"
  nvidia-smi --query-gpu=index,utilization.gpu --format=csv,noheader,nounits -lms 1000 > "$dir/gpu_busy.csv" 2> /dev/null &
  sampler=$!
  timeout -s KILL "$left" build-gpu/vitlab sweep "$file" --out "$dir" --jobs "$jobs" ${DEVICES:+--devices "$DEVICES"} > "$out/$name.log" 2>&1
  status=$?
  kill "$sampler" 2> /dev/null
  busy=$(awk -F', *' 'NF == 2 {sum[$1] += $2; n[$1]++} END {for (g in sum) printf " GPU %s %.0f%%;", g, sum[g] / n[g]}' "$dir/gpu_busy.csv")
  echo "gpu_sweep: $name exit $status, wall $(( $(date +%s) - start )) s with --jobs $jobs${DEVICES:+ on $DEVICES}, MPS $mps, on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); busy:${busy:- not sampled}" >> "$out/$name.log"
  tar czf "$out/$name.tgz" --exclude='checkpoints' --exclude='.sweep.lock' "$dir"
done
