"""Deployments with component instances for tests, built without a push: the app's
folder is deployed as usual, then each component definition's folder is bundled and
analysed and the instance tree installed beside it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

from udf import bundle
from udf.component_tree import ComponentInstance, ComponentTree, EnvArg
from udf.deployment import Deployment, prepare_modules, source_hash
from udf.executor import Executor


def definition(folder: Path) -> Deployment:
    """One component definition's modules and analysis, as a Deployment of its own."""
    built = bundle(folder)
    runnable, analysis = prepare_modules(built.modules, {})
    return Deployment(built.modules, analysis, source_hash(built.modules), 0, runnable)


def instance(path: str, definition_path: str, env: Mapping[str, str] = {}) -> ComponentInstance:
    name = path.rpartition("/")[2]
    args = tuple(EnvArg(k, value=v) for k, v in env.items())
    return ComponentInstance(path, definition_path, name, args)


def install_components(
    executor: Executor,
    app: Path,
    definitions: Mapping[str, Path],
    instances: Iterable[ComponentInstance],
) -> Deployment:
    """Deploy ``app``, then run ``instances`` of ``definitions`` (definition path → folder)."""
    executor.deploy(app)
    base = executor.deployment
    assert base is not None
    tree = ComponentTree(
        {"": ComponentInstance("", "", ""), **{i.path: i for i in instances}},
        {path: {} for path in definitions},
    )
    built = {path: definition(folder) for path, folder in definitions.items()}
    deployment = dataclasses.replace(base, tree=tree, component_definitions=built)
    executor.install(deployment)
    return deployment
