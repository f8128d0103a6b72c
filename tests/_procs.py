"""Run a command whose children may outlive it (torchrun) without ever blocking the test session.

``subprocess.run(..., timeout=T, capture_output=True)`` kills only the direct child on timeout and
then waits for its pipes to close. torchrun starts each worker in a session of its own, so neither
that kill nor a kill of torchrun's process group reaches them, and a hung launch would block the
test (and CI) forever. Here the output goes to files rather than pipes, a timeout kills the whole
process tree (found through ``/proc`` before anything is killed), and a hung launch is retried
(``attempts`` launches in all) before the test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Sequence

import pytest


def torchrun_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a test launch: no inherited rank variables, gloo on the loopback device."""
    env = {k: v for k, v in (os.environ if env is None else env).items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    # gloo otherwise binds the address the host name resolves to, which may not route back to
    # this machine in a sandbox; both ranks are local, so the loopback interface always works
    if "lo" in {name for _, name in socket.if_nameindex()}:
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(proc: subprocess.Popen) -> None:
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_group(make_cmd: Callable[[int], Sequence[str]], *, timeout: float, attempts: int = 2,
              **popen) -> subprocess.CompletedProcess:
    """Run ``make_cmd(attempt)``; kill its whole process tree and retry after ``timeout`` seconds.

    ``make_cmd`` receives the attempt number so that a retry can write to a fresh directory.
    Fails the calling test when every attempt timed out.
    """
    failures = []
    for attempt in range(attempts):
        cmd = list(make_cmd(attempt))
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True,
                                    start_new_session=True, **popen)
            try:
                proc.wait(timeout=timeout)
                hung = False
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
                hung = True
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if not hung:
            return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
        failures.append(f"{' '.join(cmd)}\n{stdout[-2000:]}\n{stderr[-3000:]}")
    pytest.fail(f"did not finish in {timeout:g} s, {attempts} times:\n" + "\n----\n".join(failures))
