"""One sync socket: its ``SyncSession`` and the tasks around it.

Each socket gets a ``SyncSession`` (the protocol state) and these tasks: a
reader that parses and handles client messages in arrival order; a sender
that drains a bounded outbox; an updater that computes the Transitions that
must await something, one at a time, and sends ``{"type":"Ping"}`` after
``ping_interval_s`` of silence; a mutation runner (one at a time, in order;
it exists only while mutations wait); and one task per action. Executor calls
run in worker threads.

Transitions are made by ``gateway.sync_updates`` (ordering, fan-out).

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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.errors import HeadwaterError
from gateway.context import AuthenticationError
from gateway.sync_client_messages import (
    Action,
    Authenticate,
    Connect,
    Event,
    ModifyQuerySet,
    Mutation,
    decode_args,
    parse_client_message,
)
from gateway.sync_messages import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    AuthError,
    FatalError,
    SyncProtocolError,
    function_response,
    overloaded,
    protocol_violation,
    serialize,
    session_request_id,
)
from gateway.sync_outbox import Outbox
from gateway.sync_session import COMPONENT_PATH_FORBIDDEN, SyncSession
from gateway.sync_updates import SyncHubView, TransitionUpdates
from udf.calls import FunctionCall, FunctionError, FunctionOutcome, Identity

logger = logging.getLogger("headwater.sync")

_FINAL_SEND_TIMEOUT_S = 2.0
# Cluster mode: how long a Connect waits for this node to apply the ts its client
# observed on another node (then the usual TimestampAhead error).
OBSERVED_TS_WAIT_S = 10.0
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


class SyncConnection(TransitionUpdates):
    """One socket: the tasks around its SyncSession."""

    def __init__(self, hub: SyncHubView, websocket: WebSocket, chunks_allowed: bool) -> None:
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

    # -- lifecycle --------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until the client disconnects.

        The reader outlives the other tasks: after the socket has ended it keeps
        draining frames for a moment, so the server can still deliver the client's
        disconnect while a final send is blocked on a peer that stopped reading.
        The reader is a task of the outer group; this task runs the update loop itself
        (a task fewer per socket: at 10,000 sockets each costs memory).
        """
        try:
            async with anyio.create_task_group() as outer:
                try:
                    with self._workers:
                        async with anyio.create_task_group() as tg:
                            self._spawn = tg.start_soon
                            outer.start_soon(self._read_then_end)
                            tg.start_soon(self._guarded, self._send_loop)
                            await self._guarded(self._update_loop)
                finally:
                    self._end()
                    with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_SEND_TIMEOUT_S):
                        await self._close_socket()
        finally:
            self._end()
            self._mutations.clear()

    async def _read_then_end(self) -> None:
        await self._read_loop()
        self._end()

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
        self.hub.forget(self)
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
            observed = message.max_observed_timestamp
            if observed is not None and observed > latest and self.executor.db.cluster is not None:
                # The client saw this ts on another node: catch up before answering, so
                # its time never goes backwards here.
                await anyio.to_thread.run_sync(
                    self.executor.db.committer.wait_applied, observed, OBSERVED_TS_WAIT_S
                )
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
            raise protocol_violation(COMPONENT_PATH_FORBIDDEN, "ComponentPathForbidden")

    # -- functions ----------------------------------------------------------------

    async def _call(
        self, message: Mutation | Action, identity: Identity, session_id: str | None
    ) -> tuple[FunctionOutcome, str]:
        server_id = session_request_id(session_id, message.request_id)
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
            component_path=message.component_path or "",
        )
        return await anyio.to_thread.run_sync(self.executor.run, call), server_id

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
