#!/usr/bin/env python3
"""The numbers behind README's "Findings", computed from the committed sweep results alone.

    python3 scripts/findings.py            # from experiments/results/

Each comparison is two summary rows of one sweep: mean ± sample std over seeds, the difference in
points and Welch's two-sided t-test (the same test as `vitlab summarize`, here between any two rows
rather than against the baseline). Standard library only: the Student-t tail comes from the
regularized incomplete beta function (continued fraction, as in Numerical Recipes, 6.4).
"""
import json
import math
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments", "results")


def incomplete_beta(a, b, x):
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - incomplete_beta(b, a, 1 - x)
    # Modified Lentz for the continued fraction.
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c if abs(1.0 + num / c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-12:
            break
    return front * (f - 1.0) / a


def welch(a, b):
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    t = (ma - mb) / math.sqrt(se2)
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    return t, df, incomplete_beta(df / 2, 0.5, df / (df + t * t))


def rows(sweep):
    with open(os.path.join(ROOT, sweep, "summary.json")) as f:
        summary = json.load(f)
    return {r["variant"]: [100 * x["test_accuracy"] for x in r["results"]] for r in summary["rows"]}


def text(values):
    m = sum(values) / len(values)
    s = math.sqrt(sum((x - m) ** 2 for x in values) / (len(values) - 1))
    return f"{m:.2f} ± {s:.2f}"


def compare(sweep, a, b, sweep_b=None):
    """Row a of sweep against row b of sweep_b (the same sweep unless named)."""
    va, vb = rows(sweep)[a], rows(sweep_b or sweep)[b]
    t, df, p = welch(va, vb)
    diff = sum(va) / len(va) - sum(vb) / len(vb)
    where = sweep if sweep_b is None else f"{sweep} vs {sweep_b}"
    print(f"{where}: {a} {text(va)} vs {b} {text(vb)}: {diff:+.2f} pts, Welch t={t:.2f}, df={df:.1f}, p={p:.2g}")


def recipe_search(sweep):
    """One seed per row: the differences only, no test."""
    r = rows(sweep)
    ref = [k for k in r if k.startswith("baseline=")][0]
    steps = ", ".join(f"{k} {r[k][0]:.2f} ({r[k][0] - r[ref][0]:+.2f})" for k in r if k != ref)
    print(f"{sweep} (seed 0): {ref} {r[ref][0]:.2f}; {steps}")


def attention_distance(sweep, variant):
    path = os.path.join(ROOT, sweep, "analysis", variant, "analysis.json")
    with open(path) as f:
        a = json.load(f)
    d = a["figures"]["attention_distance"]["per_layer_and_head"]
    c = a["model_config"]
    grid, pixels = c["image_size"] // c["patch_size"], c["patch_size"]
    # Uniform attention over all patches: the mean distance between two patch centres.
    cells = [(i, j) for i in range(grid) for j in range(grid)]
    uniform = sum(math.dist(p, q) for p in cells for q in cells) / len(cells) ** 2 * pixels
    per_layer = [sum(h) / len(h) for h in d]
    print(f"{sweep}/{variant}: mean attention distance per layer {', '.join(f'{x:.1f}' for x in per_layer)} px; "
          f"heads {min(min(h) for h in d):.1f}-{max(max(h) for h in d):.1f} px; layer 1 heads "
          f"{', '.join(f'{x:.1f}' for x in d[0])}; uniform attention would give {uniform:.1f} px "
          f"({c['image_size']} px image, {grid}x{grid} patches)")


def main():
    if not os.path.isdir(ROOT):
        sys.exit(f"{ROOT}: no results folder")
    compare("pos_embed", "pos_embed=learned_1d", "pos_embed=none")
    compare("pos_embed", "pos_embed=relative", "pos_embed=sincos_2d")
    compare("pos_embed", "pos_embed=learned_2d", "pos_embed=learned_1d")
    compare("pooling", "pooling=gap__lr=0.001", "pooling=cls__lr=0.001")
    compare("pooling", "pooling=gap__lr=0.0003", "pooling=cls__lr=0.0003")
    compare("pooling", "pooling=gap__lr=0.003", "pooling=cls__lr=0.003")
    compare("pos_embed", "baseline=bit", "pos_embed=relative")
    compare("hybrid", "variant=hybrid", "base")
    compare("hybrid", "variant=hybrid_d9", "base")
    compare("hybrid", "baseline=bit", "variant=hybrid")
    for size in ("n01k", "n05k", "n20k", "n60k"):
        compare("data_size", f"baseline=bit__train_set={size}", f"train_set={size}")
    compare("masked_patch", "start=masked_patch", "baseline=scratch")
    compare("masked_patch", "start=supervised", "start=masked_patch")
    for kind in ("learned_1d", "learned_2d", "relative"):
        compare("hires_finetune", f"pos_embed={kind}", f"baseline=fresh__pos_embed={kind}")
    recipe_search("vit_recipe")
    # The 60-epoch recipe with random erasing, 3 seeds: ViT against BiT trained the same way, and
    # each against itself on the 20-epoch reference recipe (hybrid's rows: the same configs).
    compare("strong_recipe", "baseline=bit", "base")
    compare("strong_recipe", "variant=mix", "base")
    compare("strong_recipe", "base", "base", "hybrid")
    compare("strong_recipe", "baseline=bit", "baseline=bit", "hybrid")
    recipe_search("vit_scale")
    # 100 epochs, alone and with the relative bias, 3 seeds, against the 60-epoch recipe; and the
    # best ViT against BiT on the 60-epoch recipe (more epochs did not help BiT enough to test here).
    compare("vit_best", "base", "baseline=e60")
    compare("vit_best", "variant=rel", "baseline=e60")
    compare("vit_best", "variant=rel", "base")
    compare("strong_recipe", "baseline=bit", "variant=rel", "vit_best")
    attention_distance("pos_embed", "pos_embed=learned_1d")
    attention_distance("pos_embed", "pos_embed=relative")
    attention_distance("vit_recipe", "recipe=c_e60_erase_mix")
    attention_distance("strong_recipe", "base")
    attention_distance("vit_best", "variant=rel")


if __name__ == "__main__":
    main()
