"""The VM spawner (aws) against a real moto server: one instance per notebook server, from
the profile's launch template, tagged, pinned to the zone of the user's home volume; the
server's token only in its secret (readable by that instance), never in user data; state
that a restarted hub reloads; stop terminates the instance and deletes the secret; the
home volume is the same one at the next start.

Real parts: moto (EC2, Secrets Manager), boto3, the machines layer, the rendered
`workers/<profile>.json` and `hub/platform.json`. Instances in moto do not boot (the
simulator e2e, tests/test_aws_notebook_e2e.py, runs them): here the JupyterHub side of the
spawner is driven directly, with a stand-in for the user and hub records it is given.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from types import SimpleNamespace

import pytest
from tornado import web

from deploy.cloud.aws import AWSMachines
from deploy.cloud.deadman import MACHINE_USER_DATA
from deploy.cloud.home_volumes import HOME_DEVICE, AWSHomeVolumes
from deploy.hub import vm_clouds
from deploy.hub.vm_spawner import VMSpawner
from render.validate import validate_text
from tests.support.vm_spawner_site import HUB_IP, PLATFORM, TOKEN, aws_spawner, ec2_described, secret_names


def _user_data(vm_site, instance_id: str) -> str:
    """The machine's own script, out of the dead-man switch's wrapper."""
    answer = vm_site.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    whole = base64.b64decode(answer["UserData"]["Value"]).decode()
    (carried,) = [line.split()[1] for line in whole.splitlines() if line.endswith(f"base64 -d > {MACHINE_USER_DATA}")]
    return whole + base64.b64decode(carried).decode()


def test_a_server_is_an_instance_of_its_profile_tagged_in_its_home_zone_with_its_token_only_in_its_secret(vm_site, aws):
    spawner = aws_spawner(vm_site, aws, profile="large")
    ip, port = asyncio.run(spawner.start())
    instance = ec2_described(vm_site, spawner.machine_id)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert {k: tags[k] for k in ("platform", "role", "user", "budget", "server")} == {
        "platform": PLATFORM, "role": "notebook", "user": "alice",
        "budget": vm_site.data["users"]["alice"]["budget"], "server": "alice"}
    template = json.loads((vm_site.workers / "large.json").read_text())
    assert instance["InstanceType"] == template["instance_type"]
    assert instance.get("InstanceLifecycle") != "spot"  # large allows spot; a notebook never uses it
    assert instance["IamInstanceProfile"]["Arn"].endswith(f"/{PLATFORM}-worker-none")
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [vm_site.notebooks_group]  # not the workers'
    assert (ip, port) == (instance["PrivateIpAddress"], 8888)

    volume = vm_site.ec2.describe_volumes(VolumeIds=[spawner.volume_id])["Volumes"][0]
    vtags = {t["Key"]: t["Value"] for t in volume["Tags"]}
    assert (vtags["user"], vtags["role"], vtags["mount-point"]) == ("alice", "home", "/home/alice")
    assert volume["Encrypted"] and volume["VolumeType"] == "gp3"
    assert volume["AvailabilityZone"] == instance["Placement"]["AvailabilityZone"] == spawner.zone
    assert instance["SubnetId"] == vm_site.subnets[spawner.zone]
    assert [(a["InstanceId"], a["Device"]) for a in volume["Attachments"]] == [(spawner.machine_id, HOME_DEVICE)]

    script = _user_data(vm_site, spawner.machine_id)
    assert TOKEN not in script
    assert "jupyterhub.singleuser" in script and "deploy.vm.notebook_server" in script
    assert f"http://{HUB_IP}:8000/hub/health" in script  # the dead-man switch asks the hub
    chosen = vm_site.data["users"]["alice"]["environments"][0]
    assert f"ENVIRONMENT=key-of-{chosen}\n" in script  # her environment's wheels, from the bucket
    secret_name = f"graticule/{PLATFORM}/machines/server-alice"
    secret = json.loads(vm_site.secrets.get_secret_value(SecretId=secret_name)["SecretString"])
    env = secret["env"]
    assert env["JUPYTERHUB_API_TOKEN"] == TOKEN
    assert env["JUPYTERHUB_API_URL"] == f"http://{HUB_IP}:8000/hub/api"  # through the hub's proxy, privately
    assert env["JUPYTERHUB_SERVICE_URL"].startswith("http://0.0.0.0:8888/")
    assert env["DASK_GATEWAY__ADDRESS"] == f"http://{HUB_IP}:8000/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == f"tls://{HUB_IP}:8786"
    assert (env["GRATICULE_PROFILE"], env["HOME"]) == ("large", "/home/alice")
    policy = vm_site.secrets.get_resource_policy(SecretId=secret_name)["ResourcePolicy"]
    assert spawner.machine_id in policy  # only that instance (and the hub) may read it
    asyncio.run(spawner.stop())


def test_state_survives_a_hub_restart_and_stop_terminates_the_instance_and_deletes_the_secret(vm_site, aws):
    spawner = aws_spawner(vm_site, aws)
    asyncio.run(spawner.start())
    state = spawner.get_state()
    assert state["machine_id"] == spawner.machine_id and state["volume_id"] == spawner.volume_id

    reloaded = aws_spawner(vm_site, aws)  # a restarted hub: a new spawner from the saved state
    reloaded.load_state(json.loads(json.dumps(state)))
    assert asyncio.run(reloaded.poll()) is None
    asyncio.run(reloaded.stop())
    assert ec2_described(vm_site, state["machine_id"])["State"]["Name"] in ("shutting-down", "terminated")
    assert f"graticule/{PLATFORM}/machines/server-alice" not in secret_names(vm_site)
    assert asyncio.run(reloaded.poll()) == 1
    reloaded.clear_state()
    assert reloaded.get_state() == {} and asyncio.run(reloaded.poll()) == 0


def test_the_next_server_gets_the_same_home_volume_in_its_zone(vm_site, aws):
    first = aws_spawner(vm_site, aws)
    asyncio.run(first.start())
    asyncio.run(first.stop())
    second = aws_spawner(vm_site, aws)
    asyncio.run(second.start())
    assert second.volume_id == first.volume_id and second.machine_id != first.machine_id
    volumes = vm_site.ec2.describe_volumes(Filters=[{"Name": "tag:user", "Values": ["alice"]},
                                                 {"Name": "tag:role", "Values": ["home"]}])["Volumes"]
    assert [v["VolumeId"] for v in volumes] == [first.volume_id]
    assert ec2_described(vm_site, second.machine_id)["Placement"]["AvailabilityZone"] == first.zone
    asyncio.run(second.stop())


def test_a_home_in_another_zone_pins_the_server_there(vm_site, aws):
    homes = AWSHomeVolumes(aws.region, PLATFORM, endpoint_url=aws.url)
    volume = homes.ensure("alice", "us-west-2b")  # made earlier, in the second zone
    spawner = aws_spawner(vm_site, aws)
    asyncio.run(spawner.start())
    assert spawner.volume_id == volume.id
    instance = ec2_described(vm_site, spawner.machine_id)
    assert (instance["Placement"]["AvailabilityZone"], instance["SubnetId"]) == ("us-west-2b",
                                                                                  vm_site.subnets["us-west-2b"])
    asyncio.run(spawner.stop())


def test_a_profile_not_granted_is_refused_before_anything_is_made(vm_site, aws):
    spawner = aws_spawner(vm_site, aws, user="bob", profile="large")
    with pytest.raises(web.HTTPError, match="profile 'large' is not available to bob"):
        asyncio.run(spawner.start())
    assert vm_site.ec2.describe_instances()["Reservations"] == []
    assert vm_site.ec2.describe_volumes(Filters=[{"Name": "tag:role", "Values": ["home"]}])["Volumes"] == []
    assert secret_names(vm_site) == []


def test_no_capacity_in_the_home_zone_fails_the_start_naming_the_zone_and_launches_nowhere_else(vm_site, aws):
    from tests.support.simulator.capacity import CapacityProxy

    with CapacityProxy(aws) as proxy:
        proxy.refuse(zone="us-west-2a")
        spawner = aws_spawner(vm_site, aws)
        spawner.machines = AWSMachines(aws.region, endpoint_url=proxy.url, platform=PLATFORM)
        with pytest.raises(web.HTTPError, match="alice's small server could not start in us-west-2a") as failed:
            asyncio.run(spawner.start())
    assert failed.value.status_code == 503 and "InsufficientInstanceCapacity" in failed.value.log_message
    assert vm_site.ec2.describe_instances()["Reservations"] == []  # not in us-west-2b, away from the home
    assert secret_names(vm_site) == []


def test_the_rendered_aws_hub_config_spawns_servers_on_vms_and_the_local_one_does_not(example_text, monkeypatch,
                                                                                       tmp_path):
    from jupyterhub.app import JupyterHub

    from render.hub_config import render_hub

    state = tmp_path / "state"
    for key, value in {"GRATICULE_STATE_DIR": str(state), "GRATICULE_HUB_URL": "http://127.0.0.1:18123",
                       "GRATICULE_GATEWAY_API_TOKEN": "t1", "GRATICULE_ADMIN_API_TOKEN": "t2"}.items():
        monkeypatch.setenv(key, value)

    def loaded(target: str):
        build = tmp_path / target
        text = example_text.replace("target: local ", f"target: {target:<6}")
        for relative, data in render_hub(validate_text(text), target).items():
            (build / relative).parent.mkdir(parents=True, exist_ok=True)
            (build / relative).write_bytes(data)
        app = JupyterHub()
        app.load_config_file(str(build / "hub" / "jupyterhub_config.py"))
        return app.config

    aws_config = loaded("aws")
    assert aws_config.JupyterHub.spawner_class == "deploy.hub.vm_spawner.VMSpawner"
    vm = aws_config.VMSpawner
    assert vm.platform_name == "oceanlab" and vm.outputs_file == str(state / "build" / "outputs.json")
    assert vm.templates_dir == str(state / "build" / "workers")
    assert vm.entitlements["bob"]["profiles"] == ["small"] and vm.budgets["alice"]
    assert vm.start_timeout >= 600 and "workdir_root" not in vm  # nothing on the hub's own disk
    assert aws_config.JupyterHub.slow_spawn_timeout == 0  # a start request is answered at once
    # servers are paid by the gateway spec's budgets; a spent stop budget's gateway may stop them
    assert vm.policy_file == str(tmp_path / "aws" / "gateway" / "platform.json")
    roles = {role["name"]: role["scopes"] for role in aws_config.JupyterHub.load_roles}
    assert "delete:servers" in roles["dask-gateway"]
    spawner = VMSpawner(config=aws_config, user=SimpleNamespace(name="alice"))
    assert spawner.profiles["large"]["cpu"] == 16 and spawner.start_timeout == vm.start_timeout
    local_config = loaded("local")
    assert local_config.JupyterHub.spawner_class == "deploy.hub.spawner.ProfileSpawner"
    assert local_config.ProfileSpawner.workdir_root == str(state / "users")
    assert "slow_spawn_timeout" not in local_config.JupyterHub
    roles = {role["name"]: role["scopes"] for role in local_config.JupyterHub.load_roles}
    assert "delete:servers" not in roles["dask-gateway"]  # local servers are not metered


def test_destroy_deletes_the_home_volumes_but_not_while_a_server_uses_one(vm_site, aws):
    from deploy.cloud.machines import MachinesError

    spawner = aws_spawner(vm_site, aws)
    asyncio.run(spawner.start())
    homes = AWSHomeVolumes(aws.region, PLATFORM, endpoint_url=aws.url)
    with pytest.raises(MachinesError, match=f"{spawner.volume_id} \\(attached to {spawner.machine_id}\\)"):
        homes.delete_all(timeout=0.2, every=0.05)
    asyncio.run(spawner.stop())
    other = AWSHomeVolumes(aws.region, "otherplatform", endpoint_url=aws.url).ensure("alice", "us-west-2a")
    assert homes.delete_all() == [spawner.volume_id]
    assert [v["VolumeId"] for v in vm_site.ec2.describe_volumes(
        Filters=[{"Name": "tag:role", "Values": ["home"]}])["Volumes"]] == [other.id]


def test_the_hubs_spawners_share_their_aws_clients_made_off_the_event_loop(vm_site, aws, monkeypatch):
    """As in the hub: no client given, AWS_ENDPOINT_URL (moto) from the environment."""
    first, second = aws_spawner(vm_site, aws), aws_spawner(vm_site, aws, user="carol")
    for spawner in (first, second):
        spawner._machines = spawner._homes = spawner._secrets = None  # the hub's: made on first use
    loop_thread = threading.get_ident()
    made_in = []
    real = vm_clouds.shared_client

    def recording(*args, **kwargs):
        made_in.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(vm_clouds, "shared_client", recording)
    asyncio.run(first.start())
    asyncio.run(second._connect())
    assert made_in and loop_thread not in made_in
    assert first.machines.ec2 is first.homes.ec2 is second.machines.ec2
    assert first.machine_secrets.client is second.machine_secrets.client
    assert ec2_described(vm_site, first.machine_id)["State"]["Name"] in ("pending", "running")
    asyncio.run(first.stop())


def test_destroy_ends_the_notebook_servers_and_their_secrets_first(vm_site, aws, example_text):
    from deploy.targets.cloud_teardown import end_machines

    spawner = aws_spawner(vm_site, aws)
    asyncio.run(spawner.start())
    said = []
    platform = validate_text(example_text.replace("target: local ", "target: aws   "))
    assert end_machines(platform, said.append, homes=False).servers == [spawner.machine_id]
    assert said == ["terminating 1 notebook server instance(s)"]
    assert ec2_described(vm_site, spawner.machine_id)["State"]["Name"] in ("shutting-down", "terminated")
    assert secret_names(vm_site) == []
    assert AWSHomeVolumes(aws.region, PLATFORM, endpoint_url=aws.url).delete_all(timeout=30) == [spawner.volume_id]
