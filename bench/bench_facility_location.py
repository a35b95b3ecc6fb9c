"""pytest-benchmark suite for the compiled selection core (CPU).

    python -m pytest bench/bench_facility_location.py --benchmark-columns=mean,stddev,rounds

For the ratio table against submodlib and apricot, run ``python bench/run.py``.
"""
from __future__ import annotations

import pytest
import torch

import augcore
from common import cifar_like_logits

N, C = 50_000, 10


@pytest.fixture(scope="module")
def cifar():
    logits, labels, emb = cifar_like_logits(N, C, embedding_dim=512)
    return logits, labels, emb


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("method", ["stochastic", "lazy"])
def test_logits_to_weights(benchmark, cifar, fraction, method):
    """End to end: logits -> proxies -> per-class greedy -> normalised weights."""
    logits, labels, _ = cifar

    def select():
        proxies = augcore.grad_proxies(logits, labels).errors
        res = augcore.facility_location(proxies, int(fraction * N), labels, method=method)
        return augcore.normalize_weights(res.weights)

    weights = benchmark.pedantic(select, rounds=3, warmup_rounds=1)
    assert weights.numel() == int(fraction * N)


@pytest.mark.parametrize("fraction", [0.1])
def test_exact_last_layer(benchmark, cifar, fraction):
    logits, labels, emb = cifar

    def select():
        proxies = augcore.grad_proxies(logits, labels).errors
        return augcore.facility_location(proxies, int(fraction * N), labels, embeddings=emb)

    benchmark.pedantic(select, rounds=2, warmup_rounds=0)


def test_grad_proxies(benchmark, cifar):
    logits, labels, _ = cifar
    benchmark(augcore.grad_proxies, logits, labels)


def test_plain_torch_proxies_baseline(benchmark, cifar):
    logits, labels, _ = cifar
    benchmark(lambda: torch.softmax(logits, 1) - torch.nn.functional.one_hot(labels, C))
