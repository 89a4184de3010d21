#!/usr/bin/python3
"""PyTorch eager reference for the CPU speed comparison (issues 3 and 6).

The same ViT as experiments/train_tiny.json (D=64, depth 4, 4 heads, MLP 128, patch 7, 28x28x1,
10 classes, class token, learned 1-D position embedding), AdamW, fp32, synthetic data, batch 128,
train img/s as the median of timed windows. Run with Debian's python3-torch (/usr/bin/python3),
next to `vitlab bench --device cpu` with the same settings (see README).
"""
import argparse, json, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, mlp):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (D // self.heads) ** -0.5, -1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, d=64, depth=4, heads=4, mlp=128, patch=7, size=28, chans=1, classes=10):
        super().__init__()
        n = (size // patch) ** 2
        self.patch = nn.Conv2d(chans, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, mlp) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(d, eps=1e-6), nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads; 0 = leave the default")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--windows", type=int, default=5)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ViT().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x, y = torch.randn(a.batch, 1, 28, 28), torch.randint(0, 10, (a.batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    rates = []
    for _ in range(a.windows):
        t = time.time()
        for _ in range(a.steps):
            step()
        rates.append(a.batch * a.steps / (time.time() - t))
    print(json.dumps(dict(impl="pytorch eager", torch=torch.__version__, threads=torch.get_num_threads(), batch=a.batch,
                          images_per_second=statistics.median(rates), windows=rates)))
