"""The 2-D toy experiment of "Learning Augmentation Network via Influence Functions"
(Lee et al., CVPR 2020, Fig. 3): learned translations move training points toward
misclassified validation points.

    python examples/influence_toy.py [--seed 0] [--out influence_toy.png]

Prints one JSON line with the measured statistic and saves the plot (matplotlib Agg).
Same as ``augcore.influence.toy.run_toy_experiment``; seeded, a few seconds on a CPU.
"""
from __future__ import annotations

import argparse
import json

import torch

from augcore.influence.toy import run_toy_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="influence_toy.png", help="where to save the plot (png, pdf, svg)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the problem is tiny)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run_toy_experiment(args.seed, plot_path=args.out, progress=True)
    print(json.dumps({"seed": args.seed, "fraction_toward": result.fraction_toward,
                      "num_considered": result.num_considered,
                      "fraction_toward_by_class": result.fraction_toward_by_class,
                      "num_misclassified_val": result.num_misclassified_val,
                      "predicted_influence_end": result.predicted_influence_end,
                      "mean_shift": result.mean_shift, "plot": result.plot_path}))


if __name__ == "__main__":
    main()
