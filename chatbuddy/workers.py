"""``chatbuddy serve --workers N``: N processes serving one port, each a node.

Python runs one thread of chat logic per process; a machine with more cores
runs more processes. Each worker is a whole server (its own event loop,
connections and Redis clients) and a node of the Redis engine, so a message
reaches its session's tabs whichever worker holds them, exactly as between
machines. Each worker binds the port with ``SO_REUSEPORT``: the kernel spreads
new connections over them.

The parent serves nothing. It checks that the port can be had (a port in use is
a one-line error), forks the workers, waits until each listens, and then only
watches: a worker that dies is started again (a few times a minute at most),
and SIGINT/SIGTERM asks every worker to stop, each finishing its replies as a
single server does, and waits for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings
from chatbuddy.tokens import new_token

log = logging.getLogger("chatbuddy.workers")

#: Seconds every worker has to start listening.
READY_TIMEOUT = 60.0
#: Worker deaths within a minute after which the parent gives up and stops them all.
MOST_RESTARTS_PER_MINUTE = 5

#: What a worker runs: serve with these settings, calling ``ready()`` once it listens.
Worker = Callable[[Settings, Callable[[], None]], None]


def prepare(settings: Settings, bind: Callable[[Settings], list[socket.socket]]) -> Settings:
    """The settings every worker gets: a port (a free one for ``--port 0``) and one admin
    token for all. ``bind`` opens the port once, to fail now with a one-line error."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigurationError("--workers needs SO_REUSEPORT, which this system lacks")
    sockets = bind(settings)
    port = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.close()
    return dataclasses.replace(settings, port=port, admin_token=settings.admin_token or new_token())


def run(settings: Settings, worker: Worker, on_ready: Callable[[list[int]], None]) -> int:
    """Fork ``settings.workers`` workers, call ``on_ready(pids)`` once all listen, and
    watch them until a signal stops them. Returns the exit status for the parent."""
    ready_read, ready_write = os.pipe()
    children: dict[int, int] = {}  # pid -> worker number

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_read)
            _work(settings, worker, ready_write)
        children[pid] = number

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in range(settings.workers):
            spawn(number)
        if not _wait_until_ready(ready_read, settings.workers, children):
            stop(signal.SIGTERM, None)
            _reap_all(children)
            raise ConfigurationError("a worker could not start; its error is above")
        on_ready(sorted(children))
        deaths: list[float] = []
        while children:
            pid, status = os.wait()
            number = children.pop(pid, -1)
            if number < 0 or stopping:
                continue
            deaths = [t for t in deaths if t > time.monotonic() - 60] + [time.monotonic()]
            log.warning("worker %d (pid %d) died: %s", number, pid, _describe(status))
            if len(deaths) > MOST_RESTARTS_PER_MINUTE:
                log.error("workers keep dying; stopping them all")
                stop(signal.SIGTERM, None)
                _reap_all(children)
                return 1
            spawn(number)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(ready_read)
        os.close(ready_write)


def _work(settings: Settings, worker: Worker, ready_write: int) -> None:
    """In the forked worker: serve, then leave without running the parent's code."""
    status = 1
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)

        def ready() -> None:
            os.write(ready_write, b".")

        worker(settings, ready)
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker failed")
    finally:
        logging.shutdown()
        os._exit(status)


def _wait_until_ready(ready_read: int, count: int, children: dict[int, int]) -> bool:
    """Whether ``count`` workers said they listen before the timeout and none died."""
    deadline = time.monotonic() + READY_TIMEOUT
    heard = 0
    while heard < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        readable, _, _ = select.select([ready_read], [], [], min(left, 0.5))
        if readable:
            heard += len(os.read(ready_read, count - heard))
        for pid in list(children):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                children.pop(pid)
                return False
    return True


def _reap_all(children: dict[int, int]) -> None:
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        children.pop(pid)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
