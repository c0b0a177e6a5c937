"""The audit's signature workers (forked processes) check as the keyring does and never outlive
the process that forked them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from nacl.signing import SigningKey

from shared.signing import first_forged
from shared.store import signature_workers

_KILLED_PARENT = """
import os, signal, sys
from shared.signing import first_forged
from shared.store import signature_workers
pool = signature_workers()
pids = set()
for _ in range(8):
    pids.add(pool.submit(os.getpid).result())
print(" ".join(map(str, sorted(pids))), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_finds_the_first_forged_signature() -> None:
    key = SigningKey.generate()
    signed = [key.sign(f"event {i}".encode()) for i in range(6)]
    checks = [(bytes(key.verify_key), s.signature, s.message) for s in signed]
    checks[4] = (checks[4][0], checks[4][1], b"event 4, altered")
    checks[5] = (checks[5][0], b"short", checks[5][2])
    with signature_workers() as pool:
        assert pool.submit(first_forged, checks[:4]).result() is None
        assert pool.submit(first_forged, checks).result() == 4
        assert pool.submit(first_forged, checks[5:]).result() == 0
        assert pool.submit(os.getpid).result() != os.getpid()


def test_workers_die_with_a_killed_parent() -> None:
    parent = subprocess.run(
        [sys.executable, "-c", _KILLED_PARENT], capture_output=True, text=True, timeout=60, check=False
    )
    assert parent.returncode == -9, parent.stderr
    workers = [int(pid) for pid in parent.stdout.split()]
    assert workers and os.getpid() not in workers
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)
