#!/usr/bin/env python3
"""The timm side of the speed comparison (issue 6), run on the GPU machine.

Same workloads as `vitlab bench`: synthetic data, bf16 autocast with fp32 master weights, fused
AdamW (SGD with momentum for the small ViT), train img/s as the median of timed windows, peak
memory. Modes: eager and torch.compile. Prints one JSON record per line.
"""
import argparse, json, statistics, time
from collections import OrderedDict
from functools import partial

import timm
import torch
try:
    from timm.layers import StdConv2d
except ImportError:  # timm before 0.9
    from timm.models.layers import StdConv2d
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import VisionTransformer


def bit_r26_28():
    """vitlab's bit_r26_28 in timm: ResNetV2-26x1 (pre-activation bottlenecks, GroupNorm 32,
    weight-standardised convolutions with BiT's eps 1e-8), with the small-image stem: one 3x3
    stride-1 convolution and no max-pool, so stage 1 runs at 28x28 (timm has no such stem type,
    so it is swapped in). 13,950,154 parameters, as `vitlab models` lists."""
    conv = partial(StdConv2d, eps=1e-8)
    model = ResNetV2(layers=[2, 2, 2, 2], num_classes=10, in_chans=1, stem_type="fixed", conv_layer=conv)
    model.stem = torch.nn.Sequential(OrderedDict(conv=conv(1, 64, kernel_size=3, stride=1, padding=1)))
    return model


WORKLOADS = {
    "vit_s16": dict(make=lambda: timm.create_model("vit_small_patch16_224", num_classes=1000), shape=(3, 224), classes=1000, opt="adamw"),
    "vit_b16": dict(make=lambda: timm.create_model("vit_base_patch16_224", num_classes=1000), shape=(3, 224), classes=1000, opt="adamw"),
    "bit_r50x1": dict(make=lambda: timm.create_model("resnetv2_50x1_bit", num_classes=1000), shape=(3, 224), classes=1000, opt="adamw"),
    "vit_small28": dict(make=lambda: VisionTransformer(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=192, depth=12, num_heads=3),
                        shape=(1, 28), classes=10, opt="sgd"),
    # Channels-last, as vitlab runs its convolutions on CUDA (cuDNN's fast bf16 kernels need it).
    "bit_r26_28": dict(make=bit_r26_28, shape=(1, 28), classes=10, opt="adamw", channels_last=True),
}


def bench(name, compile_mode, batch, warmup, steps, windows, profile_dir=None):
    w = WORKLOADS[name]
    torch.manual_seed(0)
    model = w["make"]().cuda().train()
    layout = torch.channels_last if w.get("channels_last") else torch.contiguous_format
    model = model.to(memory_format=layout)
    if w["opt"] == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, fused=True)
    ch, size = w["shape"]
    x = torch.randn(batch, ch, size, size, device="cuda").contiguous(memory_format=layout)
    y = torch.randint(0, w["classes"], (batch,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()
    fwd = torch.compile(model) if compile_mode else model

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(fwd(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    warm_s = time.time() - t0
    rates = []
    for _ in range(windows):
        torch.cuda.synchronize()
        t = time.time()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        rates.append(batch * steps / (time.time() - t))
    if profile_dir:  # the same steps under torch.profiler: kernel table + Chrome trace
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
        tag = f"{name}_{'compile' if compile_mode else 'eager'}"
        prof.export_chrome_trace(f"{profile_dir}/timm_{tag}.json")
        with open(f"{profile_dir}/timm_{tag}.txt", "w") as f:
            f.write(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=90))
    return dict(workload=name, impl="timm+compile" if compile_mode else "timm eager", batch=batch,
                parameters=sum(p.numel() for p in model.parameters()), channels_last=bool(w.get("channels_last")),
                images_per_second=statistics.median(rates), windows=rates,
                peak_memory_bytes=torch.cuda.max_memory_allocated(), warmup_seconds=warm_s,
                device_name=torch.cuda.get_device_name(), torch=torch.__version__, timm=timm.__version__)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--profile", default=None, help="folder: also profile --steps steps (trace + kernel table)")
    a = p.parse_args()
    for name in a.workloads.split(","):
        for mode in a.modes.split(","):
            r = bench(name, mode == "compile", a.batch, a.warmup, a.steps, a.windows, a.profile)
            print(json.dumps(r), flush=True)
