"""Command line: ``python -m yardmaster worker module:attr [options]``.

The target names a :class:`~yardmaster.worker.Worker` object (``myapp.tasks:worker``) or a
callable that returns one (``myapp.tasks:make_worker``). The current directory is put on
``sys.path`` first, as ``python -m`` users expect. Options given on the command line override
the Worker's own settings. Exit status: 0 after a graceful shutdown (SIGTERM/SIGINT), 1 when the
worker stopped on an error, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import List, Optional, Union

from . import __version__
from .errors import YardmasterError
from .worker import Worker

log = logging.getLogger("yardmaster.cli")


def load_worker(target: str) -> Worker:
    """Import ``module:attr`` (attr may be dotted) and return the Worker it names.

    Raises:
        ValueError: the target is malformed or does not name a Worker.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected module:attribute, got {target!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Worker) and callable(obj):
        obj = obj()
    if not isinstance(obj, Worker):
        raise ValueError(f"{target} is a {type(obj).__name__}, not a yardmaster.Worker")
    return obj


def prefetch_arg(text: str) -> Union[str, int]:
    """argparse type of ``--prefetch``: ``auto`` or an integer >= 0."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"prefetch must be 'auto' or an integer >= 0 (got {text!r})")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m yardmaster`` argument parser (argparse exits 2 on a usage error)."""
    parser = argparse.ArgumentParser(
        prog="python -m yardmaster",
        description="Yardmaster Python SDK command line.",
        epilog="The server is found through --server or YM_URL (default http://127.0.0.1:7433).")
    parser.add_argument("--version", action="version", version=f"yardmaster-python {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    w = sub.add_parser(
        "worker", help="run a Worker defined in your code",
        description="Run a yardmaster.Worker until SIGTERM or SIGINT, then shut down "
                    "gracefully: stop leasing, let running jobs finish within the grace "
                    "period, hand the rest back for immediate re-delivery, exit 0.")
    w.add_argument("target", help="module:attribute naming a Worker (or a function returning one)")
    w.add_argument("--queues", help="comma-separated queues, replacing the Worker's own")
    w.add_argument("--concurrency", type=int, help="handler threads")
    w.add_argument("--prefetch", type=prefetch_arg, metavar="auto|N",
                   help="jobs leased ahead of free slots: 'auto' (enough to cover the lease "
                        "round trip; the Worker's default) or N >= 0 (0: off); handed back at "
                        "shutdown")
    w.add_argument("--poll-wait-ms", type=int,
                   help="long-poll wait of a lease request when nothing is ready (0..30000, "
                        "default 10000)")
    w.add_argument("--server", help="server URL (default: the Worker's, else YM_URL)")
    w.add_argument("--lease-ms", type=int, help="lease length asked for and extended by heartbeats")
    w.add_argument("--shutdown-grace", type=float, help="seconds running jobs get at shutdown")
    w.add_argument("--log-level", default=os.environ.get("YM_LOG_LEVEL", "INFO"),
                   help="DEBUG, INFO, WARNING or ERROR (default INFO, or YM_LOG_LEVEL)")
    return parser


def run_worker(args: argparse.Namespace) -> int:
    """Run the worker named on the command line; returns the exit status."""
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        worker = load_worker(args.target)
    except (ValueError, ImportError, AttributeError) as e:
        print(f"python -m yardmaster worker: cannot load {args.target}: {e}", file=sys.stderr)
        return 2
    try:
        if args.queues:
            worker.set_queues(args.queues)
        if args.concurrency is not None:
            worker.concurrency = args.concurrency
        if args.prefetch is not None:
            worker.prefetch = None if args.prefetch == "auto" else args.prefetch
        if args.poll_wait_ms is not None:
            worker.poll_wait_ms = args.poll_wait_ms
        if args.server:
            worker.url = args.server.rstrip("/")
        if args.lease_ms is not None:
            worker.lease_ms = args.lease_ms
        if args.shutdown_grace is not None:
            worker.shutdown_grace = args.shutdown_grace
        worker.run()
        status = 0
    except ValueError as e:
        print(f"python -m yardmaster worker: {e}", file=sys.stderr)
        return 2
    except YardmasterError as e:
        # A refusal retrying cannot fix (e.g. an invalid queue name); the worker has already
        # shut down gracefully.
        log.error("worker stopped: %s", e)
        status = 1
    if worker.abandoned_handlers:
        # Handler threads that outlived the grace period would keep the interpreter from
        # exiting (executor threads are joined at exit); their jobs were already handed back.
        log.warning("exiting with %d handler(s) still running", worker.abandoned_handlers)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m yardmaster``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "worker":
        return run_worker(args)
    parser.print_help()
    return 2
