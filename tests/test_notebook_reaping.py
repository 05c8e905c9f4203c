"""The hub VM's reaper keeps the notebook servers' machines the hub knows: read from a real
JupyterHub database (JupyterHub's own ORM made it) where the rendered hub config keeps it,
against a moto server. A server's machine the hub no longer runs is an orphan like any
other; when the hub's database cannot be read, every notebook machine is kept."""

from __future__ import annotations

from deploy.cloud.aws import AWSMachines
from deploy.cloud.machines import MachineSpec
from deploy.gateway import reaping
from deploy.runtime.state import Layout
from deploy.vm import servers_in_use
from deploy.vm.settings import VmSettings
from tests.support.reaper_fleet import PLATFORM, TEMPLATE, gateway_database, instance_states


def _notebook(machines: AWSMachines, name: str) -> str:
    spec = MachineSpec(name=name, template=TEMPLATE, tags={"platform": PLATFORM, "role": "notebook", "user": name,
                                                           "budget": "ocean", "server": name})
    return machines.launch(spec).id


def _hub_database(path, running: dict[str, str], stopped: dict[str, str]) -> str:
    """JupyterHub's tables: users whose default server runs on a machine, and users whose
    server stopped (JupyterHub clears the server; a stale state must not count)."""
    from jupyterhub import orm

    url = f"sqlite:///{path}"
    session = orm.new_session_factory(url)()
    for user, machine_id in {**running, **stopped}.items():
        record = orm.User(name=user)
        session.add(record)
        session.commit()
        spawner = orm.Spawner(user_id=record.id, name="", state={"machine_id": machine_id, "zone": "us-west-2a"})
        if user in running:
            spawner.server = orm.Server(ip="10.0.1.20", port=8888, base_url=f"/user/{user}/")
        session.add(spawner)
        session.commit()
    session.close()
    return url


def test_the_hub_knows_the_machines_of_its_running_servers_only(tmp_path):
    url = _hub_database(tmp_path / "jupyterhub.sqlite", {"alice": "i-0aaa"}, {"bob": "i-0bbb"})
    assert servers_in_use.machine_ids(url) == {"i-0aaa"}


def test_one_pass_keeps_the_running_servers_machines_and_ends_the_stopped_ones(fleet, tmp_path):
    moto, machines, ids = fleet
    ids["alice"], ids["bob"] = _notebook(machines, "alice"), _notebook(machines, "bob")
    settings = VmSettings(PLATFORM, moto.region, "bucket", "/graticule/lab", tmp_path / "state", "/dev/xvdf")
    layout = Layout(settings.state_dir)
    layout.gateway.mkdir(parents=True)
    layout.hub.mkdir(parents=True)
    gateway_database(layout.gateway / "gateway.sqlite", ids)
    url = _hub_database(layout.hub / "jupyterhub.sqlite", {"alice": ids["alice"]}, {"bob": ids["bob"]})
    assert url == servers_in_use.hub_database(settings.state_dir)  # where the rendered hub config keeps it

    verdict = reaping.reap_once(settings, machines, grace=0)
    assert verdict is not None and sorted(verdict.terminated) == sorted([ids["orphan"], ids["bob"]])
    states = instance_states(moto, ids)
    assert states["alice"] == "running" and states["known"] == "running"


def test_an_unreadable_hub_database_keeps_every_notebook_machine(fleet, tmp_path, capsys):
    moto, machines, ids = fleet
    ids["alice"] = _notebook(machines, "alice")
    settings = VmSettings(PLATFORM, moto.region, "bucket", "/graticule/lab", tmp_path / "state", "/dev/xvdf")
    Layout(settings.state_dir).gateway.mkdir(parents=True)
    gateway_database(Layout(settings.state_dir).gateway / "gateway.sqlite", ids)

    verdict = reaping.reap_once(settings, machines, grace=0)  # no hub database at all
    assert verdict is not None and verdict.terminated == [ids["orphan"]]  # the gateway's orphan still goes
    assert instance_states(moto, ids)["alice"] == "running"
    assert "notebook servers kept" in capsys.readouterr().out
