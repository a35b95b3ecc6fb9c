"""facility_location(..., backend="triton") against the CPU op, bit for bit.

Without a CUDA GPU the Triton kernels run in Triton's interpreter on CPU tensors
(TRITON_INTERPRET=1, read when anything is decorated, so conftest.py sets it before any test
module imports triton); with one, the same tests run the compiled kernels on the GPU. Every
field of the result (picks in order, float64 gains, weights, assignment, objectives) must
equal the CPU op's exactly, in every similarity, method, storage mode and tie rule the
backend takes, over several groups and seeds. Groups are small: the interpreter runs
every Triton operation as a numpy call.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("triton")

from augcore.ops import facility_location  # noqa: E402
from augcore.ops.triton_facility_location import interpreted  # noqa: E402

fl_module = sys.modules["augcore.ops.facility_location"]  # the module (augcore.ops.facility_location is the function)
DEVICE = "cpu" if interpreted() else "cuda"
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip("augcore's Triton kernels were imported compiled, without TRITON_INTERPRET, and there is no GPU",
                allow_module_level=True)

FIELDS = ("indices", "gains", "weights", "assignment", "budgets", "group_ptr", "objective")


def _to(value, device):
    return value.to(device) if isinstance(value, torch.Tensor) else value


def assert_same_as_cpu(points, budget, groups=None, **kwargs):
    """Runs the CPU op and the Triton backend; every field must be equal bit for bit."""
    tensors = ("embeddings", "similarity")
    cpu = facility_location(points, budget, groups, backend="cpu", **kwargs)
    tri = facility_location(_to(points, DEVICE), budget, _to(groups, DEVICE), backend="triton",
                            **{k: _to(v, DEVICE) if k in tensors else v for k, v in kwargs.items()})
    for name in FIELDS:
        want, got = getattr(cpu, name), getattr(tri, name).cpu()
        assert want.dtype == got.dtype and torch.equal(want, got), (name, want, got)
    return cpu


def grouped_points(sizes, dim, seed, scale=1.0):
    """Points of len(sizes) groups, shuffled so that sorting by group matters."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    return torch.randn(labels.numel(), dim, generator=g) * scale, labels


SIZES, BUDGETS = [23, 37, 9, 4], [5, 8, 0, 4]  # a budget-0 group and a group taken whole


@pytest.mark.parametrize("mode", ["dense", "on_the_fly"])
@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
@pytest.mark.parametrize("similarity", ["exp", "craig", "craig_squared"])
def test_triton_matches_cpu_in_every_similarity_method_and_mode(similarity, method, mode):
    x, labels = grouped_points(SIZES, 5, seed=1)
    res = assert_same_as_cpu(x, BUDGETS, labels, similarity=similarity, method=method, mode=mode, seed=3)
    assert res.indices.numel() == sum(BUDGETS) and (res.assignment[labels == 2] == -1).all()


@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
def test_triton_matches_cpu_on_a_precomputed_similarity(method):
    g = torch.Generator().manual_seed(2)
    x, labels = grouped_points(SIZES, 3, seed=2)
    sim = torch.rand(x.shape[0], x.shape[0], generator=g) * 3.0  # not symmetric: candidate-major order matters
    assert_same_as_cpu(None, BUDGETS, labels, similarity=sim, method=method, seed=5)


def lattice(n, seed):
    """Points on a 3 x 3 integer lattice: many exactly equal distances, so exact ties in gain."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (n, 2), generator=g).float()


@pytest.mark.parametrize("method,tie_break", [("naive", "low"), ("naive", "high"), ("naive", "apricot"),
                                              ("lazy", "low"), ("stochastic", "low"), ("stochastic", "high")])
def test_triton_settles_exact_ties_as_the_cpu(method, tie_break):
    x = lattice(40, seed=4)
    labels = torch.arange(40) % 2
    res = assert_same_as_cpu(x, [7, 6], labels, similarity="craig", method=method, tie_break=tie_break, seed=11,
                             eps=0.3)
    if tie_break == "high":  # the data must discriminate: the other rule picks differently
        low = facility_location(x, [7, 6], labels, similarity="craig", method=method, seed=11, eps=0.3)
        assert not torch.equal(low.indices, res.indices)


@pytest.mark.parametrize("similarity,mode,bias", [("exp", "dense", 1.0), ("craig", "on_the_fly", 0.0),
                                                  ("craig_squared", "dense", 1.0)])
def test_triton_matches_cpu_on_exact_last_layer_gradients(similarity, mode, bias):
    x, labels = grouped_points([21, 30], 4, seed=6)
    emb = torch.randn(x.shape[0], 6, generator=torch.Generator().manual_seed(7))
    assert_same_as_cpu(x, 9, labels, embeddings=emb, bias=bias, similarity=similarity, mode=mode,
                       method="stochastic", seed=1)


def test_triton_stochastic_follows_the_seed_exactly():
    x, labels = grouped_points([60, 31], 6, seed=8)
    picks = set()
    for seed in (0, 1, -1, 2**31 + 5, -(2**63), 2**63 - 1):
        for eps in (0.5, 0.01):
            res = assert_same_as_cpu(x, 12, labels, method="stochastic", seed=seed, eps=eps, mode="on_the_fly")
            picks.add(tuple(res.indices.tolist()))
    assert len(picks) > 6  # seeds and sample sizes change the picks: the comparison is not vacuous


@pytest.mark.parametrize("scale", [1e-18, 1e18])
def test_triton_fixed_point_at_extreme_similarity_bounds(scale):
    # craig's bound is the largest distance: subnormal squared distances at 1e-18 (F above
    # 100) and bounds near 2^60 at 1e18 (F negative); exp with a custom scale beside them
    x, labels = grouped_points([17, 26], 3, seed=9, scale=scale)
    assert_same_as_cpu(x, 7, labels, similarity="craig", method="naive")
    assert_same_as_cpu(x, 7, labels, similarity="craig_squared", method="stochastic", mode="on_the_fly")
    assert_same_as_cpu(x, 7, labels, similarity="exp", scale=scale, method="lazy")


def test_triton_one_group_float64_input_and_no_picks():
    x = torch.randn(33, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    assert_same_as_cpu(x, 5, method="naive", mode="on_the_fly")
    empty = assert_same_as_cpu(x, 0, method="stochastic")
    assert empty.indices.numel() == 0 and (empty.assignment == -1).all()


def test_triton_refuses_what_it_cannot_do_exactly():
    x = torch.randn(20, 3).to(DEVICE)
    for tie_break in ("high", "apricot"):
        with pytest.raises(ValueError, match="tie_break='high' and 'apricot' with method='lazy'"):
            facility_location(x, 4, method="lazy", tie_break=tie_break, backend="triton")
    with pytest.raises(ValueError, match="scale must be a positive number whose inverse is a finite float32"):
        facility_location(x, 4, scale=1e-50, backend="triton")
    with pytest.raises(ValueError, match="eps must be large enough that log"):
        facility_location(x, 4, eps=1e-320, backend="triton")


def test_backend_choice_follows_the_device(monkeypatch):
    resolve = fl_module._resolve_backend
    cpu, cuda, xpu = torch.device("cpu"), torch.device("cuda", 0), torch.device("xpu", 0)
    assert resolve("auto", cpu) == "cpu"
    assert resolve("auto", xpu) == "triton"
    monkeypatch.setattr(fl_module, "_cuda_compiled", lambda: True)
    assert resolve("auto", cuda) == "cuda"
    monkeypatch.setattr(torch.version, "hip", "6.2")  # a ROCm build: its GPUs are "cuda" devices to torch
    assert resolve("auto", cuda) == "triton"
    with pytest.raises(ValueError, match="backend='cuda' runs on CUDA tensors of an NVIDIA GPU"):
        resolve("cuda", cuda)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(fl_module, "_cuda_compiled", lambda: False)
    assert resolve("auto", cuda) == "triton"  # a build without CUDA kernels
    with pytest.raises(ValueError, match="backend='cpu' runs on CPU tensors"):
        resolve("cpu", xpu)
    with pytest.raises(ValueError, match="backend must be one of"):
        facility_location(torch.randn(5, 2), 2, backend="compiled")
    with pytest.raises(ValueError, match="backend='cuda' runs on CUDA tensors"):
        facility_location(torch.randn(5, 2), 2, backend="cuda")


def _python(code: str, interpret: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_triton_on_cpu_tensors_without_the_interpreter_says_how():
    out = _python("""
        import torch, augcore
        try:
            augcore.facility_location(torch.randn(8, 2), 2, backend="triton")
        except ValueError as exc:
            print(exc)
    """, interpret=False)
    assert out.returncode == 0, out.stderr
    assert "backend='triton' runs on GPU tensors" in out.stdout and "TRITON_INTERPRET=1" in out.stdout


def test_triton_kernels_compile_without_contraction_or_approximations():
    """The compiled kernels (for sm_90 and gfx942, no GPU needed) carry the exactness the
    interpreter cannot show: no fused multiply-add, correctly rounded sqrt, no approximate
    division or exp; and fusion would be there without enable_fp_fusion=False."""
    out = _python("""
        import collections, json, re
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from augcore.ops import triton_kernels as K

        types = {"D": "i32", "H": "i32", "bias": "fp32", "neg_inv_scale": "fp32"}
        def signature(fn, constexprs):
            sig = {}
            for name in fn.arg_names:
                if name in constexprs:
                    sig[name] = "constexpr"
                elif name in types:
                    sig[name] = types[name]
                else:
                    sig[name] = {"magic_ptr": "*fp64", "dmax_ptr": "*fp32", "m_ptr": "*fp32"}.get(
                        name, "*fp32" if name in ("x_ptr", "emb_ptr", "sq_ptr", "sim_ptr") else "*i64")
            return sig
        def build(kind, fusion, target):
            c = dict(KIND=kind, HAS_EMB=False, STORED=False, METHOD=2, TIES_HIGH=False, BLOCK_C=32, BLOCK_N=128)
            src = ASTSource(fn=K.greedy_kernel, signature=signature(K.greedy_kernel, c), constexprs=c)
            return triton.compile(src, target=target, options={"enable_fp_fusion": fusion, "num_warps": 4}).asm
        sm90, gfx942 = GPUTarget("cuda", 90, 32), GPUTarget("hip", "gfx942", 64)
        ptx = build(0, False, sm90)["ptx"]
        fused = build(0, True, sm90)["ptx"]
        ops = lambda text: collections.Counter(re.findall(r"\\b(v_fma_f32|v_fmac_f32|v_sqrt_f32)", text))
        print(json.dumps({
            "ptx": sorted(set(re.findall(r"\\b((?:fma|sqrt|div|ex2|rcp)\\.[\\w.]+)", ptx))),
            "fused_fma": fused.count("fma.rn.f32"),
            "hip_exp": ops(build(0, False, gfx942)["amdgcn"]), "hip_craig": ops(build(1, False, gfx942)["amdgcn"]),
            "hip_craig_squared": ops(build(3, False, gfx942)["amdgcn"])}))
    """, interpret=False)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ptx"] == ["sqrt.rn.f32"], report  # no fma, no sqrt.approx, div.approx, ex2.approx
    assert report["fused_fma"] > 0  # the control: the same kernel with fusion on contracts
    # gfx942: the only fused operations are the correctly rounded sqrt's refinement steps
    # (as many in "craig", which has no exp, as in "exp"; none where there is no sqrt)
    assert report["hip_exp"] == report["hip_craig"] and report["hip_exp"].get("v_sqrt_f32", 0) > 0, report
    assert not report["hip_craig_squared"], report


@pytest.mark.long
@pytest.mark.parametrize("seed", range(4))
def test_triton_exhaustive_sweep(seed):
    """Every similarity x method x mode x tie rule the backend takes, groups up to 60, several seeds."""
    x, labels = grouped_points([60, 1, 45, 13, 2], 10, seed=100 + seed)
    emb = torch.randn(x.shape[0], 5, generator=torch.Generator().manual_seed(seed))
    for similarity in ("exp", "craig", "craig_squared"):
        for method in ("naive", "lazy", "stochastic"):
            for tie_break in (("low",) if method == "lazy" else ("low", "high", "apricot")):
                for mode in ("dense", "on_the_fly"):
                    for extra in ({}, {"embeddings": emb}):
                        assert_same_as_cpu(x, x.shape[0] // 5, labels, similarity=similarity, method=method,
                                           tie_break=tie_break, mode=mode, seed=seed, eps=0.05, **extra)
    sim = torch.rand(x.shape[0], x.shape[0], generator=torch.Generator().manual_seed(seed))
    for method in ("naive", "lazy", "stochastic"):
        assert_same_as_cpu(None, 20, labels, similarity=sim, method=method, seed=seed)
