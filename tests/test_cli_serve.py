"""`catalog serve` as a process: the URL it prints, the token off localhost, Ctrl-C, a taken port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from catalog.store.engine import open_catalogue


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'catalog.store.engine'}"
    open_catalogue(url)
    return url


def start(db: str, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog", "--db", db, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        match = re.search(r"Serving the catalogue at (\S+)", line)
        if match:
            return process, match.group(1), "".join(lines)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("no URL printed: " + "".join(lines))


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def test_serve_prints_a_local_url_and_ctrl_c_exits_130(db):
    process, url, _ = start(db)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        response = requests.get(url + "api/stats", timeout=10)
        assert response.status_code == 200
        assert response.json()["media"]["total"] == 0
        assert "No media match." in requests.get(url, timeout=10).text  # an empty catalogue renders
    finally:
        code, err = stop(process)
    assert code == 130
    assert "Stopped." in err and "Traceback" not in err


def test_serve_on_all_interfaces_warns_and_requires_the_token(db):
    process, url, printed = start(db, "--host", "0.0.0.0")
    try:
        token = re.search(r"\?token=([\w-]+)$", url)
        assert token, url
        bare = url.split("?", 1)[0]
        refused = requests.get(bare + "api/stats", timeout=10)
        assert refused.status_code == 403
        assert requests.get(bare + "api/stats?token=nope", timeout=10).status_code == 403
        assert requests.get(bare + f"api/stats?token={token.group(1)}", timeout=10).ok
    finally:
        code, _err = stop(process)
    assert printed.startswith("Warning: listening on 0.0.0.0")
    assert code == 130


def test_a_given_token_is_used(db):
    process, url, _ = start(db, "--host", "0.0.0.0", "--token", "my-own-token")
    try:
        assert url.endswith("?token=my-own-token")
    finally:
        stop(process)


def test_a_taken_port_is_one_line_and_exit_2(db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "catalog", "--db", db, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}:")
    assert result.stderr.count("\n") == 1
