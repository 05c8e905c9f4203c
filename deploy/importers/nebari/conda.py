"""Conda package specs -> PEP 508 requirements for uv.

`numpy=1.26` (conda's fuzzy pin) is `numpy==1.26.*`; `numpy 1.26.0` (match-spec with a
space) is exact; channels (`conda-forge::x`) and build strings (`x=1.0=py_0`) go.
Packages that exist only on conda are dropped; those PyPI knows under another name
are renamed. Both are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

# conda name -> PyPI name, where they differ.
PYPI_NAMES = {
    "python-graphviz": "graphviz",
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "cufflinks-py": "cufflinks",
    "msgpack-python": "msgpack",
    "pytables": "tables",
    "matplotlib-base": "matplotlib",
    "py-xgboost": "xgboost",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "dask-core": "dask",
    "ruamel_yaml": "ruamel.yaml",
    "pyqt": "PyQt5",
    "tensorflow-gpu": "tensorflow",
    "gdal": "GDAL",
    "libgdal": "GDAL",
}
# Packages with no PyPI equivalent (system libraries, other languages, conda's own tools).
CONDA_ONLY = {
    "nodejs",
    "graphviz",
    "cudatoolkit",
    "cuda-toolkit",
    "cudnn",
    "nccl",
    "openjdk",
    "git",
    "make",
    "gcc",
    "gxx",
    "compilers",
    "proj",
    "geos",
    "hdf5",
    "mkl",
    "openblas",
    "blas",
    "conda",
    "mamba",
    "ffmpeg",
    "nb_conda_kernels",
    "ca-certificates",
    "openssl",
    "zlib",
    "curl",
    "jq",
    "vim",
    "unzip",
    "zip",
    "bash",
    "eccodes",
    "r-base",
    "pip",
}
CONDA_ONLY_PREFIXES = ("r-", "lib", "cuda-", "_")

_NAME = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(.*)$")
_OPERATOR = re.compile(r"^(==|>=|<=|!=|~=|>|<)")


@dataclass(frozen=True)
class Converted:
    requirement: str | None  # None: dropped
    name: str  # the conda name
    version: str  # the conda version text ('' when none)
    note: str = ""  # what changed, for the report


def split(spec: str) -> tuple[str, str]:
    """'conda-forge::numpy=1.26=py_0' -> ('numpy', '=1.26=py_0')."""
    spec = spec.split("::", 1)[-1].strip()
    match = _NAME.match(spec)
    if not match:
        return spec, ""
    return match.group(1), match.group(2).strip()


def convert(spec: str) -> Converted:
    name, rest = split(spec)
    lowered = name.lower()
    if lowered in CONDA_ONLY or lowered.startswith(CONDA_ONLY_PREFIXES):
        return Converted(None, name, rest, "conda-only package (no PyPI equivalent)")
    pypi = PYPI_NAMES.get(lowered, name)
    notes = [f"PyPI name {pypi!r}"] if pypi != name else []
    version, version_note = _version(rest)
    if version_note:
        notes.append(version_note)
    text = f"{pypi}{version}"
    try:
        Requirement(text)
    except InvalidRequirement:
        text = pypi
        notes.append(f"version {rest!r} not expressible in PEP 440: left unpinned")
    return Converted(text, name, rest, "; ".join(notes))


def _version(rest: str) -> tuple[str, str]:
    """conda version text -> (PEP 440 specifier, note)."""
    if not rest or rest == "*":
        return "", ""
    if rest.startswith("[") or "|" in rest:
        return "", f"version {rest!r} not expressible in PEP 440: left unpinned"
    note = ""
    if rest.startswith("=") and not rest.startswith("=="):
        version, _, build = rest[1:].partition("=")
        note = f"build string {build!r} dropped" if build else ""
        return f"=={_fuzzy(version)}", note
    if " " in rest and not _OPERATOR.match(rest):  # match-spec: 'VERSION BUILD'
        version, _, build = rest.partition(" ")
        note = f"build string {build.strip()!r} dropped"
        rest = version
    parts = []
    for part in rest.replace(" ", "").split(","):
        if _OPERATOR.match(part):
            operator = _OPERATOR.match(part).group(1)  # type: ignore[union-attr]
            value = part[len(operator) :]
            if operator == "==" and "=" in value:  # '==1.2=build'
                value, _, build = value.partition("=")
                note = f"build string {build!r} dropped"
            parts.append(operator + _star(value))
        else:
            parts.append("==" + _star(part))
    return ",".join(parts), note


def _fuzzy(version: str) -> str:
    """conda's `=1.2` matches 1.2 and every 1.2.x: PEP 440 says `==1.2.*`."""
    version = version.rstrip("*").rstrip(".")
    return f"{version}.*"


def _star(version: str) -> str:
    """'1.2*' -> '1.2.*' (PEP 440 wants the dot before the star)."""
    if version.endswith("*") and not version.endswith(".*"):
        return version[:-1].rstrip(".") + ".*"
    return version


def python_minor(rest: str) -> str | None:
    """The 'X.Y' of a python pin such as '==3.11.6', '=3.10' or '>=3.9'."""
    match = re.search(r"(\d+)\.(\d+)", rest)
    return f"{match.group(1)}.{match.group(2)}" if match else None
