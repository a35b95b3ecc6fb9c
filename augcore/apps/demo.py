"""The demo: on the embedded digits data, does augmenting a coreset beat augmenting a
random subset of the same size, and what does selecting it cost?

Two parts, both through the reproduction harness (``augcore.apps.repro``):

1. the coreset paper's Table 1 protocol, where the effect is large: train only on a
   small subset (5% and 10%) and its strong copies, re-selected every epoch;
2. its Table 4 protocol: the full data plus strong copies of a 30% subset (and the
   weak-only baseline), where on digits the gain is small; re-selections reuse the
   training epoch's outputs (``augment.stats: in_epoch``), so selecting is nearly free.

Runs are paired: seed s gives coreset and random the same initial model and the same
batch order (``run.seed`` seeds both; python_tests/test_demo.py checks it), so the
comparison is on the per-seed differences: their mean with a t-based 95% interval and a
Wilcoxon signed-rank test, turned into a plain-words verdict by :func:`compare_paired`.

Writes the harness's CSV/JSON results, ``summary.json`` and ``accuracy_per_seed.png``
into the output folder (not each run's checkpoint and plots: ``augcore repro`` keeps those).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

from augcore.checks import check_number
from augcore.config import require
from augcore.io import atomic_savefig, atomic_write_text
from augcore.apps.repro import ReproSettings, format_summary, run_repro

DEMO_METHODS = ("none", "random", "coreset")
CONFIDENCE = 0.95
# a signed-rank test on n seeds cannot reach a two-sided p below 2 / 2**n (all n seeds on one
# side): with fewer seeds than this no verdict other than "not distinguishable" is possible
MIN_SEEDS_FOR_A_VERDICT = next(n for n in range(1, 64) if 2.0 ** (1 - n) < 1 - CONFIDENCE)
PLOT_NAME = "accuracy_per_seed.png"


@dataclass
class DemoSettings:
    out: str = "runs/demo"
    # from the measured seed-to-seed spread of the paired differences (docs/training.md): 14 seeds
    # resolve the 10% gain nearly always and the 5% one about 3 times in 4, in about 2 minutes on 2
    # cores; part 2's gain (about one test image in 360) would need far more seeds than the demo
    # can afford, so part 2 runs at most full_data_seeds of them
    seeds: int = 14
    full_data_seeds: int = 4
    # part 1 (Table 1 protocol): small subsets, re-selected every epoch
    subset_fractions: Sequence[float] = (0.05, 0.10)
    subset_epochs: int = 15
    # part 2 (Table 4 protocol): full data + copies of a subset, re-selected every R epochs
    fraction: float = 0.3
    epochs: int = 6
    reselect_every: int = 2
    strong: str = "autoaugment"
    methods: Sequence[str] = DEMO_METHODS
    parts: Sequence[str] = ("table1", "table4")
    # one thread per run and runs in parallel processes, one per core: the 8x8 convolutions
    # are too small to gain from more threads, and OpenMP threads that wait for a core slow
    # every step several-fold on a busy machine
    num_threads: int = 1
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    progress: bool = True


@dataclass(frozen=True)
class PairedComparison:
    """Coreset minus random over paired seeds, in accuracy points.

    ``verdict`` is ``"ahead"`` or ``"behind"`` when both the t-based ``CONFIDENCE`` interval
    of the mean difference excludes zero and the two-sided Wilcoxon signed-rank test gives
    p < 1 - ``CONFIDENCE``; ``"not distinguishable"`` otherwise; ``"no test"`` with one seed.
    """
    differences: Tuple[float, ...]
    mean: float
    ci_low: float           # NaN with one seed
    ci_high: float
    p_value: float          # Wilcoxon signed-rank, two-sided; NaN with one seed
    seeds_ahead: int
    seeds_behind: int
    verdict: str

    @property
    def seeds(self) -> int:
        return len(self.differences)

    def to_dict(self, where: str) -> Dict:
        """For JSON: the fields (NaN as null), the seed count and the sentence."""
        fields = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}
        return {**fields, "seeds": self.seeds, "sentence": self.sentence(where)}

    def sentence(self, where: str) -> str:
        """The verdict in plain words; ``where`` says which comparison (e.g. "at 5%")."""
        if self.verdict == "no test":
            return (f"coreset vs random {where}: {self.mean:+.2f} points on 1 seed; no test is possible with "
                    f"one seed (run --seeds {MIN_SEEDS_FOR_A_VERDICT} or more)")
        numbers = (f"{self.mean:+.2f} points, {CONFIDENCE:.0%} CI [{self.ci_low:+.2f}, {self.ci_high:+.2f}], "
                   f"Wilcoxon p = {self.p_value:.2g}, coreset ahead in {self.seeds_ahead} and behind in "
                   f"{self.seeds_behind} of {self.seeds} seeds")
        if self.verdict == "ahead":
            return f"coreset ahead of random {where}: {numbers}"
        if self.verdict == "behind":
            return f"coreset behind random {where}: {numbers}"
        reason = ""
        if self.seeds < MIN_SEEDS_FOR_A_VERDICT:
            reason = f"; a signed-rank test needs {MIN_SEEDS_FOR_A_VERDICT} seeds or more to reach p < {1 - CONFIDENCE:.2g}"
        return (f"coreset not distinguishable from random {where} at this number of seeds ({self.seeds}): "
                f"{numbers}{reason}")


def compare_paired(coreset: Sequence[float], random: Sequence[float]) -> PairedComparison:
    """The paired comparison of two methods' per-seed results (``coreset[s]`` and ``random[s]``
    from the same seed s); a pure function of the numbers."""
    from scipy import stats

    if len(coreset) != len(random) or not len(coreset):
        raise ValueError(f"coreset and random need one result per seed each, got {len(coreset)} and {len(random)}")
    # accuracies are multiples of 100 / (test set size): round off float noise so that equal gains tie
    differences = tuple(round(check_number(f"coreset[{s}]", c) - check_number(f"random[{s}]", r), 9)
                        for s, (c, r) in enumerate(zip(coreset, random)))
    n = len(differences)
    mean = math.fsum(differences) / n
    ahead, behind = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    if n == 1:
        return PairedComparison(differences, mean, math.nan, math.nan, math.nan, ahead, behind, "no test")
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1))
    half_width = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
    ci_low, ci_high = mean - half_width, mean + half_width
    # zeros (equal accuracy) carry no sign and are dropped, as Wilcoxon did; none left: no evidence
    p_value = float(stats.wilcoxon(differences).pvalue) if ahead + behind else 1.0
    significant = p_value < 1 - CONFIDENCE
    verdict = ("ahead" if significant and ci_low > 0 else
               "behind" if significant and ci_high < 0 else "not distinguishable")
    return PairedComparison(differences, mean, ci_low, ci_high, p_value, ahead, behind, verdict)


def _paired_results(summary: Dict) -> Dict[float, Tuple[List[float], List[float]]]:
    """budget -> (coreset, random) final top-1 per seed, from a repro summary (seed order)."""
    cells = summary["cells"]
    return {cell["budget"]: (cell["top1"], cells[f"random@{cell['budget']:g}"]["top1"])
            for cell in cells.values() if cell["method"] == "coreset" and f"random@{cell['budget']:g}" in cells}


def _selection_note(protocol: str, summary: Dict) -> str:
    """What the selection column measures in this protocol, with the run's own numbers."""
    shares = ", ".join(f"{cell['method']} at {cell['budget']:.0%}: {cell['selection_overhead_pct']:.1f}%"
                       for cell in summary["cells"].values() if cell["method"] in ("coreset", "max_loss"))
    if protocol == "table1":
        trained = " and ".join(f"{2 * cell['budget']:.0%}" for cell in summary["cells"].values()
                               if cell["method"] == "coreset")
        return ("selection column: the time to pick the subset (an inference pass over all the training data, "
                "then the selector) as a share of each run's training time, selection included. In this "
                "protocol the pass covers 100% of the data every epoch while training covers only the subset "
                f"and its strong copies ({trained} of the data's size), so picking can cost as much as "
                f"training ({shares}); random draws its subset without a pass.")
    return ("selection column: here every epoch trains on all the data plus the copies, and re-selections "
            "reuse the outputs the last training epoch already computed (augment.stats: in_epoch): only the "
            f"first selection runs an inference pass, so picking is nearly free ({shares}).")


def plot_per_seed(report: Dict, path: str, title: str) -> None:
    """Test top-1 per method and budget, one point per seed, a line joining each seed's random
    and coreset runs, the mean as a bar; one panel per protocol. Written atomically."""
    from augcore.train.metrics import _pyplot

    plt = _pyplot()
    parts = report["parts"]
    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts), 4.2), squeeze=False)
    colours = {"none": "tab:gray", "random": "tab:blue", "max_loss": "tab:green", "coreset": "tab:orange"}
    for ax, (protocol, summary) in zip(axes[0], parts.items()):
        ticks, labels, x = [], [], 0.0
        budgets = sorted({c["budget"] for c in summary["cells"].values() if c["method"] not in ("none", "full")})
        groups = [("weak only", [c for c in summary["cells"].values() if c["method"] == "none"])]
        groups += [(f"{b:.0%}", [c for c in summary["cells"].values() if c["budget"] == b and c["method"] != "none"])
                   for b in budgets]
        for group, cells in groups:
            if not cells:
                continue
            positions = {}
            for cell in cells:
                positions[cell["method"]] = x
                seeds = range(len(cell["top1"]))
                offsets = [(s - (len(cell["top1"]) - 1) / 2) * 0.02 for s in seeds]   # spread ties apart
                ax.scatter([x + o for o in offsets], cell["top1"], s=14, color=colours.get(cell["method"]),
                           alpha=0.8, zorder=3)
                ax.hlines(cell["top1_mean"], x - 0.25, x + 0.25, color="black", linewidth=2, zorder=4)
                ticks.append(x)
                labels.append(f"{cell['method']}\n{group}")
                x += 1.0
            if "random" in positions and "coreset" in positions:
                random_top1 = next(c["top1"] for c in cells if c["method"] == "random")
                coreset_top1 = next(c["top1"] for c in cells if c["method"] == "coreset")
                for r, c in zip(random_top1, coreset_top1):
                    ax.plot([positions["random"], positions["coreset"]], [r, c], color="gray", linewidth=0.6,
                            alpha=0.5, zorder=2)
                verdict = report["comparisons"][protocol][f"{cells[0]['budget']:g}"]
                ax.annotate(f"{verdict['mean']:+.1f} pts\n{verdict['verdict']}",
                            ((positions["random"] + positions["coreset"]) / 2, 1.0),
                            xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=8)
            x += 0.6
        ax.set_xticks(ticks, labels, fontsize=8)
        ax.set_ylabel("test top-1 (%)")
        ax.set_title({"table1": "Table 1 protocol: train on the subset",
                      "table4": "Table 4 protocol: full data + copies"}[protocol], fontsize=10)
        ax.margins(y=0.2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def run_demo(settings: DemoSettings) -> Dict:
    """Runs the demo's parts, prints their tables and verdicts and returns the combined summary."""
    require(isinstance(settings.seeds, int) and settings.seeds >= 1, "seeds", f"must be >= 1, got {settings.seeds}")
    require(set(settings.parts) <= {"table1", "table4"} and bool(settings.parts), "parts",
            f"must be a non-empty subset of ('table1', 'table4'), got {list(settings.parts)}")
    require(isinstance(settings.full_data_seeds, int) and settings.full_data_seeds >= 1, "full_data_seeds",
            f"must be >= 1, got {settings.full_data_seeds}")
    require(bool(settings.subset_fractions) and all(0 < f <= 1 for f in settings.subset_fractions),
            "subset_fractions", f"must be fractions in (0, 1], got {list(settings.subset_fractions)}")
    started = time.perf_counter()
    common = dict(dataset="digits", model="small_cnn", strong=settings.strong, lr=0.05,
                  batch_size=64, schedule="cosine", num_threads=settings.num_threads, out=settings.out,
                  progress=settings.progress, workers=settings.workers, keep_runs=False)
    runs: Dict[str, ReproSettings] = {}
    if "table1" in settings.parts:
        runs["table1"] = ReproSettings(
            protocol="table1", methods=[m for m in settings.methods if m in ("random", "coreset", "max_loss")],
            budgets=tuple(settings.subset_fractions), epochs=settings.subset_epochs, reselect_every=1,
            seeds=settings.seeds, **common)
    if "table4" in settings.parts:
        runs["table4"] = ReproSettings(
            protocol="table4", methods=tuple(settings.methods), budgets=(settings.fraction,), epochs=settings.epochs,
            reselect_every=settings.reselect_every, extra={"augment": {"stats": "in_epoch"}},
            seeds=min(settings.seeds, settings.full_data_seeds), **common)
    headers = {"table1": "Part 1, the coreset paper's Table 1 protocol: train only on the subset and its strong "
                         "copies, re-selected every epoch",
               "table4": "Part 2, its Table 4 protocol: all the data plus strong copies of the subset, with the "
                         "weak-only baseline (none)"}
    report: Dict = {"parts": {}, "comparisons": {}}
    for protocol, repro in runs.items():
        summary = run_repro(repro, echo=lambda text: None)
        report["parts"][protocol] = summary
        comparisons = {budget: compare_paired(coreset, random)
                       for budget, (coreset, random) in _paired_results(summary).items()}
        report["comparisons"][protocol] = {f"{b:g}": c.to_dict(f"at {b:.0%}") for b, c in comparisons.items()}
        print(f"{headers[protocol]}; digits / small CNN, {repro.epochs} epochs, {repro.seeds} paired seed(s)")
        # the harness's table without its mean +- std gain line: the paired verdict below replaces it
        print(format_summary({**summary, "coreset_minus_random": {}}, repro))
        print(_selection_note(protocol, summary))
        for budget, comparison in comparisons.items():
            print(comparison.sentence(f"at {budget:.0%}"))
        print()
    plot_path = os.path.join(settings.out, PLOT_NAME)
    seeds = ", ".join(f"{protocol}: {repro.seeds} seed(s)" for protocol, repro in runs.items())
    plot_per_seed(report, plot_path, title=f"digits, small CNN ({seeds}); lines join a seed's random and coreset runs")
    report["plot"] = os.path.abspath(plot_path)
    report["total_wall_time"] = time.perf_counter() - started
    atomic_write_text(os.path.join(settings.out, "summary.json"), json.dumps(report, indent=2, default=str) + "\n")
    print(f"plot: {report['plot']}")
    print(f"total wall time {report['total_wall_time']:.1f} s; results in {os.path.abspath(settings.out)}")
    return report
