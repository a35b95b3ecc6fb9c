"""Same seed, same selection on CPU and GPU (skips without a GPU, like every CUDA test)."""
import pytest
import torch
from torch.utils.data import TensorDataset

from augcore.selection import (HighLossSelector, InferenceStats, MaxLossSelector, MisclassifiedSelector,
                               RandomSelector, SlowLearnableSelector, collect_stats, random_stats)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def on(stats: InferenceStats, device: str) -> InferenceStats:
    return InferenceStats(*(t.to(device) if t is not None else None
                            for t in (stats.logits, stats.labels, stats.losses, stats.indices, stats.embeddings)))


@pytest.mark.parametrize("selector", [RandomSelector(0.2), RandomSelector(0.2, stratified=True), MaxLossSelector(0.2),
                                      HighLossSelector(0.2), MisclassifiedSelector(), SlowLearnableSelector(),
                                      SlowLearnableSelector(features="embeddings")],
                         ids=lambda s: type(s).__name__)
def test_cpu_and_cuda_select_the_same_examples(selector):
    stats = random_stats(3000, 7, embedding_dim=16, seed=1)
    cpu = selector.select(stats, epoch=2, seed=3)
    gpu = selector.select(on(stats, "cuda"), epoch=2, seed=3)
    assert gpu.indices.device.type == "cuda"
    assert torch.equal(cpu.indices, gpu.indices.cpu()) and torch.equal(cpu.weights, gpu.weights.cpu())
    assert torch.equal(cpu.budgets, gpu.budgets)


def test_collect_stats_on_cuda_matches_cpu_and_accepts_a_gpu_resident_dataset():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))

    class WithEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = model

        def forward(self, x):
            return self.body(x), x.flatten(1)

    net = WithEmbedding()
    x, y = torch.randn(70, 3, 4, 4), torch.randint(0, 5, (70,))
    cpu = collect_stats(net, TensorDataset(x, y), batch_size=16, progress=False)
    net.cuda()
    gpu = collect_stats(net, TensorDataset(x, y), batch_size=16, device="cuda", progress=False)
    resident = collect_stats(net, TensorDataset(x.cuda(), y.cuda()), batch_size=16, device="cuda", progress=False)
    for stats in (gpu, resident):
        assert stats.logits.device.type == "cuda"
        torch.testing.assert_close(stats.logits.cpu(), cpu.logits, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(stats.losses.cpu(), cpu.losses, rtol=1e-4, atol=1e-4)
        assert torch.equal(stats.indices.cpu(), cpu.indices)
