"""``tiaokuai person show|erase``: personal data and its erasure (crypto-shredding)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from domain.actor import Actor, Role
from domain.errors import DomainError


def _operator() -> Actor:
    # The CLI acts for the secretariat; the operator's login name is the actor id, so
    # the erasure event says who ran it.
    return Actor(f"cli:{getpass.getuser()}", Role.SECRETARIAT)


def cmd_person_show(args: argparse.Namespace) -> int:
    from api.routes.persons import person_public
    from workers.cli import _system

    system = _system(args, quiet=True)
    try:
        print(json.dumps(person_public(system, args.person_id), ensure_ascii=False, indent=2))
        return 0
    except DomainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        system.close()


def cmd_person_erase(args: argparse.Namespace) -> int:
    from workers.cli import _system

    system = _system(args, quiet=True)
    try:
        outcome = system.app.erase_person(
            person_id=args.person_id, reason=args.reason, actor=_operator()
        )
        erasure = outcome.aggregate
        print(
            f"erased {erasure.person_id} at {erasure.erased_at.isoformat()} "
            f"by {erasure.erased_by.principal_id} (store position {outcome.position})"
        )
        return 0
    except DomainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        system.close()


def add_person_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``person`` group to the ``tiaokuai`` subcommands."""
    person = sub.add_parser("person", help="personal data: show, erase").add_subparsers(
        dest="person_command", required=True
    )
    show = person.add_parser("show", help="a person's current data, or that it was erased")
    common(show)
    show.add_argument("person_id")
    show.set_defaults(func=cmd_person_show)
    erase = person.add_parser(
        "erase", help="erase a person: delete their key, record who erased them and why"
    )
    common(erase)
    erase.add_argument("person_id")
    erase.add_argument("--reason", required=True, help="why (e.g. the request's reference)")
    erase.set_defaults(func=cmd_person_erase)
