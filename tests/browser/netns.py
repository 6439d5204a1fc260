"""A test host of our own: a network namespace joined to this machine by a veth pair, so a
browser inside it can really lose its network (testing-webrtc.md: offline emulation does not cut
WebRTC media). Needs root and iproute2; only addresses of the namespace we make are used."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class NetHost:
    name: str
    host_ip: str  # this machine's end of the link
    guest_ip: str  # the namespace's end
    guest_link: str

    def run(self, *args: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *args], check=True, timeout=10)

    def link(self, up: bool) -> None:
        self.run("ip", "link", "set", self.guest_link, "up" if up else "down")

    def move(self, new_guest_ip: str) -> None:
        """The namespace's end takes another address (Wi-Fi → 4G): the old one is gone."""
        self.run("ip", "addr", "flush", "dev", self.guest_link)
        self.run("ip", "addr", "add", f"{new_guest_ip}/24", "dev", self.guest_link)

    def wrap(self, executable: str, directory: Path) -> str:
        """A launcher that starts ``executable`` inside the namespace."""
        wrapper = directory / f"{self.name}-{Path(executable).name}"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {executable} "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10)


@pytest.fixture
def test_host() -> Iterator[NetHost]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with iproute2: network namespaces are required")
        pytest.skip("needs root and iproute2 to make a network namespace")
    suffix = f"{random.randrange(16**4):04x}"
    subnet = random.randrange(2, 250)
    host = NetHost(f"tc-{suffix}", f"10.77.{subnet}.1", f"10.77.{subnet}.2", f"tcg{suffix}")
    host_link = f"tch{suffix}"
    _ip("netns", "add", host.name)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", host.guest_link)
        _ip("link", "set", host.guest_link, "netns", host.name)
        _ip("addr", "add", f"{host.host_ip}/24", "dev", host_link)
        _ip("link", "set", host_link, "up")
        host.run("ip", "addr", "add", f"{host.guest_ip}/24", "dev", host.guest_link)
        host.run("ip", "link", "set", host.guest_link, "up")
        host.run("ip", "link", "set", "lo", "up")
        yield host
    finally:
        subprocess.run(["ip", "link", "del", host_link], check=False, timeout=10)
        subprocess.run(["ip", "netns", "del", host.name], check=False, timeout=10)
