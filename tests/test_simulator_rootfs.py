"""Where the simulator's Debian root comes from (building it is exercised by every simulator test)."""

from __future__ import annotations

from pathlib import Path

from tests.support.simulator import rootfs


def test_mirror_is_the_one_apt_uses_not_the_security_archive(tmp_path: Path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
                      "Types: deb\nURIs: http://apt-cache.internal:3142/debian\nSuites: bookworm\n")
    assert rootfs.apt_mirror([deb822]) == "http://apt-cache.internal:3142/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://ftp.example/debian bookworm main\n")
    assert rootfs.apt_mirror([tmp_path / "missing", one_line]) == "http://ftp.example/debian"
    assert rootfs.apt_mirror([]) == rootfs.DEFAULT_MIRROR


def test_cache_location_and_name_follow_the_environment_and_package_list(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GRATICULE_SIM_ROOTFS", str(tmp_path))
    assert rootfs.cache_dir() == tmp_path
    monkeypatch.delenv("GRATICULE_SIM_ROOTFS")
    assert rootfs.cache_dir() == Path.home() / ".cache/graticule/sim"
    name = rootfs.root_name()
    monkeypatch.setattr(rootfs, "PACKAGES", (*rootfs.PACKAGES, "iproute2"))
    assert rootfs.root_name() != name and rootfs.root_name().startswith("bookworm-minbase-")


def test_an_existing_root_is_used_without_debootstrap(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GRATICULE_SIM_ROOTFS", str(tmp_path))
    ready = tmp_path / rootfs.root_name() / "usr/bin"
    ready.mkdir(parents=True)
    (ready / "python3").write_text("")
    monkeypatch.setattr(rootfs.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    assert rootfs.ensure_rootfs() == tmp_path / rootfs.root_name()


def test_without_root_or_tools_the_reason_is_given(monkeypatch):
    from tests.support.simulator import support

    monkeypatch.setattr(support.os, "geteuid", lambda: 1000)
    assert "needs root" in support.simulator_unavailable()
    monkeypatch.setattr(support.os, "geteuid", lambda: 0)
    monkeypatch.setattr(support.shutil, "which", lambda tool: None if tool in ("nft", "debootstrap") else "/x")
    assert "needs nft, debootstrap" in support.simulator_unavailable()
    monkeypatch.setattr(support.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    assert support.simulator_unavailable() is None
