"""Events carried by the live layer, and the cursor a page uses to resume its stream.

An `Event` is one change on one topic, with its HTML partials rendered once at publish
time. `seq` is the topic's total order (1, 2, 3, ...); `position` is the broker's opaque
handle for resuming after that event (a Redis stream id, or the seq for the in-process
broker). Ephemeral events (presence, "bob is moving ticket #12") have neither.

A `Cursor` is where a page stands across all the topics it shows: the broker epoch plus
the last position seen per topic. It travels through the browser (the SSE `id:` and the
`?cursor=` of the stream URL), so decoding it treats the text as hostile input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Longest cursor accepted from a client. A page shows a handful of topics; anything
# longer is not one of ours and must not cost us more than a length check.
MAX_CURSOR_LENGTH = 512

# Bumped if the encoding ever changes, so old cursors decode to None (a resync), not nonsense.
_CURSOR_VERSION = "1"
_SEPARATOR = "."
# Pieces must not contain the separator; the whole cursor stays within SSE-id-safe chars.
_PIECE = re.compile(r"[A-Za-z0-9_~-]*")
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9._~-]+")

_STR_FIELDS = ("topic", "position", "kind", "actor", "html")


@dataclass(frozen=True, slots=True)
class Event:
    """One published change (or an ephemeral indicator) on a topic."""

    topic: str
    seq: int
    position: str
    kind: str
    actor: str
    html: str
    ephemeral: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "seq": self.seq,
            "position": self.position,
            "kind": self.kind,
            "actor": self.actor,
            "html": self.html,
            "ephemeral": self.ephemeral,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: object) -> Event:
        """Build an event from decoded JSON (extra keys ignored); wrong shapes raise ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError("event must be a JSON object")
        for name in _STR_FIELDS:
            if not isinstance(data.get(name), str):
                raise ValueError(f"event field {name!r} must be a string")
        seq = data.get("seq")
        # bool is an int subclass; a `true` seq is corrupt data, not sequence number 1.
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("event field 'seq' must be a non-negative integer")
        ephemeral = data.get("ephemeral", False)
        if not isinstance(ephemeral, bool):
            raise ValueError("event field 'ephemeral' must be a boolean")
        return cls(
            topic=data["topic"],
            seq=seq,
            position=data["position"],
            kind=data["kind"],
            actor=data["actor"],
            html=data["html"],
            ephemeral=ephemeral,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Parse `to_json()` output; raises ValueError for anything else."""
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class Cursor:
    """A page's place in its topics: the broker epoch and the last position seen per topic.

    A topic missing from `positions` (or mapped to "") means nothing was seen yet: the
    topic was empty when the page was rendered, so a resume starts from its beginning.
    """

    epoch: str
    positions: dict[str, str] = field(default_factory=dict)

    def position(self, topic: str) -> str:
        return self.positions.get(topic, "")

    def advanced(self, event: Event) -> Cursor:
        """A copy that has seen `event`; ephemeral events carry no position and change nothing."""
        if event.ephemeral:
            return self
        return Cursor(self.epoch, {**self.positions, event.topic: event.position})

    def encode(self, topics: list[str]) -> str:
        """The cursor as an SSE-id-safe string, positions in the order of `topics`.

        Raises ValueError if the result could not be decoded again (a broker position
        with unexpected characters, or too many topics), so the mistake shows up at
        render time instead of as a resync loop in every browser.
        """
        pieces = [_CURSOR_VERSION, self.epoch, *(self.position(topic) for topic in topics)]
        if not self.epoch or not all(_PIECE.fullmatch(piece) for piece in pieces):
            raise ValueError(f"cursor pieces must match {_PIECE.pattern}: {pieces!r}")
        text = _SEPARATOR.join(pieces)
        if len(text) > MAX_CURSOR_LENGTH:
            raise ValueError(f"cursor for {len(topics)} topics exceeds {MAX_CURSOR_LENGTH} chars")
        return text

    @classmethod
    def decode(cls, text: str | None, topics: list[str]) -> Cursor | None:
        """Parse client input made by `encode(topics)`; None for anything else, never raises."""
        if not isinstance(text, str) or len(text) > MAX_CURSOR_LENGTH:
            return None
        if not _CURSOR_TEXT.fullmatch(text):
            return None
        version, _, rest = text.partition(_SEPARATOR)
        pieces = rest.split(_SEPARATOR)
        # The topic count must match: a cursor made for another set of topics cannot be trusted.
        if version != _CURSOR_VERSION or len(pieces) != len(topics) + 1 or not pieces[0]:
            return None
        epoch, *positions = pieces
        return cls(epoch, {topic: pos for topic, pos in zip(topics, positions, strict=True) if pos})
