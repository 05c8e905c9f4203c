"""The hub VM's parts against a real moto server: secrets generated once and kept, the
published configuration read back (and refused when altered), the wheelhouse uploaded
only when absent, the systemd units' hardening, and config sync restarting only what a
change touches. The whole boot is tests/test_aws_hub_e2e.py.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from deploy.gateway import reaping
from deploy.runtime.addresses import Runtime
from deploy.runtime.state import Layout
from deploy.vm import boot, config, config_sync, publish, secrets, units
from deploy.vm.settings import VmSettings
from deploy.vm.stores import AwsSecrets, S3Objects
from deploy.vm.wheelhouse import Wheelhouse
from modules import naming
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)

PLATFORM = "lab"
BUCKET = "lab-artifacts-123456789012"


@pytest.fixture
def cloud(moto_server):  # noqa: F811
    moto_server.reset()
    s3, sm = moto_server.client("s3"), moto_server.client("secretsmanager")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    for key in (*naming.SECRET_KEYS_GENERATED, naming.OAUTH_CLIENT_SECRET_KEY, naming.DATABASE_URL_KEY):
        sm.create_secret(Name=naming.secret_name(PLATFORM, key))  # as Terraform does: no value
    return s3, sm


def _wheelhouse(tmp_path: Path) -> Wheelhouse:
    directory = tmp_path / "wheelhouse" / "abc"
    directory.mkdir(parents=True)
    (directory / "a-1-py3-none-any.whl").write_bytes(b"wheel a")
    (directory / "requirements.txt").write_text("a==1 --hash=sha256:00\n")
    (directory / "index.json").write_text(json.dumps({"files": ["a-1-py3-none-any.whl"]}))
    return Wheelhouse("abc", directory)


def test_secrets_are_generated_once_and_the_operators_is_read(cloud, tmp_path):
    _, sm = cloud
    first = secrets.ensure(AwsSecrets(sm, PLATFORM))
    assert set(first) == set(naming.SECRET_KEYS_GENERATED)  # no OAuth secret until the operator sets one
    assert len(first["cookie-secret"]) == 64 and first["cookie-secret"] != first["admin-api-token"]
    sm.put_secret_value(SecretId=naming.secret_name(PLATFORM, "oauth-client-secret"), SecretString="from-operator")
    second = secrets.ensure(AwsSecrets(sm, PLATFORM))  # a second boot (a replaced hub) gets the same values
    assert {k: v for k, v in second.items() if k in first} == first
    assert second["oauth-client-secret"] == "from-operator" and "database-url" not in second
    sm.put_secret_value(SecretId=naming.secret_name(PLATFORM, "database-url"), SecretString="postgresql://h/db\n")
    assert secrets.ensure(AwsSecrets(sm, PLATFORM))["database-url"] == "postgresql://h/db"
    secrets.write(second, tmp_path / "run" / "secrets")
    written = tmp_path / "run" / "secrets" / "cookie_secret"
    assert written.read_text() == first["cookie-secret"] + "\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "run" / "secrets").stat().st_mode) == 0o700


def test_the_state_directory_links_to_the_tmpfs_secrets(tmp_path):
    state, runtime = tmp_path / "state", tmp_path / "run" / "secrets"
    runtime.mkdir(parents=True)
    (state / "secrets").mkdir(parents=True)
    (state / "secrets" / "cookie_secret").write_text("old\n")  # never left on the volume
    secrets.link_state_secrets(state / "secrets", runtime)
    assert (state / "secrets").is_symlink() and (state / "secrets").resolve() == runtime.resolve()
    assert not (runtime / "cookie_secret").exists()
    secrets.link_state_secrets(state / "secrets", runtime)  # again: unchanged
    assert (state / "secrets").resolve() == runtime.resolve()


def test_published_configuration_reads_back_and_is_checked(cloud, tmp_path):
    s3, _ = cloud
    build = {"hub/platform.json": b"{}", "gateway/platform.json": b"{\"a\": 1}", "manifest.json": b"{}",
             "terraform/aws/main.tf.json": b"{}", "cost.json": b"{}"}
    files = publish.config_files(build, {"hub_url": "https://hub.example.org"})
    assert sorted(files) == ["gateway/platform.json", "hub/platform.json", "manifest.json", "outputs.json"]
    house = _wheelhouse(tmp_path)
    done = publish.publish(S3Objects(s3, BUCKET), house, files)
    assert done.uploaded_wheels == 1
    assert config.current(S3Objects(s3, BUCKET)) == {"version": done.version, "wheelhouse": "abc"}
    assert config.fetch(S3Objects(s3, BUCKET), done.version) == files
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"wheelhouse/abc/index.json", "wheelhouse/abc/requirements.txt", "wheelhouse/abc/a-1-py3-none-any.whl",
            "config/current.json"} <= keys
    # the same wheelhouse is not uploaded again; the same files are the same version
    again = publish.publish(S3Objects(s3, BUCKET), house, files)
    assert again == publish.Published(done.version, "abc", 0)
    # an altered file is refused, not installed
    s3.put_object(Bucket=BUCKET, Key=f"config/{done.version}/hub/platform.json", Body=b"{\"evil\": 1}")
    with pytest.raises(ValueError, match="incomplete or altered"):
        config.fetch(S3Objects(s3, BUCKET), done.version)


def _runtime(tmp_path: Path) -> Runtime:
    return Runtime(Layout(tmp_path / "state"), boot.PORTS, public_host="0.0.0.0")


def test_units_are_hardened_and_the_hub_keeps_its_servers(tmp_path):
    runtime = _runtime(tmp_path)
    found = units.component_units(runtime)
    assert list(found) == ["graticule-proxy.service", "graticule-hub.service", "graticule-gateway.service",
                          "graticule-jobs.service"]
    for name, text in found.items():
        component = name.removeprefix("graticule-").removesuffix(".service")
        for line in ("Restart=always", "ProtectSystem=full", "PrivateTmp=yes", "RuntimeDirectory=graticule",
                     f"StandardOutput=append:/var/log/graticule/{component}.log",
                     f"StandardError=append:/var/log/graticule/{component}.log",
                     f"EnvironmentFile=/run/graticule/{component}.env", f"LimitNOFILE={units.OPEN_FILES}"):
            assert line in text.splitlines(), (name, line)
        assert ("KillMode=process" in text) == (component == "hub")
    hub_start = next(line for line in found["graticule-hub.service"].splitlines() if line.startswith("ExecStart="))
    assert hub_start.endswith("--upgrade-db")
    proxy_start = next(line for line in found["graticule-proxy.service"].splitlines() if line.startswith("ExecStart="))
    assert "--ip=0.0.0.0" in proxy_start and "--port=8000" in proxy_start and "--api-ip=127.0.0.1" in proxy_start
    agents = units.agent_units(Path("/etc/graticule/vm.json"), runtime.layout.root)
    assert set(agents) == {"graticule-config-sync.service", "graticule-logship.service", "graticule-reaper.service"}
    ship = next(line for line in agents["graticule-logship.service"].splitlines() if line.startswith("ExecStart="))
    assert ship.endswith("-m deploy.vm.logship --settings /etc/graticule/vm.json")


def test_each_component_gets_only_its_secrets(tmp_path):
    runtime = _runtime(tmp_path)
    values = {"cookie-secret": "c" * 64, "proxy-auth-token": "p" * 64, "gateway-api-token": "g" * 64,
              "admin-api-token": "a" * 64, "gateway-encrypt-keys": "k" * 44, "oauth-client-secret": "o" * 20}
    secrets.write(values, runtime.layout.secrets)
    settings = VmSettings(PLATFORM, "us-west-2", BUCKET, "/graticule/lab", runtime.layout.root, "/dev/xvdf")
    envs = boot.environments(runtime, settings, values)
    assert envs["gateway"]["DASK_GATEWAY_ENCRYPT_KEYS"] == "k" * 44
    assert "GRATICULE_ADMIN_API_TOKEN" not in envs["gateway"] and "CONFIGPROXY_AUTH_TOKEN" not in envs["gateway"]
    assert "GRATICULE_GATEWAY_API_TOKEN" not in envs["proxy"] and "DASK_GATEWAY_ENCRYPT_KEYS" not in envs["hub"]
    assert envs["hub"]["GRATICULE_OAUTH_CLIENT_SECRET"] == "o" * 20
    assert envs["hub"]["GRATICULE_GATEWAY_SCHEDULER_URL"] == "tls://0.0.0.0:8786"
    assert not any(v in json.dumps(envs[units.CONFIG_SYNC]) for v in values.values())
    # the load balancer's addresses, from Terraform's outputs, for OAuth callbacks and laptops
    outputs = {"hub_url": "https://hub.example.org", "gateway_scheduler_address": "tls://front.example.org:8786"}
    public = boot.environments(runtime, settings, values, outputs)["hub"]
    assert public["GRATICULE_PUBLIC_HUB_URL"] == "https://hub.example.org"
    assert public["GRATICULE_PUBLIC_SCHEDULER_URL"] == "tls://front.example.org:8786"
    assert public["GRATICULE_HUB_URL"] == "http://127.0.0.1:8000"  # notebooks on the hub VM stay inside
    text = units.env_file_text({"A": 'quote " and \\ back'})
    assert text == 'A="quote \\" and \\\\ back"\n'


def test_the_database_url_secret_moves_every_database_to_postgresql(tmp_path, monkeypatch):
    runtime = _runtime(tmp_path)
    settings = VmSettings(PLATFORM, "us-west-2", BUCKET, "/graticule/lab", runtime.layout.root, "/dev/xvdf")
    values = {key: key * 3 for key in naming.SECRET_KEYS_GENERATED}
    without = boot.environments(runtime, settings, values)
    assert not any("GRATICULE_DATABASE_URL" in e or "GRATICULE_LEDGER_URL" in e for e in without.values())
    url = "postgresql://hub:pa55word@db.internal:5432/graticule"
    envs = boot.environments(runtime, settings, {**values, "database-url": url})
    for name in ("hub", "gateway"):  # their own tables, and the ledger's (the gateway, the hub's pages)
        assert envs[name]["GRATICULE_DATABASE_URL"] == envs[name]["GRATICULE_LEDGER_URL"] == url
    assert envs["jobs"]["GRATICULE_LEDGER_URL"] == url and "GRATICULE_DATABASE_URL" not in envs["jobs"]
    assert envs[units.REAPER]["GRATICULE_DATABASE_URL"] == url  # it reads the gateway's tables
    assert not any(url in json.dumps(envs[name]) for name in ("proxy", units.CONFIG_SYNC, units.LOGSHIP))
    assert 'GRATICULE_DATABASE_URL="postgresql://hub:pa55word@' in units.env_file_text(envs["hub"])
    # the reaper and the rendered configs read it the same way: with psycopg named, or SQLite
    monkeypatch.setenv("GRATICULE_DATABASE_URL", url)
    assert reaping.gateway_database(settings.state_dir) == url.replace("postgresql:", "postgresql+psycopg:")
    monkeypatch.delenv("GRATICULE_DATABASE_URL")
    assert reaping.gateway_database(settings.state_dir) == f"sqlite:///{runtime.layout.gateway / 'gateway.sqlite'}"


def test_config_sync_restarts_only_what_a_change_touches(cloud, tmp_path, monkeypatch):
    # systemd cannot run here: the restarts config sync asks for are recorded instead (the
    # end-to-end test sees the real ones in the simulator).
    s3, _ = cloud
    runtime = _runtime(tmp_path)
    settings = VmSettings(PLATFORM, "us-west-2", BUCKET, "/graticule/lab", runtime.layout.root, "/dev/xvdf")
    values = {key: "x" * 32 for key in naming.SECRET_KEYS_GENERATED}
    monkeypatch.setattr(config_sync, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(units, "RUN_DIR", tmp_path / "run")
    secrets.write(values, tmp_path / "run" / "secrets")
    runtime.layout.root.mkdir(parents=True)
    secrets.link_state_secrets(runtime.layout.secrets, tmp_path / "run" / "secrets")
    restarted: list[str] = []
    monkeypatch.setattr(boot, "systemctl", lambda *args: restarted.append(" ".join(args)))
    monkeypatch.setattr(boot, "wait_healthy", lambda runtime, components=(): None)
    house = _wheelhouse(tmp_path)
    build = {"hub/platform.json": b"{\"users\": [\"alice\"]}", "gateway/platform.json": b"{}", "manifest.json": b"1"}

    def apply(files: dict[str, bytes]) -> list[str]:
        publish.publish(S3Objects(s3, BUCKET), house, publish.config_files(files, {}))
        restarted.clear()
        return config_sync.sync_once(settings, S3Objects(s3, BUCKET))

    apply(build)  # first version: everything is new
    assert apply(build) == [] and restarted == []  # unchanged: nothing happens
    build = {**build, "hub/platform.json": b"{\"users\": [\"alice\", \"dave\"]}", "manifest.json": b"2"}
    changed = apply(build)
    assert changed == ["hub"] and restarted == ["restart graticule-hub.service"]
    assert (runtime.layout.build / "hub" / "platform.json").read_bytes() == b"{\"users\": [\"alice\", \"dave\"]}"
    changed = apply({**build, "gateway/platform.json": b"{\"budgets\": 1}", "manifest.json": b"3"})
    assert changed == ["gateway", "jobs"]  # the jobs scheduler reads the budgets too; the hub stays
    assert "restart graticule-hub.service" not in restarted


def test_the_state_device_is_found_by_name_or_as_the_one_other_ebs_disk(tmp_path, monkeypatch):
    from deploy.vm import volume

    sys_block = tmp_path / "block"
    for name, serial in (("nvme0n1", "vol0aaa"), ("nvme1n1", "vol0bbb"), ("nvme2n1", "AWS1234")):
        (sys_block / name / "device").mkdir(parents=True)
        (sys_block / name / "device" / "serial").write_text(serial + "\n")
    monkeypatch.setattr(volume, "_root_disk", lambda: "nvme0n1")
    existing = tmp_path / "xvdf"
    existing.write_text("")
    assert volume.find_device(str(existing), sys_block) == str(existing)  # a udev link: taken as it is
    # Nitro without the link: the EBS disk (serial vol...) that is not the root disk; not instance storage
    assert volume.find_device("/dev/xvdf-missing", sys_block) == "/dev/nvme1n1"
    (sys_block / "nvme3n1" / "device").mkdir(parents=True)
    (sys_block / "nvme3n1" / "device" / "serial").write_text("vol0ccc\n")
    assert volume.find_device("/dev/xvdf-missing", sys_block) is None  # two candidates: wait for the name
