"""The one wait-until-free loop of both clouds' homes (deploy/cloud/home_volumes.py:
`wait_free` for a server's start, `wait_all_free` for `platform destroy`), driven by a
sequence of answers as the clouds' describe calls would give them. The clouds' own
tests run it against moto (tests/test_vm_spawner.py) and the fake Compute API
(tests/test_gcp_home_disks.py)."""

from __future__ import annotations

import pytest

from deploy.cloud.home_volumes import HomeVolume, wait_all_free, wait_free
from deploy.cloud.machines import MachinesError

FREE = HomeVolume("vol-1", "us-west-2a", "available")
HELD = HomeVolume("vol-1", "us-west-2a", "in-use", attached_to="i-0abc")
DETACHING = HomeVolume("vol-1", "us-west-2a", "available", attached_to="i-0abc")  # EC2: state lags the attachment


def _answers(*answers):
    queue = list(answers)
    return lambda *_: queue.pop(0) if len(queue) > 1 else queue[0]


def test_wait_free_returns_the_volume_once_nothing_holds_it():
    assert wait_free(_answers(HELD, DETACHING, FREE), "home volume vol-1", timeout=30, every=0) == FREE


def test_wait_free_names_the_holder_after_the_timeout_and_a_volume_gone():
    with pytest.raises(MachinesError, match=r"home disk d is still in-use \(attached to i-0abc\) after 0 s"):
        wait_free(_answers(HELD), "home disk d", timeout=0, every=0)
    with pytest.raises(MachinesError, match="home volume vol-1 no longer exists"):
        wait_free(_answers(HELD, None), "home volume vol-1", timeout=30, every=0)


def test_wait_all_free_waits_for_each_leaves_out_the_gone_and_refuses_whole():
    other = HomeVolume("vol-2", "us-west-2b", "available")
    gone = HomeVolume("vol-3", "us-west-2b", "in-use", attached_to="i-0def")
    answers = {"vol-1": _answers(DETACHING, FREE), "vol-2": _answers(other), "vol-3": _answers(None)}
    freed = wait_all_free([HELD, other, gone], lambda v: answers[v.id](), "home volumes", timeout=30, every=0)
    assert freed == [FREE, other]
    with pytest.raises(MachinesError, match=r"home disks still in use by notebook servers: "
                                            r"vol-1 \(attached to i-0abc\); stop the servers"):
        wait_all_free([HELD, other], lambda v: v, "home disks", timeout=0, every=0)
