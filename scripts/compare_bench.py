"""Prints the speed comparison table from one GPU-machine run: vitlab's bench records
(scripts/gpu_bench.sh OUT writes OUT/<name>.json) against timm's (OUT/timm.jsonl from
scripts/bench_timm.py), with the ratios the issue's targets are stated in. Usage:
    python3 scripts/compare_bench.py OUT            (scripts/gpu_compare.sh runs all three)
Refuses records from different GPUs: ratios only mean something on one machine."""
import json, sys
from pathlib import Path

# vitlab record name -> (timm workload, label)
WORKLOADS = [
    ("small_fast", "vit_small28", "ViT D192 d12 p4 28px (SGD)"),
    ("vit_s16_fast", "vit_s16", "ViT-S/16 224px"),
    ("vit_b16_fast", "vit_b16", "ViT-B/16 224px"),
    ("bit_r50x1_fast", "bit_r50x1", "BiT-R50x1 224px"),
    ("bit_r26_28_fast", "bit_r26_28", "BiT-R26 28px, 3x3 stem (timm channels-last)"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: compare_bench.py OUT_DIR")
    out = Path(sys.argv[1])
    timm = {}
    timm_file = out / "timm.jsonl"
    if not timm_file.exists():
        sys.exit(f"{timm_file}: no such file (run scripts/bench_timm.py > {timm_file})")
    for line in timm_file.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "workload" in r and "impl" in r:
            timm[(r["workload"], r["impl"])] = r
    devices = {r["device_name"] for r in timm.values()}
    print("| workload | timm eager | timm+compile | vitlab | vs eager | vs compile | MFU | mem vitlab / compile (GiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, workload, label in WORKLOADS:
        path = out / f"{name}.json"
        if not path.exists():
            print(f"| {label} | (no {path.name}) |")
            continue
        v = json.loads(path.read_text())
        devices.add(v["device_name"])
        eager, comp = timm.get((workload, "timm eager")), timm.get((workload, "timm+compile"))
        ips = v["images_per_second"]
        fmt = lambda r: f"{r['images_per_second']:,.0f}" if r else "-"
        ratio = lambda r: f"{ips / r['images_per_second']:.2f}x" if r else "-"
        mem = lambda r: f"{r['peak_memory_bytes'] / 2**30:.2f}" if r else "-"
        mfu = f"{100 * v['mfu']:.1f}%" if v.get("mfu") else "-"
        print(f"| {label} | {fmt(eager)} | {fmt(comp)} | {ips:,.0f} | {ratio(eager)} | {ratio(comp)} | {mfu} "
              f"| {mem(v)} / {mem(comp)} |")
    if len(devices) > 1:
        sys.exit(f"records come from different GPUs ({', '.join(sorted(devices))}): compare within one machine")
    print(f"\n{devices.pop() if devices else 'unknown device'}; vitlab commit {v.get('git_commit', '?')}")


if __name__ == "__main__":
    main()
