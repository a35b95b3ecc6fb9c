"""Training: the epoch loop with a selection policy (re-selection every R epochs), SAM,
schedules, the refinement phase, checkpoint/resume. See docs/training.md and
docs/architecture.md."""
from augcore.config import ConfigError
from augcore.train.build import RunParts, build_run
from augcore.train.checkpoint import atomic_torch_save, load_checkpoint
from augcore.train.config import TrainConfig, config_from_dict, load_config
from augcore.train.losses import per_example_cross_entropy, weighted_cross_entropy
from augcore.train.policies import POLICIES, PolicyContext, SelectionPolicy, register_policy
from augcore.train.sam import SAM, bn_stats_frozen
from augcore.train.schedules import LRSchedule, RefinementPlan
from augcore.train.strategy import SingleProcess
from augcore.train.trainer import Trainer, TrainResult

__all__ = ["ConfigError", "LRSchedule", "POLICIES", "PolicyContext", "RefinementPlan", "RunParts", "SAM",
           "SelectionPolicy", "SingleProcess", "TrainConfig", "TrainResult", "Trainer", "atomic_torch_save",
           "bn_stats_frozen", "build_run", "config_from_dict", "load_checkpoint", "load_config",
           "per_example_cross_entropy", "register_policy", "weighted_cross_entropy"]
