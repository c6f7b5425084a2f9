"""A command that cannot do what it was asked says so in one line, and changes nothing.

Each case runs the installed `headwater` entry point: stderr is exactly one
`error: ...` line (no traceback) naming what to do next, and the exit code is 1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from cli_process import ENV, ROOT, assert_one_line_error, headwater, headwater_command  # noqa: E402


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["run", "messages:list"], ["No Headwater data folder at missing", "headwater serve"]),
        (["export", "--out", "out.zip"], ["No Headwater data folder at missing"]),
        (["replay"], ["No Headwater data folder at missing"]),
        (["ts"], ["No Headwater data folder at missing"]),
        (["kafka-export", "--bootstrap", "127.0.0.1:9"], ["No Headwater data folder"]),
    ],
)
def test_a_missing_data_folder_is_named_and_not_created(tmp_path, command, words):
    done = headwater(*command, "--data", "missing", cwd=tmp_path)
    assert_one_line_error(done, *words)
    assert not (tmp_path / "missing").exists()  # a typo does not become a new data folder


def test_data_pointing_at_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    for command in (["serve"], ["run", "a:b"], ["import", "x.zip"]):
        done = headwater(*command, "--data", "notes.txt", cwd=tmp_path)
        assert_one_line_error(done, "notes.txt is a file")


def test_codegen_on_a_file_or_a_missing_folder(tmp_path):
    (tmp_path / "schema.ts").write_text("export default 1;\n")
    assert_one_line_error(headwater("codegen", "schema.ts", cwd=tmp_path), "schema.ts is a file")
    assert_one_line_error(headwater("codegen", "nowhere", cwd=tmp_path), "nowhere is missing")


def test_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = headwater("serve", "--data", "d", "--port", str(port), cwd=tmp_path)
    assert_one_line_error(done, f"Port {port}", "--port")


def test_deploy_to_a_stopped_server_or_a_url_without_scheme(tmp_path):
    functions = tmp_path / "convex"
    functions.mkdir()
    (functions / "m.ts").write_text(
        'import { query } from "./_generated/server";\n'
        "export const q = query({ args: {}, handler: async () => 1 });\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    stopped = headwater(
        "deploy", str(functions), "--url", f"http://127.0.0.1:{port}", "--admin-key", "k"
    )
    assert_one_line_error(stopped, "No server answers", "headwater serve")
    bare = headwater("deploy", str(functions), "--url", f"127.0.0.1:{port}", "--admin-key", "k")
    assert_one_line_error(bare, f"http://127.0.0.1:{port}")


def _read_only_prefix(folder: Path) -> list[str] | None:
    """A way to run a command that sees ``folder`` read-only (root ignores mode bits)."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    remount = f'mount --bind -o ro "{folder}" "{folder}"'
    probe = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", remount],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:  # no mount namespaces here (a container without the rights)
        return None
    return [unshare, "-m", "--propagation", "private", "sh", "-c", f'{remount} && exec "$0" "$@"']


def test_a_read_only_data_folder(tmp_path):
    from engine import Database

    folder = tmp_path / "ro"
    Database.open(str(folder / "existing")).close()
    prefix = _read_only_prefix(folder)
    if prefix is None:
        pytest.skip("no way to make a read-only folder here")
    commands = [
        ["serve", "--data", str(folder), "--port", "0"],
        ["serve", "--data", str(folder / "new"), "--port", "0"],
        ["run", "messages:list", "--data", str(folder / "existing")],
    ]
    try:
        for command in commands:
            done = subprocess.run(
                [*prefix, *headwater_command(), *command],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
                env=dict(ENV, PYTHONPATH=str(ROOT)),
            )
            assert_one_line_error(done, "read-only", "--data")
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_export_into_a_missing_folder(tmp_path):
    from engine import Database

    Database.open(str(tmp_path / "data")).close()
    done = headwater("export", "--data", "data", "--out", "nowhere/x.zip", cwd=tmp_path)
    assert_one_line_error(done, "nowhere/x.zip", "create it first")


def test_run_of_an_unknown_function_names_headwaters_commands(tmp_path):
    data = tmp_path / "data"
    from engine import Database

    Database.open(str(data)).close()
    done = headwater("run", "nothing:here", "--data", str(data))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "npx convex" not in done.stderr and "headwater deploy" in done.stderr
