"""The load generator of ``bench.bench_gateway``: WebSocket clients in a process of their own.

The clients and the server must not share a GIL, so the benchmark runs this
module as a subprocess, once per scenario; it prints one ``RESULT <json>``
line on stdout (progress goes to stderr). Every wait is bounded.

    python -m bench.gateway_load own      --url URL [--bare] --rounds R --key K
    python -m bench.gateway_load fanout   --url URL [--bare] --sizes 1,100 --rounds R --key K
    python -m bench.gateway_load distinct --url URL --subscribers N --rounds R
    python -m bench.gateway_load bare-server --response JSON

The sync clients speak the raw protocol: Connect with a fresh session id, one
ModifyQuerySet adding query 0 (``rooms:get`` by key), and nothing else; the
writer is another socket that sends Mutations (``rooms:set``). ``--bare``
points the same clients at ``bare-server``: a Starlette app on hypercorn/trio
with the same per-socket outbox design but no database, where one socket's
``broadcast:V`` puts a Transition-shaped message carrying V in every other
socket's outbox and any other text is echoed. It is the transport floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import uuid
from collections.abc import Awaitable
from typing import Any

SYNC_PATH = "/api/sync"
BARE_PATH = "/ws"
CONNECT_CONCURRENCY = 32  # sockets being opened at once (the server's backlog is 100)
OPEN_TIMEOUT_S = 30.0
ROUND_TIMEOUT_S = 15.0
SETTLE_S = 0.3  # after a round of `distinct`: time for stray messages to arrive
CLOSE_TIMEOUT_S = 20.0
FD_HEADROOM = 64

_BARE_TRANSITION = (
    '{"type":"Transition","startVersion":{"querySet":1,"identity":0,"ts":"AAAAAAAAAAA="},'
    '"endVersion":{"querySet":1,"identity":0,"ts":"AAAAAAAAAAA="},"modifications":'
    '[{"type":"QueryUpdated","queryId":0,"value":{"key":0,"value":%s},"logLines":[],'
    '"journal":null}],"clientClockSkew":null,"serverTs":0}'
)


class LoadError(Exception):
    """The server answered something a well-behaved run never sees."""


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE toward ``needed`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    return soft


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Round:
    """One timed event: when did each participating client see ``expected``?"""

    def __init__(self, expected: float, needed: int) -> None:
        self.expected = expected
        self.needed = needed
        self.t0 = 0.0
        self.arrivals_s: list[float] = []
        self.done = asyncio.Event()

    def arrive(self, now: float) -> None:
        self.arrivals_s.append(now - self.t0)
        if len(self.arrivals_s) >= self.needed:
            self.done.set()


class Client:
    """One socket: at most one subscribed query (id 0), mutations, echoes."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ready = asyncio.Event()  # the first result of query 0 has arrived
        self.round: Round | None = None
        self.transitions = 0
        self.updates = 0
        self.error: BaseException | None = None
        self._next_request = 0
        self._waiting: dict[int | str, asyncio.Future[tuple[dict, float]]] = {}
        self.task: asyncio.Task[None] | None = None

    async def read_loop(self) -> None:
        try:
            async for text in self.ws:
                self._handle(json.loads(text), time.perf_counter())
        except Exception as exc:  # reported by the scenario; a round then times out
            self.error = exc
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(LoadError(f"socket ended: {self.error!r}"))

    def _handle(self, message: dict, now: float) -> None:
        kind = message.get("type")
        if kind == "Transition":
            self.transitions += 1
            for mod in message["modifications"]:
                if mod["type"] == "QueryUpdated":
                    self.updates += 1
                    self._saw(mod["value"], now)
                elif mod["type"] == "QueryFailed":
                    raise LoadError(f"query failed: {mod['errorMessage']}")
        elif kind == "MutationResponse":
            self._resolve(message["requestId"], message, now)
        elif kind == "Echo":
            self._resolve("echo", message, now)
        elif kind == "FatalError":
            raise LoadError(f"FatalError from the server: {message['error']}")

    def _saw(self, value: Any, now: float) -> None:
        self.ready.set()
        current = self.round
        if current is None or not isinstance(value, dict):
            return
        if value.get("value") == current.expected:
            self.round = None
            current.arrive(now)

    def _resolve(self, key: int | str, message: dict, now: float) -> None:
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result((message, now))

    def _expect(self, key: int | str) -> asyncio.Future[tuple[dict, float]]:
        future: asyncio.Future[tuple[dict, float]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    async def send(self, message: dict | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def mutate(self, path: str, args: dict) -> Awaitable[tuple[dict, float]]:
        """Send a Mutation; the returned future resolves to (response, arrival time)."""
        request_id = self._next_request
        self._next_request += 1
        future = self._expect(request_id)
        await self.send(
            {"type": "Mutation", "requestId": request_id, "udfPath": path, "args": [args]}
        )
        return future

    async def echo(self, payload: str) -> Awaitable[tuple[dict, float]]:
        future = self._expect("echo")
        await self.send(payload)
        return future

    async def close(self) -> None:
        try:
            await self.ws.close()
        except Exception:
            pass
        if self.task is not None:
            self.task.cancel()


async def open_client(url: str, *, bare: bool, key: int | None) -> Client:
    """Open a socket; with ``key``, subscribe to ``rooms:get`` and wait for its first result."""
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://", 1) + (BARE_PATH if bare else SYNC_PATH)
    ws = await connect(
        ws_url,
        proxy=None,
        compression=None,
        ping_interval=None,
        open_timeout=OPEN_TIMEOUT_S,
        close_timeout=2,
        max_size=None,
    )
    client = Client(ws)
    client.task = asyncio.create_task(client.read_loop())
    if bare:
        if key is not None:  # the server registers a socket before reading from it
            reply = await client.echo(json.dumps({"type": "Echo"}))
            await asyncio.wait_for(reply, OPEN_TIMEOUT_S)
            client.ready.set()
        return client
    await client.send(
        {
            "type": "Connect",
            "sessionId": str(uuid.uuid4()),
            "connectionCount": 0,
            "lastCloseReason": "InitialConnect",
            "clientTs": int(time.time() * 1000),
        }
    )
    if key is not None:
        add = {
            "type": "Add",
            "queryId": 0,
            "udfPath": "rooms:get",
            "args": [{"key": key}],
            "journal": None,
        }
        await client.send(
            {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [add]}
        )
        await asyncio.wait_for(client.ready.wait(), OPEN_TIMEOUT_S)
    return client


async def open_subscribers(url: str, keys: list[int], *, bare: bool) -> list[Client]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(key: int) -> Client:
        async with gate:
            return await open_client(url, bare=bare, key=key)

    return list(await asyncio.gather(*(one(k) for k in keys)))


async def close_all(clients: list[Client]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 4)

    async def one(client: Client) -> None:
        async with gate:
            await client.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients)), CLOSE_TIMEOUT_S)
    except TimeoutError:
        _log(f"closing {len(clients)} sockets took more than {CLOSE_TIMEOUT_S} s")


class Values:
    """Room values never seen before in this deployment (exact in a float64)."""

    def __init__(self) -> None:
        self._next = float(time.time_ns() // 1000 % 10**12)

    def fresh(self) -> float:
        self._next += 1
        return self._next


async def timed_change(
    writer: Client, rnd: Round, key: int, value: float, *, bare: bool
) -> dict[str, Any]:
    """Change room ``key`` to ``value`` from ``writer``; wait for the round (bounded)."""
    rnd.t0 = time.perf_counter()
    if bare:
        await writer.send(f"broadcast:{value!r}")
        response = None
    else:
        response = await writer.mutate("rooms:set", {"key": key, "value": value})
    try:
        await asyncio.wait_for(rnd.done.wait(), ROUND_TIMEOUT_S)
    except TimeoutError:
        pass
    missing = rnd.needed - len(rnd.arrivals_s)
    out: dict[str, Any] = {"arrivals_s": rnd.arrivals_s, "missing": missing}
    if response is not None:
        message, arrived = await asyncio.wait_for(response, ROUND_TIMEOUT_S)
        if not message["success"]:
            raise LoadError(f"rooms:set failed: {message['result']}")
        out["response_s"] = arrived - rnd.t0
    return out


# -- scenarios ---------------------------------------------------------------------


async def scenario_own(url: str, *, bare: bool, rounds: int, key: int) -> dict[str, Any]:
    """One socket subscribed to room ``key`` changes it itself (bare: echo round trips)."""
    client = await open_client(url, bare=bare, key=key)
    values = Values()
    visible: list[float] = []
    responses: list[float] = []
    try:
        for _ in range(rounds):
            if bare:
                started = time.perf_counter()
                reply = await client.echo(json.dumps({"type": "Echo", "v": values.fresh()}))
                _, arrived = await asyncio.wait_for(reply, ROUND_TIMEOUT_S)
                visible.append(arrived - started)
                continue
            rnd = Round(values.fresh(), 1)
            client.round = rnd
            out = await timed_change(client, rnd, key, rnd.expected, bare=False)
            if out["missing"]:
                raise LoadError(f"no Transition with the new value within {ROUND_TIMEOUT_S} s")
            visible.append(out["arrivals_s"][0])
            responses.append(out["response_s"])
    finally:
        await client.close()
    return {"visible_s": visible, "response_s": responses}


async def scenario_fanout(
    url: str, *, bare: bool, sizes: list[int], rounds: int, key: int
) -> dict[str, Any]:
    """N sockets hold the same query; another socket changes it; when has the last one seen it?"""
    writer = await open_client(url, bare=bare, key=None)
    subscribers: list[Client] = []
    values = Values()
    results: dict[str, Any] = {}
    try:
        for size in sizes:
            started = time.perf_counter()
            more = size - len(subscribers)
            subscribers += await open_subscribers(url, [key] * more, bare=bare)
            opened_s = time.perf_counter() - started
            _log(f"fanout: {size} subscribers ({more} opened in {opened_s:.1f} s)")
            per_round = []
            for _ in range(rounds + 1):  # the first round warms up
                rnd = Round(values.fresh(), size)
                for sub in subscribers:
                    sub.round = rnd
                per_round.append(await timed_change(writer, rnd, key, rnd.expected, bare=bare))
            errors = sum(1 for s in subscribers if s.error is not None)
            results[str(size)] = {
                "rounds": per_round[1:],
                "opened_s": opened_s,
                "opened": more,
                "socket_errors": errors,
            }
    finally:
        await close_all([writer, *subscribers])
    return {"sizes": results}


async def scenario_distinct(url: str, *, subscribers: int, rounds: int) -> dict[str, Any]:
    """N sockets hold N different queries; one room changes; only its socket should hear."""
    writer = await open_client(url, bare=False, key=None)
    started = time.perf_counter()
    subs = await open_subscribers(url, list(range(subscribers)), bare=False)
    opened_s = time.perf_counter() - started
    _log(f"distinct: {subscribers} subscribers opened in {opened_s:.1f} s")
    values = Values()
    targets = [(subscribers // 2 + 7 * r) % subscribers for r in range(rounds)]
    transitions_before = [s.transitions for s in subs]
    updates_before = [s.updates for s in subs]
    per_round = []
    try:
        for target in targets:
            rnd = Round(values.fresh(), 1)
            subs[target].round = rnd
            per_round.append(await timed_change(writer, rnd, target, rnd.expected, bare=False))
            await asyncio.sleep(SETTLE_S)
    finally:
        chosen = set(targets)
        others = [i for i in range(subscribers) if i not in chosen]
        counts = {
            "target_transitions": sum(subs[i].transitions - transitions_before[i] for i in chosen),
            "target_updates": sum(subs[i].updates - updates_before[i] for i in chosen),
            "other_transitions": sum(subs[i].transitions - transitions_before[i] for i in others),
            "other_updates": sum(subs[i].updates - updates_before[i] for i in others),
            "socket_errors": sum(1 for s in subs if s.error is not None),
        }
        await close_all([writer, *subs])
    return {"rounds": per_round, "opened_s": opened_s, **counts}


# -- the bare server -------------------------------------------------------------------


def bare_app(response_text: str) -> Any:
    """Starlette: ``/health``, ``POST /api/query`` (a fixed answer) and the ``/ws`` broadcast."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    body = response_text.encode()
    outboxes: dict[WebSocket, Any] = {}

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def query(request: Request) -> Response:
        json.loads(await request.body())
        return Response(body, media_type="application/json")

    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        send, receive = anyio.create_memory_object_stream[str](1000)
        outboxes[websocket] = send

        async def sender() -> None:
            try:
                async for text in receive:
                    await websocket.send_text(text)
            except Exception:  # the peer left; the reader notices too
                pass

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sender)
                try:
                    while True:
                        text = await websocket.receive_text()
                        if text.startswith("broadcast:"):
                            payload = _BARE_TRANSITION % text.removeprefix("broadcast:")
                            for other, outbox in list(outboxes.items()):
                                if other is not websocket:
                                    outbox.send_nowait(payload)
                        else:
                            send.send_nowait(text)
                except WebSocketDisconnect:
                    pass
                tg.cancel_scope.cancel()
        finally:
            outboxes.pop(websocket, None)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/query", query, methods=["POST"]),
            WebSocketRoute(BARE_PATH, ws_endpoint),
        ]
    )


def run_bare_server(response_text: str) -> None:
    """Serve until stdin closes; the first stdout line is ``URL <url>``."""
    from gateway.server import run_server_in_thread

    url, stop = run_server_in_thread(bare_app(response_text))
    print(f"URL {url}", flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()


# -- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_load")
    parser.add_argument("mode", choices=("own", "fanout", "distinct", "bare-server"))
    parser.add_argument("--url", default="")
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--key", type=int, default=0)
    parser.add_argument("--sizes", default="1")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--response", default="{}")
    args = parser.parse_args(argv)
    if args.mode == "bare-server":
        raise_fd_limit(max(int(s) for s in args.sizes.split(",")) + args.subscribers + FD_HEADROOM)
        run_bare_server(args.response)
        return 0
    if args.mode == "own":
        work = scenario_own(args.url, bare=args.bare, rounds=args.rounds, key=args.key)
    elif args.mode == "fanout":
        sizes = [int(s) for s in args.sizes.split(",")]
        raise_fd_limit(max(sizes) + FD_HEADROOM)
        work = scenario_fanout(
            args.url, bare=args.bare, sizes=sizes, rounds=args.rounds, key=args.key
        )
    else:
        raise_fd_limit(args.subscribers + FD_HEADROOM)
        work = scenario_distinct(args.url, subscribers=args.subscribers, rounds=args.rounds)
    result = asyncio.run(work)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
