#!/usr/bin/env python3
"""Golden fixtures for vitlab's parity tests (tests/test_parity.cpp): small timm models built with
fixed seeds, their fp32 weights under timm's own state_dict names, a fixed input and timm's
logits, all computed on the CPU in fp32.

Run where timm is installed (the GPU machine: torch 2.x, timm 1.0.x, safetensors, numpy, scipy):

    python3 scripts/make_parity_fixtures.py --out DIR

and copy DIR's files to tests/fixtures/parity/. Per fixture NAME it writes
    NAME.safetensors     the weights (what `vitlab import` reads)
    NAME.io.safetensors  "input" (2, C, H, W) and "logits" (2, K), plus extra references
and manifest.json with, per fixture, the vitlab model config that describes the same network.

Every parameter is overwritten with seeded random values (norm scales near 1, biases and shifts
near 0, weights ~ 1/sqrt(fan_in)), so that a swapped or dropped tensor changes the logits.
"""
import argparse
import datetime
import json
import math
import os
import platform
from functools import partial

import numpy as np
import scipy
import scipy.ndimage
import torch
import timm
from safetensors.torch import save_file
from timm.layers import StdConv2d, StdConv2dSame, resample_abs_pos_embed
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import VisionTransformer

try:  # timm >= 1.0 keeps HybridEmbed in timm.layers
    from timm.layers import HybridEmbed
except ImportError:  # older layouts
    from timm.models.vision_transformer_hybrid import HybridEmbed

# The ViT fixtures: 16 px, patch 4 (4x4 grid), D=32, 2 blocks, 4 heads, MLP 64, 10 classes.
VIT = dict(img_size=16, patch_size=4, in_chans=3, num_classes=10, embed_dim=32, depth=2,
           num_heads=4, mlp_ratio=2.0)
VITLAB_VIT = {"name": "vit_tiny_p4_28", "image_size": 16, "in_channels": 3, "num_classes": 10,
              "patch_size": 4, "width": 32, "depth": 2, "heads": 4, "mlp_dim": 64}


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("pos_embed") or name.endswith("cls_token"):
                p.copy_(0.5 * r)
            elif p.ndim == 1 and name.endswith(".weight"):  # LayerNorm / GroupNorm scales
                p.copy_(1.0 + 0.2 * r)
            elif p.ndim == 1:  # biases and norm shifts
                p.copy_(0.2 * r)
            else:
                p.copy_(r / math.sqrt(p[0].numel()))


def fixed_input(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def logits_of(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).float().contiguous()


def fp64_gap(model, x):
    """Relative difference of timm's fp32 logits from its own fp64 logits: the fp32 noise floor."""
    import copy
    m64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        ref = m64(x.double())
        out = model.eval()(x).double()
    return float((out - ref).norm() / ref.norm())


def vit_pos_none():
    """timm's pos_embed='none' (timm 1.0.x); older timm: a zero learned table, not saved."""
    try:
        return VisionTransformer(**VIT, pos_embed="none"), "timm pos_embed='none'"
    except (TypeError, AssertionError):
        model = VisionTransformer(**VIT)
        model.zero_pos = True
        return model, "this timm lacks pos_embed='none': learned pos_embed set to zeros and not saved"


def hybrid():
    # As timm's vit_*_r50_* hybrids build their ResNet (vision_transformer_hybrid._resnetv2):
    # post-activation bottlenecks, TF-SAME stem and convolutions, StdConv2dSame(eps=1e-8).
    backbone = ResNetV2(layers=(1, 1), num_classes=0, global_pool="", in_chans=3, preact=False,
                        stem_type="same", conv_layer=partial(StdConv2dSame, eps=1e-8))
    return VisionTransformer(img_size=32, patch_size=1, in_chans=3, num_classes=10, embed_dim=32,
                             depth=2, num_heads=4, mlp_ratio=2.0,
                             embed_layer=partial(HybridEmbed, backbone=backbone))


def bit():
    # As timm's resnetv2_*_bit models: pre-activation, 'fixed' stem, StdConv2d(eps=1e-8).
    return ResNetV2(layers=(1,), num_classes=10, in_chans=3, preact=True, stem_type="fixed",
                    conv_layer=partial(StdConv2d, eps=1e-8))


def hybrid_helper_eps():
    """The conv eps timm's own hybrid helper uses in this timm version (recorded, not relied on)."""
    try:
        from timm.models.vision_transformer_hybrid import _resnetv2
        return float(_resnetv2((1, 1)).stem.conv.eps)
    except Exception as e:  # noqa: BLE001 - informational only
        return f"unavailable: {e}"


FIXTURES = [
    # name, builder, timm kwargs (for the record), vitlab overrides, input (C, H, W)
    ("vit_cls_learned1d", lambda: (VisionTransformer(**VIT, class_token=True, global_pool="token"), ""),
     dict(VIT, class_token=True, global_pool="token"), {}, (3, 16, 16)),
    ("vit_gap_fcnorm_noclass",
     lambda: (VisionTransformer(**VIT, class_token=False, global_pool="avg"), ""),
     dict(VIT, class_token=False, global_pool="avg"),
     {"class_token": False, "pool": "gap", "gap_norm": "after_pool"}, (3, 16, 16)),
    ("vit_nopos_cls", vit_pos_none, dict(VIT, pos_embed="none"), {"pos_embed": "none"}, (3, 16, 16)),
    ("vit_gap_prenorm_cls_noembedclass",
     lambda: (VisionTransformer(**VIT, class_token=True, global_pool="avg", fc_norm=False,
                                qkv_bias=False, no_embed_class=True), ""),
     dict(VIT, class_token=True, global_pool="avg", fc_norm=False, qkv_bias=False, no_embed_class=True),
     {"pool": "gap", "gap_norm": "before_pool", "qkv_bias": False}, (3, 16, 16)),
    ("hybrid_r1x1_same", lambda: (hybrid(), ""),
     dict(img_size=32, patch_size=1, in_chans=3, num_classes=10, embed_dim=32, depth=2, num_heads=4,
          mlp_ratio=2.0, backbone=dict(layers=[1, 1], preact=False, stem_type="same",
                                       conv_layer="StdConv2dSame", eps=1e-8)),
     None, (3, 32, 32)),
    ("bit_r1_fixed", lambda: (bit(), ""),
     dict(layers=[1], num_classes=10, in_chans=3, preact=True, stem_type="fixed",
          conv_layer="StdConv2d", eps=1e-8),
     None, (3, 32, 32)),
]

VITLAB_CONFIGS = {
    "hybrid_r1x1_same": {"name": "hybrid_r50_b16", "image_size": 32, "in_channels": 3,
                         "num_classes": 10, "patch_size": 1, "width": 32, "depth": 2, "heads": 4,
                         "mlp_dim": 64, "resnet_layers": [1, 1], "std_conv_eps": 1e-8},
    "bit_r1_fixed": {"name": "bit_r26x1", "image_size": 32, "in_channels": 3, "num_classes": 10,
                     "resnet_layers": [1], "std_conv_eps": 1e-8},
}


def pos_references(model, io):
    """timm's and scipy's resampling of the 4x4 pos_embed, and timm's model at 24 px."""
    pe = model.pos_embed.detach().clone()
    for g in (6, 3):
        io[f"pos_bicubic_{g}"] = resample_abs_pos_embed(
            pe, new_size=[g, g], num_prefix_tokens=1, interpolation="bicubic", antialias=True).contiguous()
        grid = pe[0, 1:].reshape(4, 4, -1).numpy()
        zoomed = scipy.ndimage.zoom(grid, (g / 4, g / 4, 1), order=1)
        io[f"pos_bilinear_{g}"] = torch.cat(
            [pe[:, :1], torch.from_numpy(np.ascontiguousarray(zoomed)).reshape(1, g * g, -1)], 1).contiguous()
    big = VisionTransformer(**dict(VIT, img_size=24), class_token=True, global_pool="token")
    state = model.state_dict()
    state["pos_embed"] = io["pos_bicubic_6"]
    big.load_state_dict(state, strict=True)
    io["input_24"] = fixed_input((2, 3, 24, 24), 1234)
    io["logits_24"] = logits_of(big, io["input_24"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)  # one deterministic CPU reduction order
    manifest = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "script": "scripts/make_parity_fixtures.py",
        "device": "cpu, float32",
        "timm_version": timm.__version__, "torch_version": torch.__version__,
        "numpy_version": np.__version__, "scipy_version": scipy.__version__,
        "python": platform.python_version(),
        "timm_hybrid_helper_conv_eps": hybrid_helper_eps(),
        "fixtures": [],
    }
    for index, fixture in enumerate(FIXTURES):
        try:
            make_fixture(args.out, index, *fixture, manifest)
        except Exception as e:  # noqa: BLE001 - report, keep the other fixtures
            import traceback
            traceback.print_exc()
            manifest.setdefault("errors", []).append(f"{fixture[0]}: {type(e).__name__}: {e}")
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps({k: v for k, v in manifest.items() if k != "fixtures"}, indent=2))


def make_fixture(out, index, name, build, timm_kwargs, overrides, chw, manifest):
    """One fixture: build, randomise, run on the fixed input, save weights and references."""
    torch.manual_seed(index)
    model, note = build()
    randomize(model, 1000 + index)
    if getattr(model, "zero_pos", False):
        with torch.no_grad():
            model.pos_embed.zero_()
    x = fixed_input((2,) + chw, 2000 + index)
    io = {"input": x.contiguous(), "logits": logits_of(model, x)}
    if name == "vit_cls_learned1d":
        pos_references(model, io)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    if getattr(model, "zero_pos", False):
        state.pop("pos_embed")
    save_file(state, os.path.join(out, f"{name}.safetensors"), metadata={"format": "pt"})
    save_file(io, os.path.join(out, f"{name}.io.safetensors"), metadata={"format": "pt"})
    vitlab = VITLAB_CONFIGS.get(name) or dict(VITLAB_VIT, **overrides)
    entry = {"name": name, "weights": f"{name}.safetensors", "io": f"{name}.io.safetensors",
             "timm_class": type(model).__name__, "timm_kwargs": timm_kwargs,
             "vitlab_model": vitlab, "timm_fp32_vs_fp64_rel": fp64_gap(model, x),
             "parameters": sum(p.numel() for p in model.parameters()), "notes": note}
    manifest["fixtures"].append(entry)
    print(f"{name:36s} params {entry['parameters']:8d}  logits {tuple(io['logits'].shape)}  "
          f"fp32-vs-fp64 {entry['timm_fp32_vs_fp64_rel']:.2e}  {note}")


if __name__ == "__main__":
    main()
