"""The fake Compute API in a process of its own (benchmarks: the client's threads and the
fake's then do not share one interpreter lock).

    python -m tests.support.gce.serve [PROJECT]   # prints its URL, serves until stdin closes

`fake_compute_process()` starts it and stops it by PID; `tally(url)` is its request count
by discovery method id.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

from tests.support.gce.server import TALLY_PATH, running_fake_compute


@contextlib.contextmanager
def fake_compute_process(project: str = "oceanlab-prod") -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.support.gce.serve", project],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake Compute API did not start (said {url!r})")
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def tally(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + TALLY_PATH, timeout=30) as answer:
        return json.loads(answer.read())


if __name__ == "__main__":
    with running_fake_compute(sys.argv[1] if len(sys.argv) > 1 else "oceanlab-prod") as fake:
        print(fake.url, flush=True)
        sys.stdin.read()  # until the parent closes it
