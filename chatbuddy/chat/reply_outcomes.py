"""How a message's reply ended, for whoever waits on it and for the session.

:func:`resolve` answers an HTTP chat request waiting for a reply; :func:`agent_failure`
is what a session is told when the agent could not answer.
"""

from __future__ import annotations

import logging

from chatbuddy.chat.rules import PendingMessage
from chatbuddy.errors import AgentBusy, AgentFailed, ClientError, ErrorType
from chatbuddy.records import StoredMessage

# The reply pipeline's logger, named as it was before this module was split from it.
log = logging.getLogger("chatbuddy.chat.replies")

RESTARTING = "the server is restarting; send it again (same client_message_id) later"


def resolve(message: PendingMessage, outcome: StoredMessage | ClientError) -> None:
    """Tell whoever waits for ``message``'s reply (an HTTP chat request) how it went."""
    answer = message.answer
    if answer is None or answer.done():
        return
    if isinstance(outcome, ClientError):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)


def abandon(message: PendingMessage) -> None:
    """Tell whoever still waits for ``message``'s reply that the server stops before it
    (the error is made only if someone does: this runs after every message)."""
    answer = message.answer
    if answer is not None and not answer.done():
        answer.set_exception(ClientError(ErrorType.SHUTTING_DOWN, RESTARTING))


def agent_failure(agent: str, session_id: str, failed: BaseException) -> ClientError:
    """What the session is told when the agent could not answer."""
    if isinstance(failed, AgentFailed):
        log.warning("agent %s could not answer in session %s: %s", agent, session_id, failed.reason)
        return ClientError(
            ErrorType.BUSY if isinstance(failed, AgentBusy) else ErrorType.AGENT_ERROR,
            failed.message,
            request_type="chat_message",
            retryable=failed.retryable,
        )
    # The type only: an agent's error text may quote the user's message.
    log.warning("agent %s failed in session %s: %s", agent, session_id, type(failed).__name__)
    return ClientError(
        ErrorType.AGENT_ERROR,
        "the assistant could not answer this message; please try again",
        request_type="chat_message",
        retryable=True,
    )
