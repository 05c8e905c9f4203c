#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it.
# Used by the README and by .ci/run: one command, the same everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e '.[test]'  # test = platform + aws + gcp + test tools

# Debian packages: Chromium for the browser tests (driven by Playwright), shellcheck so
# actionlint also checks the workflows' run: scripts.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
# The machine simulator's sandboxes: a debootstrapped Debian root, nft rules per namespace.
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq $missing >/dev/null
fi

ruff check .
deptry .  # every imported package is declared (the SDK's in the base install; tests/test_installs.py checks that one alone)
# On pytest-xdist's workers: tests/support/xdist_groups.py says which tests must share a
# worker and puts each simulated platform's chain first (the flag keeps that order).
# TEST_WORKERS sets how many; by default two per core: the tests mostly wait (hubs, simulated
# VMs, Terraform; one worker per core kept ~1.1 of 2 cores busy) and the AWS and GCP chains
# take a worker each (python -m tests.bench.run suite_workers). `-n 0` runs in one process.
# The 25 slowest durations close every run's log, so CI says where the time goes.
workers="${TEST_WORKERS:-$(( 2 * $(nproc) ))}"
python -m pytest -n "$workers" --dist loadgroup --no-loadscope-reorder --durations=25 "$@"
