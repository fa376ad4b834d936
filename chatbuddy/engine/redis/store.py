"""Sessions and history in Redis, shared by every node.

Each step of a chat message is one Lua script (one round trip) that also
publishes the frame announcing it, so a message is stored and announced
atomically. docs/redis.md lists the keys and the round trips.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chatbuddy.engine.redis.base import INDEX_EVERY, checked, hold_of, pairs, record_of, scored_args
from chatbuddy.engine.redis.endpoint import Arg
from chatbuddy.engine.redis.handoff_store import HandoffStore
from chatbuddy.engine.redis.scripts import SHAS
from chatbuddy.engine.store import (
    DEDUP_WINDOW,
    LEASE_SECONDS,
    AddedMessage,
    FrameAround,
)
from chatbuddy.errors import SessionNotFound
from chatbuddy.records import SessionRecord, StoredMessage, renumbered


class RedisStore(HandoffStore):
    """A :class:`chatbuddy.engine.store.SessionStore` on Redis.

    Sessions and history here; the shared state in ``base.py``, the hand-off to a
    person in ``handoff_store.py``.
    """

    name = "redis"

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
        return record_of(session_id, pairs(flat)) if flat else None

    async def touch_session(
        self, session_id: str, *, connected: bool = False, incarnation: str | None = None
    ) -> SessionRecord:
        now, stamp = self._now()
        args: list[Arg] = [self._ttl_ms, now, "1" if connected else "0", incarnation or ""]
        also = [("ZADD", self._keys.index, "XX", stamp, session_id)]
        found, _ = await self._redis.script_with(
            "touch", self._keys.session(session_id), args, also
        )
        checked(session_id, int(found[0]))
        self._indexed[session_id] = time.monotonic()
        return record_of(session_id, pairs(found[1:]))

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
        commands.append(("ZADD", self._keys.index, "XX", *scored_args(sessions, stamp)))
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
            record_of(sid, pairs(flat)) for sid, flat in zip(ids, hashes, strict=True) if flat
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
        records = [record_of(sid, pairs(raw)) for sid, raw in zip(ids, hashes, strict=True) if raw]
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
        defer: bool = False,  # stored at once: nothing to defer
    ) -> AddedMessage:
        clock = self._clock()
        now, now_ms = clock.isoformat(), int(clock.timestamp() * 1000)
        # Nobody else here: published only if another node listens (rarely), so the
        # frame is not even made unless the caller has to publish it after all.
        quiet = announce is not None and announce.sole_tab
        head, tail = announce.parts() if announce is not None and not quiet else ("", "")
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
            "1" if quiet else "",
        ]
        result = await self._step("add_user", session_id, args)
        status = checked(session_id, int(result[0]))
        stored_id = int(result[1])
        if status == 1:  # stored as sent, under its new id: no need to parse it back
            return AddedMessage(
                renumbered(message, stored_id),
                reply_id=stored_id + 1,
                published=announce is not None and int(result[5]) == 1,
                recent=[StoredMessage.model_validate_json(m) for m in result[3]],
                hold=hold_of(result[4]),
            )
        stored = (
            StoredMessage.model_validate_json(result[2])
            if result[2]
            else message.model_copy(update={"id": stored_id})
        )
        state, reply, hold = result[3], result[4], hold_of(result[6])
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
        checked(session_id, int(await self._step("add_reply", session_id, args)))
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
            checked(session_id, int(found[0]))
        else:
            exists, members, reacted = await self._redis.execute_many(
                [("EXISTS", keys[0]), page, reactions]
            )
            if not exists:
                raise SessionNotFound(session_id)
        messages = [StoredMessage.model_validate_json(m) for m in members]
        if reacted:
            by_id = pairs(reacted)
            messages = [
                m.model_copy(update={"reaction": by_id[str(m.id)]}) if str(m.id) in by_id else m
                for m in messages
            ]
        has_more = after is not None and len(messages) > limit
        return messages[:limit], has_more
