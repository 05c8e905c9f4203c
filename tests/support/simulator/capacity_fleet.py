"""CreateFleet (type instant) under injected capacity errors, as EC2 answers it.

EC2 does not fail an instant fleet for want of capacity: it launches what it can from the
remaining overrides and lists each refused one in the reply's errorSet. So the proxy drops
the refused overrides from the request, lets moto launch the rest, and adds the errors to
moto's reply (or answers with errors only when nothing is left to launch).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

_CONFIG = re.compile(r"^LaunchTemplateConfigs\.(\d+)\.(.+)$")
_OVERRIDE = re.compile(r"^Overrides\.(\d+)\.(.+)$")


@dataclass
class FleetChoice:
    """One launch option of a fleet: a template, with one override of it (or none)."""
    template: dict[str, str]  # LaunchTemplateSpecification.* fields
    override: dict[str, str]  # Overrides.N.* fields, empty when the config has none


def choices(form: dict[str, str]) -> tuple[dict[str, str], list[FleetChoice]]:
    """(the request's other fields, its launch options in order)."""
    rest: dict[str, str] = {}
    templates: dict[int, dict[str, str]] = {}
    overrides: dict[int, dict[int, dict[str, str]]] = {}
    for key, value in form.items():
        config = _CONFIG.match(key)
        if not config:
            rest[key] = value
            continue
        index, field = int(config.group(1)), config.group(2)
        override = _OVERRIDE.match(field)
        if override:
            overrides.setdefault(index, {}).setdefault(int(override.group(1)), {})[override.group(2)] = value
        else:
            templates.setdefault(index, {})[field.removeprefix("LaunchTemplateSpecification.")] = value
    found = []
    for index in sorted(templates):
        options = overrides.get(index, {})
        for number in sorted(options) or [None]:
            found.append(FleetChoice(templates[index], options[number] if number is not None else {}))
    return rest, found


def rebuild(rest: dict[str, str], kept: list[FleetChoice]) -> dict[str, str]:
    """The request again, with only the kept options (configs and overrides renumbered)."""
    form = dict(rest)
    by_template: dict[tuple, list[dict[str, str]]] = {}
    for choice in kept:
        by_template.setdefault(tuple(sorted(choice.template.items())), []).append(choice.override)
    for config, (template, options) in enumerate(by_template.items(), start=1):
        for key, value in template:
            form[f"LaunchTemplateConfigs.{config}.LaunchTemplateSpecification.{key}"] = value
        for number, override in enumerate((o for o in options if o), start=1):
            for key, value in override.items():
                form[f"LaunchTemplateConfigs.{config}.Overrides.{number}.{key}"] = value
    return form


def _error_item(choice: FleetChoice, lifecycle: str, instance_type: str | None, zone: str | None) -> str:
    spec = "".join(f"<{_camel(k)}>{escape(v)}</{_camel(k)}>" for k, v in choice.template.items())
    override = "".join(f"<{_camel(k)}>{escape(v)}</{_camel(k)}>" for k, v in choice.override.items())
    message = (f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you "
               f"requested ({zone}).")
    return (f"<item><launchTemplateAndOverrides><launchTemplateSpecification>{spec}</launchTemplateSpecification>"
            f"<overrides>{override}</overrides></launchTemplateAndOverrides><lifecycle>{lifecycle}</lifecycle>"
            f"<errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>{escape(message)}</errorMessage></item>")


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def judge(form: dict[str, str], refused: Callable[[FleetChoice, bool], tuple[bool, str | None, str | None]]
          ) -> tuple[dict[str, str] | None, str]:
    """(the request to send to moto, or None when every option is refused; the errorSet items)."""
    spot = form.get("TargetCapacitySpecification.DefaultTargetCapacityType") == "spot"
    rest, options = choices(form)
    kept, errors = [], []
    for choice in options:
        is_refused, instance_type, zone = refused(choice, spot)
        if is_refused:
            errors.append(_error_item(choice, "spot" if spot else "on-demand", instance_type, zone))
        else:
            kept.append(choice)
    return (rebuild(rest, kept) if kept else None), "".join(errors)


def with_errors(moto_reply: bytes, errors: str) -> bytes:
    """moto's CreateFleet reply with the refused options' errors added."""
    if not errors:
        return moto_reply
    text = moto_reply.decode()
    return text.replace("</CreateFleetResponse>", f"<errorSet>{errors}</errorSet></CreateFleetResponse>").encode()


def errors_only(errors: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            f"<requestId>{uuid.uuid4()}</requestId><fleetId>fleet-{uuid.uuid4()}</fleetId>"
            f"<errorSet>{errors}</errorSet><fleetInstanceSet/></CreateFleetResponse>").encode()
