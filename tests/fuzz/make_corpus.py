#!/usr/bin/env python3
"""Writes the seed corpora, tests/fuzz/corpus/<target>/seed-*, from the good and bad inputs the
Catch2 tests build (tests/test_*.cpp), the repository's configs and fixtures, and one checkpoint
written by `vitlab train`. Standard library only. Regression inputs found by fuzzing (any name
not starting with seed-) are never written or removed here.

  tests/fuzz/make_corpus.py [--vitlab build/vitlab]

The JPEG seeds need ImageMagick's `convert` and the checkpoint seeds a built `vitlab`; without
them those seeds are skipped (the committed files stay).
"""
import argparse
import gzip
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def tiny_base():
    # tests/test_helpers.cpp tiny_base(), smaller still.
    return {"device": "cpu",
            "model": {"name": "vit_tiny_p4_28", "width": 16, "heads": 2, "depth": 1,
                      "mlp_dim": 32, "patch_size": 7},
            "data": {"dataset": "synthetic", "synthetic_train": 256, "synthetic_test": 64},
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.003}}


def run_config_seeds():
    for name in ["train_tiny.json", "fmnist_reference.json"]:
        with open(os.path.join(ROOT, "experiments", name)) as f:
            put("run_config", name, f.read())
    base = json.dumps(tiny_base())
    put("run_config", "tiny.json", base)
    put("run_config", "tiny-sets.json", base + "\0model.depth=2\0train.lr=0.01\0model.pos_embed=none")
    put("run_config", "extends.json", json.dumps(
        {"extends": "recipes/fmnist.json", "seed": 1, "device": "cpu",
         "train": {"precision": "fp32", "epochs": 2}, "data": {"augment": None}}))
    put("run_config", "bad-unknown-key.json", base.replace('"depth"', '"dpth"'))
    put("run_config", "bad-type.json", base.replace('"width": 16', '"width": "16"'))
    put("run_config", "bad-syntax.json", base[:40])
    put("run_config", "bad-set.json", base + "\0model.width.x=1\0nokey")
    put("run_config", "bad-extends.json", '{"extends": "recipes/none.json", "seed": 0}')


def sweep_seeds():
    # tests/test_helpers.cpp tiny_sweep().
    sweep = {"description": "tiny test sweep", "claim": "a test claim (Table 0)",
             "command": "vitlab sweep s.json",
             "expected": {"metric": "test_accuracy_pct", "values": {}, "tolerance": 1.0,
                          "measured_on": "not yet measured"},
             "base": tiny_base(), "grid": {"model.pos_embed": ["none", "learned_1d"]},
             "seeds": [0, 1], "baselines": {"deeper": {"model.depth": 2}}}
    put("sweep_spec", "tiny.json", json.dumps(sweep))
    staged = dict(sweep, grid={"pooling": {"cls": {}, "gap": {"model.pool": "gap"}}},
                  stages=[{"name": "pretrain", "set": {}},
                          {"name": "finetune", "set": {"init_from": "@pretrain", "train.lr": 0.001}}],
                  variants={"wide": {"finetune:model.width": 32}}, shared_axes=[])
    put("sweep_spec", "named-axis-stages.json", json.dumps(staged))
    with open(os.path.join(ROOT, "experiments", "quickstart.json")) as f:
        put("sweep_spec", "quickstart.json", f.read())
    put("sweep_spec", "bad-seeds.json", json.dumps(dict(sweep, seeds=[0, 0])))
    put("sweep_spec", "bad-grid.json", json.dumps(dict(sweep, grid={"model.depth": []})))


def idx_file(dims, payload, kind=0x08):
    return bytes([0, 0, kind, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_pair(images, labels):
    return struct.pack("<H", len(images)) + images + labels


def idx_seeds():
    # tests/test_data_readers.cpp write_mnist_folder: n images of 4 x 3, labels i mod 10.
    n = 12
    images = idx_file([n, 4, 3], bytes((7 * i + 3 * y + x) % 256
                                       for i in range(n) for y in range(4) for x in range(3)))
    labels = idx_file([n], bytes(i % 10 for i in range(n)))
    put("idx", "raw", idx_pair(images, labels))
    gz_images, gz_labels = gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)
    put("idx", "gzip", idx_pair(gz_images, gz_labels))
    put("idx", "gzip-two-members", idx_pair(gzip.compress(images[:20], mtime=0) +
                                            gzip.compress(images[20:], mtime=0), gz_labels))
    put("idx", "bad-truncated-gzip", idx_pair(gz_images[:len(gz_images) // 2], gz_labels))
    put("idx", "bad-crc", idx_pair(gz_images, gz_labels[:-8] + bytes([gz_labels[-8] ^ 0xff]) +
                                   gz_labels[-7:]))
    put("idx", "bad-magic", idx_pair(idx_file([n, 4, 3], images[16:], 0x0D), labels))
    put("idx", "bad-dims", idx_pair(idx_file([n, 5, 3], images[16:]), labels))
    put("idx", "bad-label", idx_pair(images, idx_file([n], bytes([10] * n))))
    put("idx", "gzip-zeros", idx_pair(gzip.compress(bytes(1 << 16), mtime=0), labels))


def cifar_record(label_bytes, base):
    # tests/test_data_formats.cpp append_cifar_record: pixel k = base + k mod 256.
    return bytes(label_bytes) + bytes((base + k) % 256 for k in range(3072))


def cifar_seeds():
    names10 = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                         "ship", "truck"]).encode()
    two = cifar_record([2], 10) + cifar_record([9], 11)
    put("cifar", "cifar10-names", bytes([2, len(names10)]) + names10 + two)
    put("cifar", "cifar10", bytes([0, 0]) + cifar_record([3], 1))
    put("cifar", "cifar100", bytes([1, 0]) + cifar_record([3, 77], 0) + cifar_record([19, 99], 5))
    put("cifar", "bad-label", bytes([0, 0]) + cifar_record([10], 0))
    put("cifar", "bad-coarse", bytes([1, 0]) + cifar_record([20, 1], 0))
    put("cifar", "bad-truncated", bytes([0, 0]) + cifar_record([1], 0)[:3000])
    put("cifar", "bad-names", bytes([2, 4]) + b"a\nb\n" + cifar_record([1], 0))


def png(width, height, colour_type, rows):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                                colour_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def image_seeds():
    # tests/test_data_formats.cpp write_png: RGB 6 x 4, grey, RGBA 12 x 8.
    for name, (w, h, ct, c) in {"rgb.png": (6, 4, 2, 3), "grey.png": (6, 4, 0, 1),
                                "rgba.png": (12, 8, 6, 4), "grey-alpha.png": (3, 3, 4, 2)}.items():
        rows = [bytes((x * 20 + y * 10 + k) % 256 for x in range(w) for k in range(c))
                for y in range(h)]
        put("image", "keep-" + name, b"\0" + png(w, h, ct, rows))
    put("image", "grey-as-rgb.png", b"\3" + png(2, 2, 0, [b"\x10\x20", b"\x30\x40"]))
    put("image", "bad-not-png", b"\0this is not a PNG")
    huge = (b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + struct.pack(">II", 100000, 100000) +
            bytes([8, 2, 0, 0, 0, 0, 0, 0, 0]))
    put("image", "bad-huge-header", b"\0" + huge)
    if shutil.which("convert"):
        with tempfile.TemporaryDirectory() as tmp:
            for name, args in {"rgb.jpg": ["-size", "8x6", "gradient:red-blue"],
                               "grey.jpg": ["-size", "8x8", "gradient:", "-colorspace", "Gray"],
                               "progressive.jpg": ["-size", "16x8", "plasma:", "-interlace", "JPEG"]}.items():
                out = os.path.join(tmp, name)
                subprocess.run(["convert", *args, "-quality", "80", "-strip", out], check=True)
                with open(out, "rb") as f:
                    put("image", name, b"\0" + f.read())


def tar_of(members, fmt=tarfile.USTAR_FORMAT):
    """A tar archive of (name, bytes) members, as Python's tarfile writes it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_seeds():
    # tests/test_tar_shards.cpp: WebDataset shards, an image and its .cls per key.
    image = png(2, 2, 2, [bytes(range(6)), bytes(range(6, 12))])
    good = [("a_0.png", image), ("a_0.cls", b"0\n"), ("b_1.png", image), ("b_1.cls", b"1")]
    put("tar", "ustar.tar", tar_of(good))
    put("tar", "gnu-long-name.tar", tar_of([("k" + "x" * 120 + ".png", image), ("k" + "x" * 120 + ".cls", b"2")],
                                           tarfile.GNU_FORMAT))
    put("tar", "pax.tar", tar_of([("dir/p.q.png", image), ("dir/p.q.cls", b"3")], tarfile.PAX_FORMAT))
    whole = tar_of(good)
    put("tar", "bad-truncated.tar", whole[:700])
    put("tar", "bad-no-end-blocks.tar", whole[:2048])
    put("tar", "bad-checksum.tar", whole[:10] + b"zz" + whole[12:])
    put("tar", "bad-no-cls.tar", tar_of([("lost.png", image)]))
    put("tar", "bad-cls-word.tar", tar_of([("lost.png", image), ("lost.cls", b"cat")]))
    put("tar", "bad-no-image.tar", tar_of([("lost.cls", b"0")]))


def npy(header, data, major=1):
    # tests/test_npz.cpp npy(): the dict, a newline, the data.
    h = (header + "\n").encode()
    size = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + size + h + data


def npy_dict(descr, fortran, shape):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


def npy_seeds():
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    put("npy", "f4.npy", npy(npy_dict("'<f4'", "False", "(2, 3)"), f32))
    put("npy", "f4-fortran.npy", npy(npy_dict("'<f4'", "True", "(2, 3)"), f32))
    put("npy", "f4-v2.npy", npy(npy_dict("'<f4'", "False", "(6,)"), f32, 2))
    put("npy", "i8-scalar.npy", npy(npy_dict("'<i8'", "False", "()"), struct.pack("<q", -7)))
    put("npy", "b1.npy", npy(npy_dict("'|b1'", "False", "(3,)"), b"\1\0\1"))
    put("npy", "f2-empty.npy", npy(npy_dict("'<f2'", "False", "(0, 3)"), b""))
    put("npy", "u1.npy", npy(npy_dict("'|u1'", "False", "(2, 2)"), b"\1\2\3\4"))
    put("npy", "bad-shape-overflow.npy",
        npy(npy_dict("'<f4'", "False", "(4294967296, 4294967296, 0)"), f32[:8]))
    put("npy", "bad-structured.npy", npy(npy_dict("[('a', '<f4')]", "False", "(2,)"), f32[:8]))
    put("npy", "bad-escape.npy", npy("{'des\\x63r': '<f4'}", f32[:8]))
    put("npy", "bad-size.npy", npy(npy_dict("'<f4'", "False", "(3,)"), f32[:8]))


def npz_seeds():
    with open(os.path.join(ROOT, "tests", "test_npz.cpp")) as f:
        source = f.read()
    for name in ["kSavez", "kSavezCompressed"]:
        body = re.search(r"const char\* %s =\s*((?:\"[0-9a-f]*\"\s*)+);" % name, source).group(1)
        data = bytes.fromhex("".join(re.findall(r"\"([0-9a-f]*)\"", body)))
        put("npz", name[1:].lower() + ".npz", data)
        if name == "kSavez":
            put("npz", "bad-truncated.npz", data[:400])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "a.npz")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("w.npy", npy(npy_dict("'<f4'", "False", "(2, 3)"), struct.pack("<6f", *range(6))))
            z.writestr("readme.txt", "hello")
        with open(path, "rb") as f:
            put("npz", "bad-not-npy-entry.npz", f.read())


def safetensors(header, data):
    h = header.encode()
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    put("safetensors", "vit_cls_learned1d.io.safetensors",
        open(os.path.join(ROOT, "tests", "fixtures", "parity", "vit_cls_learned1d.io.safetensors"), "rb").read())
    f32 = struct.pack("<2f", 1, 2)
    put("safetensors", "two.safetensors", safetensors(
        '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"b":{"dtype":"I16","shape":[1,2],"data_offsets":[8,12]},'
        '"e":{"dtype":"BF16","shape":[0],"data_offsets":[12,12]}}', f32 + b"\1\0\2\0"))
    put("safetensors", "bad-overlap.safetensors", safetensors(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f32 + f32[:4]))
    put("safetensors", "bad-shape-overflow.safetensors", safetensors(
        '{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', b""))
    put("safetensors", "bad-header-length.safetensors", struct.pack("<Q", 1000) + b"{}")


def checkpoint_seeds(vitlab):
    if not vitlab or not os.access(vitlab, os.X_OK):
        return
    config = {"device": "cpu",
              "model": {"name": "vit_tiny_p4_28", "width": 8, "heads": 1, "depth": 1, "mlp_dim": 8,
                        "patch_size": 14},
              "data": {"dataset": "synthetic", "synthetic_train": 32, "synthetic_test": 16},
              "train": {"epochs": 1, "batch_size": 16, "lr": 0.003}}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "c.json"), "w") as f:
            json.dump(config, f)
        subprocess.run([vitlab, "train", os.path.join(tmp, "c.json"), "--out", os.path.join(tmp, "run")],
                       check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
        with open(os.path.join(tmp, "run", "checkpoints", "last.pt"), "rb") as f:
            data = f.read()
    put("checkpoint", "last.pt", data)
    put("checkpoint", "bad-truncated.pt", data[: len(data) // 2])
    put("checkpoint", "bad-not-zip.pt", b"not a checkpoint")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vitlab", default=os.path.join(ROOT, "build", "vitlab"))
    args = parser.parse_args()
    run_config_seeds()
    sweep_seeds()
    idx_seeds()
    cifar_seeds()
    image_seeds()
    tar_seeds()
    npy_seeds()
    npz_seeds()
    safetensors_seeds()
    checkpoint_seeds(args.vitlab)


if __name__ == "__main__":
    main()
