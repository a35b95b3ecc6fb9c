"""Training: the epoch loop with re-selection every R epochs, SAM, schedules, the
refinement phase, checkpoint/resume. See docs/training.md."""
from augcore.train.checkpoint import atomic_torch_save, load_checkpoint
from augcore.train.config import ConfigError, TrainConfig, config_from_dict, load_config
from augcore.train.losses import per_example_cross_entropy, weighted_cross_entropy
from augcore.train.sam import SAM, bn_stats_frozen
from augcore.train.schedules import LRSchedule, RefinementPlan
from augcore.train.trainer import Trainer, TrainResult

__all__ = ["ConfigError", "LRSchedule", "RefinementPlan", "SAM", "TrainConfig", "TrainResult", "Trainer",
           "atomic_torch_save", "bn_stats_frozen", "config_from_dict", "load_checkpoint", "load_config",
           "per_example_cross_entropy", "weighted_cross_entropy"]
