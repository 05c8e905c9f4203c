"""A cluster's machine secret past what one Secrets Manager resource policy can name
(deploy.cloud.machine_secrets, deploy.gateway.secret_shards), against a real moto server.

Where one policy breaks: Secrets Manager takes at most 20,480 characters of policy
(PutResourcePolicy's ResourcePolicy, "Length Constraints: Maximum length of 20480"; the
same in botocore's model), which our policy reaches at 450 instances with EC2's 19-character
ids. Past that, a cluster reads its secret from shards of at most that many instances each.
moto neither checks the length nor enforces policies: the documents are checked as written.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.db_base import JobStatus

from deploy.cloud.machine_secrets import POLICY_MAX_CHARS, MachineSecrets, capacity, policy_text, shard_key
from deploy.cloud.machines import MachinesError
from deploy.gateway.secret_shards import STATE_KEY, TAG_SHARD, SecretShards
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.vm_gateway import aws_backend, drive_start, ec2_instance, user_data, user_with

PLATFORM = "oceanlab"


def _ids(count: int, start: int = 0) -> list[str]:
    """EC2 instance ids of the long (17 hex digits) form."""
    return [f"i-{n:017x}" for n in range(start, start + count)]


@pytest.fixture
def secrets(moto_server):  # noqa: F811
    moto_server.reset()
    return MachineSecrets(moto_server.region, PLATFORM, client=moto_server.client("secretsmanager"))


def _readers(secrets: MachineSecrets, key: str) -> tuple[set[str], int]:
    """(the instance ids the secret's policy lets read it, the policy's length)."""
    text = secrets.client.get_resource_policy(SecretId=secrets.name(key))["ResourcePolicy"]
    (statement,) = json.loads(text)["Statement"]
    arns = statement["Condition"]["ArnNotLike"].get("ec2:SourceInstanceARN", [])
    return {arn.rsplit("/", 1)[1] for arn in arns}, len(text)


def _secret_keys(secrets: MachineSecrets) -> set[str]:
    prefix = secrets.name("")
    return {s["Name"][len(prefix):] for s in secrets.client.list_secrets()["SecretList"]}


def test_one_policy_names_at_most_449_instances_and_more_are_refused_clearly(secrets):
    most = capacity(PLATFORM)
    assert most == 449  # with the compact JSON we send; 439 with json.dumps' default separators
    assert len(policy_text(PLATFORM, _ids(most))) <= POLICY_MAX_CHARS < len(policy_text(PLATFORM, _ids(most + 1)))
    assert capacity("p" * 31) == 448  # the longest platform name makes the hub role's ARN longest

    secrets.put("cluster-big", {"env": {"TOKEN": "t"}})
    secrets.allow("cluster-big", _ids(most))
    readers, length = _readers(secrets, "cluster-big")
    assert readers == set(_ids(most)) and length <= POLICY_MAX_CHARS
    # Before shards, a cluster of 1000 machines put all of them in this one policy.
    with pytest.raises(MachinesError, match=r"1000 instances is \d+ characters, over Secrets Manager's 20480: "
                                            r"one secret holds at most 449 instances"):
        secrets.allow("cluster-big", _ids(1000))
    assert _readers(secrets, "cluster-big")[0] == set(_ids(most))  # left as it was


def test_a_thousand_machines_each_in_exactly_one_shard_of_its_own_cluster(secrets):
    shards = SecretShards(secrets, secrets.per_secret)
    values = {"env": {"DASK_GATEWAY_API_TOKEN": "token-a"}, "files": {"dask.pem": "KEY-A"}}
    other_values = {"env": {"DASK_GATEWAY_API_TOKEN": "token-b"}}
    machines = _ids(1000)
    others = _ids(60, start=5000)

    async def launch(key: str, ids: list[str], made: dict, known: dict) -> None:
        """As the gateway does: each machine is given a shard, then each batch of up to 100 allowed."""
        for start in range(0, len(ids), 100):
            given: dict[int, list[str]] = {}
            for machine_id in ids[start:start + 100]:
                index = await shards.reserve(key, lambda: known, lambda: made, {"cluster": key})
                given.setdefault(index, []).append(machine_id)
            for index, batch in given.items():
                await shards.allow(key, index, batch, known)

    async def scenario():
        await shards.create("cluster-a", values, {"cluster": "a"})
        await shards.create("cluster-b", other_values, {"cluster": "b"})
        await launch("cluster-a", machines, values, {})
        await launch("cluster-b", others, other_values, {})

    asyncio.run(scenario())
    keys = _secret_keys(secrets)
    a_keys = sorted(k for k in keys if k.startswith("cluster-a"))
    assert a_keys == ["cluster-a", "cluster-a-s1", "cluster-a-s2"] and keys - set(a_keys) == {"cluster-b"}
    seen: list[str] = []
    for key in a_keys:
        readers, length = _readers(secrets, key)
        assert length <= POLICY_MAX_CHARS and len(readers) <= secrets.per_secret
        assert not readers & set(others)  # another cluster's instances read none of this cluster's shards
        seen += readers
        value = secrets.client.get_secret_value(SecretId=secrets.name(key))["SecretString"]
        assert json.loads(value) == values  # every shard is the cluster's secret
    assert sorted(seen) == machines  # every machine in exactly one shard
    assert _readers(secrets, "cluster-b")[0] == set(others)

    # A restarted gateway knows the machines from its database: new ones fill the last shard's
    # room, the shards already made keep their readers.
    restarted = SecretShards(secrets, secrets.per_secret)
    known = {index: _readers(secrets, key)[0] for index, key in enumerate(a_keys)}
    room = secrets.per_secret - len(known[2])
    late = _ids(room + 1, start=9000)

    async def after_restart() -> list[int]:
        given = [await restarted.reserve("cluster-a", lambda: known, lambda: values, {}) for _ in late]
        for index in set(given):
            await restarted.allow("cluster-a", index, [i for i, g in zip(late, given, strict=True) if g == index],
                                  known)
        return given

    given = asyncio.run(after_restart())
    assert given == [2] * room + [3]
    assert _readers(secrets, "cluster-a-s2")[0] == known[2] | set(late[:room])
    assert _readers(secrets, "cluster-a-s3")[0] == {late[-1]}
    assert _readers(secrets, "cluster-a-s1")[0] == known[1]

    # Stopping the cluster deletes every shard (found by counting, also by a restarted gateway).
    asyncio.run(SecretShards(secrets, secrets.per_secret).delete("cluster-a"))
    assert _secret_keys(secrets) == {"cluster-b"}
    assert secrets.delete_shards("cluster-a") == ["cluster-a"]  # idempotent


def test_the_gateway_puts_each_launch_in_a_shard_its_user_data_tags_and_state_name(tmp_path, monkeypatch, aws,
                                                                                    platform_text):
    backend, _ = aws_backend(tmp_path, monkeypatch, aws, platform_text)
    monkeypatch.setattr(backend, "machines_per_secret", lambda: 4)  # small shards: few machines in moto
    user = user_with(backend, "small")
    secrets = backend.secrets

    async def start_workers(cluster, count: int) -> list:
        workers = [backend.db.create_worker(cluster) for _ in range(count)]
        await asyncio.gather(*(drive_start(w, backend.do_start_worker(w), backend.db.update_worker) for w in workers))
        return workers

    def shard_of_instance(machine_id: str) -> int:
        tags = {t["Key"]: t["Value"] for t in ec2_instance(aws, machine_id)["Tags"]}
        index = int(tags.get(TAG_SHARD, 0))
        key = shard_key(f"cluster-{cluster.name}", index)
        assert f"SECRET={secrets.name(key)}\n" in user_data(aws, machine_id)[1]  # what the machine reads
        return index

    async def scenario():
        nonlocal cluster
        cluster = backend.db.create_cluster(user, {"profile": "small"}, ClusterConfig().to_dict())
        await drive_start(cluster, backend.do_start_cluster(cluster), backend.db.update_cluster)
        workers = await start_workers(cluster, 9)
        jobs = [cluster, *workers]
        by_shard: dict[int, set[str]] = {}
        for job in jobs:
            index = shard_of_instance(job.state["machine_id"])
            assert job.state.get(STATE_KEY, 0) == index  # a restarted gateway reads it from its database
            by_shard.setdefault(index, set()).add(job.state["machine_id"])
        assert sorted(len(ids) for ids in by_shard.values()) == [2, 4, 4] and cluster.state.get(STATE_KEY) is None
        for index, ids in by_shard.items():
            assert _readers(secrets, shard_key(f"cluster-{cluster.name}", index))[0] == ids

        backend.secrets = secrets  # a new gateway's shards: only what the database says is known
        more = await start_workers(cluster, 3)
        for worker in more:
            by_shard.setdefault(shard_of_instance(worker.state["machine_id"]), set()).add(worker.state["machine_id"])
        assert sorted(len(ids) for ids in by_shard.values()) == [1, 4, 4, 4]
        for index, ids in by_shard.items():
            assert _readers(secrets, shard_key(f"cluster-{cluster.name}", index))[0] == ids

        backend.db.update_cluster(cluster, target=JobStatus.STOPPED)
        await backend.do_stop_cluster(cluster)
        assert backend.machines.list({"cluster": cluster.name}) == []
        assert _secret_keys(secrets) == set()

    cluster = None
    try:
        asyncio.run(scenario())
    finally:
        backend.budgets.close()


def test_destroy_deletes_the_shards_a_dead_gateway_left(aws, platform_text):
    from deploy.targets.cloud_teardown import end_machines
    from render.validate import validate_text

    secrets = MachineSecrets(aws.region, PLATFORM, client=aws.client("secretsmanager"))
    for key in ("cluster-a", "cluster-a-s1", "cluster-a-s2", "cluster-b"):
        secrets.put(key, {"env": {}})
    aws.client("secretsmanager").create_secret(Name="graticule/oceanlab/admin-api-token")  # the hub's: kept
    said: list[str] = []
    ended = end_machines(validate_text(platform_text), said.append, homes=False)
    assert sorted(ended.secrets) == ["cluster-a", "cluster-a-s1", "cluster-a-s2", "cluster-b"]
    assert said == ["deleting 4 machine secret(s) the gateway left"]
    assert secrets.all_keys() == []
    assert [s["Name"] for s in aws.client("secretsmanager").list_secrets()["SecretList"]] == [
        "graticule/oceanlab/admin-api-token"]


@pytest.mark.parametrize("late_first", [False, True], ids=["adopted-first", "late-worker-first"])
def test_a_restarted_gateway_adopts_a_sharded_launch_and_keeps_filling_the_shards(tmp_path, monkeypatch, aws,
                                                                                 platform_text, late_first):
    """As tests/test_gateway_adoption.py: a second backend on the first one's database; a batch
    launched into shard 1 but never recorded is adopted with its shard, which stays readable.
    A worker started before the adoption must not take the room the unrecorded launch holds."""
    from cryptography.fernet import Fernet
    from dask_gateway_server.backends.db_base import DataManager

    from deploy.gateway.adoption import UnrecordedLaunches
    from tests.support import vm_gateway

    database, key = f"sqlite:///{tmp_path / 'gateway.sqlite'}", [Fernet.generate_key()]
    first = vm_gateway.backend(tmp_path, monkeypatch, aws, platform_text)
    monkeypatch.setattr(first, "machines_per_secret", lambda: 2)  # shard 0: the scheduler and one worker

    async def before_the_kill():
        first.db = DataManager(url=database, encrypt_keys=key)
        cluster, _ = await vm_gateway.cluster_with_workers(first, "carol", "small", 1)
        in_flight = [first.db.create_worker(cluster) for _ in range(2)]
        for job in in_flight:
            first.budgets.budgets.admit(first.budgets._request(
                "carol", cluster.name, job.name, cluster.options, cluster.config, "worker"))

        async def launch(job) -> str:  # its state dropped: the gateway was killed before recording it
            (state,) = [state async for state in first.do_start_worker(job)]
            return state["machine_id"]

        return cluster.name, [job.name for job in in_flight], set(await asyncio.gather(*map(launch, in_flight)))

    try:
        cluster_name, in_flight_names, in_flight_ids = asyncio.run(before_the_kill())
    finally:
        first.budgets.close()
    first.db.db.dispose()
    secrets = first.secrets
    secret = f"cluster-{cluster_name}"
    assert _readers(secrets, shard_key(secret, 1))[0] == in_flight_ids

    second = vm_gateway.backend(tmp_path, monkeypatch, aws, platform_text, prepare=False)
    monkeypatch.setattr(second, "machines_per_secret", lambda: 2)

    async def after_the_restart():
        listed = second.machines.list({"platform": second.spec.name})
        second._unrecorded = UnrecordedLaunches(listed)
        second.db = DataManager(url=database, encrypt_keys=key)
        vm_gateway.give_queue(second)
        cluster = second.db.get_cluster(cluster_name)
        second.budgets.recover(second.db, await second.liveness())
        await second.adopt(listed)
        (late,) = [second.db.create_worker(cluster)]
        if late_first:
            await vm_gateway.start(second, late, "worker")
        for name in in_flight_names:
            await second.reconcile_worker(cluster.workers[name])
        if not late_first:
            await vm_gateway.start(second, late, "worker")
        return cluster, late

    try:
        cluster, late = asyncio.run(after_the_restart())
        adopted = [cluster.workers[name].state for name in in_flight_names]
        assert {s["machine_id"] for s in adopted} == in_flight_ids and {s[STATE_KEY] for s in adopted} == {1}
        assert _readers(secrets, shard_key(secret, 1))[0] == in_flight_ids  # still theirs alone
        assert late.state[STATE_KEY] == 2  # shards 0 and 1 are full: a new one
        assert _readers(secrets, shard_key(secret, 2))[0] == {late.state["machine_id"]}
        second.db.update_cluster(cluster, target=JobStatus.STOPPED)
        asyncio.run(second.do_stop_cluster(cluster))
        assert _secret_keys(secrets) == set()
    finally:
        second.budgets.close()
        second.db.db.dispose()
