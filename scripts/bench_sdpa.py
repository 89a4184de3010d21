# Forward + backward time of one ViT-B/16 attention layer (batch 256, 197 tokens, 12 heads of 64,
# bf16, q/k/v as views of one packed projection as vitlab's fast path has them) with each of
# PyTorch's SDPA backends. Usage on the GPU machine: python3 scripts/bench_sdpa.py
import torch
from torch.nn.attention import sdpa_kernel, SDPBackend
B, N, H, d = 256, 197, 12, 64
qkv = torch.randn(B, N, 3, H, d, device='cuda', dtype=torch.bfloat16, requires_grad=True)
g = torch.randn(B, H, N, d, device='cuda', dtype=torch.bfloat16)
def step():
    q, k, v = qkv.unbind(2)
    o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    o.backward(g)
for be in [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]:
    try:
        with sdpa_kernel([be]):
            for _ in range(3): step()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            ms = []
            for _ in range(10):
                a.record(); step(); b.record(); torch.cuda.synchronize(); ms.append(a.elapsed_time(b))
            print(f"{be}: fwd+bwd {sorted(ms)[5]:.3f} ms per layer")
    except Exception as e:
        print(be, "failed", str(e)[:200])
