"""The README works as written: its embedded-engine example runs, its commands exist with
the options it shows, and `--ts` takes the timestamps a user has at hand."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from cli_process import ENV, ROOT, headwater  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
STORE_APP = ROOT / "tests" / "udf" / "fixtures" / "store" / "convex"


def readme_block(info: str) -> str:
    found = re.search(rf"^```{re.escape(info)}\n(.*?)^```", README, re.S | re.M)
    assert found is not None, f"README has no ```{info} block"
    return found.group(1)


def test_the_embedded_engine_example_runs_as_written(tmp_path):
    # Twice in the same folder: a second run (data already there) prints the same.
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", readme_block("python embedded-engine")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=dict(ENV, PYTHONPATH=str(ROOT)),
        )
        assert done.returncode == 0, done.stderr
        # The lines its comments promise: the edit now, the original then, the live update.
        assert done.stdout.splitlines() == ["edited hi", "edited", "more"]


def documented_commands() -> list[tuple[str, list[str]]]:
    """Each `headwater COMMAND ...` row of the README's command table, with its --options."""
    rows = re.findall(r"^\| `headwater ([a-z-]+)([^`]*)` \|", README, re.M)
    assert len(rows) >= 9, rows
    return [(name, re.findall(r"--[a-z-]+", rest)) for name, rest in rows]


@pytest.mark.parametrize(("command", "options"), documented_commands())
def test_every_documented_command_and_option_exists_with_its_defaults(command, options):
    done = headwater(command, "--help")
    assert done.returncode == 0, done.stderr
    for option in options:
        assert option in done.stdout, (command, option)
    if "--data" in options:
        assert "(default: headwater_data)" in " ".join(done.stdout.split())


def test_version():
    done = headwater("--version")
    assert done.returncode == 0
    assert re.fullmatch(r"headwater \d+\.\d+\.\d+\S*\n", done.stdout), done.stdout


def test_ts_in_nanoseconds_base64_and_iso_reads_the_same_snapshot(tmp_path):
    data = str(tmp_path / "data")
    functions = tmp_path / "convex"
    shutil.copytree(STORE_APP, functions)
    first = headwater(
        "run", "counters:increment", '{"name": "c"}', "--data", data, "--functions", str(functions)
    )
    assert first.returncode == 0, first.stderr
    printed = headwater("ts", "--data", data)
    assert printed.returncode == 0, printed.stderr
    ns, b64, iso = printed.stdout.split()
    assert re.fullmatch(r"\d{19}", ns) and iso.endswith("Z")
    headwater("run", "counters:increment", '{"name": "c"}', "--data", data)
    values = []
    for form in (ns, b64, iso):
        done = headwater("run", "counters:value", '{"name": "c"}', "--data", data, "--ts", form)
        assert done.returncode == 0, (form, done.stderr)
        values.append(json.loads(done.stdout))
    now = headwater("run", "counters:value", '{"name": "c"}', "--data", data)
    assert values == [1, 1, 1] and json.loads(now.stdout) == 2
    exported = headwater("export", "--data", data, "--out", str(tmp_path / "x.zip"), "--ts", iso)
    assert exported.returncode == 0 and f"at ts {ns}" in exported.stdout, exported.stderr


def test_a_bad_ts_names_the_forms_it_takes(tmp_path):
    done = headwater("run", "counters:value", "--ts", "yesterday", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "base64" in done.stderr and "ISO-8601" in done.stderr and "headwater ts" in done.stderr
