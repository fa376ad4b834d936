"""Sessions and history in Redis, shared by every node.

Each step of a chat message is one Lua script (one round trip) that also
publishes the frame announcing it, so a message is stored and announced
atomically. docs/redis.md lists the keys and the round trips.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from chatbuddy.engine.redis.connection import RedisConnection
from chatbuddy.engine.redis.endpoint import Arg
from chatbuddy.engine.redis.keys import Keys
from chatbuddy.engine.redis.scripts import SHAS
from chatbuddy.engine.store import (
    DEDUP_WINDOW,
    LEASE_SECONDS,
    NOTES_LIMIT,
    OPERATOR_AGENT,
    AddedMessage,
    FrameAround,
    HoldOutcome,
    Reacted,
    Reaction,
    ReactionTally,
    Reader,
)
from chatbuddy.errors import SessionNotFound, SessionReplaced
from chatbuddy.records import ClientInfo, Hold, Note, SessionRecord, StoredMessage, utcnow

#: Seconds between updates of a session's place in the "most recent first" index.
INDEX_EVERY = 10.0


class RedisStore:
    """A :class:`chatbuddy.engine.store.SessionStore` on Redis."""

    name = "redis"

    def __init__(
        self,
        connection: RedisConnection,
        *,
        keys: Keys,
        channel_of: Callable[[str], str],
        session_ttl: float,
        history_limit: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Commands go through here; the store owns it and closes it.
        self._redis = connection
        # Key names under the deployment's prefix.
        self._keys = keys
        # The bus's channel of a session: the scripts publish to it.
        self._channel_of = channel_of
        # Sliding session expiry, in milliseconds, as Redis wants it.
        self._ttl_ms = int(session_ttl * 1000)
        # Messages kept per session.
        self._history_limit = history_limit
        # Timestamps come from here (injected in tests).
        self._clock = clock
        # session id -> when this node last moved it up the session index; the
        # index orders a listing, so once per INDEX_EVERY seconds is enough.
        self._indexed: dict[str, float] = {}

    async def start(self) -> None:
        """Nothing to do before the first command: connections are made on use."""

    async def close(self) -> None:
        await self._redis.close()

    def ready(self) -> bool:
        """The bus's heartbeat knows whether Redis answers; the store has no view of its own."""
        return True

    def _now(self) -> tuple[str, float]:
        now = self._clock()
        return now.isoformat(), now.timestamp()

    def _index_due(self, session_id: str) -> bool:
        now = time.monotonic()
        if now - self._indexed.get(session_id, 0.0) < INDEX_EVERY:
            return False
        self._indexed[session_id] = now
        return True

    async def _step(self, name: str, session_id: str, args: list[Any]) -> Any:
        """One hot-path script; now and then also moves the session up the index."""
        keys = self._keys.session(session_id)
        if not self._index_due(session_id):
            return await self._redis.script(name, keys, args)
        stamp = self._clock().timestamp()
        also = [("ZADD", self._keys.index, "XX", stamp, session_id)]
        return (await self._redis.script_with(name, keys, args, also))[0]

    # -- sessions -------------------------------------------------------------

    async def create_session(self, record: SessionRecord) -> bool:
        fields = {
            "record": json.dumps(
                {
                    "user_id": record.user_id,
                    "client_info": dataclasses.asdict(record.client_info),
                    "created_at": record.created_at.isoformat(),
                    "token_hash": record.token_hash,
                }
            ),
            "connected_at": record.connected_at.isoformat(),
            "last_activity": record.last_activity.isoformat(),
            "message_count": record.message_count,
            "seq": 0,
            "incarnation": record.incarnation,
        }
        args: list[Any] = [self._ttl_ms]
        for key, value in fields.items():
            args += [key, value]
        sid = record.session_id
        also = [("ZADD", self._keys.index, record.last_activity.timestamp(), sid)]
        created, _ = await self._redis.script_with("create", self._keys.session(sid), args, also)
        return bool(created)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        flat = await self._redis.execute("HGETALL", self._keys.session(session_id)[0])
        return _record(session_id, _pairs(flat)) if flat else None

    async def touch_session(
        self, session_id: str, *, connected: bool = False, incarnation: str | None = None
    ) -> SessionRecord:
        now, stamp = self._now()
        args: list[Arg] = [self._ttl_ms, now, "1" if connected else "0", incarnation or ""]
        also = [("ZADD", self._keys.index, "XX", stamp, session_id)]
        found, _ = await self._redis.script_with(
            "touch", self._keys.session(session_id), args, also
        )
        _check(session_id, int(found[0]))
        self._indexed[session_id] = time.monotonic()
        return _record(session_id, _pairs(found[1:]))

    async def keep_alive(self, sessions: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
        if not sessions:
            return []
        now, stamp = self._now()
        commands: list[tuple[Arg, ...]] = []
        for session_id, incarnation in sessions:
            keys = self._keys.session(session_id)
            commands.append(
                ("EVALSHA", SHAS["touch"], len(keys), *keys, self._ttl_ms, now, "0", incarnation)
            )
        commands.append(("ZADD", self._keys.index, "XX", *_scored(sessions, stamp)))
        results = await self._redis.run_scripts("touch", commands)
        gone = []
        for (session_id, _), result in zip(sessions, results, strict=False):
            status = int(result[0])
            if status != 1:
                gone.append((session_id, status == -2))
        return gone

    async def count_sessions(self) -> int:
        return int(await self._redis.execute("ZCARD", self._keys.index))

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        _, stamp = self._now()
        index = self._keys.index
        _, ids, total = await self._redis.execute_many(
            [
                ("ZREMRANGEBYSCORE", index, "-inf", stamp - self._ttl_ms / 1000),
                ("ZREVRANGE", index, offset, offset + limit - 1),
                ("ZCARD", index),
            ]
        )
        if not ids:
            return [], int(total)
        hashes = await self._redis.execute_many(
            [("HGETALL", self._keys.session(sid)[0]) for sid in ids]
        )
        records = [
            _record(sid, _pairs(flat)) for sid, flat in zip(ids, hashes, strict=True) if flat
        ]
        return records, int(total)

    async def export_page(
        self, *, after: str | None, limit: int, since: datetime | None = None
    ) -> tuple[list[SessionRecord], str | None]:
        """A ZSCAN of the session index: ``after`` is its cursor."""
        cursor, flat = await self._redis.execute(
            "ZSCAN", self._keys.index, after or "0", "COUNT", limit
        )
        ids = list(flat[::2])
        hashes = (
            await self._redis.execute_many([("HGETALL", self._keys.session(sid)[0]) for sid in ids])
            if ids
            else []
        )
        records = [_record(sid, _pairs(raw)) for sid, raw in zip(ids, hashes, strict=True) if raw]
        if since is not None:
            records = [r for r in records if r.last_activity >= since]
        return records, None if str(cursor) == "0" else str(cursor)

    async def erase(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[tuple[str, str]]:
        """DEL of the session's keys. Redis's own copies (RDB snapshots, the AOF) keep
        them until they are rewritten: docs/storage.md says how to force that. A
        session's leftovers without its hash are erased too, with an empty incarnation."""
        if (session_id is None) == (user_id is None):
            raise ValueError("erase one session_id or one user_id")
        if session_id is not None:
            ids = [session_id]
        else:
            ids, cursor = [], None
            while True:
                page, cursor = await self.export_page(after=cursor, limit=500)
                ids += [r.session_id for r in page if r.user_id == user_id]
                if cursor is None:
                    break
            ids = list(dict.fromkeys(ids))
        erased = []
        for sid in ids:
            keys = self._keys.session(sid)
            incarnation, removed, _ = await self._redis.execute_many(
                [
                    ("HGET", keys[0], "incarnation"),
                    ("DEL", *keys),
                    ("ZREM", self._keys.index, sid),
                ]
            )
            if int(removed):
                erased.append((sid, incarnation or ""))
            self._indexed.pop(sid, None)
        return erased

    async def sweep_expired(self) -> int:
        """Session keys expire by themselves; this prunes the index of them."""
        _, stamp = self._now()
        stale = time.monotonic() - 6 * INDEX_EVERY
        self._indexed = {sid: t for sid, t in self._indexed.items() if t > stale}
        removed = await self._redis.execute(
            "ZREMRANGEBYSCORE", self._keys.index, "-inf", stamp - self._ttl_ms / 1000
        )
        return int(removed)

    # -- history --------------------------------------------------------------

    async def add_user_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        recent: int = 0,
        incarnation: str | None = None,
    ) -> AddedMessage:
        clock = self._clock()
        now, now_ms = clock.isoformat(), int(clock.timestamp() * 1000)
        head, tail = announce.parts() if announce is not None else ("", "")
        args = [
            message.model_dump_json(exclude={"id"}),
            message.client_message_id or "",
            self._history_limit,
            self._ttl_ms,
            now,
            DEDUP_WINDOW,
            self._channel_of(session_id) if announce is not None else "",
            (announce.exclude or "") if announce is not None else "",
            head,
            tail,
            recent,
            incarnation or "",
            now_ms,
            int(LEASE_SECONDS * 1000),
        ]
        result = await self._step("add_user", session_id, args)
        status = _check(session_id, int(result[0]))
        stored_id = int(result[1])
        stored = (
            StoredMessage.model_validate_json(result[2])
            if result[2]
            else message.model_copy(update={"id": stored_id})
        )
        if status == 1:
            return AddedMessage(
                stored,
                reply_id=stored_id + 1,
                published=announce is not None,
                recent=[StoredMessage.model_validate_json(m) for m in result[3]],
                hold=_hold(result[4]),
            )
        state, reply, hold = result[3], result[4], _hold(result[6])
        if state == "answered":
            answer = StoredMessage.model_validate_json(reply)
            return AddedMessage(stored, reply_id=None, resent=True, reply=answer, hold=hold)
        if state == "pending":
            return AddedMessage(stored, reply_id=None, resent=True, hold=hold)
        earlier = [StoredMessage.model_validate_json(m) for m in result[5]]
        return AddedMessage(stored, reply_id=stored_id + 1, resent=True, recent=earlier, hold=hold)

    async def add_reply(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: str | None = None,
        incarnation: str | None = None,
    ) -> bool:
        now, _ = self._now()
        args = [
            message.model_dump_json(),
            message.id,
            self._history_limit,
            self._ttl_ms,
            now,
            self._channel_of(session_id) if announce is not None else "",
            announce or "",
            incarnation or "",
        ]
        _check(session_id, int(await self._step("add_reply", session_id, args)))
        return announce is not None

    async def release(self, session_id: str, reply_id: int) -> None:
        await self._redis.execute("HDEL", self._keys.session(session_id)[3], reply_id)

    async def history(
        self,
        session_id: str,
        *,
        after: int | None,
        limit: int,
        touch: bool = True,
        incarnation: str | None = None,
    ) -> tuple[list[StoredMessage], bool]:
        keys = self._keys.session(session_id)
        now, _ = self._now()
        if after is None:
            page: tuple[Any, ...] = ("ZRANGE", keys[1], -limit, -1)
        else:
            page = ("ZRANGEBYSCORE", keys[1], f"({after}", "+inf", "LIMIT", 0, limit + 1)
        reactions: tuple[Any, ...] = ("HGETALL", keys[5])
        if touch:
            found, members, reacted = await self._redis.script_with(
                "touch", keys, [self._ttl_ms, now, "0", incarnation or ""], [page, reactions]
            )
            _check(session_id, int(found[0]))
        else:
            exists, members, reacted = await self._redis.execute_many(
                [("EXISTS", keys[0]), page, reactions]
            )
            if not exists:
                raise SessionNotFound(session_id)
        messages = [StoredMessage.model_validate_json(m) for m in members]
        if reacted:
            by_id = _pairs(reacted)
            messages = [
                m.model_copy(update={"reaction": by_id[str(m.id)]}) if str(m.id) in by_id else m
                for m in messages
            ]
        has_more = after is not None and len(messages) > limit
        return messages[:limit], has_more

    # -- hand-off to a person -------------------------------------------------------

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
        taken = _check(session_id, int(result[0])) == 1
        hold = _hold(result[1:5])
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
        return _hold(result[1:5])

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
            hold = _hold(result[1:5]) if status == 1 else None
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
        if _check(session_id, int(result[0])) != 1:
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
            record = _record(sid, _pairs(flat)) if flat else None
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
        _check(session_id, int(result[0]))
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
        _check(session_id, int(await self._redis.script("add_note", keys, args)))

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
        if _check(session_id, int(result[0])) != 1:
            return None
        before = result[1] or None
        who, route = (OPERATOR_AGENT, None) if result[2] == "operator" else (agent, result[3])
        route = route or None
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
        raw = _pairs(await self._redis.execute("HGETALL", self._keys.reactions))
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
        _check(session_id, int(result[0]))
        return int(result[1])


def _check(session_id: str, status: int) -> int:
    """A script's status: -1 the session is gone, -2 its id belongs to another one."""
    if status == -1:
        raise SessionNotFound(session_id)
    if status == -2:
        raise SessionReplaced(session_id)
    return status


def _scored(sessions: Sequence[tuple[str, str]], stamp: float) -> list[Arg]:
    """ZADD's score-member arguments: every session at ``stamp``."""
    scored: list[Arg] = []
    for session_id, _ in sessions:
        scored += [stamp, session_id]
    return scored


def _pairs(flat: list[str] | dict[str, str]) -> dict[str, str]:
    """HGETALL's reply as a dict (a flat list over RESP2, a map where a client decodes it)."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _hold(fields: list[Any]) -> Hold | None:
    """A hold from a script's ``{operator, since, until, ...}`` (``{}``: none)."""
    if not fields:
        return None
    return Hold(
        operator=fields[0],
        since=datetime.fromisoformat(fields[1]),
        until=datetime.fromisoformat(fields[2]),
    )


def _record(session_id: str, raw: dict[str, str]) -> SessionRecord:
    static = json.loads(raw["record"])
    last_id = raw.get("last_message_id")
    hold = None
    if raw.get("hold_operator"):
        hold = _hold([raw["hold_operator"], raw["hold_since"], raw["hold_until"]])
    waiting = raw.get("waiting_since")
    return SessionRecord(
        session_id=session_id,
        user_id=static["user_id"],
        client_info=ClientInfo(**static["client_info"]),
        created_at=datetime.fromisoformat(static["created_at"]),
        connected_at=datetime.fromisoformat(raw["connected_at"]),
        last_activity=datetime.fromisoformat(raw["last_activity"]),
        message_count=int(raw.get("message_count", 0)),
        last_message_id=int(last_id) if last_id else None,
        token_hash=static["token_hash"],
        incarnation=raw.get("incarnation", ""),
        hold=hold,
        waiting_since=datetime.fromisoformat(waiting) if waiting else None,
        read_by_customer=int(raw.get("read_customer", 0)),
        read_by_operator=int(raw.get("read_operator", 0)),
    )
