"""`headwater deploy` of an app with components sends what the official CLI sends.

The app's ``convex.config.ts`` uses a component package from its
``node_modules``; the start_push body carries the app's config, its
dependencies and the component definitions, and a running server receives them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gateway.push_client import start_push_request
from udf.component_bundler import bundle_folder, cli_push_request

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from cli_process import Serve, headwater  # noqa: E402
from component_project import COUNTER_DEFINITION, make_component_app  # noqa: E402

pytestmark = pytest.mark.slow


def test_the_start_push_body_is_the_official_clis(tmp_path):
    functions = make_component_app(tmp_path / "app")
    built, components = bundle_folder(functions)
    body, sent = start_push_request("key", built.modules, {}, components=components)
    official = cli_push_request(functions)
    assert body["appDefinition"]["definition"] == official["appDefinition"]["definition"]
    assert body["appDefinition"]["dependencies"] == [COUNTER_DEFINITION]
    assert body["componentDefinitions"] == official["componentDefinitions"]
    assert [m["path"] for m in body["appDefinition"]["changedModules"]] == ["messages.js"]
    assert [m.path for m in sent] == ["messages.js"]


def test_deploy_of_an_app_with_components_reaches_the_push_endpoint(tmp_path):
    functions = make_component_app(tmp_path / "app")
    with Serve(tmp_path / "data") as server:
        done = headwater(
            "deploy", str(functions), "--url", server.url, "--admin-key", server.admin_key
        )
    assert done.returncode == 0, done.stderr
    assert "Deployed" in done.stdout
