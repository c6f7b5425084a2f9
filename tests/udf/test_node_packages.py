"""External packages of "use node" modules: left as imports by the bundle when
convex.json names them (the CLI's rules), installed with npm at deploy time into a
per-deployment folder and loaded from there. The registry is a local stand-in
serving a vendored package on loopback, so no test touches the network."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine import Database
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor
from udf.node_packages import NodeDependency, external_packages, parse_dependencies

PACKAGE = "hw-ext"
INDEX_JS = "exports.where = () => %s;\n"
NODE_MODULE = """"use node";
import { where } from "hw-ext";
import { action } from "./_generated/server";
export const which = action({ args: {}, handler: async () => where() });
"""


def tarball(version: str, where: str) -> bytes:
    files = {
        "package/package.json": json.dumps({"name": PACKAGE, "version": version}),
        "package/index.js": INDEX_JS % json.dumps(where),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def registry(monkeypatch, tmp_path):
    """A registry on loopback holding hw-ext@1.0.0 (its code says "registry")."""
    data = tarball("1.0.0", "registry")
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            served.append(self.path)
            base = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.endswith(".tgz"):
                body, kind = data, "application/octet-stream"
            elif self.path.strip("/") == PACKAGE:
                integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
                version = {
                    "name": PACKAGE,
                    "version": "1.0.0",
                    "dist": {
                        "tarball": f"{base}/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz",
                        "shasum": hashlib.sha1(data).hexdigest(),
                        "integrity": integrity,
                    },
                }
                packument = {
                    "name": PACKAGE,
                    "dist-tags": {"latest": "1.0.0"},
                    "versions": {"1.0.0": version},
                }
                body, kind = json.dumps(packument).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    yield served
    server.shutdown()
    server.server_close()


def make_app(root: Path, external: list[str]) -> Path:
    """An app with hw-ext in package.json and node_modules (its copy says "app")."""
    (root / "convex").mkdir(parents=True)
    (root / "convex" / "uses.ts").write_text(NODE_MODULE)
    package = {"name": "ext-app", "dependencies": {"convex": "1.48.0", PACKAGE: "1.0.0"}}
    (root / "package.json").write_text(json.dumps(package))
    (root / "convex.json").write_text(json.dumps({"node": {"externalPackages": external}}))
    installed = root / "node_modules" / PACKAGE
    installed.mkdir(parents=True)
    (installed / "package.json").write_text(json.dumps({"name": PACKAGE, "version": "1.0.0"}))
    (installed / "index.js").write_text(INDEX_JS % json.dumps("app"))
    return root / "convex"


def deploy_and_call(tmp_path: Path, functions: Path) -> tuple[Executor, Database, object]:
    db = Database.open(tmp_path / "data")
    ex = Executor(db)
    ex.deploy(functions)
    return ex, db, ex.run(FunctionCall("uses:which", {}, "action", ADMIN))


def test_an_external_package_is_installed_per_deployment_and_loaded_from_there(registry, tmp_path):
    ex, db, outcome = deploy_and_call(tmp_path, make_app(tmp_path / "app", [PACKAGE]))
    try:
        assert outcome.error is None, outcome.error
        assert outcome.value == "registry"  # not the app's copy: the bundle left the import
        assert ex.deployment.node_dependencies == (NodeDependency(PACKAGE, "1.0.0"),)
        assert 'from "hw-ext"' in ex.deployment.module("uses.js").source
        assert any(p.endswith(".tgz") for p in registry)
        installed = list((tmp_path / "data" / "node" / "packages").glob("*/node_modules/hw-ext"))
        assert len(installed) == 1
    finally:
        ex.close()
        db.close()


def test_packages_that_cannot_be_reinstalled_after_a_restart_fail_the_call_clearly(
    registry, tmp_path, monkeypatch
):
    ex, db, outcome = deploy_and_call(tmp_path, make_app(tmp_path / "app", [PACKAGE]))
    assert outcome.value == "registry"
    ex.close()
    shutil.rmtree(tmp_path / "data" / "node")  # a fresh machine, and no registry now
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "empty-cache"))
    again = Executor(db)
    try:
        failed = again.run(FunctionCall("uses:which", {}, "action", ADMIN)).error
        assert failed.message.startswith(
            "Could not start a Node.js worker: Installing the external packages (hw-ext@1.0.0)"
        ), failed.message
    finally:
        again.close()
        db.close()


def test_without_external_packages_the_package_is_bundled(registry, tmp_path):
    ex, db, outcome = deploy_and_call(tmp_path, make_app(tmp_path / "app", []))
    try:
        assert outcome.value == "app"
        assert ex.deployment.node_dependencies == ()
        assert registry == []
    finally:
        ex.close()
        db.close()


def test_the_clis_rules_for_what_may_be_external(tmp_path):
    root = tmp_path / "app"
    (root / "node_modules" / "a").mkdir(parents=True)
    (root / "node_modules" / "b").mkdir(parents=True)
    (root / "node_modules" / "convex").mkdir(parents=True)
    deps = {"a": "^1.0.0", "b": "file:./b", "convex": "1.48.0", "missing": "1.0.0"}
    (root / "package.json").write_text(json.dumps({"dependencies": deps}))
    assert set(external_packages(root, ["*"])) == {"a"}
    assert external_packages(root, ["b", "convex"]) == {}
    assert external_packages(root, []) == {}


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "x"},
        [{"name": "x"}],
        [{"name": 1, "version": "1"}],
        [{"name": "/etc", "version": "1"}],
    ],
)
def test_malformed_node_dependencies_are_refused(raw):
    from udf.node_packages import NodePackagesError

    with pytest.raises(NodePackagesError):
        parse_dependencies(raw)
