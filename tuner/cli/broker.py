"""`tuner broker up|status|down`: detached brokers, one per port, optionally behind a network
profile."""

from __future__ import annotations

import argparse

from tuner import broker
from tuner.cli import clean as cli_clean
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, broker_failed, err
from tuner.cli.render import render_secured
from tuner.config import NetworkSpec, describe_path
from tuner.config.checks import network_problems
from tuner.config.topology import version_problem


def _network_arg(args: argparse.Namespace) -> NetworkSpec | None:
    """The profile `--rtt-ms/--jitter-ms/--bandwidth-mbit` ask for (None: none given)."""
    if args.rtt_ms is None and args.jitter_ms is None and args.bandwidth_mbit is None:
        return None
    return NetworkSpec(
        rtt_ms=args.rtt_ms or 0.0,
        jitter_ms=args.jitter_ms or 0.0,
        bandwidth_mbit=args.bandwidth_mbit,
    )


def _broker_up(args: argparse.Namespace) -> int:
    network = _network_arg(args)
    problems = [] if network is None else network_problems(network, "--")
    if args.kafka_version is not None and (problem := version_problem(args.kafka_version)):
        problems.append(f"--kafka-version: {problem}")
    if problems:
        err("invalid network profile:\n" + "\n".join(problems))
        return EXIT_BAD_INPUT
    try:
        info, started = broker.up(
            port=args.port, network=network, secure=args.secure, brokers=args.brokers,
            kafka_version=args.kafka_version,
        )  # fmt: skip
    except broker.BrokerError as exc:
        return broker_failed(exc)
    path = describe_path(info.network)
    if not started and info.network != network:
        err(
            f"already up at {info.bootstrap_servers} (pid {info.pid}) with another network "
            f"profile ({path}); `tuner broker down --port {args.port}` first"
        )
        return EXIT_BAD_INPUT
    if not started and info.brokers != args.brokers:
        err(
            f"already up at {info.bootstrap_servers} with {info.brokers} broker(s); "
            f"`tuner broker down --port {args.port}` first"
        )
        return EXIT_BAD_INPUT
    if not started and args.kafka_version not in {None, info.kafka_version}:
        err(
            f"already up at {info.bootstrap_servers} running Kafka "
            f"{info.kafka_version or 'of an unrecorded release'}; "
            f"`tuner broker down --port {args.port}` first"
        )
        return EXIT_BAD_INPUT
    if started:
        print(f"Kafka {info.kafka_version} is up at {info.bootstrap_servers} (pid {info.pid})")
    else:
        print(f"already up at {info.bootstrap_servers} (pid {info.pid})")
    if info.nodes:
        print(_nodes(info))
    print(f"network: {path}")
    print(f"bootstrap_servers: {info.bootstrap_servers}")
    if (secured := render_secured(info)) is not None:
        print(secured)
    elif args.secure:
        err("the running broker is not secured: `tuner broker down`, then `up --secure`")
        return EXIT_BAD_INPUT
    return EXIT_OK


def _broker_status(args: argparse.Namespace) -> int:
    infos = broker.running() if args.port is None else [i for i in [broker.status(args.port)] if i]
    if not infos:
        print("down" if args.port is None else f"down on port {args.port}")
        return EXIT_FAILURE
    code = EXIT_OK
    for info in infos:
        if not broker.answers(info.bootstrap_servers):
            where = f"{info.bootstrap_servers} (pid {info.pid})"
            print(f"not answering at {where}; see {info.log_path}")
            code = EXIT_FAILURE
            continue
        print(
            f"up at {info.bootstrap_servers} (pid {info.pid}, Kafka "
            f"{info.kafka_version or 'release not recorded'}); "
            f"network: {describe_path(info.network)}"
        )
        if info.nodes:
            print(_nodes(info))
        if (secured := render_secured(info)) is not None:
            print(secured)
    return code


def _nodes(info: broker.BrokerInfo) -> str:
    """`brokers: 1 at 127.0.0.1:29092 (pid 10), …`: the ids `trial.faults` names."""
    listed = ", ".join(f"{n.node_id} at 127.0.0.1:{n.port} (pid {n.pid})" for n in info.nodes)
    return f"brokers: {listed}; controller pid {info.pid}"


def _broker_down(args: argparse.Namespace) -> int:
    stopped = broker.down(args.port)
    if not stopped:
        print("was not running" if args.port is None else f"was not running on port {args.port}")
    for info in stopped:
        print(f"stopped the broker at {info.bootstrap_servers}")
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `broker` and its actions, and `clean` (what killed runs left), to the `tuner`
    parser's subcommands."""
    b = sub.add_parser(
        "broker",
        help="run local Apache Kafka (KRaft) brokers or clusters for trials and tests",
        description="Start, check or stop Apache Kafka brokers on 127.0.0.1, one per port.",
    )
    bsub = b.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = bsub.add_parser("up", help="start the broker and leave it running")
    up.add_argument("--port", type=int, default=broker.DEFAULT_PORT, help="listener port (9092)")
    up.add_argument("--secure", action="store_true", help="also SASL_SSL on port+1, SSL on port+2")
    up.add_argument(
        "--brokers", type=int, default=1, choices=range(1, broker.MAX_BROKERS + 1),
        metavar="N", help="a cluster of N brokers on port…port+N-1 and a KRaft controller (1)",
    )  # fmt: skip
    up.add_argument(
        "--kafka-version", metavar="X.Y.Z",
        help=f"the Apache Kafka release to run (default {broker.KAFKA_VERSION}, or KAFKA_HOME's; "
        f"tested: {', '.join(broker.TESTED_VERSIONS)})",
    )  # fmt: skip
    up.add_argument("--rtt-ms", type=float, help="clients reach the broker with this round trip")
    up.add_argument("--jitter-ms", type=float, help="spread of the round trip (± half each way)")
    up.add_argument("--bandwidth-mbit", type=float, help="cap each direction at this bandwidth")
    up.set_defaults(handler=_broker_up)
    status = bsub.add_parser("status", help="exit 0 if the broker (every one) answers")
    status.add_argument("--port", type=int, help="only the broker on this port (default: all)")
    status.set_defaults(handler=_broker_status)
    down = bsub.add_parser("down", help="stop the broker and delete its data")
    down.add_argument("--port", type=int, help="only the broker on this port (default: all)")
    down.set_defaults(handler=_broker_down)
    cli_clean.add_commands(sub)
