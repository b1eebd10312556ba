# numpy and a small torch computation under the preload library: the printed
# numbers must not change with it, whatever it perturbs.
import numpy as np

rng = np.random.default_rng(7)
a = rng.standard_normal((256, 256))
b = rng.standard_normal((256, 256))
print("numpy", f"{float((a @ b).sum()):.6e}", f"{float(np.linalg.norm(a)):.6e}")
big = np.zeros((2048, 2048))  # 32 MiB: calloc beneath, hugepage advice on top
big[::7, ::5] = 1.0
print("zeros", float(big.sum()))
parts = [np.arange(i, dtype=np.float64) for i in range(1, 2000)]
print("parts", float(sum(p.sum() for p in parts)))

try:
    import torch
except ImportError:
    print("torch absent")
else:
    torch.manual_seed(0)
    x = torch.randn(128, 64)
    w = torch.randn(64, 32, requires_grad=True)
    loss = torch.tanh(x @ w).pow(2).mean()
    loss.backward()
    print("torch", f"{loss.item():.6e}", f"{w.grad.abs().sum().item():.6e}")
