"""A sync socket's outbox: messages waiting to be written, bounded.

A client that stops reading must cost the server a bounded buffer, not
memory: past ``messages_max`` queued messages, pushing raises the overload
error that drops the socket. The outbox also counts unsent Transitions, which
the update loop uses for backpressure (no new update while two are unsent).
"""

from __future__ import annotations

from collections import deque

import anyio

from gateway.sync_messages import overloaded


class Outbox:
    """Messages waiting for the socket, bounded; counts unsent Transitions.

    A Transition cut into chunks is one message: its frames leave back to back.
    """

    def __init__(self, messages_max: int) -> None:
        self.messages_max = messages_max
        self._frames: deque[tuple[str, bool, bool]] = deque()  # text, ends a message, transition
        self._messages = 0
        self._ready = anyio.Event()
        self._transition_sent: anyio.Event | None = None  # made only when someone waits
        self.transitions = 0  # queued and not yet written
        self.closed = False

    @property
    def empty(self) -> bool:
        return not self._frames

    def push(self, frames: list[str], *, transition: bool = False) -> None:
        if self.closed:
            return
        if self._messages >= self.messages_max:
            raise overloaded(
                f"The client is not reading its messages: {self._messages} are waiting "
                f"(the limit is {self.messages_max}).",
                "ClientTooSlow",
            )
        if len(frames) == 1:
            self._frames.append((frames[0], True, transition))
        else:
            last = len(frames) - 1
            self._frames.extend((text, n == last, transition) for n, text in enumerate(frames))
        self._messages += 1
        if transition:
            self.transitions += 1
        self._ready.set()

    def pop_nowait(self) -> tuple[str, bool, bool] | None:
        return self._frames.popleft() if self._frames else None

    async def pop(self) -> tuple[str, bool, bool]:
        while not self._frames:
            self._ready = anyio.Event()
            await self._ready.wait()
        return self._frames.popleft()

    def sent(self, ends_message: bool, transition: bool) -> None:
        if not ends_message:
            return
        self._messages -= 1
        if transition:
            self.transitions -= 1
            event, self._transition_sent = self._transition_sent, None
            if event is not None:
                event.set()

    async def wait_transition_sent(self) -> None:
        if self._transition_sent is None:
            self._transition_sent = anyio.Event()
        await self._transition_sent.wait()

    def close(self) -> None:
        self.closed = True
        self._frames.clear()
        self._messages = 0
