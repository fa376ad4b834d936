"""A real local HTTP server that speaks the OpenAI chat completions protocol.

No model service can be reached from the tests, so this Tornado server on a
free port stands in for one: ``POST /v1/chat/completions`` answers with what
the test queued (:meth:`FakeModel.answer`) as server-sent events the way real
models stream them (text deltas, tool calls split across chunks, usage last,
``data: [DONE]``), or with an HTTP error, or a stream cut mid-way, or a first
token that does not come, or an event that is not JSON. It records every
request (headers and body) and whether the client closed it before the answer
was over.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web

# -- what a test queues -----------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A text delta."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A tool call, sent as real models send one: id and name first, then the
    arguments in ``pieces`` chunks."""

    name: str
    arguments: dict[str, Any]
    index: int = 0
    id: str = "call_1"
    pieces: int = 3


@dataclass(frozen=True)
class Hold:
    """Stop sending until the test sets ``event`` (or the client goes away)."""

    event: asyncio.Event


@dataclass(frozen=True)
class Cut:
    """Close the connection here, mid-stream, without a finish or ``[DONE]``."""


@dataclass(frozen=True)
class Garbage:
    """An event whose data is not the protocol's JSON (a proxy's error page, a bug)."""

    data: str = "<html>502 Bad Gateway</html>"


@dataclass(frozen=True)
class Stream:
    """A streamed answer: its parts, then the finish reason, the usage and ``[DONE]``."""

    parts: tuple[Text | ToolCall | Hold | Cut | Garbage, ...]
    prompt_tokens: int = 100
    completion_tokens: int = 20
    #: False: a server that does not report usage.
    usage: bool = True


@dataclass(frozen=True)
class Failure:
    """An HTTP error answer, as OpenAI words one."""

    status: int
    message: str = "fake failure"


Answer = Stream | Failure


def say(text: str, *, pieces: int = 3, **options: Any) -> Stream:
    """``text`` streamed in ``pieces`` deltas."""
    size = max(1, -(-len(text) // pieces))
    return Stream(tuple(Text(text[i : i + size]) for i in range(0, len(text), size)), **options)


def call(name: str, arguments: dict[str, Any], **options: Any) -> Stream:
    """A round that asks for one tool."""
    return Stream((ToolCall(name, arguments),), **options)


# -- the server ---------------------------------------------------------------------------


@dataclass
class Request:
    """One request the fake received."""

    headers: dict[str, str]
    body: dict[str, Any]
    #: Set when the answer was sent in full, or the client went away first.
    over: asyncio.Event = field(default_factory=asyncio.Event)
    #: Whether the client closed the connection before the answer was over.
    closed_early: bool = False
    #: Parts sent so far (text deltas and tool call chunks).
    sent: int = 0


class FakeModel:
    """The server; ``url`` is its ``/v1`` base URL."""

    def __init__(self) -> None:
        # Answers for the next requests, in order.
        self._answers: deque[Answer] = deque()
        # The answer when none is queued.
        self.default: Answer = say("Default answer.")
        # Every request received, in order.
        self.requests: list[Request] = []
        # The listening server and its port; set by start().
        self._server: tornado.httpserver.HTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, *answers: Answer) -> None:
        """Queue ``answers`` for the next requests."""
        self._answers.extend(answers)

    def next_answer(self) -> Answer:
        return self._answers.popleft() if self._answers else self.default

    def app(self) -> tornado.web.Application:
        """The fake's routes (to serve them elsewhere: a browser test's background thread)."""
        return tornado.web.Application([(r"/v1/chat/completions", _Completions, {"fake": self})])

    async def start(self) -> None:
        app = self.app()
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()


class _Completions(tornado.web.RequestHandler):
    def initialize(self, fake: FakeModel) -> None:
        self._fake = fake
        self._gone = asyncio.Event()
        self._request: Request | None = None

    def on_connection_close(self) -> None:
        self._gone.set()
        if self._request is not None and not self._request.over.is_set():
            self._request.closed_early = True
            self._request.over.set()

    async def post(self) -> None:
        request = Request(dict(self.request.headers), json.loads(self.request.body))
        self._request = request
        self._fake.requests.append(request)
        answer = self._fake.next_answer()
        if isinstance(answer, Failure):
            self.set_status(answer.status)
            self.set_header("Content-Type", "application/json")
            # Real servers tell a client how long to wait; keep the SDK's retries quick.
            self.set_header("retry-after-ms", "10")
            self.finish({"error": {"message": answer.message, "type": "fake", "code": None}})
            request.over.set()
            return
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        try:
            await self._stream(answer, request, request.body.get("model", "fake"))
        except tornado.iostream.StreamClosedError:
            request.closed_early = True
        request.over.set()

    async def _stream(self, answer: Stream, request: Request, model: str) -> None:
        called = False
        for part in answer.parts:
            if isinstance(part, Hold):
                waiting = asyncio.ensure_future(part.event.wait())
                gone = asyncio.ensure_future(self._gone.wait())
                await asyncio.wait([waiting, gone], return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                gone.cancel()
                if self._gone.is_set():
                    raise tornado.iostream.StreamClosedError()
                continue
            if isinstance(part, Cut):
                request.over.set()  # over as planned: not the client closing early
                self.request.connection.stream.close()  # type: ignore[union-attr]
                return
            if isinstance(part, Garbage):
                self.write(f"data: {part.data}\n\n")
                await self.flush()
                continue
            if isinstance(part, Text):
                await self._send(model, {"content": part.text})
                request.sent += 1
                continue
            called = True
            arguments = json.dumps(part.arguments)
            size = max(1, -(-len(arguments) // part.pieces))
            await self._send(
                model,
                {
                    "tool_calls": [
                        {
                            "index": part.index,
                            "id": part.id,
                            "type": "function",
                            "function": {"name": part.name, "arguments": ""},
                        }
                    ]
                },
            )
            for start in range(0, len(arguments), size):
                piece = arguments[start : start + size]
                await self._send(
                    model,
                    {"tool_calls": [{"index": part.index, "function": {"arguments": piece}}]},
                )
                request.sent += 1
        await self._send(model, {}, finish="tool_calls" if called else "stop")
        if answer.usage:
            usage = {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            }
            await self._event({**_head(model), "choices": [], "usage": usage})
        self.write("data: [DONE]\n\n")
        await self.flush()

    async def _send(self, model: str, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        await self._event({**_head(model), "choices": [choice]})

    async def _event(self, data: dict[str, Any]) -> None:
        self.write(f"data: {json.dumps(data)}\n\n")
        await self.flush()


def _head(model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
