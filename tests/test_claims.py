"""Claims held by processes that are gone never block the others."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from catalog.store.claims import is_dead_local_owner


def _owner(pid: int) -> str:
    return f"{socket.gethostname()[:80]}:{pid}:abcd1234"


def test_a_running_process_holds_its_claims() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert is_dead_local_owner(_owner(child.pid)) is False
    finally:
        child.kill()
        child.wait()


def test_a_killed_but_unreaped_process_is_gone() -> None:
    child = subprocess.Popen(["sleep", "30"])
    child.kill()
    deadline = time.monotonic() + 10
    while not is_dead_local_owner(_owner(child.pid)):  # a zombie until we reap it
        assert time.monotonic() < deadline, "the killed child still counts as running"
        time.sleep(0.01)
    assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie indeed
    child.returncode = -9


def test_a_reaped_process_is_gone() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert is_dead_local_owner(_owner(child.pid)) is True


def test_another_hosts_owner_is_left_to_its_lease() -> None:
    assert is_dead_local_owner(f"elsewhere.example:{os.getpid() + 100000}:abcd1234") is False
