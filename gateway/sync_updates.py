"""How one sync socket makes its Transitions: the update loop and the fan-out fast path.

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

``TransitionUpdates`` is the part of ``SyncConnection`` that does this; it
reads the connection's session, outbox and registry, and the state below.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from engine.errors import LimitExceededError
from gateway.sync_messages import EncodedResult, Ping, Transition, serialize, transition_chunks
from gateway.sync_outbox import Outbox
from gateway.sync_session import SyncSession, failed_result

if TYPE_CHECKING:
    from gateway.context import GatewayContext, GatewaySettings
    from gateway.live_queries import LiveQueryRegistry
    from udf.calls import FunctionExecutor

_PING = serialize(Ping())


class SyncHubView(Protocol):
    """What a socket needs of the hub that owns it (``SyncHub`` in ``sync_endpoint``).

    A protocol rather than the class, so a socket's modules do not import the
    module that creates sockets.
    """

    context: GatewayContext
    registry: LiveQueryRegistry
    transitions_sent: int
    transition_chunk_bytes_max: int

    def forget(self, connection: Any) -> None: ...


class TransitionUpdates:
    """Scheduling and making a socket's Transitions (a part of ``SyncConnection``)."""

    # What the connection holds and these methods use.
    hub: SyncHubView
    executor: FunctionExecutor
    registry: LiveQueryRegistry
    settings: GatewaySettings
    session: SyncSession
    outbox: Outbox
    chunks_allowed: bool
    _wanted: anyio.Event
    _updating: bool
    _ended: bool
    _ping_due: float
    _confirmed_ts: int
    _mutation_running: anyio.Event | None

    def _failed(self, exc: Exception) -> None:  # the connection's: it ends the socket
        raise NotImplementedError

    def schedule_update(self) -> None:
        """Ask for a Transition: made right here when nothing has to be awaited for it,
        else by the update loop (scheduled updates coalesce there)."""
        if self._ended or self._wanted.is_set():
            return
        if self._updating or not self._update_now():
            self._wanted.set()

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
                    query.udf_path,
                    query.args,
                    plan.identity,
                    query.journal,
                    self.schedule_update,
                    component_path=query.component_path,
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
