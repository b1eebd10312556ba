# A PyTorch scatter whose sum follows thread timing: index_put_ with
# accumulate=True and repeated indices adds with atomics across threads once
# the scattered gradient has 32768 elements or more (1024 x 64 = 65536 here).
# torch.use_deterministic_algorithms(True) makes it add serially.
import sys
import numpy as np
import torch

torch.manual_seed(0)
torch.set_num_threads(2)
table = torch.zeros(64, 64)
ids = torch.randint(0, 64, (1024,))
values = torch.randn(1024, 64)
for _ in range(20):
    table.index_put_((ids,), values, accumulate=True)
np.save(sys.argv[1], table.numpy())
