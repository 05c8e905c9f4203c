"""`platform users add|remove|list|passwd`: manage people in platform.yaml.

add/remove edit the file in place (comments, order and style kept), validate the
result, then write it atomically: this is how an admin prepares the pull request.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from deploy import yaml_edit
from deploy.cli.common import UsageError, add_config_argument, load, print_json
from deploy.files import write_atomic
from render import entitlements, loader
from render.validate import validate_text


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("users", help="add, remove or list the users in platform.yaml")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add a user (edits platform.yaml in place)")
    add.add_argument("name")
    add.add_argument("--group", "-g", action="append", required=True, help="a group (repeatable)")
    add.add_argument("--email")
    add.add_argument("--budget", help="a personal budget that wins over the groups'")
    add.add_argument("--file", dest="path", default="platform.yaml", help="platform.yaml to edit")
    add.set_defaults(func=run_add)

    remove = actions.add_parser("remove", help="remove a user (edits platform.yaml in place)")
    remove.add_argument("name")
    remove.add_argument("--file", dest="path", default="platform.yaml", help="platform.yaml to edit")
    remove.set_defaults(func=run_remove)

    listing = actions.add_parser("list", help="list users with their groups, budget and profiles")
    add_config_argument(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)

    passwd = actions.add_parser("passwd", help="set a user's password for the local target's hub")
    passwd.add_argument("name")
    passwd.add_argument("--file", dest="path", default="platform.yaml", help="platform.yaml to use")
    passwd.add_argument("--state", help="state directory (default .platform/<name>)")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    passwd.set_defaults(func=run_passwd)


def _read(path: str) -> str:
    return loader.read_text(Path(path), path)


def _write(path: str, text: str) -> None:
    validate_text(text, path)  # raises ConfigErrors: nothing is written
    write_atomic(Path(path), text, mode=Path(path).stat().st_mode & 0o777)


def run_add(args: argparse.Namespace) -> int:
    text = _read(args.path)
    platform = validate_text(text, args.path)
    if platform.user(args.name):
        raise UsageError(f"user {args.name!r} already exists in {args.path}")
    item = [f"- name: {args.name}"]
    if args.email:
        item.append(f"  email: {args.email}")
    item.append(f"  groups: [{', '.join(args.group)}]")
    if args.budget:
        item.append(f"  budget: {args.budget}")
    try:
        updated = yaml_edit.append_item(text, "users", item)
    except ValueError as exc:
        raise UsageError(f"cannot edit {args.path}: {exc}") from None
    _write(args.path, updated)
    print(f"added {args.name} to {', '.join(args.group)} in {args.path}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    text = _read(args.path)
    platform = validate_text(text, args.path)
    names = [user.name for user in platform.users]
    if args.name not in names:
        raise UsageError(f"no user {args.name!r} in {args.path}")
    updated = yaml_edit.remove_item(text, "users", names.index(args.name))
    _write(args.path, updated)
    print(f"removed {args.name} from {args.path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    platform = load(args)
    rows = [
        {
            "name": user.name,
            "email": user.email,
            "groups": list(user.groups),
            "admin": entitlements.is_admin(platform, user),
            "budget": entitlements.budget_of(platform, user),
            "profiles": entitlements.profiles_of(platform, user),
            "environments": entitlements.environments_of(platform, user),
        }
        for user in platform.users
    ]
    if args.json:
        print_json(rows)
        return 0
    from deploy.cli.terminal import print_table

    table = [
        [row["name"], ",".join(row["groups"]) + (" (admin)" if row["admin"] else ""), row["budget"] or "-",
         ",".join(row["profiles"]) or "-"]
        for row in rows
    ]
    print_table(["NAME", "GROUPS", "BUDGET", "PROFILES"], table, ["bold"])
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    from deploy.hub import passwords  # the local target's password store
    from deploy.runtime.state import state_dir_for

    platform = validate_text(_read(args.path), args.path)
    if not platform.user(args.name):
        raise UsageError(f"no user {args.name!r} in {args.path}: only platform.yaml users can log in")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"New password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the passwords do not match")
    if len(password) < 8:
        raise UsageError("a password needs at least 8 characters")
    state = state_dir_for(platform.name, args.state)
    passwords.set_password(state, args.name, password)
    print(f"password set for {args.name}")
    return 0
