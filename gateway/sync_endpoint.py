"""The WebSocket sync endpoint: ``/api/sync`` and ``/api/{client_version}/sync``.

Each socket gets a ``SyncSession`` (the protocol state) and these tasks: a
reader that parses and handles client messages in arrival order; a sender
that drains a bounded outbox; an updater that computes the Transitions that
must await something, one at a time, and sends ``{"type":"Ping"}`` after
``ping_interval_s`` of silence; a mutation runner (one at a time, in order;
it exists only while mutations wait); and one task per action. Executor calls
run in worker threads.

Ordering. Every Transition is computed at ``ts = processed_ts`` once the
executor has matched every commit up to the newest ts (and up to every commit
ts already confirmed to this client), so a Transition after a mutation's
response includes the mutation's writes. A Transition whose ts was read while
a mutation was running is held until that mutation's response is queued, so
a response always precedes the first Transition covering it. An update is
scheduled after every ModifyQuerySet, accepted Authenticate, mutation and
action, and whenever a query the socket holds is invalidated; scheduled
updates coalesce, and none starts while two Transitions are unsent.

Fan-out. When nothing has to be awaited — no query-set or identity change,
every commit already matched, no mutation running, every result valid at
``processed_ts`` (the registry refreshes a shared query before telling its
holders) — ``schedule_update`` computes the Transition on the spot, so a
thousand sockets on one query cost a thousand renderings of one shared
result and one wakeup of each sender, not a wakeup and a wait per update.

Failures end only their own socket: a malformed message gets FatalError and a
close, a state contradiction a 1011 close, an overload a 1013 close whose
reason the JS client uses for its backoff. A client that stops reading is
dropped once its outbox holds ``send_buffer_messages_max`` messages.

Caveats: WebSocket-level pings, the idle timeout and the frame size cap are
the server's (hypercorn ``websocket_ping_interval``, ``read_timeout``,
``websocket_max_message_size``); the ASGI app never sees ping or pong frames.
A socket whose peer stopped reading keeps its TCP connection until the
kernel's pending write completes or fails, but nothing else: its queries and
outbox are released as soon as it is dropped. ``latest_ts`` and
``processed_ts`` are read on the event loop: executors answer them from memory.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import trio
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.errors import HeadwaterError, LimitExceededError
from gateway.context import AuthenticationError, GatewayContext, run_function
from gateway.live_queries import LiveQueryRegistry
from gateway.sync_messages import (
    CLOSE_GOING_AWAY,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    TRANSITION_CHUNK_BYTES_MAX,
    Action,
    Authenticate,
    AuthError,
    Connect,
    EncodedResult,
    Event,
    FatalError,
    ModifyQuerySet,
    Mutation,
    Ping,
    SyncProtocolError,
    Transition,
    decode_args,
    function_response,
    overloaded,
    parse_client_message,
    protocol_violation,
    serialize,
    session_request_id,
    transition_chunks,
)
from gateway.sync_outbox import Outbox
from gateway.sync_session import COMPONENTS_UNSUPPORTED, SyncSession, failed_result
from udf.calls import FunctionCall, FunctionError, FunctionOutcome, Identity

logger = logging.getLogger("headwater.sync")

_PING = serialize(Ping())
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")
_CHUNKS_SINCE = (1, 28, 0)  # npm clients from this version reassemble TransitionChunks
_FINAL_SEND_TIMEOUT_S = 2.0
_DRAIN_TIMEOUT_S = 1.0  # how long an ended socket still reads frames, waiting for the close
_NO_SCOPE = contextlib.nullcontext()
# A send that fails with one of these means the connection is gone or going: the
# client left, or the server's stream is shutting down under a send racing it (trio
# raises BusyResourceError to the send that meets a concurrent send_eof).
_PEER_GONE = (
    WebSocketDisconnect,
    RuntimeError,
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.BusyResourceError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.BusyResourceError,
)


class _AuthRejected(Exception):
    def __init__(self, error: AuthenticationError) -> None:
        super().__init__(error.message)
        self.error = error


class _Connection:
    """One socket: the tasks around its SyncSession."""

    def __init__(self, hub: SyncHub, websocket: WebSocket, chunks_allowed: bool) -> None:
        settings = hub.context.settings
        self.hub = hub
        self.ws = websocket
        self.executor = hub.context.executor
        self.authenticator = hub.context.authenticator
        self.registry = hub.registry
        self.settings = settings
        self.chunks_allowed = chunks_allowed
        self.session = SyncSession(queries_max=settings.queries_per_connection_max)
        self.outbox = Outbox(settings.send_buffer_messages_max)
        self._wanted = anyio.Event()
        # Mutations wait here for the one runner task, which exists only while they do.
        self._mutations: deque[tuple[Mutation, Identity, str | None]] = deque()
        self._mutation_runner = False
        self._mutation_running: anyio.Event | None = None
        self._confirmed_ts = 0  # newest commit ts answered to this client
        self._actions = 0
        self._workers = anyio.CancelScope()  # every task but the reader
        self._handling = anyio.CancelScope()  # the client message being handled
        self._updating = False  # the update loop is computing a Transition
        self._ping_due = 0.0  # event-loop clock: a Ping is sent if nothing else is by then
        self._ended = False
        self._client_gone = False
        self._final: str | None = None
        self._close_code = CLOSE_NORMAL
        self._close_reason = ""

    def schedule_update(self) -> None:
        """Ask for a Transition: made right here when nothing has to be awaited for it,
        else by the update loop (scheduled updates coalesce there)."""
        if self._ended or self._wanted.is_set():
            return
        if self._updating or not self._update_now():
            self._wanted.set()

    # -- lifecycle --------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until the client disconnects.

        The reader outlives the other tasks: after the socket has ended it keeps
        draining frames for a moment, so the server can still deliver the client's
        disconnect while a final send is blocked on a peer that stopped reading.
        """
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self._run_workers)
                await self._read_loop()
                self._end()
        finally:
            self._end()
            self._mutations.clear()

    async def _run_workers(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            with self._workers:
                async with anyio.create_task_group() as tg:
                    self._spawn = tg.start_soon
                    tg.start_soon(self._guarded, self._send_loop)
                    tg.start_soon(self._guarded, self._update_loop)
                    task_status.started()
        finally:
            self._end()
            with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_SEND_TIMEOUT_S):
                await self._close_socket()

    async def _guarded(self, task: Callable[[], Awaitable[None]]) -> None:
        try:
            await task()
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        """End the socket the way its failure calls for."""
        if isinstance(exc, SyncProtocolError):
            logger.info("sync socket closed: %s: %s", exc.code, exc.message)
            final = serialize(FatalError(exc.message)) if exc.fatal else None
            self.fail(exc.close_code, exc.close_reason, final)
        elif isinstance(exc, _AuthRejected):
            error = exc.error
            auth_error = AuthError(error.message, self.session.current.identity, True)
            self.fail(CLOSE_NORMAL, error.code, serialize(auth_error))
        else:
            logger.error("sync socket failed", exc_info=exc)
            self.fail(1011, "InternalServerError")

    def fail(self, code: int, reason: str, final: str | None = None) -> None:
        """End the socket: optionally one last message, then a close frame."""
        if self._ended:
            return
        self._final, self._close_code, self._close_reason = final, code, reason
        self._end()

    def _end(self) -> None:
        """Drop everything the socket holds (at once, even if the peer is stuck)."""
        if self._ended:
            return
        self._ended = True
        self.outbox.close()
        for query in self.session.queries.values():
            if query.live is not None:
                self.registry.release(query.live, self.schedule_update)
                query.live = None
        self.hub._connections.discard(self)
        self._workers.cancel()
        self._handling.cancel()

    async def _close_socket(self) -> None:
        if self._client_gone:
            return
        try:
            if self._final is not None:
                await self.ws.send_text(self._final)
            await self.ws.close(self._close_code, self._close_reason)
        except _PEER_GONE:
            pass

    # -- reading ----------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Handle frames in order; once the socket has ended, drain them briefly."""
        drain_deadline: float | None = None
        while True:
            if self._ended and drain_deadline is None:
                drain_deadline = anyio.current_time() + _DRAIN_TIMEOUT_S
            # Only a draining read has a deadline: an idle socket holds no cancel scope.
            scope: contextlib.AbstractContextManager[Any] = _NO_SCOPE
            if drain_deadline is not None:
                scope = anyio.CancelScope(deadline=drain_deadline)
            with scope:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    self._client_gone = True
                    return
                if not self._ended:
                    self._handling = anyio.CancelScope()
                    with self._handling:
                        await self._guarded(partial(self._handle_frame, message))
                continue
            return

    async def _handle_frame(self, message: Mapping[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            raise protocol_violation(
                "Binary frames are not part of the sync protocol", "BinaryMessage"
            )
        size_max = self.settings.message_bytes_max
        if len(text) > size_max // 4 and len(text.encode()) > size_max:
            raise SyncProtocolError(
                f"A message of {len(text.encode())} bytes is larger than the limit of "
                f"{size_max} bytes",
                code="MessageTooLarge",
                fatal=True,
                close_code=CLOSE_MESSAGE_TOO_BIG,
            )
        await self._handle(parse_client_message(text))

    async def _handle(self, message: Any) -> None:
        session = self.session
        if isinstance(message, Connect):
            latest = self.executor.latest_ts()
            session.connect(message, latest_ts=latest, now_ms=time.time() * 1000)
        elif isinstance(message, ModifyQuerySet):
            session.modify_query_set(message)
            self.schedule_update()
        elif isinstance(message, Authenticate):
            try:
                identity = await anyio.to_thread.run_sync(
                    self.authenticator.from_sync_authenticate,
                    message.token_type,
                    message.value,
                    message.impersonating,
                )
            except AuthenticationError as exc:
                raise _AuthRejected(exc) from None
            session.authenticate(message.base_version, identity)
            self.schedule_update()
        elif isinstance(message, Mutation):
            self._check_component(message.component_path, session.caller_identity)
            in_flight = len(self._mutations) + (self._mutation_running is not None)
            if in_flight >= self.settings.mutations_in_flight_max:
                raise overloaded(
                    f"Too many concurrent mutations. Only up to "
                    f"{self.settings.mutations_in_flight_max} pending mutations allowed on a "
                    f"single websocket.",
                    "TooManyConcurrentMutations",
                )
            self._mutations.append((message, session.caller_identity, session.session_id))
            if not self._mutation_runner:
                self._mutation_runner = True
                self._spawn(self._guarded, self._run_mutations)
        elif isinstance(message, Action):
            self._check_component(message.component_path, session.caller_identity)
            if self._actions >= self.settings.mutations_in_flight_max:
                raise overloaded(
                    f"Too many concurrent actions. Only up to "
                    f"{self.settings.mutations_in_flight_max} actions may run at once on a "
                    f"single websocket.",
                    "TooManyConcurrentRequests",
                )
            self._actions += 1
            action = partial(self._run_action, message, session.caller_identity, session.session_id)
            self._spawn(self._guarded, action)
        elif isinstance(message, Event):
            logger.debug("client event %s", message.event_type)

    @staticmethod
    def _check_component(component_path: str | None, identity: Identity) -> None:
        if component_path and not identity.admin:
            raise protocol_violation(
                "Only admin or system users can call functions on non-root components directly",
                "ComponentPathForbidden",
            )

    # -- functions ----------------------------------------------------------------

    async def _call(
        self, message: Mutation | Action, identity: Identity, session_id: str | None
    ) -> tuple[FunctionOutcome, str]:
        server_id = session_request_id(session_id, message.request_id)
        if message.component_path:
            return FunctionOutcome(error=FunctionError(COMPONENTS_UNSUPPORTED)), server_id
        try:
            args = decode_args(message.args, message.udf_path)
        except HeadwaterError as exc:
            return FunctionOutcome(error=FunctionError(exc.message)), server_id
        is_mutation = isinstance(message, Mutation)
        call = FunctionCall(
            path=message.udf_path,
            args=args,
            kind="mutation" if is_mutation else "action",
            identity=identity,
            request_id=server_id,
            idempotency_key=(session_id, message.request_id)
            if is_mutation and session_id is not None
            else None,
        )
        return await anyio.to_thread.run_sync(run_function, self.executor, call), server_id

    async def _run_mutations(self) -> None:
        """Run queued mutations one at a time, in arrival order, until none is left."""
        try:
            while self._mutations:
                message, identity, session_id = self._mutations.popleft()
                self._mutation_running = running = anyio.Event()
                try:
                    outcome, server_id = await self._call(message, identity, session_id)
                    response = function_response("Mutation", message.request_id, outcome, server_id)
                    if response.success and response.ts is not None:
                        self._confirmed_ts = max(self._confirmed_ts, response.ts)
                    self.outbox.push([serialize(response)])
                finally:
                    self._mutation_running = None
                    running.set()
                self.schedule_update()
        finally:
            self._mutation_runner = False

    async def _run_action(
        self, message: Action, identity: Identity, session_id: str | None
    ) -> None:
        try:
            outcome, server_id = await self._call(message, identity, session_id)
            response = function_response("Action", message.request_id, outcome, server_id)
            self.outbox.push([serialize(response)])
        finally:
            self._actions -= 1
        self.schedule_update()

    # -- sending ------------------------------------------------------------------

    async def _send_loop(self) -> None:
        outbox = self.outbox
        while True:
            item = outbox.pop_nowait()
            if item is None:
                item = await outbox.pop()
            text, ends_message, is_transition = item
            try:
                await self.ws.send_text(text)
            except _PEER_GONE:
                self._client_gone = True
                self._end()
                return
            self._ping_due = anyio.current_time() + self.settings.ping_interval_s
            outbox.sent(ends_message, is_transition)
            if is_transition and ends_message:
                self.hub.transitions_sent += 1

    # -- updates -------------------------------------------------------------------

    async def _update_loop(self) -> None:
        """Updates that must await something; and ``{"type":"Ping"}`` after silence.

        The Ping deadline lives here rather than in the send loop: a socket served
        by synchronous updates never wakes this loop, so its wait (and cancel
        scope) outlasts many messages instead of being made anew for each.
        """
        interval = self.settings.ping_interval_s
        self._ping_due = anyio.current_time() + interval
        while True:
            with anyio.CancelScope(deadline=self._ping_due):
                await self._wanted.wait()
            if not self._wanted.is_set():
                now = anyio.current_time()
                if now >= self._ping_due:
                    self._ping_due = now + interval  # also while a send is stuck: no spinning
                    if self.outbox.empty:
                        self.outbox.push([_PING])
                continue
            while self.outbox.transitions >= 2:
                await self.outbox.wait_transition_sent()
            self._wanted = anyio.Event()
            await self._update()

    def _update_now(self) -> bool:
        """Make the Transition at once if nothing needs awaiting; False if something does.

        That is: no query-set or identity change pending, every commit up to the
        newest (and up to this client's confirmed mutations) already matched, no
        mutation whose response could be overtaken, fewer than two Transitions
        unsent, and every query's result valid at the processed ts. This is the
        path of a fan-out: a shared query's new result is in place and each socket
        only renders its Transition, without waking its update loop.
        """
        session = self.session
        if session.update_pending or self._mutation_running is not None:
            return False
        if self.outbox.transitions >= 2:
            return False
        ts = self.executor.processed_ts()
        if ts < self._confirmed_ts or ts < self.executor.latest_ts():
            return False
        results = self._known_results(ts)
        if results is None:
            return False
        try:
            plan = session.begin_update()
            transition = session.finish_update(plan, ts, results, server_ts_ns=time.time_ns())
            self._push_transition(transition)
        except Exception as exc:  # what _guarded does for the update loop
            self._failed(exc)
        return True

    def _known_results(self, ts: int) -> dict[int, EncodedResult] | None:
        """Every query's result at ``ts`` if all are known without running; else None."""
        results: dict[int, EncodedResult] = {}
        valid_result = self.registry.valid_result
        for query_id, query in self.session.queries.items():
            if query.refused is not None:
                continue
            known = valid_result(query.live, ts)
            if known is None:
                return None
            results[query_id] = known
        return results

    async def _update(self) -> None:
        self._updating = True
        try:
            await self._update_waiting()
        finally:
            self._updating = False

    async def _update_waiting(self) -> None:
        plan = self.session.begin_update()
        for query in plan.release:
            self.registry.release(query.live, self.schedule_update)
            query.live = None
        for query in plan.subscribe:
            try:
                query.live = self.registry.acquire(
                    query.udf_path, query.args, plan.identity, query.journal, self.schedule_update
                )
            except LimitExceededError as exc:
                query.refused = failed_result(exc.message)
        floor = max(self.executor.latest_ts(), self._confirmed_ts)
        await self.registry.wait_processed(floor)
        ts = self.executor.processed_ts()
        running = self._mutation_running  # it may commit at or before ts
        results = await self._results_at(ts)
        if running is not None:
            await running.wait()
        transition = self.session.finish_update(plan, ts, results, server_ts_ns=time.time_ns())
        self._push_transition(transition)

    async def _results_at(self, ts: int) -> dict[int, Any]:
        results: dict[int, Any] = {}
        missing = []
        for query_id, query in self.session.queries.items():
            if query.refused is not None:
                continue
            known = self.registry.valid_result(query.live, ts)
            if known is not None:
                results[query_id] = known
            else:
                missing.append((query_id, query.live))

        async def fetch(query_id: int, live: Any) -> None:
            results[query_id] = await self.registry.result_at(live, ts)

        if len(missing) == 1:  # the usual case: no task group to open and close
            await fetch(*missing[0])
        elif missing:
            async with anyio.create_task_group() as tg:
                for query_id, live in missing:
                    tg.start_soon(fetch, query_id, live)
        return results

    def _push_transition(self, transition: Transition) -> None:
        text = serialize(transition)
        if self.chunks_allowed:
            frames = transition_chunks(text, self.hub.transition_chunk_bytes_max)
        else:
            frames = [text]
        self.outbox.push(frames, transition=True)


def _chunks_allowed(websocket: WebSocket) -> bool | None:
    """Whether this client reassembles TransitionChunks; None for a malformed version."""
    path_version = websocket.path_params.get("client_version")
    header = websocket.headers.get("convex-client")
    if path_version is None:
        return False
    match = _SEMVER.fullmatch(path_version)
    if match is None:
        return None
    if header is not None and not header.lower().startswith("npm-"):
        return False
    return tuple(int(g) for g in match.groups()[:3]) >= _CHUNKS_SINCE


class SyncHub:
    """Every sync socket of one server, and the live queries they share."""

    def __init__(self, context: GatewayContext) -> None:
        self.context = context
        self.registry = LiveQueryRegistry(
            context.executor,
            subscriptions_max=context.settings.subscriptions_max,
            refresh_fired=True,
        )
        self._connections: set[_Connection] = set()
        self._token: Any = None
        self.connections_total = 0
        self.transitions_sent = 0
        self.transition_chunk_bytes_max = TRANSITION_CHUNK_BYTES_MAX

    async def serve(self, websocket: WebSocket) -> None:
        chunks_allowed = _chunks_allowed(websocket)
        if chunks_allowed is None:
            version = websocket.path_params.get("client_version")
            response = PlainTextResponse(
                f"Invalid client version {version!r} in the sync URL: expected a semver such "
                f"as 1.48.0",
                status_code=400,
            )
            await websocket.send_denial_response(response)
            return
        self._token = anyio.lowlevel.current_token()
        await websocket.accept()
        if len(self._connections) >= self.context.settings.connections_max:
            limit = self.context.settings.connections_max
            logger.warning("sync connection refused: %d connections is the limit", limit)
            await websocket.close(1013, "TooManyConnections")
            return
        connection = _Connection(self, websocket, chunks_allowed)
        self._connections.add(connection)
        self.connections_total += 1
        await connection.run()

    def close_all(self, reason: str = "ServerShutdown") -> None:
        """Event loop: close every socket (1001); clients reconnect elsewhere or later."""
        for connection in list(self._connections):
            connection.fail(CLOSE_GOING_AWAY, reason)

    def close_all_from_thread(self, reason: str = "ServerShutdown") -> None:
        """The same, from any thread other than the server's event loop."""
        if self._token is not None:
            try:
                anyio.from_thread.run_sync(self.close_all, reason, token=self._token)
            except Exception:  # the loop has already finished
                pass

    def statistics(self) -> dict[str, int]:
        return {
            "connections": len(self._connections),
            "connections_total": self.connections_total,
            "transitions_sent": self.transitions_sent,
            **self.registry.statistics(),
        }


def sync_routes(context: GatewayContext, hub: SyncHub | None = None) -> list[BaseRoute]:
    """The sync protocol's WebSocket routes, sharing one ``SyncHub``."""
    hub = hub if hub is not None else SyncHub(context)

    async def sync(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    return [
        WebSocketRoute("/api/sync", sync, name="sync"),
        WebSocketRoute("/api/{client_version}/sync", sync, name="sync_versioned"),
    ]
