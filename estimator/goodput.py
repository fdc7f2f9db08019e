"""Goodput: training time lost to failures, checkpoints and restarts.

Failures arrive at rate chips / MTBF_chip. The default per-chip MTBF comes from the Llama 3
paper (Dubey et al. 2024, sec. 3.3.4): 419 unexpected interruptions in a 54-day snapshot of
16,384 H100 GPUs, i.e. 16,384 x 54 x 24 / 419 = ~50,700 GPU-hours between failures. The
checkpoint interval is Young/Daly's sqrt(2 * write_time * MTBF_cluster) (Young 1974; Daly
2006). Checkpoint = bf16 weights + fp32 master and Adam moments (14 bytes per parameter),
written at a default 1 GB/s per node (Llama 3 paper, sec. 3.3.1: 2 TB/s sustained storage for
16K GPUs = ~1 GB/s per 8-GPU node). Restart cost default 10 minutes (assumed; override it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DEFAULT_MTBF_CHIP_H = 16384 * 54 * 24 / 419
DEFAULT_CKPT_GB_PER_S_PER_NODE = 1.0
DEFAULT_RESTART_S = 600.0
CKPT_BYTES_PER_PARAM = 14.0


@dataclass
class Goodput:
    cluster_mtbf_h: float
    checkpoint_write_s: float
    checkpoint_interval_s: float
    restart_s: float
    goodput: float            # useful fraction of wall-clock time
    failures_expected: float  # over the whole job

    def to_dict(self) -> dict:
        return asdict(self)


def goodput(chips: int, nodes: int, params: float, compute_days: float,
            mtbf_chip_h: float = DEFAULT_MTBF_CHIP_H,
            ckpt_gb_per_s_per_node: float = DEFAULT_CKPT_GB_PER_S_PER_NODE,
            restart_s: float = DEFAULT_RESTART_S) -> Goodput:
    m = mtbf_chip_h * 3600.0 / chips                      # cluster MTBF, s
    d = params * CKPT_BYTES_PER_PARAM / (ckpt_gb_per_s_per_node * 1e9 * nodes)
    tau = math.sqrt(2.0 * d * m)                           # Young/Daly interval
    # wall = work * (1 + d/tau) + failures * (restart + half an interval of lost work)
    loss_per_failure = restart_s + (tau + d) / 2.0
    denom = 1.0 - loss_per_failure / m
    work = compute_days * 86400.0
    if denom <= 0.0:
        return Goodput(m / 3600.0, d, tau, restart_s, 0.0, math.inf)
    wall = work * (1.0 + d / tau) / denom
    return Goodput(m / 3600.0, d, tau, restart_s, work / wall, wall / m)
