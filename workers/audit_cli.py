"""``tiaokuai audit verify`` and ``tiaokuai audit checkpoint``: the hash chain from the shell.

``add_integrity_commands(audit_subparsers, common)`` adds both to the ``audit`` group of
``workers/cli.py``; ``common`` adds the --store/--bus/--data-dir options.

- ``verify [--against CHECKPOINT] [--json]`` recomputes the chain, then checks every
  snapshot against the fold of its aggregate's events; exit 0 when both hold, 1 when
  either does not (the first failing position, each bad snapshot), 2 on a usage error.
- ``checkpoint`` seals what is pending, records the head and prints it; the last line
  is the checkpoint (``tiaokuai-checkpoint:<position>:<hex>``) to keep outside.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from infra.audit import integrity_report, verify_snapshots
from infra.integrity import Checkpoint, system_sealer


def _checkpoint(text: str) -> Checkpoint:
    try:
        return Checkpoint.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from workers.cli import _system

    system = _system(args, quiet=True)
    try:
        if args.json:
            body = integrity_report(system, against=args.against)
            print(json.dumps(body, indent=2))
            return 0 if body["ok"] else 1
        report = system_sealer(system).verify(against=args.against)
        snapshots = verify_snapshots(system)
    finally:
        system.close()
    ok = report.ok and snapshots.ok
    print(
        f"verified {report.checked} sealed events; chain head: position "
        f"{report.head_position} hash {report.head_hash}"
    )
    if report.against:
        state = "matches" if report.ok else "checked against"
        print(f"{state} {report.against}")
    print(f"stored after the last seal (not yet sealed): {report.unsealed}")
    print(
        f"snapshots: {snapshots.checked} (of {snapshots.aggregates} aggregates) checked "
        f"against their events; {len(snapshots.mismatches)} differ"
    )
    for bad in snapshots.mismatches:
        print(
            f"snapshot: FAILED: {bad.aggregate_type} {bad.aggregate_id} version {bad.version}: "
            f"{bad.detail}"
        )
    failure = report.first_failure
    if failure is None:
        print("integrity: ok" if ok else "integrity: events ok, snapshots FAILED")
        return 0 if ok else 1
    print(f"integrity: FAILED at position {failure.position} ({failure.kind}): {failure.detail}")
    return 1


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from workers.cli import _system

    system = _system(args, quiet=True)
    try:
        sealer = system_sealer(system)
        sealed = sealer.seal_pending()
        checkpoint = sealer.checkpoint()
    finally:
        system.close()
    print(f"sealed {sealed} pending events; head position {checkpoint.position}")
    print("keep this checkpoint outside the system; verify --against it later:")
    print(checkpoint)
    return 0


def add_integrity_commands(
    audit_subparsers: Any, common: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add ``verify`` and ``checkpoint`` to the ``audit`` subcommands."""
    verify = audit_subparsers.add_parser(
        "verify",
        help="recompute the hash chain over the stored events; exit 1 at the first failure",
    )
    common(verify)
    verify.add_argument(
        "--against",
        type=_checkpoint,
        metavar="CHECKPOINT",
        help="a checkpoint kept outside (tiaokuai-checkpoint:<position>:<hex>); "
        "catches even a rewrite of the whole chain before it",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=cmd_audit_verify)
    checkpoint = audit_subparsers.add_parser(
        "checkpoint",
        help="seal what is pending and print the head hash with its position (last line)",
    )
    common(checkpoint)
    checkpoint.set_defaults(func=cmd_audit_checkpoint)
