"""Fixtures: a `dcs-simulator` process and official-SDK clients pointed at it."""

import contextlib
import json
import os
import subprocess
import time
import urllib.request

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkdcs.v2 import DcsClient

ACCESS_KEY = "HPUASIMULATORTESTKEY"
SECRET_KEY = "SimulatorSecretKey0123456789abcdefEXAMPLE"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
PHASE_SECONDS = 0.3

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Simulator:
    """A running `dcs-simulator` process."""

    def __init__(self, url, process):
        self.url = url
        self.process = process

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def state(self):
        return self.admin("GET", "/_sim/state")


@contextlib.contextmanager
def running_simulator(*extra_args):
    """A `dcs-simulator` process with the test key and phases, and `extra_args`."""
    binary = os.environ.get("DCS_SIMULATOR_BIN", os.path.join(REPO, "target", "debug", "dcs-simulator"))
    if not os.path.exists(binary):
        pytest.fail(f"dcs-simulator binary not found at {binary}: run `cargo build --bin dcs-simulator` "
                    "or set DCS_SIMULATOR_BIN")
    process = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
         "--project-id", PROJECT_ID, "--phase-seconds", str(PHASE_SECONDS), *extra_args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        pytest.fail(f"dcs-simulator did not print its URL (got {url!r})")
    yield Simulator(url, process)
    process.terminate()
    try:
        assert process.wait(timeout=10) == 0, "dcs-simulator should exit 0 on SIGTERM"
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="session")
def simulator():
    with running_simulator() as running:
        yield running


def make_client(url, secret_key=SECRET_KEY):
    credentials = BasicCredentials(ACCESS_KEY, secret_key, PROJECT_ID)
    return DcsClient.new_builder().with_credentials(credentials).with_endpoints([url]).build()


@pytest.fixture(scope="session")
def client(simulator):
    return make_client(simulator.url)


def wait_for_status(client, task_id, wanted, timeout=15.0):
    """Polls ShowMigrationTask until the status is one of `wanted`; returns the response."""
    from huaweicloudsdkdcs.v2 import ShowMigrationTaskRequest

    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        task = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
        if not seen or seen[-1] != task.status:
            seen.append(task.status)
        if task.status in wanted:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} never reached {wanted}; statuses seen: {seen}")
        time.sleep(0.05)
