"""Scale-out on torch.distributed: the DDP strategy, distributed selection; GreeDi (a solver of
the coreset selector, ``augcore.selection.greedi``) and the batch sharding are re-exported here.

See docs/distributed.md.
"""
from augcore.distributed.env import DistributedEnv, check_group, init_distributed, read_env
from augcore.distributed.selection import (broadcast_selection, check_same_selection, collect_stats_distributed,
                                           merge_class_selections, select_by_class_distributed, select_distributed,
                                           selection_digest)
from augcore.distributed.strategy import DDPStrategy, DistributedTrainer
from augcore.process_group import rank_and_world, shard_bounds
from augcore.selection.greedi import GreeDiResult, exp_similarity, greedi_facility_location
from augcore.train.batches import ShardedBatchSampler, global_batches

__all__ = ["DDPStrategy", "DistributedEnv", "DistributedTrainer", "GreeDiResult", "ShardedBatchSampler",
           "broadcast_selection", "check_group", "check_same_selection", "collect_stats_distributed", "exp_similarity",
           "global_batches", "greedi_facility_location", "init_distributed", "merge_class_selections",
           "rank_and_world", "read_env", "select_by_class_distributed", "select_distributed", "selection_digest",
           "shard_bounds"]
