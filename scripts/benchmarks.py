#!/usr/bin/env python3
"""Benchmark records (benchmarks/): one JSON line per measurement in benchmarks/records.jsonl,
appended and never rewritten; the raw files of a record (bench JSONs, timm's output, test logs,
kernel tables) as one benchmarks/raw/<id>.tar.gz; the tables in benchmarks/README.md made from
the log. Python 3 standard library only: a tool for the GPU machine and the Debian machine, not
part of `make test`.

    scripts/benchmarks.py add compare OUT [--command CMD]   after scripts/gpu_compare.sh OUT
    scripts/benchmarks.py add bench OUT [--command CMD]     after scripts/gpu_bench.sh OUT
    scripts/benchmarks.py add profile OUT --card CARD --commit C [--command CMD]
    scripts/benchmarks.py add train RUN_DIR --card CARD [--wall-s S] [--command CMD]
    scripts/benchmarks.py add tests LOG --card CARD --commit C [--command CMD]
    scripts/benchmarks.py add ab OUT --card CARD --commit B --note "A = ..."  after scripts/gpu_ab.sh
    scripts/benchmarks.py add scaling OUT --card CARD --commit C         after scripts/gpu_dp.sh OUT
    scripts/benchmarks.py add sweep OUT --card CARD --commit C           after scripts/gpu_sweep.sh (OUT=OUT)
    (kinds cpu, parity and stream, scripts/gpu_stream.sh's figures, are written by hand with
    append() and write_raw())
    scripts/benchmarks.py table                             rewrite the tables in benchmarks/README.md
    scripts/benchmarks.py check                             every line valid, ids unique, raw files there

A record: {"id", "kind", "card", "commit", "date", "command", "figures", "sources", "raw", "note"}.
`card` is the device the figures come from ("NVIDIA H200"; "2-core Debian 12 machine (CPU)"),
`sources` the file names inside the raw archive, `raw` its path (null when there is none).
"""
import argparse
import datetime
import gzip
import io
import json
import re
import statistics
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
LOG = BENCH / "records.jsonl"
RAW = BENCH / "raw"
README = BENCH / "README.md"
KINDS = ("compare", "bench", "profile", "train", "tests", "cpu", "parity", "ab", "scaling", "sweep", "stream")
FIELDS = ("id", "kind", "card", "commit", "date", "command", "figures", "sources", "raw", "note")

# vitlab bench record name prefix -> (timm workload, table label)
WORKLOADS = {
    "small": ("vit_small28", "ViT D192 d12 p4 28 px (SGD)"),
    "vit_s16": ("vit_s16", "ViT-S/16 224 px"),
    "vit_b16": ("vit_b16", "ViT-B/16 224 px"),
    "bit_r50x1": ("bit_r50x1", "BiT-R50x1 224 px"),
    "bit_r26_28": ("bit_r26_28", "BiT-R26 28 px, 3x3 stem"),
}
VARIANTS = ("fast", "nofused", "plain")  # gpu_bench.sh's record name suffixes


def fail(message):
    """Bad input (a missing file, a duplicate id, a record without a field): status 2."""
    print(f"benchmarks.py: {message}", file=sys.stderr)
    sys.exit(2)


def gib(nbytes):
    return round(nbytes / 2**30, 2)


def read_records():
    if not LOG.exists():
        return []
    records = []
    for n, line in enumerate(LOG.read_text().splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            fail(f"{LOG}:{n}: not JSON ({e})")
    return records


def card_slug(card):
    m = re.search(r"NVIDIA\s+(\S+)", card)
    return (m.group(1) if m else card.split()[0]).lower()


def compare_figures(out):
    """Figures of a gpu_bench.sh folder (OUT/<workload>_<variant>.json) and, when there,
    timm's OUT/timm.jsonl: per workload vitlab's img/s per path, MFU and peak memory, timm's
    eager and compiled img/s, and the ratio to timm + compile."""
    out = Path(out)
    figures, cards, commits, dates = {}, set(), set(), set()
    for name, (timm_name, _) in WORKLOADS.items():
        w = {}
        for variant in VARIANTS:
            path = out / f"{name}_{variant}.json"
            if not path.exists():
                continue
            r = json.loads(path.read_text())
            cards.add(r["device_name"])
            commits.add(r.get("git_commit", "unknown"))
            if r.get("date"):
                dates.add(r["date"])
            w[f"{variant}_img_s"] = round(r["images_per_second"])
            if variant == "fast":
                if r.get("mfu"):
                    w["mfu_pct"] = round(100 * r["mfu"], 1)
                if r.get("peak_memory_bytes"):
                    w["peak_mem_gib"] = gib(r["peak_memory_bytes"])
        timm = out / "timm.jsonl"
        if timm.exists():
            for line in timm.read_text().splitlines():
                try:
                    t = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if t.get("workload") != timm_name:
                    continue
                cards.add(t["device_name"])
                key = {"timm eager": "timm_eager", "timm+compile": "timm_compile"}.get(t.get("impl"))
                if key:
                    w[f"{key}_img_s"] = round(t["images_per_second"])
                    if key == "timm_compile":
                        w["timm_compile_peak_mem_gib"] = gib(t["peak_memory_bytes"])
        if "fast_img_s" in w and w.get("timm_compile_img_s"):
            w["x_timm_compile"] = round(w["fast_img_s"] / w["timm_compile_img_s"], 2)
        if w:
            figures[name] = w
    if len(cards) > 1:
        fail(f"{out}: records from different devices ({', '.join(sorted(cards))}); one record is one machine")
    if not figures:
        fail(f"{out}: no vitlab bench records (<workload>_<fast|nofused|plain>.json)")
    return figures, cards.pop(), ",".join(sorted(commits)), min(dates) if dates else None


def train_figures(run_dir, wall_s=None):
    r = json.loads((Path(run_dir) / "result.json").read_text())
    f = {"test_accuracy_pct": round(100 * r["test_accuracy"], 2), "train_s": round(r["train_seconds"], 1),
         "img_s": round(r["images_per_second"]), "epochs": r.get("epochs_completed")}
    if wall_s is not None:
        f["wall_s"] = wall_s
    return f, r.get("git_commit", "unknown")


def tests_figures(log):
    text = Path(log).read_text(errors="replace")
    f = {}
    m = re.search(r"^Filters: (.*)$", text, re.M)
    if m:
        f["filters"] = m.group(1).strip()
    m = re.findall(r"All tests passed \((\d+) assertions? in (\d+) test cases?\)", text)
    if m:
        f["passed"] = True
        f["assertions"], f["test_cases"] = int(m[-1][0]), int(m[-1][1])
    m = re.search(r"test cases: *(\d+) \| *(\d+) passed \| *(\d+) failed", text)
    if m:
        f["passed"] = False
        f["test_cases"], f["failed"] = int(m.group(1)), int(m.group(3))
    # ctest's summary: "100% tests passed out of M", or "N% tests passed, K tests failed out of M".
    m = re.search(r"tests passed(?:, (\d+) tests failed)? out of (\d+)", text)
    if m and "test_cases" not in f:
        failed = int(m.group(1) or 0)
        f["passed"], f["test_cases"], f["failed"] = failed == 0, int(m.group(2)), failed
    if not f:
        fail(f"{log}: no Catch2 or ctest result line found")
    return f


def ab_figures(out):
    """scripts/gpu_ab.sh's folder: per workload the median img/s of A and B (fast path), B/A and
    peak memory; per side the Fashion-MNIST reference runs (wall, training seconds, accuracy)."""
    out, f = Path(out), {}
    for name in WORKLOADS:
        sides = {}
        for side in "AB":
            recs = [json.loads(p.read_text()) for p in sorted(out.glob(f"{name}-{side}-*.json"))]
            if recs:
                rates = sorted(r["images_per_second"] for r in recs)
                sides[side] = {"img_s": [round(x) for x in rates], "median": round(statistics.median(rates)),
                               "peak_mem_gib": gib(max(r.get("peak_memory_bytes", 0) for r in recs))}
        if len(sides) == 2:
            f[name] = {"A": sides["A"], "B": sides["B"],
                       "b_over_a": round(sides["B"]["median"] / sides["A"]["median"], 3)}
    for side in "AB":
        runs = []
        for run in sorted(out.glob(f"fmnist-{side}-*")):
            if run.is_dir() and (run / "result.json").exists():
                r = json.loads((run / "result.json").read_text())
                wall = Path(f"{run}.wall")
                runs.append({"test_accuracy_pct": round(100 * r["test_accuracy"], 2),
                             "train_s": round(r["train_seconds"], 1),
                             "wall_s": float(wall.read_text()) if wall.exists() else None})
        if runs:
            f[f"fmnist_{side}"] = runs
    if not f:
        fail(f"{out}: no scripts/gpu_ab.sh records (<workload>-<A|B>-<round>.json)")
    return f


def write_raw(record_id, files):
    """files: [(name in the archive, path)]; one gzip'd tar, reproducible (fixed times, owner)."""
    if not files:
        return None
    RAW.mkdir(parents=True, exist_ok=True)
    target = RAW / f"{record_id}.tar.gz"
    if target.exists():
        fail(f"{target}: already exists (records are append-only; choose another --id)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in sorted(files):
            data = Path(path).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    target.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
    return str(target.relative_to(ROOT))


def folder_files(folder, skip=(".trace.json", ".json.gz")):
    """A result folder's files for the archive; Chrome traces (gpu_profile.sh gzips them) stay
    out: megabytes each, and the kernel tables in the .txt files are what the record cites."""
    folder = Path(folder)
    return [(str(p.relative_to(folder)), p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(s in p.name for s in skip)]


def scaling_figures(src):
    """scripts/gpu_dp.sh's dp.json: each run's warm img/s (epochs after the first), test accuracy,
    world size and whether its step was a captured graph; the 2-GPU speed-ups."""
    d = json.loads((Path(src) / "dp.json").read_text())
    runs = {Path(k).name: v for k, v in d["runs"].items()}
    figures = {}
    for name, r in runs.items():
        figures[name] = {"world_size": r["world_size"], "warm_img_s": round(r["warm_images_per_second"] or 0),
                         "test_accuracy_pct": round(100 * r["test_accuracy"], 2) if r.get("test_accuracy") is not None else None,
                         "cuda_graph": r.get("cuda_graph")}
        if r.get("gradient_sync"):
            figures[name]["gradient_sync"] = r["gradient_sync"]
        wall = d["steps"].get(name, {}).get("wall_s")
        if wall:
            figures[name]["wall_s"] = wall
    for two, one, key in (("vit_b16_2gpu", "vit_b16_1gpu", "vit_b16_x2_per_gpu_batch"),
                          ("vit_b16_2gpu_b256", "vit_b16_1gpu", "vit_b16_x2_same_global_batch"),
                          ("fmnist_2gpu", "fmnist_1gpu", "fmnist_x2_same_global_batch")):
        if two in figures and one in figures and figures[one]["warm_img_s"]:
            figures[key] = round(figures[two]["warm_img_s"] / figures[one]["warm_img_s"], 3)
    return figures


SWEEP_LINE = re.compile(r"gpu_sweep: (\S+) exit (\d+), wall (\d+) s with --jobs (\d+)(?: on (\S+))?, MPS (\w+), "
                        r"on ([^;]+?)(?:; busy:(.*))?$")


def sweep_figures(src):
    """scripts/gpu_sweep.sh's OUT: per sweep (OUT/<sweep>.log's last line) the exit status, wall
    time, --jobs, devices, whether MPS was on and each GPU's mean utilization; from OUT/<sweep>.tgz
    the runs' count and their longest training time."""
    figures = {}
    for log in sorted(Path(src).glob("*.log")):
        lines = [m for m in map(SWEEP_LINE.search, log.read_text(errors="replace").splitlines()) if m]
        if not lines:
            continue
        name, status, wall, jobs, devices, mps, card, busy = lines[-1].groups()
        f = {"exit": int(status), "wall_s": int(wall), "jobs": int(jobs), "devices": devices or "all",
             "mps": mps == "on", "gpu_busy_pct": {g: int(p) for g, p in re.findall(r"GPU (\d+) (\d+)%", busy or "")}}
        archive = Path(src) / f"{name}.tgz"
        if archive.exists():
            with tarfile.open(archive) as tar:
                results = [json.load(tar.extractfile(m)) for m in tar.getmembers()
                           if m.name.endswith("/result.json") and "/runs/" in m.name]
            f["runs"] = len(results)
            if results:
                f["longest_train_s"] = round(max(r.get("train_seconds") or 0 for r in results))
        figures[name] = f
    if not figures:
        fail(f"{src}: no gpu_sweep.sh log (<sweep>.log ending in a 'gpu_sweep: ...' line)")
    return figures


def append(record):
    missing = [k for k in ("id", "kind", "card", "commit", "date", "command", "figures") if not record.get(k)]
    if missing:
        fail(f"record {record.get('id')}: missing {', '.join(missing)}")
    if record["kind"] not in KINDS:
        fail(f"record {record['id']}: kind {record['kind']!r} is not one of {', '.join(KINDS)}")
    if any(r["id"] == record["id"] for r in read_records()):
        fail(f"{LOG}: a record {record['id']} exists already (records are append-only)")
    line = {k: record.get(k) for k in FIELDS}
    BENCH.mkdir(exist_ok=True)
    with LOG.open("a") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"appended {record['id']} to {LOG.relative_to(ROOT)}" + (f"; raw files: {line['raw']}" if line["raw"] else ""))


def add(args):
    date = args.date or datetime.date.today().isoformat()
    src = Path(args.source)
    if not src.exists():
        fail(f"{src}: no such file or folder")
    note = args.note
    if args.kind in ("compare", "bench"):
        figures, card, commit, bench_date = compare_figures(src)
        date = args.date or bench_date or date
        files = folder_files(src)
        command = args.command or {"compare": "scripts/gpu_compare.sh OUT", "bench": "scripts/gpu_bench.sh OUT"}[args.kind]
    elif args.kind == "train":
        figures, commit = train_figures(src, args.wall_s)
        card = args.card
        files = [(n, src / n) for n in ("result.json", "metrics.jsonl") if (src / n).exists()]
        command = args.command or "build-gpu/vitlab train experiments/fmnist_reference.json --device cuda --out OUT --quiet"
    elif args.kind == "tests":
        figures, card, commit = tests_figures(src), args.card, args.commit
        files = [(src.name, src)]
        command = args.command or f"build-gpu/vitlab_tests {figures.get('filters', '')}".strip()
    elif args.kind == "ab":
        figures, card, commit = ab_figures(src), args.card, args.commit
        files = [(n, p) for n, p in folder_files(src) if "checkpoints/" not in n]
        command = args.command or "A_COMMIT=.. B_COMMIT=.. scripts/gpu_ab.sh A_TREE B_TREE OUT 2"
    elif args.kind == "scaling":
        figures, card, commit = scaling_figures(src), args.card, args.commit
        files = [(n, src / n) for n in ("dp.json", "dp.log", "dp-runs.tgz", "sweep.tgz") if (src / n).exists()]
        command = args.command or "scripts/gpu_dp.sh OUT"
    elif args.kind == "sweep":
        figures, card, commit = sweep_figures(src), args.card, args.commit
        files = [(p.name, p) for p in sorted(src.iterdir()) if p.suffix in (".log", ".tgz")]
        command = args.command or "OUT=OUT scripts/gpu_sweep.sh SECONDS JOBS SWEEP.json"
    elif args.kind == "profile":
        files = folder_files(src)
        card = commit = model = None
        for _, path in files:  # vitlab bench --json records name the device, commit and model
            if path.suffix == ".json":
                r = json.loads(path.read_text())
                card, commit, model = r.get("device_name", card), r.get("git_commit", commit), r.get("model", model)
                date = args.date or r.get("date", date)
        figures = {"kernel_tables": [n for n, _ in files if n.endswith(".txt")]}
        command = args.command or "scripts/gpu_profile.sh OUT MODEL"
    else:
        fail(f"add {args.kind}: records of this kind are written by hand (see benchmarks/README.md)")
    card = args.card or card
    commit = args.commit or commit
    if not card or not commit:
        fail(f"add {args.kind}: give --card and --commit (the source does not say)")
    record_id = args.id or f"{args.kind}-{card_slug(card)}-{date}-{commit}" + (f"-{model}" if args.kind == "profile" and model else "")
    record = {"id": record_id, "kind": args.kind, "card": card, "commit": commit, "date": date,
              "command": command, "figures": figures, "sources": [n for n, _ in files], "note": note}
    if any(r["id"] == record_id for r in read_records()):
        fail(f"{LOG}: a record {record_id} exists already (records are append-only; give --id)")
    record["raw"] = write_raw(record_id, files)
    append(record)


def cell_speed(w, with_mfu=False):
    if not w or "fast_img_s" not in w:
        return "-"
    text = f"{w['fast_img_s']:,}"
    extra = []
    if "x_timm_compile" in w:
        extra.append(f"{w['x_timm_compile']:.2f}x")
    if with_mfu and "mfu_pct" in w:
        extra.append(f"{w['mfu_pct']}% MFU")
    return text + (f" ({', '.join(extra)})" if extra else "")


def value_text(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


def record_link(r):
    return f"[`{r['id']}`](raw/{r['id']}.tar.gz)" if r.get("raw") else f"`{r['id']}`"


def tables(records):
    out = ["### Training speed (train img/s of vitlab's fast path; x: against timm + torch.compile in the same call)", "",
           "| record | card | commit | date | " + " | ".join(label for _, label in WORKLOADS.values()) + " |",
           "|---|---|---|---|" + "---|" * len(WORKLOADS)]
    for r in records:
        if r["kind"] in ("compare", "bench"):
            cells = [cell_speed(r["figures"].get(name), name == "vit_b16") for name in WORKLOADS]
            out.append(f"| {record_link(r)} | {r['card']} | {r['commit']} | {r['date']} | " + " | ".join(cells) + " |")
    out += ["", "### Fashion-MNIST reference run (`experiments/fmnist_reference.json`, 20 epochs)", "",
            "| record | card | commit | date | test accuracy | wall | training | img/s |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r["kind"] == "train":
            f = r["figures"]
            wall = f"{f['wall_s']} s" if "wall_s" in f else "-"
            out.append(f"| {record_link(r)} | {r['card']} | {r['commit']} | {r['date']} | {f['test_accuracy_pct']:.2f}% "
                       f"| {wall} | {f['train_s']} s | {f['img_s']:,} |")
    out += ["", "### Other records", "", "| record | kind | card | commit | date | figures |", "|---|---|---|---|---|---|"]
    for r in records:
        if r["kind"] not in ("compare", "bench", "train"):
            f = r["figures"]
            text = "; ".join(f"{k} {value_text(v)}" for k, v in f.items())
            out.append(f"| {record_link(r)} | {r['kind']} | {r['card']} | {r['commit']} | {r['date']} | {text} |")
    return "\n".join(out) + "\n"


BEGIN, END = "<!-- records table: made by scripts/benchmarks.py table -->", "<!-- end of records table -->"


def table(_args):
    text = README.read_text()
    if BEGIN not in text or END not in text:
        fail(f"{README}: no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + BEGIN + "\n\n" + tables(read_records()) + "\n" + END + tail)
    print(f"rewrote the tables in {README.relative_to(ROOT)}")


def check(_args):
    records, ids, problems = read_records(), set(), []
    for r in records:
        if set(r) != set(FIELDS):
            problems.append(f"{r.get('id')}: fields {sorted(r)}, expected {sorted(FIELDS)}")
        if r.get("id") in ids:
            problems.append(f"{r['id']}: listed twice")
        ids.add(r.get("id"))
        if r.get("kind") not in KINDS:
            problems.append(f"{r.get('id')}: unknown kind {r.get('kind')!r}")
        if r.get("raw") and not (ROOT / r["raw"]).exists():
            problems.append(f"{r['id']}: {r['raw']} is missing")
    for p in sorted(RAW.glob("*.tar.gz")) if RAW.exists() else []:
        if p.name[:-len(".tar.gz")] not in ids:
            problems.append(f"{p.relative_to(ROOT)}: no record has this id")
    if problems:
        fail("\n  ".join([f"{LOG}: {len(problems)} problem(s):"] + problems))
    print(f"{LOG.relative_to(ROOT)}: {len(records)} records, all valid")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("add", help="append one record (and its raw archive)")
    a.add_argument("kind", choices=("compare", "bench", "profile", "train", "tests", "ab", "scaling", "sweep"))
    a.add_argument("source", help="the OUT folder, run folder or log file")
    for flag in ("--id", "--card", "--commit", "--date", "--command", "--note"):
        a.add_argument(flag)
    a.add_argument("--wall-s", type=float, help="wall time of a train record, seconds (from `time`)")
    a.set_defaults(func=add)
    sub.add_parser("table").set_defaults(func=table)
    sub.add_parser("check").set_defaults(func=check)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
