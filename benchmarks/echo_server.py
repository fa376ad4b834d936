"""The baseline: a bare Tornado WebSocket echo server, the ceiling of our stack.

`python -m benchmarks.echo_server [PORT]` prints the port it listens on.
"""

from __future__ import annotations

import asyncio
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


async def main(port: int) -> None:
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    app = tornado.web.Application([(r"/echo", Echo)], websocket_max_message_size=64 * 1024)
    tornado.httpserver.HTTPServer(app).add_sockets(sockets)
    print(f"listening on {sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
