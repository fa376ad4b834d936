"""The Tornado application: routes, and exactly the collaborators each handler uses."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from chatbuddy.audit import AuditLog
from chatbuddy.chat import ChatService, LocalNode
from chatbuddy.chat.counters import Counters
from chatbuddy.engine import Engine
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings
from chatbuddy.web.admin import (
    AdminTailHandler,
    ExportHandler,
    SessionHandler,
    SessionsHandler,
    StatsHandler,
    UserSessionsHandler,
)
from chatbuddy.web.auth import AdminAccess
from chatbuddy.web.chat_socket import ChatSocketHandler
from chatbuddy.web.http import (
    HealthHandler,
    NotFoundHandler,
    PageHandler,
    ReadyHandler,
    log_request,
)
from chatbuddy.web.keepalive import KeepAlive
from chatbuddy.web.limits import ProxiedClients
from chatbuddy.web.operator import (
    HoldHandler,
    MessagesHandler,
    NotesHandler,
    ReadHandler,
    TypingHandler,
    WaitingHandler,
)
from chatbuddy.web.widget import (
    FRAME,
    VersionedAssetHandler,
    WidgetConfigHandler,
    WidgetScriptHandler,
    asset_version,
)


def static_path() -> str:
    """Where the browser page is.

    An install carries it as ``chatbuddy/static``; an editable install of a
    checkout finds it in ``static/`` beside the package. (It is not imported as
    a package, which editable installs cannot map for a folder of assets.)
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "static", package.parent / "static"):
        if (candidate / "index.html").is_file():
            return str(candidate)
    raise ConfigurationError(f"the browser page is missing: no static/index.html near {package}")


def make_app(
    *,
    settings: Settings,
    engine: Engine,
    node: LocalNode,
    service: ChatService,
    counters: Counters,
    access: AdminAccess,
    keepalive: KeepAlive,
    audit: AuditLog,
    clients: ProxiedClients,
) -> tornado.web.Application:
    """Wire the handlers to this process's one node, service, engine and settings."""
    static = static_path()
    version = asset_version(static)
    origins = settings.allowed_origins
    sessions = {"access": access, "store": engine.store, "bus": engine.bus, "audit": audit}
    operators = {"access": access, "handoff": service.handoff, "audit": audit}
    return tornado.web.Application(
        [
            (r"/()", PageHandler, {"path": static, "default_filename": "index.html"}),
            (r"/(favicon\.ico)", PageHandler, {"path": static}),
            (
                r"/static/v/([0-9a-f]{12})/(.*)",
                VersionedAssetHandler,
                {"path": static, "version": version, "allowed_origins": origins},
            ),
            (r"/static/(.*)", PageHandler, {"path": static}),
            (r"/(widget\.js)", WidgetScriptHandler, {"path": static}),
            (
                r"/widget/config",
                WidgetConfigHandler,
                {"allowed_origins": origins, "frame": f"/static/v/{version}/{FRAME}"},
            ),
            (
                r"/ws/chat/([^/]*)",
                ChatSocketHandler,
                {
                    "service": service,
                    "allowed_origins": origins,
                    "keepalive": keepalive,
                    "max_queued": settings.max_queued,
                    "audit": audit,
                    "clients": clients,
                },
            ),
            (
                r"/api/v1/websocket/stats",
                StatsHandler,
                {
                    "access": access,
                    "bus": engine.bus,
                    "counters": counters,
                    "engine_name": engine.name,
                    "store": engine.store,
                },
            ),
            (r"/api/v1/sessions", SessionsHandler, sessions),
            (r"/api/v1/sessions/([^/]+)", SessionHandler, sessions),
            (r"/api/v1/sessions/([^/]+)/hold", HoldHandler, operators),
            (r"/api/v1/sessions/([^/]+)/messages", MessagesHandler, operators),
            (r"/api/v1/sessions/([^/]+)/notes", NotesHandler, operators),
            (r"/api/v1/sessions/([^/]+)/typing", TypingHandler, operators),
            (r"/api/v1/sessions/([^/]+)/read", ReadHandler, operators),
            (r"/api/v1/handoffs", WaitingHandler, {"access": access, "store": engine.store}),
            (r"/api/v1/users/([^/]+)/sessions", UserSessionsHandler, sessions),
            (r"/api/v1/export", ExportHandler, sessions),
            (r"/ws/admin/tail", AdminTailHandler, {"access": access, "node": node}),
            (r"/healthz", HealthHandler),
            (r"/readyz", ReadyHandler, {"engine": engine}),
        ],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        websocket_max_message_size=settings.max_frame_bytes,
        # Chat sockets are pinged by the one KeepAlive timer, not a timer each.
    )
