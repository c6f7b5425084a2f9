"""Headwater's own admin endpoints (admin key only): deploy a functions folder.

``POST /api/headwater/deploy`` takes a ZIP of a functions folder (what
``headwater deploy DIR`` sends), bundles and deploys it as one commit, and
answers ``{"functions": [...], "removed": [...], "ts": N}``; a bundle or
schema error is a 400 with the error's code and message, and changes nothing.
A ZIP that defines no function while functions are deployed is refused
(``EmptyDeployment``) unless the query has ``allowEmpty=true``: removing every
function must be asked for.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from engine import HeadwaterError
from gateway.context import AuthenticationError, GatewayContext
from gateway.http_errors import HttpError, error_response
from udf.executor import Executor

_DEPLOY_ZIP_BYTES_MAX = 64 << 20


def admin_routes(context: GatewayContext, executor: Executor) -> list[BaseRoute]:
    async def deploy(request: Request) -> JSONResponse:
        try:
            identity = context.authenticator.from_authorization_header(
                request.headers.get("authorization")
            )
        except AuthenticationError as exc:
            return error_response(HttpError(401, exc.code, exc.message))
        if not identity.admin:
            return error_response(HttpError(403, "Forbidden", "Deploying needs the admin key."))
        body = await request.body()
        if len(body) > _DEPLOY_ZIP_BYTES_MAX:
            return error_response(
                HttpError(413, "PayloadTooLarge", "The functions ZIP is too large.")
            )
        try:
            allow_empty = request.query_params.get("allowEmpty", "").lower() == "true"
            report = await anyio.to_thread.run_sync(_deploy_zip, executor, body, allow_empty)
        except HeadwaterError as exc:
            return error_response(HttpError(400, exc.code, exc.message))
        return JSONResponse(
            {"functions": report.functions, "removed": report.removed, "ts": report.ts}
        )

    return [Route("/api/headwater/deploy", deploy, methods=["POST"])]


def _deploy_zip(executor: Executor, body: bytes, allow_empty: bool):  # type: ignore[no-untyped-def]
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except zipfile.BadZipFile as exc:
        raise HeadwaterError("The request body is not a ZIP file.", code="BadDeployBody") from exc
    with tempfile.TemporaryDirectory() as tmp, archive:
        root = Path(tmp) / "convex"
        root.mkdir()
        for name in archive.namelist():
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts:
                raise HeadwaterError(f"Unsafe path in the ZIP: {name}", code="BadDeployBody")
            if name.endswith("/"):
                continue
            target = root.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
        try:
            return executor.deploy(root, allow_empty=allow_empty)
        except HeadwaterError as exc:
            # Name the folder as the client knows it, not by its temporary path.
            message = exc.message.replace(str(root), "the uploaded folder")
            raise HeadwaterError(message, code=exc.code) from exc


def zip_functions_dir(functions_dir: str | Path) -> bytes:
    """The ZIP ``headwater deploy`` sends: the folder's files, without ``node_modules``."""
    root = Path(functions_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if not path.is_file() or "node_modules" in rel.parts:
                continue
            archive.write(path, rel.as_posix())
    return buffer.getvalue()
