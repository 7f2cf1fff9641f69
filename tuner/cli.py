"""The `tuner` command: parses, calls the library, prints, and sets the exit code.

Exit codes: 0 ok, 1 the work failed, 2 bad input (config, arguments, or a setup the tool
cannot use). Only this module prints; the library logs and raises.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from tuner import __version__, broker

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

Handler = Callable[[argparse.Namespace], int]


def _err(message: str) -> None:
    print(f"tuner: {message}", file=sys.stderr)


# --- tuner broker ---------------------------------------------------------------------------


def _broker_up(args: argparse.Namespace) -> int:
    try:
        info, started = broker.up(port=args.port)
    except broker.BrokerError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    if started:
        print(f"Kafka {broker.KAFKA_VERSION} is up at {info.bootstrap_servers} (pid {info.pid})")
    else:
        print(f"already up at {info.bootstrap_servers} (pid {info.pid})")
    print(f"bootstrap_servers: {info.bootstrap_servers}")
    return EXIT_OK


def _broker_status(args: argparse.Namespace) -> int:
    info = broker.status()
    if info is None:
        print("down")
        return EXIT_FAILURE
    if not broker.answers(info.bootstrap_servers):
        print(f"not answering at {info.bootstrap_servers} (pid {info.pid}); see {info.log_path}")
        return EXIT_FAILURE
    print(f"up at {info.bootstrap_servers} (pid {info.pid})")
    return EXIT_OK


def _broker_down(args: argparse.Namespace) -> int:
    info = broker.down()
    print("was not running" if info is None else f"stopped the broker at {info.bootstrap_servers}")
    return EXIT_OK


# --- the parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuner",
        description="Load-test and tune Kafka consumers (aiokafka) against a real cluster.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log everything; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser(
        "broker",
        help="run a local single-node Apache Kafka (KRaft) for trials and tests",
        description="Start, check or stop the embedded Apache Kafka broker on 127.0.0.1.",
    )
    bsub = b.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = bsub.add_parser("up", help="start the broker and leave it running")
    up.add_argument("--port", type=int, default=broker.DEFAULT_PORT, help="listener port (9092)")
    up.set_defaults(handler=_broker_up)
    bsub.add_parser("status", help="exit 0 if the broker answers").set_defaults(
        handler=_broker_status
    )
    bsub.add_parser("down", help="stop the broker and delete its data").set_defaults(
        handler=_broker_down
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
