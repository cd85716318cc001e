"""``--scheduler``, ``--workers``, ``--memory-limit`` and ``--connect-timeout`` (segment, stats)."""

from __future__ import annotations

import argparse

from ..cluster import ClusterOptions


def add_cluster_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """Options choosing where ``what`` runs: threads here, worker processes here, a cluster."""
    group = parser.add_argument_group(
        "where it runs",
        f"{what} runs in threads on this machine unless one of these is given; see "
        "docs/large_volumes.md for clusters (SLURM, PBS) and GPUs",
    )
    group.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a dask.distributed scheduler (tcp://host:8786) or its scheduler file (.json); "
        "the workers read the input and write the output themselves, so both must be on a "
        "filesystem they share",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="start N dask worker processes on this machine for the run",
    )
    group.add_argument(
        "--memory-limit",
        default=None,
        metavar="SIZE",
        help="memory per worker started with --workers, e.g. 2GiB (default: shared equally)",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the scheduler or a worker before giving up (default 10)",
    )


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    """The configurations' ``cluster`` field, from the options above."""
    return ClusterOptions(
        scheduler=args.scheduler,
        workers=args.workers,
        memory_limit=args.memory_limit,
        connect_timeout=args.connect_timeout,
    )
