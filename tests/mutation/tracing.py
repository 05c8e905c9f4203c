"""A pytest plugin (`-p tests.mutation.tracing`) that records which tests run which lines
of the mutated modules, so each mutant is judged by the tests that reach it only.

`MUTATION_TRACE_FILES`: the absolute paths to watch (os.pathsep-separated);
`MUTATION_TRACE_OUT`: where to write {test node id: {path: [lines]}} as JSON. Lines run
while modules are imported (class bodies, module constants) land under "(import)".
"""

from __future__ import annotations

import json
import os
import sys
import threading

import pytest

IMPORT = "(import)"
_files = set(filter(None, os.environ.get("MUTATION_TRACE_FILES", "").split(os.pathsep)))
_current = IMPORT
_hits: dict[str, dict[str, set[int]]] = {}


def _record(frame) -> None:
    _hits.setdefault(_current, {}).setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)


def _local(frame, event, _arg):
    if event == "line":
        _record(frame)
    return _local


def _global(frame, _event, _arg):
    if frame.f_code.co_filename not in _files:
        return None  # no per-line tracing anywhere else: the run stays fast
    _record(frame)
    return _local


if _files:
    sys.settrace(_global)
    threading.settrace(_global)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _current
    _current = item.nodeid
    _hits.setdefault(_current, {})  # listed even when it runs no watched line
    yield
    _current = IMPORT


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("MUTATION_TRACE_OUT")
    if out:
        data = {test: {path: sorted(lines) for path, lines in files.items()} for test, files in _hits.items()}
        with open(out, "w") as handle:
            json.dump(data, handle)
