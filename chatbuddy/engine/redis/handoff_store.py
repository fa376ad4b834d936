"""The Redis store's hand-off to a person: holds, the waiting list, operator
messages, notes, reactions and read marks.

Each change is one Lua script on the session's keys; the indexes of holds and of
the waiting list, and the reaction totals, live outside the session's slot.
"""

from __future__ import annotations

import json
from datetime import datetime

from chatbuddy.engine import handoff_rules
from chatbuddy.engine.redis.base import StoreBase, checked, hold_of, pairs, record_of
from chatbuddy.engine.redis.endpoint import Arg
from chatbuddy.engine.store import (
    NOTES_LIMIT,
    FrameAround,
    HoldOutcome,
    Reacted,
    Reaction,
    ReactionTally,
    Reader,
)
from chatbuddy.errors import SessionNotFound
from chatbuddy.records import Hold, Note, SessionRecord, StoredMessage


class HandoffStore(StoreBase):
    """The hand-off methods of :class:`chatbuddy.engine.redis.RedisStore`."""

    async def take_hold(
        self, session_id: str, operator: str, *, until: datetime, incarnation: str | None = None
    ) -> HoldOutcome:
        clock = self._clock()
        until_ms = int(until.timestamp() * 1000)
        args: list[Arg] = [
            operator,
            clock.isoformat(),
            int(clock.timestamp() * 1000),
            until.isoformat(),
            until_ms,
            incarnation or "",
            self._ttl_ms,
        ]
        result = await self._redis.script("take_hold", self._keys.session(session_id), args)
        taken = checked(session_id, int(result[0])) == 1
        hold = hold_of(result[1:5])
        assert hold is not None
        if taken:  # the index tells every node's sweeper when to look (the hash decides)
            await self._redis.execute_many(
                [
                    ("ZADD", self._keys.holds, until_ms, session_id),
                    ("ZREM", self._keys.waiting, session_id),
                ]
            )
        return HoldOutcome(taken=taken, hold=hold, renewed=taken and result[5] == 1)

    async def release_hold(
        self, session_id: str, operator: str | None = None, *, expired_only: bool = False
    ) -> Hold | None:
        now_ms = int(self._clock().timestamp() * 1000)
        args: list[Arg] = [operator or "", now_ms, "1" if expired_only else "0"]
        result = await self._redis.script("release_hold", self._keys.session(session_id), args)
        if int(result[0]) != 1:
            return None
        await self._unindex(self._keys.holds, session_id, int(result[4]))
        return hold_of(result[1:5])

    async def end_expired_holds(self) -> list[tuple[str, Hold]]:
        now_ms = int(self._clock().timestamp() * 1000)
        due = await self._redis.execute("ZRANGEBYSCORE", self._keys.holds, "-inf", now_ms)
        ended: list[tuple[str, Hold]] = []
        for session_id in due:
            keys = self._keys.session(session_id)
            result = await self._redis.script("release_hold", keys, ["", now_ms, "1"])
            status = int(result[0])
            if status == 0:  # a hold that runs out later (taken anew): index it so
                await self._redis.execute("ZADD", self._keys.holds, "GT", result[4], session_id)
                continue
            await self._unindex(self._keys.holds, session_id, now_ms)
            hold = hold_of(result[1:5]) if status == 1 else None
            if hold is not None:
                ended.append((session_id, hold))
        return ended

    async def _unindex(self, index: str, session_id: str, score: int) -> None:
        await self._redis.script("unindex", [index], [session_id, score])

    async def request_handoff(self, session_id: str, *, incarnation: str | None = None) -> bool:
        clock = self._clock()
        now_ms = int(clock.timestamp() * 1000)
        args: list[Arg] = [clock.isoformat(), now_ms, incarnation or "", self._ttl_ms]
        keys = self._keys.session(session_id)
        result = await self._redis.script("request_handoff", keys, args)
        if checked(session_id, int(result[0])) != 1:
            return False
        await self._redis.execute("ZADD", self._keys.waiting, "NX", now_ms, session_id)
        return True

    async def waiting(self, *, limit: int) -> list[SessionRecord]:
        now = self._clock()
        ids = await self._redis.execute("ZRANGE", self._keys.waiting, 0, 4 * limit + 50)
        if not ids:
            return []
        hashes = await self._redis.execute_many(
            [("HGETALL", self._keys.session(sid)[0]) for sid in ids]
        )
        found: list[SessionRecord] = []
        stale: list[str] = []
        for sid, flat in zip(ids, hashes, strict=True):
            record = record_of(sid, pairs(flat)) if flat else None
            if record is None or record.waiting_since is None:
                stale.append(sid)
            elif not (record.hold is not None and record.hold.live(now)):
                found.append(record)
        for sid in stale:  # taken, or expired: out of the index (unless asked anew)
            score = int(now.timestamp() * 1000)
            await self._unindex(self._keys.waiting, sid, score)
        found.sort(key=lambda record: record.waiting_since or now)
        return found[:limit]

    async def add_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        incarnation: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        now, _ = self._now()
        head, tail = announce.parts() if announce is not None else ("", "")
        args: list[Arg] = [
            message.model_dump_json(exclude={"id"}),
            self._history_limit,
            self._ttl_ms,
            now,
            self._channel_of(session_id) if announce is not None else "",
            (announce.exclude or "") if announce is not None else "",
            head,
            tail,
            incarnation or "",
        ]
        result = await self._step("add_message", session_id, args)
        checked(session_id, int(result[0]))
        return StoredMessage.model_validate_json(result[2]), announce is not None

    async def add_note(self, session_id: str, note: Note) -> None:
        document = json.dumps(
            {
                "operator": note.operator,
                "content": note.content,
                "timestamp": note.timestamp.isoformat(),
            },
            ensure_ascii=False,
        )
        keys = self._keys.session(session_id)
        args: list[Arg] = [document, NOTES_LIMIT, self._ttl_ms]
        checked(session_id, int(await self._redis.script("add_note", keys, args)))

    async def notes(self, session_id: str) -> list[Note]:
        keys = self._keys.session(session_id)
        exists, items = await self._redis.execute_many(
            [("EXISTS", keys[0]), ("LRANGE", keys[4], 0, -1)]
        )
        if not exists:
            raise SessionNotFound(session_id)
        notes = []
        for item in items:
            raw = json.loads(item)
            notes.append(
                Note(raw["operator"], raw["content"], datetime.fromisoformat(raw["timestamp"]))
            )
        return notes

    async def react(
        self,
        session_id: str,
        message_id: int,
        reaction: Reaction | None,
        *,
        agent: str,
        incarnation: str | None = None,
    ) -> Reacted | None:
        now, _ = self._now()
        keys = self._keys.session(session_id)
        args: list[Arg] = [message_id, reaction or "", incarnation or "", self._ttl_ms, now]
        result = await self._redis.script("react", keys, args)
        if checked(session_id, int(result[0])) != 1:
            return None
        before = result[1] or None
        who, route = handoff_rules.counted_under(result[2], agent, result[3] or None)
        # The totals live outside the session's slot: a second step (a node dying in
        # between loses one reaction from the totals, never from the message).
        changes = [(before, -1), (reaction, 1)] if before != reaction else []
        commands = [
            ("HINCRBY", self._keys.reactions, f"{who}\t{route or ''}\t{value}", step)
            for value, step in changes
            if value is not None
        ]
        if commands:
            await self._redis.execute_many(commands)
        return Reacted(message_id, before, reaction, who, route)

    async def reaction_totals(self) -> list[ReactionTally]:
        raw = pairs(await self._redis.execute("HGETALL", self._keys.reactions))
        totals: dict[tuple[str, str | None], list[int]] = {}
        for field, count in raw.items():
            agent, route, value = field.split("\t")
            tally = totals.setdefault((agent, route or None), [0, 0])
            tally[0 if value == "up" else 1] += int(count)
        return [
            ReactionTally(agent, route, up, down)
            for (agent, route), (up, down) in sorted(
                totals.items(), key=lambda item: (item[0][0], item[0][1] or "")
            )
            if up or down
        ]

    async def mark_read(
        self, session_id: str, reader: Reader, message_id: int, *, incarnation: str | None = None
    ) -> int:
        now, _ = self._now()
        field = "read_customer" if reader == "customer" else "read_operator"
        keys = self._keys.session(session_id)
        args: list[Arg] = [field, message_id, incarnation or "", self._ttl_ms, now]
        result = await self._redis.script("mark_read", keys, args)
        checked(session_id, int(result[0]))
        return int(result[1])
