"""Session-wide test settings, applied before any test module is imported."""
import os

import torch

# Without a GPU, Triton kernels run in its interpreter on the CPU. Triton reads this
# when a kernel is decorated, so it must be set before any module imports augcore.ops.triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
