"""The Tornado layer: handlers that translate HTTP and WebSocket into chat calls."""

from chatbuddy.web.app import make_app

__all__ = ["make_app"]
