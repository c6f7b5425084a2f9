"""Our own PostgreSQL and MariaDB for a test run on a machine where none answers.

The project's machines run both servers at their standard ports; elsewhere the
test set-up starts its own rather than skipping the shared-store tests: each in a
fresh folder, on a free loopback port, with trust (PostgreSQL) or an empty root
password (MariaDB), stopped when the run ends. The Debian packages are installed
when their programs are missing. PostgreSQL refuses to run as root, so as root
it runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

from ports import free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _apt_install(package: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", package], check=True)


def _program(names: tuple[str, ...], patterns: tuple[str, ...], package: str) -> str:
    """The first of ``names`` on PATH or matching ``patterns``; installs ``package`` once."""
    for attempt in range(2):
        for name in names:
            found = shutil.which(name)
            if found:
                return found
        for pattern in patterns:
            matches = sorted(glob.glob(pattern))
            if matches:
                return matches[-1]
        if attempt == 0:
            _apt_install(package)
    raise RuntimeError(f"{names[0]} was not found, even after installing {package}")


def _wait_until_answering(port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers("127.0.0.1", port, timeout_s=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the server on port {port} did not start: {log.read_text()[-2000:]}"
            )
        time.sleep(0.2)


def start_postgres(folder: Path) -> tuple[str, Callable[[], None]]:
    """A PostgreSQL server of our own; its URL (maintenance database) and its stop."""
    patterns = ("/usr/lib/postgresql/*/bin/{}",)
    initdb = _program(("initdb",), tuple(p.format("initdb") for p in patterns), "postgresql")
    postgres = str(Path(initdb).with_name("postgres"))
    as_user: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    log = folder / "server.log"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [*as_user, postgres, "-D", str(data), "-p", str(port), "-k", str(folder)]
            + ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_until_answering(port, log)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", _stopper(server)


def start_mariadb(folder: Path) -> tuple[str, Callable[[], None]]:
    """A MariaDB server of our own; its URL and its stop."""
    install = _program(("mariadb-install-db", "mysql_install_db"), (), "mariadb-server")
    mariadbd = _program(
        ("mariadbd", "mysqld"), ("/usr/sbin/mariadbd", "/usr/sbin/mysqld"), "mariadb-server"
    )
    data = folder / "data"
    log = folder / "server.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal"]
        + user,
        check=True,
        capture_output=True,
    )
    port = free_port()
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={data}", f"--port={port}"]
            + ["--bind-address=127.0.0.1", f"--socket={folder / 'mariadb.sock'}", *user],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_until_answering(port, log)
    return f"mysql://root@127.0.0.1:{port}", _stopper(server)


def _stopper(server: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    return stop


class OwnServers:
    """The servers this run started (none when the machine's own answer)."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []
        self._folder: Path | None = None

    def ensure(
        self,
        env_name: str,
        default_port: int,
        start: Callable,
        *,
        force: bool = False,
        environ: MutableMapping[str, str] = os.environ,
    ) -> None:
        """Set ``environ[env_name]`` to a server of our own unless one is named or
        answers at ``default_port`` (``force``: our own all the same)."""
        if not force and (environ.get(env_name) or answers("127.0.0.1", default_port)):
            return
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="headwater-test-databases-"))
            os.chmod(self._folder, 0o755)  # reachable by the postgres user
        url, stop = start(self._folder / env_name.lower())
        self._stops.append(stop)
        environ[env_name] = url

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
