"""The reaper: terminate the platform's machines that neither the hub nor the gateway knows.

A machine is an orphan when it carries this platform's tag, was launched by the machines
layer (it has a `role` tag; Terraform's own instances, the hub and the CI runner, have
none or `role = hub` and are never touched), is older than the grace period (a launch in
flight is not recorded yet) and its id is not among the known ones. A machine whose
launch time the cloud does not give is kept: the reaper only ends what it can date.
A stopped machine of the layer (GCE keeps an instance the guest powered off, e.g. by the
dead-man switch, as TERMINATED) is ended whether known or young: nothing starts it again.
With `roles`, only machines of those roles are judged: the ones the known ids account for
(the hub VM's unit gives the gateway's, scheduler and worker; notebook servers are the hub's).

Known ids come from the caller: `reap(..., known=callable)` asks for them after listing
the machines, so anything listed was launched before the known ids were read. The entry
point, meant for a periodic unit on the hub VM, reads them as JSON (a list of ids, or
`{"machine_ids": [...]}`) from a file or stdin:

    python -m deploy.cloud.reaper --platform oceanlab --region us-west-2 --known known.json \\
        [--grace 900] [--dry-run] [--endpoint-url URL]

Empty or malformed input is an error (exit 2) and terminates nothing: "I could not find
out" must never read as "nothing is known".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deploy.cloud.machines import HUB_ROLE, STOPPED, TAG_PLATFORM, TAG_ROLE, Machine, Machines, MachinesError

DEFAULT_GRACE_SECONDS = 15 * 60


@dataclass
class Reaped:
    terminated: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    young: list[str] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)  # the hub, instances the layer did not launch, other roles


def judge(machines: Iterable[Machine], known: set[str], now: datetime, grace_seconds: float,
          roles: Collection[str] | None = None) -> Reaped:
    """Sort the platform's machines into what to terminate and what to keep (and why).
    `roles`: the only roles judged (those whose machines `known` accounts for); None: all."""
    verdict = Reaped()
    for machine in machines:
        role = machine.tags.get(TAG_ROLE)
        if not role or role == HUB_ROLE or (roles is not None and role not in roles):
            verdict.not_ours.append(machine.id)
        elif machine.state == STOPPED:
            verdict.terminated.append(machine.id)
        elif machine.id in known:
            verdict.known.append(machine.id)
        elif machine.launched_at is None or (now - machine.launched_at).total_seconds() < grace_seconds:
            verdict.young.append(machine.id)
        else:
            verdict.terminated.append(machine.id)
    return verdict


def reap(machines: Machines, platform: str, known: Callable[[], Iterable[str]],
         grace_seconds: float = DEFAULT_GRACE_SECONDS, now: Callable[[], datetime] = lambda: datetime.now(UTC),
         dry_run: bool = False, roles: Collection[str] | None = None) -> Reaped:
    listed = machines.list({TAG_PLATFORM: platform})
    verdict = judge(listed, set(known()), now(), grace_seconds, roles)
    if verdict.terminated and not dry_run:
        machines.terminate(verdict.terminated)
    return verdict


class BadInput(ValueError):
    """The known ids could not be read."""


def read_known(text: str, where: str) -> set[str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"{where}: not JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    ids = document.get("machine_ids") if isinstance(document, dict) else document
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise BadInput(f'{where}: expected a list of machine ids or {{"machine_ids": [...]}}')
    return set(ids)


def _machines(args: argparse.Namespace) -> Machines:
    if args.cloud == "gcp":
        from deploy.cloud.gcp import GCPMachines, on_vm_arguments

        return GCPMachines(project=args.project, zone=args.zone, **on_vm_arguments())
    from deploy.cloud.aws import AWSMachines

    return AWSMachines(region=args.region, endpoint_url=args.endpoint_url)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.cloud.reaper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", required=True)
    parser.add_argument("--cloud", choices=("aws", "gcp"), default="aws")
    parser.add_argument("--region", help="aws: the platform's region")
    parser.add_argument("--endpoint-url", help="aws: another EC2 endpoint (tests)")
    parser.add_argument("--project", help="gcp: the platform's project")
    parser.add_argument("--zone", help="gcp: the zone its machines run in")
    parser.add_argument("--known", required=True, help="JSON file of the known machine ids ('-': stdin)")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS,
                        help=f"seconds a new machine is left alone (default {DEFAULT_GRACE_SECONDS})")
    parser.add_argument("--dry-run", action="store_true", help="say what would be terminated, terminate nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    needed = ("region",) if args.cloud == "aws" else ("project", "zone")
    missing = [f"--{name}" for name in needed if not getattr(args, name)]
    if missing:
        parser.error(f"--cloud {args.cloud} needs {' and '.join(missing)}")
    where = "stdin" if args.known == "-" else args.known
    try:
        text = sys.stdin.read() if args.known == "-" else Path(args.known).read_text()
        known = read_known(text, where)
    except (OSError, BadInput) as error:
        print(f"reaper: {error}; nothing terminated", file=sys.stderr)
        return 2
    try:
        verdict = reap(_machines(args), args.platform, lambda: known, args.grace, dry_run=args.dry_run)
    except MachinesError as error:
        print(f"reaper: {error}", file=sys.stderr)
        return 1
    verb = "would terminate" if args.dry_run else "terminated"
    for machine_id in verdict.terminated:
        print(f"{verb} {machine_id}")
    print(f"reaper: {args.platform}: {len(verdict.terminated)} {verb}, {len(verdict.known)} known, "
          f"{len(verdict.young)} younger than {args.grace:g} s, {len(verdict.not_ours)} not the layer's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
