#!/usr/bin/env python3
"""Writes an image folder (SRC/<split>/<class>/*.jpg|jpeg|png) as WebDataset shards that vitlab
streams (OUT/<split>/part-NNNNNN.tar): each sample an image member "<class>_<stem>.<ext>" and its
class index as text, "<class>_<stem>.cls", the class index being the position of the class folder
among the training split's sorted class folders, as vitlab numbers them. Samples keep the folder's
listing order (classes sorted, files sorted within each), so a run from the shards reads the
images a run from the folder reads, in the same order. Standard library only.

    scripts/folder_to_shards.py SRC OUT [--per-shard N]       (default 1000 samples a shard)
"""
import argparse
import io
import os
import sys
import tarfile

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def fail(message):
    print(f"folder_to_shards: {message}", file=sys.stderr)
    sys.exit(2)


def samples(src, split, classes):
    for label, name in enumerate(classes):
        folder = os.path.join(src, split, name)
        if not os.path.isdir(folder):
            continue
        for file in sorted(os.listdir(folder)):
            stem, ext = os.path.splitext(file)
            if ext.lower() in IMAGE_EXTENSIONS:
                key = f"{name}_{stem}".replace(".", "_")  # WebDataset's key ends at the first dot
                yield key, ext.lower(), os.path.join(folder, file), label


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_split(src, out, split, classes, per_shard):
    os.makedirs(os.path.join(out, split), exist_ok=True)
    tar, count, shard = None, 0, 0
    for key, ext, path, label in samples(src, split, classes):
        if count % per_shard == 0:
            if tar:
                tar.close()
            tar = tarfile.open(os.path.join(out, split, f"part-{shard:06d}.tar"), "w", format=tarfile.USTAR_FORMAT)
            shard += 1
        with open(path, "rb") as f:
            add(tar, key + ext, f.read())
        add(tar, key + ".cls", f"{label}\n".encode())
        count += 1
    if tar:
        tar.close()
    if count == 0:
        fail(f"{os.path.join(src, split)}: no images in its class folders")
    print(f"{split}: {count} samples in {shard} shards")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--per-shard", type=int, default=1000)
    args = parser.parse_args()
    if args.per_shard < 1:
        fail("--per-shard: must be at least 1")
    train = os.path.join(args.src, "train")
    if not os.path.isdir(train):
        fail(f"{train}: not a folder (an image folder holds train/<class>/...)")
    classes = sorted(d for d in os.listdir(train) if os.path.isdir(os.path.join(train, d)))
    if not classes:
        fail(f"{train}: no class folders")
    if os.path.exists(args.out) and os.listdir(args.out):
        fail(f"{args.out}: exists and is not empty")
    for split in ("train", "val", "test"):
        if os.path.isdir(os.path.join(args.src, split)):
            write_split(args.src, args.out, split, classes, args.per_shard)


if __name__ == "__main__":
    main()
