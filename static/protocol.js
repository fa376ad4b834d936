// The wire protocol as the page speaks it (docs/protocol.md): the frames it
// sends, reading the frames it gets, and the rules both sides share. No DOM and
// no I/O here, so the page, the widget and a test can all use it as it is.

/** The longest chat text the server accepts (after normalisation). */
export const MAX_CHARS = 4000;

// Session and user ids the server accepts in the socket's URL.
const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

// Chat errors after which the same message may be sent again, unchanged.
const RETRYABLE_ERRORS = new Set(["storage_unavailable", "rate_limited"]);

// What the server removes before it counts (server: chatbuddy/text.py): C0
// controls but tab and newline, DEL, and the C1 block.
const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * What the page does when the server closes an open socket, by close code:
 * "retry" (reconnect with backoff) or "terminal" (stay closed until the user
 * asks). The server's table of close codes (docs/protocol.md, "Close codes",
 * once the hardening work adds it) is the source; this is the page's copy.
 * A code not listed here is retried, with backoff, so no code can make a
 * reconnect loop faster than the backoff allows.
 */
export const CLOSE_CODES = Object.freeze({
  1000: "terminal", // normal closure: the server ended this chat on purpose
  1001: "retry",    // going away: the server stops or restarts
  1006: "retry",    // abnormal closure: the connection dropped without a close frame
  1008: "terminal", // policy violation: reconnecting would only be refused again
  1011: "retry",    // internal error on the server
  1012: "retry",    // service restart
  1013: "retry",    // try again later (overloaded)
});

/**
 * @param {number} code a CloseEvent's code
 * @returns {"retry" | "terminal"}
 */
export function closeAction(code) {
  return CLOSE_CODES[code] || "retry";
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
 * The chat socket's URL for a session, on the server at `base`.
 * @param {string | URL} base the server (http: or https:); paths start at its root
 * @param {string} sessionId
 * @param {string | null} token the session's token, once the server gave one
 * @param {string | null} [userId] the user the page knows (a label, not a proof)
 * @returns {string} a ws: or wss: URL
 */
export function chatSocketUrl(base, sessionId, token, userId) {
  const server = new URL(base);
  const scheme = server.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams();
  if (userId) query.set("user_id", userId);
  if (token) query.set("session_token", token);
  const search = query.toString();
  return scheme + "//" + server.host + "/ws/chat/" + encodeURIComponent(sessionId) +
    (search ? "?" + search : "");
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
