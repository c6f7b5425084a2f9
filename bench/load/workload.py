"""What each operation kind sends: the function it calls and its random arguments.

Bodies are drawn from a small vocabulary so text searches find matches; authors from a
small set so the indexed read usually finds a message; vectors are uniform in [-1, 1).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convex import ConvexClient

VECTOR_DIMENSIONS = 16  # matches the schema's vectorIndex
AUTHORS = tuple(f"author-{n}" for n in range(50))
WORDS = (
    "river", "stone", "cloud", "harbor", "lantern", "meadow", "copper", "signal",
    "orchard", "glacier", "violet", "timber", "falcon", "ember", "quartz", "willow",
)  # fmt: skip
BODY_WORDS = 8
NEWEST = "messages:newest"


def vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1.0, 1.0) for _ in range(VECTOR_DIMENSIONS)]


def message(rng: random.Random) -> dict[str, Any]:
    """A new message stamped with the sender's wall clock (what subscribers measure against)."""
    return {
        "author": rng.choice(AUTHORS),
        "body": " ".join(rng.choice(WORDS) for _ in range(BODY_WORDS)),
        "sentAtMs": time.time() * 1000.0,
        "embedding": vector(rng),
    }


def _insert(client: ConvexClient, rng: random.Random) -> object:
    return client.mutation("messages:send", message(rng))


def _query(client: ConvexClient, rng: random.Random) -> object:
    return client.query("messages:latestBy", {"author": rng.choice(AUTHORS)})


def _search(client: ConvexClient, rng: random.Random) -> object:
    return client.query("messages:search", {"text": " ".join(rng.sample(WORDS, 2))})


def _vector(client: ConvexClient, rng: random.Random) -> object:
    return client.action("messages:similar", {"vector": vector(rng)})


@dataclass(frozen=True)
class Operation:
    kind: str  # also the prefix of its rate flag: --<kind>-rate
    title: str
    call: Callable[[ConvexClient, random.Random], object]


OPERATIONS = (
    Operation("insert", "insert (mutation messages:send)", _insert),
    Operation("query", "indexed read (query messages:latestBy)", _query),
    Operation("search", "text search (query messages:search)", _search),
    Operation("vector", "vector search (action messages:similar)", _vector),
)
SUBSCRIPTION = "subscription"
SUBSCRIPTION_TITLE = "subscriber update (messages:newest): arrival - sentAtMs"
