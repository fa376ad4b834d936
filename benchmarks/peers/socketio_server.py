"""A python-socketio peer: what the same stack's best-known chat library does.

`python -m benchmarks.peers.socketio_server [--port PORT] [--redis-url URL]`
prints the port it listens on, then serves until terminated.

One `chat` event handler answers each message by emitting `reply` with the same
data to the sender's room, so the reply takes the path a chat message to a room
takes: through the client manager, which with `--redis-url` is
`socketio.AsyncRedisManager` (published to Redis and received back from it, as
a reply would reach the sender's tab on another node), and otherwise in memory.

The set-up is pinned here and in benchmarks/requirements.txt, not left to
what happens to be installed:

- ASGI (`AsyncServer(async_mode="asgi")`) on uvicorn, on the standard asyncio
  event loop, as Tornado and ChatBuddy run (uvloop would change the loop, not
  the library);
- uvicorn's WebSocket implementation is the one it picks by default when
  `websockets` is installed (as `uvicorn[standard]` installs it):
  `websockets-sansio`. It is named here so that having `wsproto` installed as
  well (python-engineio's `simple-websocket` brings it) changes nothing;
- uvicorn logs warnings only and no access log: a peer is measured at its
  ceiling, with nothing written per connection (Tornado's echo logs nothing
  either);
- python-socketio's own settings are its defaults; the Redis manager's client
  pool is not capped (see make_app).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import click
import socketio
import uvicorn


def make_app(redis_url: str | None) -> Any:
    """The ASGI app: one `chat` handler that replies to the sender's room."""
    manager = None
    if redis_url:
        # redis-py 6+ caps an asyncio pool at 100 connections. The manager
        # publishes each emit after delivering it here, on a pooled connection,
        # so under load publishes in flight outnumber the clients: at 50
        # connections some already failed ("Too many connections"), and each
        # failure made the manager reconnect with a new client: a fifth of the
        # throughput. Unbounded, as redis-py's pools were before version 6.
        manager = socketio.AsyncRedisManager(redis_url, redis_options={"max_connections": 2**31})
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    async def chat(sid: str, data: Any) -> None:
        await sio.emit("reply", data, room=sid)

    sio.on("chat", chat)
    return socketio.ASGIApp(sio)


async def serve(port: int, redis_url: str | None) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        make_app(redis_url),
        http="h11",
        ws="websockets-sansio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    print(f"listening on {listener.getsockname()[1]}", flush=True)
    await server.serve(sockets=[listener])


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0: any free port.")
@click.option("--redis-url", metavar="URL", help="Use socketio.AsyncRedisManager on this Redis.")
def main(port: int, redis_url: str | None) -> None:
    """Serve python-socketio on uvicorn on 127.0.0.1 for the benchmark."""
    asyncio.run(serve(port, redis_url))


if __name__ == "__main__":
    main()
