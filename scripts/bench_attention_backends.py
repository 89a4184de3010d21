"""Times PyTorch's scaled-dot-product attention backends (cuDNN, flash, memory-efficient) forward +
backward on the ViT shapes, qkv laid out as vitlab's Attention has it. Run on the GPU machine:
`python3 scripts/bench_attention_backends.py`. H200, 2026-11-26, ms per fwd+bwd (B=256, d=64):
ViT-B (12 heads, 197 tokens) cuDNN 1.13 / flash 1.46 / efficient 2.17; ViT-S (6 heads) 0.62 /
0.76 / 1.13; so the default (cuDNN) stays. The small ViT's shape (3 heads, 50 tokens) is
launch-bound in this eager loop and says nothing about the CUDA-graph step."""
import torch, time
import torch.nn.attention as attention
from torch.nn.attention import sdpa_kernel, SDPBackend
torch.manual_seed(0)
# FlashAttention-3/4-class kernels reach SDPA's flash backend only through an implementation
# registered by an outside package (torch.nn.attention.register_flash_attention_impl, PyTorch
# >= 2.9); the flash rows below time each one that this PyTorch lists.
impls = attention.list_flash_attention_impls() if hasattr(attention, "list_flash_attention_impls") else []
print("flash attention impls registered:", impls or "none")
def time_backends(rows):
    """rows: (name, backend) pairs, each timed on every shape."""
    for (B,H,T,d) in [(256,12,197,64),(256,6,197,64),(256,3,50,64)]:
        qkv = torch.randn(B,T,3,H,d, device='cuda', dtype=torch.bfloat16, requires_grad=True)
        def step():
            q,k,v = qkv.unbind(2)
            o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1,2),k.transpose(1,2),v.transpose(1,2))
            o.sum().backward()
        for name, be in rows:
            try:
                with sdpa_kernel([be]):
                    for _ in range(5): step()
                    torch.cuda.synchronize(); t=time.perf_counter()
                    for _ in range(20): step()
                    torch.cuda.synchronize(); dt=(time.perf_counter()-t)/20
                print(B,H,T,d,name, f"{dt*1e3:.3f} ms fwd+bwd")
            except Exception as e:
                print(name, "failed", str(e)[:100])
time_backends([("cudnn",SDPBackend.CUDNN_ATTENTION),("flash",SDPBackend.FLASH_ATTENTION),("efficient",SDPBackend.EFFICIENT_ATTENTION)])
for impl in impls:  # last: an activated implementation replaces the built-in flash kernels
    try:
        attention.activate_flash_attention_impl(impl)
    except Exception as e:
        print(impl, "could not be activated:", str(e)[:160])
        continue
    time_backends([(f"flash-{impl}", SDPBackend.FLASH_ATTENTION)])
