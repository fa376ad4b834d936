// The wire protocol as the page speaks it (docs/protocol.md): the frames it
// sends, reading the frames it gets, and the rules both sides share. No DOM and
// no I/O here, so the page, the widget and a test can all use it as it is.

/** The longest chat text the server accepts (after normalisation). */
export const MAX_CHARS = 4000;

// Session and user ids the server accepts in the socket's URL.
const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

// The subprotocol the server speaks, and the offered "subprotocol" that
// carries the session's token (server: chatbuddy/wire/subprotocol.py).
const SUBPROTOCOL = "chatbuddy.v1";
const TOKEN_PREFIX = "chatbuddy.token.";
// Tokens are URL-safe base64 (the server's secrets.token_urlsafe).
const TOKEN_RE = /^[A-Za-z0-9_-]{1,256}$/;

// Chat errors after which the same message may be sent again, unchanged.
const RETRYABLE_ERRORS = new Set(["storage_unavailable", "rate_limited"]);

// What the server removes before it counts (server: chatbuddy/text.py): C0
// controls but tab and newline, DEL, and the C1 block.
const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * What to do when the server closes an open socket, by close code: "retry"
 * (reconnect with backoff, then fetch what was missed) or "terminal"
 * (reconnecting as before cannot help: stop and say why). A copy of the
 * server's table, chatbuddy/wire/close_codes.py (docs/protocol.md, "Close
 * codes"); tests/test_close_codes.py checks that the two agree. A code not
 * listed here, and a lost connection (1006), is retried with backoff, so no
 * code can make a reconnect loop faster than the backoff allows.
 */
export const CLOSE_CODES = Object.freeze({
  1000: "terminal", // normal: the server ended this connection on purpose
  1001: "retry",    // going away: the server is shutting down or restarting
  1008: "terminal", // policy violation: rules broken again and again (rate limits)
  1009: "retry",    // too big: a frame over 64 KiB
  1011: "retry",    // server error
  1013: "retry",    // try again later: the server is over a limit right now
  4000: "retry",    // slow consumer: this page read too slowly
  4001: "terminal", // session expired, or the store lost it
  4002: "terminal", // session replaced: its id now belongs to a new session
  4003: "terminal", // session deleted by an administrator
  4004: "retry",    // the signed identity expired: reconnect with a fresh one
  4008: "retry",    // not responding: no pong and nothing read for too long
});

// Terminal codes after which the old session is gone for good: the page
// starts a new one. What each is called in events (and in the notices).
const SESSION_ENDS = Object.freeze({ 4001: "expired", 4002: "replaced", 4003: "deleted" });

/**
 * @param {number} code a CloseEvent's code
 * @returns {"retry" | "terminal"}
 */
export function closeAction(code) {
  return CLOSE_CODES[code] || "retry";
}

/**
 * Why the session itself ended, if close `code` says it did.
 * @param {number} code a CloseEvent's code
 * @returns {"expired" | "replaced" | "deleted" | null}
 */
export function sessionEnd(code) {
  return SESSION_ENDS[code] || null;
}

/**
 * The length of `text` as the server counts it against MAX_CHARS: code points
 * after Unicode NFC and the removal of control characters (not UTF-16 units:
 * an emoji is one, "e" + a combining accent is one).
 * @param {string} text
 * @returns {number}
 */
export function serverLength(text) {
  return [...text.normalize("NFC").replace(CONTROL_RE, "")].length;
}

/**
 * Whether the server would accept `id` as a session (or user) id.
 * @param {unknown} id
 * @returns {boolean}
 */
export function isValidId(id) {
  return typeof id === "string" && ID_RE.test(id);
}

/**
 * A new random session id ("web-" and 16 hex digits); the server creates the
 * session when it first sees it.
 * @returns {string}
 */
export function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A client_message_id, unique for this page: the time now plus a counter
 * the caller keeps (1, 2, …), so two messages in one millisecond differ.
 * @param {number} counter
 * @returns {string}
 */
export function clientMessageId(counter) {
  return "web-" + Date.now().toString(36) + "-" + counter;
}

/**
 * The chat socket's URL for a session, on the server at `base`. It never
 * holds the session's token: proxies and access logs keep URLs, so the token
 * travels in the subprotocol offer instead (socketProtocols()).
 * @param {string | URL} base the server (http: or https:); paths start at its root
 * @param {string} sessionId
 * @param {string | null} [userId] the user the page knows (a label, not a proof)
 * @returns {string} a ws: or wss: URL
 */
export function chatSocketUrl(base, sessionId, userId) {
  const server = new URL(base);
  const scheme = server.protocol === "https:" ? "wss:" : "ws:";
  const search = userId ? "?" + new URLSearchParams({ user_id: userId }) : "";
  return scheme + "//" + server.host + "/ws/chat/" + encodeURIComponent(sessionId) + search;
}

/**
 * The subprotocols to offer when opening the chat socket: `chatbuddy.v1`, and
 * the session's token as `chatbuddy.token.TOKEN` once the server gave one
 * (server: chatbuddy/wire/subprotocol.py). The server answers `chatbuddy.v1`
 * and never echoes the token. Use: `new WebSocket(url, socketProtocols(token))`.
 * @param {string | null} token
 * @returns {string[]}
 */
export function socketProtocols(token) {
  return token ? [SUBPROTOCOL, TOKEN_PREFIX + token] : [SUBPROTOCOL];
}

/**
 * Whether `token` looks like a token the server gives (URL-safe base64), so
 * that it can travel in a subprotocol offer (a WebSocket refuses to open with
 * any other character there).
 * @param {unknown} token
 * @returns {boolean}
 */
export function isValidToken(token) {
  return typeof token === "string" && TOKEN_RE.test(token);
}

// The offered "subprotocol" that carries a signed-in customer's token (a JWT);
// the server needs SUBPROTOCOL offered with it (chatbuddy/wire/subprotocol.py).
const IDENTITY_PREFIX = "chatbuddy.jwt.";
// A JWT: three base64url parts (the signature may be empty only for alg none,
// which the server refuses anyway); the server looks at 8 KiB at most.
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Whether `token` looks like a signed token the handshake can carry.
 * @param {unknown} token
 * @returns {boolean}
 */
export function isSignedToken(token) {
  return typeof token === "string" && token.length <= 8192 && JWT_RE.test(token);
}

/**
 * The subprotocols to offer: `protocols`, plus the customer's signed token
 * (and "chatbuddy.v1" once, which it needs) when there is one.
 * @param {string[]} protocols the offer without the identity
 * @param {string | null} identity a signed token (JWT), or null
 * @returns {string[]}
 */
export function withIdentity(protocols, identity) {
  if (!identity) return protocols;
  const offer = protocols.includes(SUBPROTOCOL) ? [...protocols] : [SUBPROTOCOL, ...protocols];
  return [...offer, IDENTITY_PREFIX + identity];
}

/**
 * The health check's URL on the server at `base` (it tells "down" from "refused").
 * @param {string | URL} base
 * @returns {string}
 */
export function healthUrl(base) {
  return new URL("/healthz", base).href;
}

// -- client → server frames -----------------------------------------------------

/**
 * A `chat_message` frame.
 * @param {{sessionId: string, cmid: string, text: string}} message
 * @returns {object}
 */
export function chatMessage({ sessionId, cmid, text }) {
  return {
    type: "chat_message", content: text, session_id: sessionId,
    client_message_id: cmid, timestamp: new Date().toISOString(),
  };
}

/**
 * A `history` request: the messages after id `after`, or the latest ones
 * when `after` is 0 or missing.
 * @param {number} [after]
 * @returns {object}
 */
export function historyRequest(after) {
  return after ? { type: "history", after: after } : { type: "history" };
}

/**
 * A `cancel`: stop the reply `messageId`, or the reply to our message `cmid`
 * (queued or being written).
 * @param {{messageId?: number, cmid?: string}} target
 * @returns {object}
 */
export function cancelRequest({ messageId, cmid }) {
  return messageId ? { type: "cancel", message_id: messageId } : { type: "cancel", client_message_id: cmid };
}

/** A `session_info` request. @returns {object} */
export function sessionInfoRequest() {
  return { type: "session_info" };
}

/** A `ping` frame, stamped with the time it was made. @returns {object} */
export function ping() {
  return { type: "ping", timestamp: new Date().toISOString() };
}

// -- server → client frames -----------------------------------------------------

/**
 * Reads one text frame from the server.
 * @param {string} text
 * @returns {{type: string, data: object} | null} null for anything that is not
 *   a JSON object with a string `type` (such frames are ignored, not fatal)
 */
export function parseFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch (e) {
    return null;
  }
  if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return null;
  return { type: frame.type, data: frame.data || {} };
}

/**
 * The agent to name under a reply: the coordinator's sub-agent when there is one.
 * @param {object} reply a `chat_response`'s data
 * @returns {string | undefined}
 */
export function replyAgent(reply) {
  return (reply.metadata && reply.metadata.agent) || reply.agent_type;
}

/**
 * Whether a chat `error` means "send the same message again later".
 * @param {string} errorType the error's `error_type`
 * @returns {boolean}
 */
export function isRetryable(errorType) {
  return RETRYABLE_ERRORS.has(errorType);
}

// -- a person in the conversation (docs/protocol.md) --------------------------------

/**
 * A `typing` frame: the customer started or stopped typing (operators see it).
 * @param {"start" | "stop"} state
 * @returns {object}
 */
export function typingFrame(state) {
  return { type: "typing", state: state };
}

/**
 * A `read` frame: the page has shown the conversation up to message `id`.
 * @param {number} id
 * @returns {object}
 */
export function readFrame(id) {
  return { type: "read", message_id: id };
}

/**
 * A `reaction` frame: 👍 ("up") or 👎 ("down") on reply `id`; null takes it back.
 * @param {number} id
 * @param {"up" | "down" | null} reaction
 * @returns {object}
 */
export function reactionFrame(id, reaction) {
  return { type: "reaction", message_id: id, reaction: reaction };
}

/** A `handoff_request` frame: the customer asks for a person. @returns {object} */
export function handoffRequest() {
  return { type: "handoff_request" };
}
