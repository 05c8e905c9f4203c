"""`platform bootstrap [PATH] --target aws|gcp [--auto-approve]`: run once by an admin.

Creates the Terraform state bucket and the CI trust (GitHub OIDC, a read-only plan
identity for pull requests and an apply identity for main in the protected environment),
rendered as Terraform like everything else and applied with local state kept in the
state dir (the bucket does not exist before). Exit codes as `platform apply`.
"""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import CommandError, UsageError, add_config_argument, load
from deploy.runtime import env

NEXT_STEPS = """
Next, in the GitHub repository {repository}:
  1. Settings > Environments: create `{environment}`, deployment branches: `main` only
     (add required reviewers if applies should wait for a person).
  2. Commit the workflows (`platform init` wrote them to .github/workflows/).{extra}
Then open a pull request that edits platform.yaml: CI comments with what would change.
"""


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "bootstrap", help="once per platform: state bucket and CI trust (GitHub OIDC, plan/apply roles)"
    )
    add_config_argument(parser)
    parser.add_argument("--target", choices=["aws", "gcp"], required=True)
    parser.add_argument("--state", metavar="DIR", help="state directory (default: .platform/<name>)")
    parser.add_argument("--auto-approve", action="store_true", help="apply without asking")
    parser.add_argument("--print", action="store_true", help="print the rendered Terraform JSON, apply nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy import cloud_ops
    from deploy.cli import terminal
    from deploy.cloud_stack import CloudStack
    from modules.ci import APPLY_ENVIRONMENT
    from render.bootstrap import BootstrapError, render_bootstrap

    platform = load(args)
    try:
        files = render_bootstrap(platform, args.target)
    except BootstrapError as exc:
        raise UsageError(str(exc)) from None
    (data,) = files.values()
    if args.print:
        sys.stdout.write(data.decode())
        return 0
    root = cloud_ops.state_dir_of(platform, args.state) / "bootstrap" / args.target
    stack = CloudStack(root, args.target, {"main.tf.json": data}, remote_backend=False)
    terminal.progress(f"terraform init (bootstrap, local state in {stack.workdir})")
    stack.init()
    terminal.progress("terraform plan")
    plan, document = stack.plan()
    from deploy.gitops.plan_summary import summarize

    summary = summarize(document, args.target)
    print(cloud_ops.describe_plan(summary))
    if plan.changes:
        if not args.auto_approve and not terminal.confirm(
            f"Create the state bucket and CI trust of {platform.name}? Type 'yes':", "yes"
        ):
            raise CommandError("not applied")
        terminal.progress("terraform apply")
        stack.apply(plan)
    stack.forget_plans()
    outputs = stack.outputs()
    for name, value in outputs.items():
        print(f"{name} = {value}")
    assert platform.ci is not None  # render_bootstrap checked
    extra = ""
    if args.target == "gcp":
        extra = (
            f"\n  3. Settings > Variables: {env.CI_WORKLOAD_IDENTITY_PROVIDER} = "
            f"{outputs.get('workload_identity_provider', '(see above)')}"
        )
    print(NEXT_STEPS.format(repository=platform.ci.repository, environment=APPLY_ENVIRONMENT, extra=extra))
    return 0
