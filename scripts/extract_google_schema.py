"""Extract the hashicorp/google provider schema that tests/test_terraform_gcp.py checks against.

The published provider schema travels inside the prebuilt `cdktf-cdktf-provider-google`
package on PyPI: its jsii assembly (`.jsii`, in `_jsii/provider-google@VERSION.jsii.tgz`)
describes every resource's and data source's config struct, with nested blocks as
further structs, and names the provider version it was generated from. We keep only the
types the rendered GCP stack uses (whole schemas of those types, so that an unknown
attribute is detectable), in the shape of `terraform providers schema -json`:

    {"block": {"attributes": {name: {"type": ..., "required"|"optional": true}},
               "block_types": {name: {"nesting_mode": "single"|"list"|"map", "block": {...}}}}}

Usage (the package is big, install it in your own session only, never as a dependency):

    pip install --no-deps cdktf-cdktf-provider-google==16.12.1
    python scripts/extract_google_schema.py [--type google_x ...] [--out tests/data/google_provider_schema.json]

By default the types are those of the GCP stack rendered from shared/platform.example.yaml
(egress nat and none), plus any `--type`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import re
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "google_provider_schema.json"
PACKAGE = "cdktf-cdktf-provider-google"
# Every generated property documents its Terraform name: `{@link https://...#machine_type X#machine_type}`.
TF_NAME = re.compile(r"#([A-Za-z0-9_]+)\}")
TF_TYPE = re.compile(r"/docs/(resources|data-sources)/([a-z0-9_]+) (google_[a-z0-9_]+)\}")


def load_assembly() -> dict:
    """The package's jsii assembly, read from the installed wheel's tarball."""
    files = importlib.metadata.files(PACKAGE) or []
    tgz = next((f for f in files if str(f).endswith(".jsii.tgz")), None)
    if tgz is None:
        sys.exit(f"{PACKAGE} is not installed: pip install --no-deps {PACKAGE}")
    with tarfile.open(fileobj=io.BytesIO(Path(tgz.locate()).read_bytes())) as archive:
        return json.load(archive.extractfile("package/.jsii"))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _tf_name(prop: dict) -> str:
    found = TF_NAME.search(prop.get("docs", {}).get("remarks", ""))
    return found.group(1) if found else _snake(prop["name"])


class Converter:
    def __init__(self, types: dict) -> None:
        self.types = types

    def _is_struct(self, fqn: str) -> bool:
        return bool(self.types.get(fqn, {}).get("datatype"))

    def _strip_resolvable(self, typ: dict) -> dict:
        if "union" in typ:
            rest = [t for t in typ["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
            return rest[0] if len(rest) == 1 else {"primitive": "any"}
        return typ

    def _value_type(self, typ: dict) -> object:
        typ = self._strip_resolvable(typ)
        if "primitive" in typ:
            return {"string": "string", "number": "number", "boolean": "bool"}.get(typ["primitive"], "dynamic")
        if "collection" in typ:
            kind = {"array": "list", "map": "map"}[typ["collection"]["kind"]]
            return [kind, self._value_type(typ["collection"]["elementtype"])]
        return "dynamic"

    def _nested(self, typ: dict) -> tuple[str, str] | None:
        """(nesting mode, struct fqn) when the property is a nested block."""
        typ = self._strip_resolvable(typ)
        if "fqn" in typ and self._is_struct(typ["fqn"]):
            return "single", typ["fqn"]
        if "collection" in typ:
            element = self._strip_resolvable(typ["collection"]["elementtype"])
            if "fqn" in element and self._is_struct(element["fqn"]):
                return {"array": "list", "map": "map"}[typ["collection"]["kind"]], element["fqn"]
        return None

    def block(self, fqn: str) -> dict:
        attributes: dict[str, dict] = {}
        block_types: dict[str, dict] = {}
        for prop in self.types[fqn].get("properties", []):
            name = _tf_name(prop)
            nested = self._nested(prop["type"])
            if nested:
                mode, struct = nested
                block_types[name] = {"nesting_mode": mode, "block": self.block(struct)}
            else:
                flag = "optional" if prop.get("optional") else "required"
                attributes[name] = {"type": self._value_type(prop["type"]), flag: True}
        return {"attributes": dict(sorted(attributes.items())), "block_types": dict(sorted(block_types.items()))}


def index_types(types: dict) -> dict[tuple[str, str], str]:
    """(kind, terraform type) -> fqn of its config struct, kind 'resources' or 'data-sources'."""
    found = {}
    for fqn, spec in types.items():
        if spec.get("kind") != "class" or spec.get("base") not in (
            "cdktf.TerraformResource",
            "cdktf.TerraformDataSource",
        ):
            continue
        match = TF_TYPE.search(spec["docs"]["summary"])
        if match:
            found[(match.group(1), match.group(3))] = fqn + "Config"
    return found


def provider_version(assembly: dict, types: dict) -> str:
    for spec in types.values():
        if spec.get("base") == "cdktf.TerraformProvider":
            match = re.search(r"hashicorp/google/(\d+\.\d+\.\d+)/", spec["docs"]["summary"])
            if match:
                return match.group(1)
    raise SystemExit("no provider version found in the assembly")


def rendered_types() -> tuple[set[str], set[str]]:
    """Resource and data source types of the GCP stacks rendered from the example."""
    sys.path.insert(0, str(ROOT))
    from render.terraform_gcp import synthesize_gcp
    from tests.support.gcp_render import example_platforms

    resources: set[str] = set()
    data: set[str] = set()
    for platform in example_platforms():
        stack = json.loads(synthesize_gcp(platform))
        resources |= set(stack.get("resource", {}))
        data |= set(stack.get("data", {}))
    return resources, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--type", action="append", default=[], help="extra resource type to keep")
    parser.add_argument("--data-type", action="append", default=[], help="extra data source type to keep")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    assembly = load_assembly()
    types = assembly["types"]
    index = index_types(types)
    resources, data = rendered_types()
    resources |= set(args.type)
    data |= set(args.data_type)
    convert = Converter(types)
    missing = [name for name in resources if ("resources", name) not in index]
    missing += [name for name in data if ("data-sources", name) not in index]
    if missing:
        # Recorded, not fatal: the test then reports these types as unknown to the provider.
        print(f"not in the provider schema: {', '.join(sorted(missing))}", file=sys.stderr)

    schema = {
        "provider": "registry.terraform.io/hashicorp/google",
        "provider_version": provider_version(assembly, types),
        "source_package": PACKAGE,
        "source_package_version": assembly["version"],
        "extracted_by": "scripts/extract_google_schema.py",
        "provider_schema": {"block": convert.block("@cdktf/provider-google.provider.GoogleProviderConfig")},
        "resource_schemas": {
            name: {"block": convert.block(index[("resources", name)])}
            for name in sorted(resources)
            if ("resources", name) in index
        },
        "data_source_schemas": {
            name: {"block": convert.block(index[("data-sources", name)])}
            for name in sorted(data)
            if ("data-sources", name) in index
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, provider {schema['provider_version']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
