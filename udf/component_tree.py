"""The component tree of a deployment: which component instances exist and what defines them.

A push with ``convex.config`` brings one *definition* per component folder (its
``convex.config.js`` evaluated, its modules, its schema) and the app's
definition; the *instances* follow from the app's ``app.use(...)`` calls,
recursively. Several instances may share one definition (two rate limiters);
each instance has its own tables (``engine.components``), crons, scheduled jobs
and env. An app without ``convex.config`` has one instance, the app itself.

This module holds the shapes only (plain data and their JSON in the
``_deployment`` document); evaluating definitions is ``component_definitions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.components import ROOT
from udf.bundler import BundledModule


@dataclass(frozen=True)
class EnvArg:
    """One env value a parent passes at ``use(..., {env})``: a literal or the parent's variable."""

    name: str
    value: str | None = None  # {"type": "value"}
    env_var: str | None = None  # {"type": "envVar", "name": ...}: the parent's variable

    def to_json(self) -> list[Any]:
        if self.env_var is not None:
            return [self.name, {"type": "envVar", "name": self.env_var}]
        return [self.name, {"type": "value", "value": self.value}]

    @classmethod
    def from_json(cls, raw: list[Any]) -> EnvArg:
        name, spec = raw
        if spec.get("type") == "envVar":
            return cls(name, env_var=spec["name"])
        return cls(name, value=spec.get("value"))


@dataclass(frozen=True)
class ComponentInstance:
    path: str  # "" = the app; "limiter"; "workpool/batchWorker"
    definition_path: str  # "" = the app's definition; else as the CLI names the folder
    name: str  # the last part of ``path`` ("" for the app)
    env: tuple[EnvArg, ...] = ()  # what the parent passed (None in the analysis: empty)
    http_prefix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "definitionPath": self.definition_path,
            "name": self.name,
            "env": [a.to_json() for a in self.env],
            "httpPrefix": self.http_prefix,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ComponentInstance:
        return cls(
            raw["path"],
            raw["definitionPath"],
            raw["name"],
            tuple(EnvArg.from_json(a) for a in raw.get("env") or ()),
            raw.get("httpPrefix"),
        )


@dataclass(frozen=True)
class DefinitionUpload:
    """One component definition as a push brings it (the CLI's ``componentDefinitions[i]``;
    the app's is the same shape with ``definition_path == ""``)."""

    definition_path: str
    definition: BundledModule | None  # the bundled convex.config.js (None: app without config)
    dependencies: tuple[str, ...]  # definition paths it imports
    schema: BundledModule | None
    functions: tuple[BundledModule, ...]
    udf_server_version: str | None = None


@dataclass(frozen=True)
class ComponentTree:
    """Every instance by path (the app's ``""`` included) and every definition's evaluated
    ``convex.config`` (``export()`` of defineApp/defineComponent, as JSON) by path."""

    instances: Mapping[str, ComponentInstance] = field(default_factory=dict)
    definitions: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def app_only(cls) -> ComponentTree:
        return cls({ROOT: ComponentInstance(ROOT, ROOT, "")}, {})

    @property
    def has_components(self) -> bool:
        return len(self.instances) > 1

    def instance(self, path: str) -> ComponentInstance | None:
        return self.instances.get(path)

    def children(self, path: str) -> list[ComponentInstance]:
        prefix = "" if path == ROOT else path + "/"
        return [
            i
            for p, i in sorted(self.instances.items())
            if p and p.startswith(prefix) and "/" not in p[len(prefix) :]
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "instances": [i.to_json() for _, i in sorted(self.instances.items())],
            "definitions": dict(sorted(self.definitions.items())),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> ComponentTree:
        if not raw:
            return cls.app_only()
        instances = {i["path"]: ComponentInstance.from_json(i) for i in raw["instances"]}
        return cls(instances, dict(raw.get("definitions") or {}))
