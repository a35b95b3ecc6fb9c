"""Reading and checking the ``torchrun`` environment; starting the process group.

``torchrun`` (and ``torch.multiprocessing`` launchers that imitate it) set
MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE (LOCAL_RANK too). A run where only
some of them are set, or where they disagree with the process group actually
joined, fails here with an error that names the problem instead of hanging in a
rendezvous.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

import torch.distributed as dist

REQUIRED_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class DistributedEnv:
    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def _int_var(environ: Mapping[str, str], name: str) -> int:
    value = environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def read_env(environ: Optional[Mapping[str, str]] = None) -> Optional[DistributedEnv]:
    """The distributed settings in ``environ`` (default ``os.environ``); ``None``
    when none of MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE is set (a plain run).

    Raises ``RuntimeError`` naming the missing variables when only some are set,
    ``ValueError`` for values that are not integers or out of range.
    """
    environ = os.environ if environ is None else environ
    present = [v for v in REQUIRED_VARS if environ.get(v, "") != ""]
    if not present:
        return None
    missing = [v for v in REQUIRED_VARS if v not in present]
    if missing:
        raise RuntimeError(f"half-configured distributed environment: {', '.join(present)} set but "
                           f"{', '.join(missing)} missing; launch with torchrun or set all of "
                           f"{', '.join(REQUIRED_VARS)}")
    rank, world = _int_var(environ, "RANK"), _int_var(environ, "WORLD_SIZE")
    port = _int_var(environ, "MASTER_PORT")
    if world < 1:
        raise ValueError(f"WORLD_SIZE must be at least 1, got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world})")
    if not 0 < port < 65536:
        raise ValueError(f"MASTER_PORT={port} is not a TCP port")
    local_rank = _int_var(environ, "LOCAL_RANK") if environ.get("LOCAL_RANK", "") != "" else rank
    return DistributedEnv(rank=rank, world_size=world, local_rank=local_rank,
                          master_addr=environ["MASTER_ADDR"], master_port=port)


def init_distributed(backend: str = "gloo", *, expected_world_size: Optional[int] = None,
                     timeout_s: float = 300.0) -> DistributedEnv:
    """Joins (or checks the already joined) default process group from the environment.

    Raises when the environment is absent or half-configured, when an existing
    process group's rank or size differs from RANK / WORLD_SIZE, or when the world
    size differs from ``expected_world_size``.
    """
    import datetime

    env = read_env()
    if env is None:
        raise RuntimeError(f"not a distributed launch: none of {', '.join(REQUIRED_VARS)} is set "
                           "(run under torchrun --nproc-per-node N)")
    if expected_world_size is not None and env.world_size != expected_world_size:
        raise RuntimeError(f"world size mismatch: WORLD_SIZE={env.world_size} but {expected_world_size} "
                           "processes were expected")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    check_group(env)
    return env


def check_group(env: DistributedEnv) -> None:
    """Raises unless the default process group has ``env``'s rank and world size."""
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialised; call augcore.distributed.init_distributed()")
    if dist.get_world_size() != env.world_size:
        raise RuntimeError(f"world size mismatch: the process group has {dist.get_world_size()} ranks but "
                           f"WORLD_SIZE={env.world_size}")
    if dist.get_rank() != env.rank:
        raise RuntimeError(f"rank mismatch: the process group says rank {dist.get_rank()} but RANK={env.rank}")
