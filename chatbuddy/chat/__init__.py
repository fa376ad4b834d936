"""Chat logic: handshake rules, frame rules, ordered replies, this node's connections.

Nothing here imports Tornado (a test checks it): the web layer translates
sockets into calls on :class:`ChatService` and :class:`LocalNode`.
"""

from chatbuddy.chat.node import LocalNode
from chatbuddy.chat.service import ChatService
from chatbuddy.chat.sessions import Grant, HandshakeRequest, SessionGate

__all__ = ["ChatService", "Grant", "HandshakeRequest", "LocalNode", "SessionGate"]
