"""The four services as local processes: started with pid files, watched by /readyz, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from shared.settings import PROCESSES, LocalSettings, ServiceSettings
from zhengming.local import Status, _pid_alive, _read_pid, _stop_pid


class LocalService:
    """One service process, or the console (`zhengming serve NAME`)."""

    def __init__(self, name: str, local: LocalSettings, settings: ServiceSettings) -> None:
        self.name = name
        self.local = local
        self.settings = settings
        self.pid_file = local.run / f"{name}.pid"
        self.log_file = local.logs / f"{name}.log"

    def pid(self) -> int | None:
        pid = _read_pid(self.pid_file)
        return pid if _pid_alive(pid) else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.settings.url(self.name)}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self) -> bool:
        if self.pid() is not None:
            return False
        self.local.logs.mkdir(parents=True, exist_ok=True)
        self.local.run.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ZM_LOG_JSON_OUTPUT": "true"}
        if self.name == "clarification":
            # The intake of this same stack checks the 澄清内容 against the reporter's identity.
            env.setdefault("ZM_INTAKE_URL", self.settings.url("intake"))
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "zhengming.cli", "serve", self.name],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        self.pid_file.write_text(str(proc.pid))
        return True

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready():
                return
            if self.pid() is None:
                raise RuntimeError(f"{self.name} exited; see {self.log_file}")
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready within {timeout_s:.0f}s; see {self.log_file}")

    def stop(self) -> bool:
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        _stop_pid(pid, timeout_s=20)
        return True

    def status(self) -> Status:
        pid = self.pid()
        return Status(
            self.name, pid is not None, pid is not None and self.ready(), pid, self.settings.url(self.name)
        )


def all_services(local: LocalSettings, settings: ServiceSettings) -> list[LocalService]:
    """The four services and the console, in the order they start."""
    return [LocalService(n, local, settings) for n in PROCESSES]
