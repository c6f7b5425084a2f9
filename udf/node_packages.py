"""The npm packages "use node" modules leave as imports, installed per deployment.

The Convex CLI bundles every package into a node module except those
``convex.json`` names in ``node.externalPackages`` (``"*"``: all of them) that
the app installed from a registry; it pushes those as ``nodeDependencies``
(name and exact version, as found in the app's ``node_modules``).
``external_packages`` computes the same list for a functions folder bundled
here. ``install_packages`` installs a list with ``npm install`` into a folder
named by the list's hash, once: deploys with the same packages share it, and
a failed install leaves nothing behind (it happens in a scratch folder that is
renamed into place only when npm succeeded). npm reads its usual configuration
(registry, proxy, cache) from the environment and ``.npmrc`` files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import HeadwaterError

_INSTALLED_MARKER = ".headwater-installed"
_ERROR_TAIL_LINES = 20


class NodePackagesError(HeadwaterError):
    """The external packages of "use node" modules could not be installed."""

    code = "NodePackageInstallFailed"


@dataclass(frozen=True)
class NodeDependency:
    """One external package: the CLI's ``{"name", "version"}``."""

    name: str
    version: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def parse_dependencies(raw: object) -> tuple[NodeDependency, ...]:
    """The ``nodeDependencies`` of a push; refuses anything but ``[{name, version}]``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise NodePackagesError("nodeDependencies must be a list of {name, version}.")
    found = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        version = item.get("version") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise NodePackagesError("Each nodeDependencies entry needs a string name and version.")
        if name.startswith((".", "/")) or "\n" in name + version:
            raise NodePackagesError(f"Invalid external package name {name!r}.")
        found.append(NodeDependency(name, version))
    return tuple(sorted(set(found), key=lambda d: d.name))


def dependencies_hash(dependencies: Iterable[NodeDependency]) -> str:
    text = json.dumps(sorted((d.name, d.version) for d in dependencies))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def install_packages(
    dependencies: tuple[NodeDependency, ...], root: Path, *, timeout_s: float
) -> Path:
    """A folder whose ``node_modules`` holds ``dependencies`` (installed now if needed).

    Raises NodePackagesError with npm's last lines when npm fails or times out."""
    target = root / dependencies_hash(dependencies)
    if (target / _INSTALLED_MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise NodePackagesError("npm is not on PATH: it is needed to install external packages.")
    scratch = Path(tempfile.mkdtemp(prefix=".install-", dir=root))
    try:
        manifest = {
            "name": "headwater-node-packages",
            "private": True,
            "dependencies": {d.name: d.version for d in dependencies},
        }
        (scratch / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _run_npm(npm, scratch, dependencies, timeout_s)
        (scratch / _INSTALLED_MARKER).write_text("", encoding="utf-8")
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / _INSTALLED_MARKER).is_file():  # not a concurrent install's win
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _run_npm(
    npm: str, folder: Path, dependencies: tuple[NodeDependency, ...], timeout_s: float
) -> None:
    names = ", ".join(f"{d.name}@{d.version}" for d in dependencies)
    command = [npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"]
    try:
        done = subprocess.run(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NodePackagesError(
            f"Installing the external packages ({names}) took longer than {timeout_s:g} s."
        ) from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-_ERROR_TAIL_LINES:])
        raise NodePackagesError(
            f"Installing the external packages ({names}) failed (npm exit {done.returncode}):\n"
            f"{tail}"
        )


# --- what a functions folder leaves external (the CLI's rules) ----------------------

_DEPENDENCY_KEYS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
_NOT_FROM_A_REGISTRY = (
    "file:",
    "git+file://",
    "http://",
    "https://",
    "git://",
    "git+ssh://",
    "git+http://",
    "git+https://",
)


def external_allow_list(app_root: Path) -> list[str]:
    """``node.externalPackages`` of the app's ``convex.json`` (none without one)."""
    config = app_root / "convex.json"
    if not config.is_file():
        return []
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise NodePackagesError(f"{config} is not valid JSON: {exc}") from exc
    node = data.get("node") if isinstance(data, dict) else None
    names = node.get("externalPackages", []) if isinstance(node, dict) else []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise NodePackagesError(f"{config}: node.externalPackages must be a list of names.")
    return names


def external_packages(app_root: Path, allow_list: list[str]) -> dict[str, Path]:
    """The packages the node bundle leaves as imports: allowed by ``allow_list``
    (``"*"``: all), declared in the app's package.json with a registry version
    (not ``convex``, not ``file:``/git/URL specs), installed in its node_modules."""
    if not allow_list:
        return {}
    manifest = app_root / "package.json"
    try:
        package = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NodePackagesError(f'Couldn\'t parse "{manifest}". Error: {exc}') from exc
    found: dict[str, Path] = {}
    for key in _DEPENDENCY_KEYS:
        for name, spec in (package.get(key) or {}).items():
            if name in found or name == "convex" or not isinstance(spec, str):
                continue
            if spec.startswith(_NOT_FROM_A_REGISTRY):
                continue
            if name not in allow_list and "*" not in allow_list:
                continue
            folder = app_root / "node_modules" / name
            if folder.exists():
                found[name] = folder
    return found


def pinned_dependencies(
    referenced: Iterable[str], available: dict[str, Path]
) -> tuple[NodeDependency, ...]:
    """The packages to install: those the bundle imports, at the version installed in
    the app, plus their peer and optional dependencies that are external too."""
    queue = [name for name in referenced if name in available]
    seen = set(queue)
    pinned = []
    while queue:
        name = queue.pop(0)
        manifest = available[name] / "package.json"
        try:
            package = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NodePackagesError(
                f'Missing "{manifest}", which is required for installing external package '
                f'"{name}" configured in convex.json.'
            ) from exc
        if not isinstance(package.get("version"), str):
            raise NodePackagesError(f"\"{manifest}\" misses a 'version' field.")
        pinned.append(NodeDependency(name, package["version"]))
        for key in ("peerDependencies", "optionalDependencies"):
            for dep in package.get(key) or {}:
                if dep in available and dep not in seen:
                    seen.add(dep)
                    queue.append(dep)
    return tuple(sorted(pinned, key=lambda d: d.name))
