#!/usr/bin/env python3
"""Groups the kernel table that `vitlab bench --profile` prints into matrix products, attention and
everything else, and gives the MFU the step would reach if the last group took no time.

Usage: scripts/profile_shares.py PROFILE.txt
(PROFILE.txt: the bench's stdout, whose first line carries "MFU x%" and whose table rows are
"share calls total_ms kernel").
"""
import re
import sys


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def group_of(kernel):
    if kernel.startswith(("nvjet", "void cublasLt", "cutlass", "sm90_xmma")) or "gemm" in kernel:
        return "GEMMs (cuBLAS, incl. split-K reductions)"
    if "cudnn" in kernel or "flash" in kernel or "fmha" in kernel:
        return "attention (SDPA)"
    return "everything else"


def main():
    if len(sys.argv) != 2:
        fail(__doc__.strip())
    path = sys.argv[1]
    try:
        text = open(path).read()
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    mfu = re.search(r"MFU ([\d.]+)%", text)
    total = re.search(r"device time ([\d.]+) ms", text)
    if not mfu or not total:
        fail(f"{path}: no 'MFU x%' or 'device time x ms' line: not a `vitlab bench --profile` output")
    mfu, total = float(mfu.group(1)), float(total.group(1))
    groups = {}
    for line in text.splitlines():
        row = re.match(r"\s+[\d.]+%\s+\d+\s+([\d.]+)\s+(.*)", line)
        if row:
            name = group_of(row.group(2))
            groups[name] = groups.get(name, 0.0) + float(row.group(1))
    # The table lists the largest kernels only: what it leaves out counts as "everything else".
    listed = sum(groups.values())
    groups["everything else"] = groups.get("everything else", 0.0) + max(0.0, total - listed)
    print(f"| kernels | ms | share of device time ({total:.1f} ms) |")
    print("|---|---|---|")
    for name, ms in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {ms:.1f} | {100 * ms / total:.1f}% |")
    other = groups.get("everything else", 0.0)
    print(f"\nMFU {mfu:.1f}%; with 'everything else' free: {mfu * total / (total - other):.1f}%")
    print(f"50% MFU needs the step at {100 * mfu / 50:.1f}% of its device time")


if __name__ == "__main__":
    main()
