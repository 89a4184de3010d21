#!/usr/bin/env python3
"""Round trip vitlab -> timm: checkpoints trained with vitlab and exported with
`vitlab export --format safetensors` must load into timm (strict) and give vitlab's logits.

    python3 scripts/roundtrip_timm.py DIR

DIR holds, per model NAME (made by the hidden test `vitlab_tests "[.roundtrip]"`, see
benchmarks/parity_roundtrip.md):
    NAME.safetensors       vitlab's export (timm names)
    NAME.safetensors.json  its sidecar: the timm class and constructor arguments
    NAME.io.safetensors    "input" and vitlab's "logits" for it
The timm network is built from the sidecar alone. Exit status 1 if any relative error > 1e-5.
"""
import json
import os
import sys
from functools import partial

import torch
import torch.nn as nn
import timm
from safetensors.torch import load_file
from timm.layers import StdConv2d, StdConv2dSame
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import VisionTransformer

try:
    from timm.layers import HybridEmbed
except ImportError:
    from timm.models.vision_transformer_hybrid import HybridEmbed

CONV = {"StdConv2d": StdConv2d, "StdConv2dSame": StdConv2dSame}


def build(spec):
    """The timm network described by the sidecar's "timm" object, and state it needs added
    (a zero pos_embed where this timm predates pos_embed='none')."""
    kwargs = dict(spec["kwargs"])
    conv = spec.get("conv_layer")
    conv_layer = partial(CONV[conv["name"]], eps=conv["eps"]) if conv else None
    if spec["class"] == "ResNetV2":
        return ResNetV2(**kwargs, conv_layer=conv_layer), {}
    assert spec["class"] == "VisionTransformer", spec["class"]
    if kwargs.get("pos_embed") == "learn":
        kwargs.pop("pos_embed")  # the default; keeps older timm versions working
    eps = spec.get("norm_eps", 1e-6)
    if eps != 1e-6:
        kwargs["norm_layer"] = partial(nn.LayerNorm, eps=eps)
    if "backbone" in spec:
        backbone = ResNetV2(**spec["backbone"]["kwargs"], conv_layer=conv_layer)
        kwargs["embed_layer"] = partial(HybridEmbed, backbone=backbone)
    try:
        return VisionTransformer(**kwargs), {}
    except (TypeError, AssertionError):
        if kwargs.get("pos_embed") != "none":
            raise
        kwargs.pop("pos_embed")  # older timm: a zero learned table computes the same
        model = VisionTransformer(**kwargs)
        return model, {"pos_embed": torch.zeros_like(model.pos_embed)}


def main():
    root = sys.argv[1]
    torch.set_num_threads(1)
    names = sorted(f[: -len(".io.safetensors")] for f in os.listdir(root) if f.endswith(".io.safetensors"))
    print(f"timm {timm.__version__}, torch {torch.__version__}, CPU float32")
    print("| model | timm class | timm kwargs (abridged) | tensors | max abs diff | rel error |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for name in names:
        with open(os.path.join(root, f"{name}.safetensors.json")) as f:
            sidecar = json.load(f)
        spec = sidecar["timm"]
        try:
            model, extra = build(spec)
            model.eval()
            state = load_file(os.path.join(root, f"{name}.safetensors"))
            model.load_state_dict({**state, **extra}, strict=True)
            io = load_file(os.path.join(root, f"{name}.io.safetensors"))
            with torch.no_grad():
                out = model(io["input"])
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            print(f"| {name} | {spec.get('class')} | ERROR | | | `{type(e).__name__}: {e}` |")
            worst = float("inf")
            continue
        ref = io["logits"]
        diff = (out - ref).abs().max().item()
        rel = ((out.double() - ref.double()).norm() / ref.double().norm()).item()
        worst = max(worst, rel)
        brief = {k: v for k, v in spec["kwargs"].items()
                 if k in ("global_pool", "class_token", "fc_norm", "pos_embed", "qkv_bias", "layers",
                          "preact", "stem_type")}
        if "backbone" in spec:
            brief["backbone"] = {k: spec["backbone"]["kwargs"][k] for k in ("layers", "stem_type")}
        if spec.get("norm_eps", 1e-6) != 1e-6:
            brief["norm_eps"] = spec["norm_eps"]
        print(f"| {name} | {spec['class']} | `{json.dumps(brief)}` | {len(state)} | {diff:.2e} | {rel:.2e} |")
    print(f"\nworst relative error {worst:.2e} ({'PASS' if worst <= 1e-5 else 'FAIL'}, bound 1e-5)")
    sys.exit(0 if worst <= 1e-5 else 1)


if __name__ == "__main__":
    main()
