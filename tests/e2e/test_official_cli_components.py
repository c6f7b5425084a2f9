"""The official CLI (npm convex 1.48) deploys an app with components to `headwater serve`.

A local component (``convex/limiter/convex.config.ts``) used twice by the app's
``convex/convex.config.ts``: the CLI bundles each definition, the server evaluates
them and answers with each definition's analysis, from which the CLI generates
``components`` in ``_generated/api.d.ts``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
import convex_cli  # noqa: E402
from cli_process import Serve  # noqa: E402

pytestmark = pytest.mark.slow
STEP_TIMEOUT_S = 180

APP_CONFIG = """import { defineApp } from "convex/server";
import limiter from "./limiter/convex.config";
const app = defineApp();
app.use(limiter);
app.use(limiter, { name: "second" });
export default app;
"""
LIMITER_CONFIG = """import { defineComponent } from "convex/server";
export default defineComponent("limiter");
"""
LIMITER_SCHEMA = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ tokens: defineTable({ key: v.string() }).index("by_key", ["key"]) });
"""
LIMITER_LIB = """import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const check = query({ args: { key: v.string() }, handler: async () => true });
export const take = mutation({ args: { key: v.string() }, handler: async () => null });
"""
APP_MODULE = """import { query } from "./_generated/server";
export const hello = query({ args: {}, handler: async () => "hi" });
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-components")
    project = convex_cli.make_project(root, name="components-test")
    convex = project / "convex"
    (convex / "limiter").mkdir()
    (convex / "convex.config.ts").write_text(APP_CONFIG)
    (convex / "hello.ts").write_text(APP_MODULE)
    (convex / "limiter" / "convex.config.ts").write_text(LIMITER_CONFIG)
    (convex / "limiter" / "schema.ts").write_text(LIMITER_SCHEMA)
    (convex / "limiter" / "lib.ts").write_text(LIMITER_LIB)
    with Serve(root / "data") as running:
        running.project = project
        yield running


def test_deploy_an_app_with_two_instances_of_a_component(server):
    done = convex_cli.npx_convex(server, "deploy", "--yes", timeout_s=STEP_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    api = (server.project / "convex" / "_generated" / "api.d.ts").read_text()
    assert "export declare const components" in api
    assert "second:" in api and "limiter:" in api
    generated = server.project / "convex" / "limiter" / "_generated"
    component = (generated / "component.ts").read_text()
    assert "check" in component and "take" in component, component
    # Deploying again finds everything stored.
    again = convex_cli.npx_convex(server, "deploy", "--yes", timeout_s=STEP_TIMEOUT_S)
    assert again.returncode == 0, again.stdout + again.stderr
