"""Chat logic: handshake rules, message dispatch, ordered replies. No Tornado here."""

from chatbuddy.chat.service import ChatService
from chatbuddy.chat.sessions import Grant, HandshakeRequest, SessionGate

__all__ = ["ChatService", "Grant", "HandshakeRequest", "SessionGate"]
