"""`tuner clean`: remove what killed tuner processes left (topics, groups, temp dirs, leases)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, err
from tuner.config import ConfigError, load_config
from tuner.search import clean
from tuner.search.study import StorageError, StorageUnreachableError, reach_storage


def _clean(args: argparse.Namespace) -> int:
    cluster_spec = None
    if args.config is not None:
        try:
            cluster_spec = load_config(args.config).cluster
        except ConfigError as exc:
            err(f"{args.config}: invalid config:\n{exc}")
            return EXIT_BAD_INPUT
    try:
        if args.storage is not None:
            reach_storage(args.storage, field="--storage")
    except StorageUnreachableError as exc:
        err(str(exc))
        return EXIT_FAILURE
    except StorageError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    done = clean.clean(cluster_spec=cluster_spec, storage=args.storage)
    for topic in done.topics:
        print(f"deleted topic {topic}")
    for group in done.groups:
        print(f"deleted group {group}")
    for path in done.dirs:
        print(f"removed {path}")
    if args.storage is not None:
        print(f"deleted {done.leases} expired lease(s) from {args.storage}")
    for what in done.left:
        print(f"left {what}")
    if not (done.topics or done.groups or done.dirs or done.leases):
        print("nothing to clean")
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `clean` to the `tuner` parser's subcommands."""
    c = sub.add_parser(
        "clean",
        help="remove what killed tuner processes left: topics, groups, temp dirs, expired leases",
        description="Delete the study topics of dead tuner processes of this machine (only "
        "under the tuner's prefix), the empty consumer groups under the prefix (on --config's "
        "cluster, the running `tuner broker` and the clusters of those topics), temp dirs no "
        "process uses, and with --storage the expired cluster leases of a shared study. Says "
        "what it removed.",
    )
    c.add_argument(
        "--config", type=Path, help="a study config: its cluster's address, prefix and security"
    )
    c.add_argument("--storage", help="a shared study's storage URL: drop its expired leases")
    c.set_defaults(handler=_clean)
