#!/usr/bin/env python3
"""nvJPEG (through torchvision.io.decode_jpeg on the GPU) against vitlab's CPU pipeline, on the
same synthetic folder: the figure issue 22 asks for before an nvJPEG path would be kept.

    python3 scripts/bench_nvjpeg.py FOLDER [--batch 256] [--batches 20] [--json FILE]

Times, per batch of JPEG files already read into memory (the page cache's case):
- decode: the batched GPU decode alone, full size (nvJPEG has no DCT-domain downscaling);
- decode+crop: the same, then timm's RandomResizedCrop (torchvision's sampler, scale 0.08-1,
  ratio 3/4-4/3) and an antialiased bilinear resize to 224 per image, stacked into one batch.
Also the GPU's busy time per image (CUDA events around the work), which a training step on the
same GPU would lose. Needs torch and torchvision with CUDA.
"""
import argparse, glob, json, os, time

import torch
import torchvision
from torchvision.io import decode_jpeg
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as F


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--json")
    a = p.parse_args()
    files = sorted(glob.glob(os.path.join(a.folder, "train", "*", "*.jpg")))
    need = a.batch * (a.batches + 2)
    if len(files) < need:
        raise SystemExit(f"{a.folder}/train: {len(files)} JPEGs, need {need}")
    data = [torchvision.io.read_file(f) for f in files[:need]]
    batches = [data[i * a.batch:(i + 1) * a.batch] for i in range(a.batches + 2)]
    rrc = RandomResizedCrop(a.size, antialias=True)
    torch.manual_seed(0)

    def decode(b):
        return decode_jpeg(b, device="cuda")

    def decode_crop(b):
        out = []
        for img in decode_jpeg(b, device="cuda"):
            i, j, h, w = rrc.get_params(img, rrc.scale, rrc.ratio)
            out.append(F.resized_crop(img, i, j, h, w, [a.size, a.size], antialias=True))
        return torch.stack(out)

    result = {"torch": torch.__version__, "torchvision": torchvision.__version__,
              "gpu": torch.cuda.get_device_name(), "batch": a.batch, "batches": a.batches,
              "bytes_per_file": sum(len(d) for d in data) / len(data)}
    for name, fn in (("decode", decode), ("decode+crop", decode_crop)):
        for b in batches[:2]:  # warm-up: nvJPEG's handles and buffers
            fn(b)
        torch.cuda.synchronize()
        start_event, end_event = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start_event.record()
        for b in batches[2:]:
            fn(b)
        end_event.record()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        images = a.batch * a.batches
        result[name] = {"images_per_second": images / seconds,
                        "gpu_ms_per_image_upper_bound": start_event.elapsed_time(end_event) / images}
        print(f"nvJPEG {name}: {images / seconds:.0f} img/s ({images} images, {seconds:.2f} s)", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
