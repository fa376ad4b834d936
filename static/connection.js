// The chat connection: one WebSocket to the server, kept open for as long as
// the page lives, and the bookkeeping that makes every message arrive once.
//
// When the socket drops it reconnects by itself (exponential backoff with
// jitter, 0.5 s up to 20 s), asks with `history` for what came after the last
// message id it has, and sends again what was typed offline or was still
// unanswered, each with its client_message_id, so the server stores it once.
// A server that is restarting (error shutting_down, then close 1001) gets the
// same treatment: what it refused waits, queued, for the next connection.
// A close whose code is terminal (protocol.js CLOSE_CODES) is not retried.
// When it says the session itself is gone (expired, replaced, deleted), a new
// session starts at once; any other terminal close waits for the user
// (reopen(), or a message they send). It knows no DOM: it tells its owner what
// happened through events (below).
import {
  chatMessage, chatSocketUrl, clientMessageId, closeAction, healthUrl, historyRequest,
  isRetryable, parseFrame, ping, replyAgent, sessionEnd, sessionInfoRequest, socketProtocols,
} from "./protocol.js";
import { newSession } from "./storage.js";

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 20000;
// After a retryable error (rate limit, store down) the server wants a pause.
const RETRY_AFTER_ERROR_MS = 2000;

/**
 * How long to wait before reconnect attempt `attempt` (0, 1, …): doubling from
 * 0.5 s up to 20 s, then a random 50–100 % of that, so that many pages cut
 * off together do not all come back in the same instant.
 * @param {number} attempt
 * @param {() => number} [random] a number in [0, 1)
 * @returns {number} milliseconds
 */
export function reconnectDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return Math.round(base * (0.5 + random() * 0.5));
}

/**
 * A chat with the server that survives disconnects. Construct it, listen to
 * its events, then call start(). Each event is a CustomEvent; its `detail`:
 *
 * - `status` {state: "connecting" | "connected" | "retrying" | "disconnected",
 *   until, code}: when retrying, the time (Date.now() clock) of the next
 *   attempt; "disconnected" after a terminal close (`code`, its close code):
 *   nothing happens until reopen() or send()
 * - `established` {info}: the `connection_established` data
 * - `message` {message}: a stored message new to this page (from `history` or
 *   another tab); `message.client_message_id` may name one of ours
 * - `historypage` {}: one page of `history` has been delivered as `message`s
 * - `chunk` {id, delta}: a piece of reply `id`, still streaming
 * - `reply` {id, content, timestamp, agent}: a whole reply new to this page
 * - `sending` {cmid}: our message went out and waits for its answer
 * - `queued` {cmid}: our message waits for the connection to send it (again)
 * - `draining` {}: the server is restarting; what it refused goes once reconnected
 * - `confirmed` {cmid, id}: the server has our message (`id` when known)
 * - `failed` {cmid, message}: the server refused our message for good
 * - `problem` {message}: any other error the server reported, to show as is
 * - `typing` {on}: whether an answer is being waited for
 * - `info` {info}: the `session_info` data
 * - `pong` {ms}: the round trip of the last ping()
 * - `newsession` {reason, unsent}: the conversation was dropped and a new
 *   session starts. `reason`: "user" (newSession()), "refused" (the server
 *   refused the old session's token), "lost" (the server did not resume it),
 *   or the close that ended it: "expired" (4001), "replaced" (4002),
 *   "deleted" (4003). `unsent`: the texts of our messages that the old session
 *   never answered, oldest first; they are not sent to the new one (they were
 *   written for the old conversation), so the owner may give them back to the user
 * - `frame` {type, data}: every server frame, after the above (for frame
 *   types this module does not handle)
 */
export class ChatConnection extends EventTarget {
  #base;            // the server's URL; the socket and health check paths start at its root
  #store;           // keeps the session id and token across reloads
  #userId;          // the user a shop's page names (a label), or null
  #session;         // {id, token}; the token arrives with connection_established
  #socket = null;   // the current WebSocket, null while there is none
  #closed = false;  // the server closed with a terminal code: no reconnecting by itself
  // This session was started by the page because the server ended the last
  // one, and nothing was sent in it yet: if it ends too, stop instead of looping.
  #autoStarted = false;
  #draining = false; // this connection's server is shutting down: send nothing more on it
  #attempt = 0;     // reconnect attempts since the last success, for the backoff
  #retryTimer = null;
  #seen = new Set(); // message ids this page has, so that none is shown twice
  #lastId = 0;      // the highest of them: `history` resumes after it
  #outbox = [];     // [{cmid, text}] to send once connected, oldest first
  #inflight = [];   // [{cmid, text}] sent, not yet confirmed, oldest first
  #sentCount = 0;   // numbers this page's client_message_ids
  #pingSentAt = 0;

  /**
   * @param {{base: string | URL, store: {load(): object, save(session: object): void},
   *   userId?: string | null}} options
   *   `base`: the server, e.g. location.origin; `store`: see storage.js sessionStore();
   *   `userId`: the user the embedding page knows, sent with the handshake
   */
  constructor({ base, store, userId = null }) {
    super();
    this.#base = base;
    this.#store = store;
    this.#userId = userId;
    this.#session = store.load();
  }

  /** Opens the first connection; reconnecting is automatic from then on. */
  start() {
    this.#connect();
  }

  /** Connects now if it is waiting to retry (e.g. the browser is back online). */
  reconnectNow() {
    if (!this.#socket && !this.#closed) this.#connect();
  }

  /** Connects now, the user asked: also after a terminal close. */
  reopen() {
    this.#closed = false;
    this.#autoStarted = false;
    if (!this.#socket) this.#connect();
  }

  /**
   * A new message of ours, not sent yet: show it, then send() it.
   * @param {string} text
   * @returns {{cmid: string, text: string}}
   */
  prepare(text) {
    this.#sentCount += 1;
    return { cmid: clientMessageId(this.#sentCount), text: text };
  }

  /**
   * Sends a prepared message now, or queues it until the connection is back.
   * Emits `sending` or `queued` for it.
   * @param {{cmid: string, text: string}} message
   * @returns {boolean} whether it went out now
   */
  send(message) {
    if (this.#closed) this.reopen(); // a message is the user asking to connect again
    this.#autoStarted = false;
    if (this.#sendChat(message)) {
      this.#emit("sending", { cmid: message.cmid });
      return true;
    }
    this.#outbox.push(message);
    this.#emit("queued", { cmid: message.cmid });
    return false;
  }

  /**
   * Sends any other frame now (protocol.js makes them); nothing while offline.
   * @param {object} frame
   * @returns {boolean} whether it went out
   */
  sendFrame(frame) {
    return this.#transmit(frame);
  }

  /** Measures the round trip; answered by a `pong` event (when connected). */
  ping() {
    this.#pingSentAt = performance.now();
    this.#transmit(ping());
  }

  /** Asks for the session's details; answered by an `info` event (when connected). */
  requestSessionInfo() {
    this.#transmit(sessionInfoRequest());
  }

  /** Drops this conversation (here, not on the server) and starts a new session. */
  newSession() {
    this.#closed = false;
    this.#autoStarted = false;
    const old = this.#socket;
    this.#socket = null; // its close is ours: onclose ignores it
    if (old) old.close();
    this.#replaceSession("user");
    this.#connect();
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail: detail }));
  }

  #transmit(frame) {
    if (this.#socket && this.#socket.readyState === WebSocket.OPEN) {
      this.#socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // -- sending ------------------------------------------------------------------

  #sendChat(item) {
    if (this.#draining) return false;
    const frame = chatMessage({ sessionId: this.#session.id, cmid: item.cmid, text: item.text });
    const sent = this.#transmit(frame);
    if (sent) {
      this.#inflight.push(item);
      this.#emit("typing", { on: true });
    }
    return sent;
  }

  #flushOutbox() {
    while (this.#outbox.length && this.#sendChat(this.#outbox[0])) this.#outbox.shift();
    for (const item of this.#inflight) this.#emit("sending", { cmid: item.cmid });
  }

  // Messages sent on a connection that closed before they were answered go
  // again, first, on the next one (the server drops those it stored).
  #requeueInflight() {
    for (const item of this.#inflight) this.#emit("queued", { cmid: item.cmid });
    this.#outbox.unshift(...this.#inflight.splice(0));
  }

  // The oldest message in flight is the one the server just answered: replies
  // come in order, one at a time (docs/protocol.md).
  #confirmOldest(id) {
    const mine = this.#inflight.shift();
    this.#remember(id);
    this.#emit("confirmed", { cmid: mine.cmid, id: id });
  }

  #remember(id) {
    if (!id) return;
    this.#seen.add(id);
    if (id > this.#lastId) this.#lastId = id;
  }

  // -- receiving ----------------------------------------------------------------

  #receive(type, data) {
    switch (type) {
      case "connection_established": this.#established(data); break;
      case "history": this.#history(data); break;
      case "user_message":
        this.#stored(data);
        this.#emit("typing", { on: true });
        break;
      case "chat_response_chunk":
        // Skipped when the whole reply is already here (seen via history).
        if (!this.#seen.has(data.message_id)) this.#emit("chunk", { id: data.message_id, delta: data.delta });
        break;
      case "chat_response": this.#reply(data); break;
      case "operator_message": this.#stored(data); break; // a person's, like another tab's
      case "session_info": this.#emit("info", { info: data }); break;
      case "pong": this.#emit("pong", { ms: Math.round(performance.now() - this.#pingSentAt) }); break;
      case "error":
        if (data.request_type === "chat_message") this.#chatError(data);
        else this.#emit("problem", { message: data.error_message });
        break;
    }
    this.#emit("frame", { type: type, data: data });
  }

  #established(data) {
    this.#attempt = 0;
    const hadSession = Boolean(this.#session.token);
    this.#session.token = data.session_token;
    this.#store.save(this.#session);
    this.#emit("status", { state: "connected", until: 0 });
    // We had a session and the server did not resume it (it expired, or was
    // lost): this is a new session under the old id, and the conversation is gone.
    if (!data.resumed && hadSession) this.#dropConversation("lost");
    this.#emit("established", { info: data });
    this.#transmit(historyRequest(this.#lastId));
    this.#transmit(sessionInfoRequest());
    // Messages that were in flight when the connection dropped go again,
    // before anything typed offline; the server drops the ones it stored.
    this.#outbox.unshift(...this.#inflight.splice(0));
    this.#flushOutbox();
    if (!this.#inflight.length) this.#emit("typing", { on: false });
  }

  #history(data) {
    data.messages.forEach((message) => this.#stored(message));
    if (data.has_more && data.messages.length) {
      this.#transmit(historyRequest(data.messages[data.messages.length - 1].id));
    }
    this.#emit("historypage", {});
  }

  // A stored message (from history or another tab): delivered once, whatever the route.
  #stored(message) {
    if (this.#seen.has(message.id)) return;
    const cmid = message.client_message_id;
    const index = cmid ? this.#inflight.findIndex((item) => item.cmid === cmid) : -1;
    if (index >= 0) this.#inflight.splice(index, 1);
    this.#remember(message.id);
    this.#emit("message", { message: message });
  }

  #reply(data) {
    // Our own message is confirmed by its reply: the oldest one in flight.
    if (!this.#seen.has(data.in_reply_to) && this.#inflight.length) this.#confirmOldest(data.in_reply_to);
    if (!this.#seen.has(data.message_id)) {
      this.#remember(data.message_id);
      this.#emit("reply", {
        id: data.message_id, content: data.content, timestamp: data.timestamp, agent: replyAgent(data),
      });
    }
    this.#emit("typing", { on: this.#inflight.length > 0 });
    this.#transmit(sessionInfoRequest());
  }

  #chatError(data) {
    // The session is gone (expired, or its id taken): the close that follows
    // (4001, 4002) hands every message it never answered back to the user.
    if (data.error_type === "missing_session") return;
    if (data.error_type === "shutting_down") {
      this.#refusedWhileDraining(data);
      return;
    }
    if (data.error_type === "duplicate_message" && this.#inflight.length) {
      // Stored before; its reply will come (or is in history).
      this.#confirmOldest(data.in_reply_to);
      return;
    }
    if (data.in_reply_to) {
      // A stored message the assistant could not answer.
      this.#emit("typing", { on: this.#inflight.length > 0 });
      this.#emit("problem", { message: data.error_message });
      return;
    }
    const mine = this.#takeInflight(data, "oldest");
    this.#emit("typing", { on: this.#inflight.length > 0 });
    if (!mine) {
      this.#emit("problem", { message: data.error_message });
    } else if (isRetryable(data.error_type)) {
      this.#outbox.unshift(mine);
      this.#emit("queued", { cmid: mine.cmid });
      setTimeout(() => this.#flushOutbox(), RETRY_AFTER_ERROR_MS);
    } else {
      this.#emit("failed", { cmid: mine.cmid, message: data.error_message });
    }
  }

  // The in-flight message an error is about: the one it names (servers since
  // the error's client_message_id), else the oldest or newest one in flight.
  #takeInflight(data, otherwise) {
    const named = data.client_message_id;
    const at = named ? this.#inflight.findIndex((m) => m.cmid === named) : -1;
    if (at >= 0) return this.#inflight.splice(at, 1)[0];
    return otherwise === "oldest" ? this.#inflight.shift() : this.#inflight.pop();
  }

  // The server is shutting down: it answers what it took before and refuses
  // the rest, then closes (1001). So the refused are the newest in flight,
  // one per refusal; they wait in the outbox, in order, and go again with the
  // same client_message_id once reconnected. Nothing more is sent meanwhile.
  #refusedWhileDraining(data) {
    if (!this.#draining) this.#emit("draining", {});
    this.#draining = true;
    const mine = this.#takeInflight(data, "newest");
    if (mine) {
      this.#outbox.unshift(mine);
      this.#emit("queued", { cmid: mine.cmid });
    }
    this.#emit("typing", { on: this.#inflight.length > 0 });
  }

  // -- the socket's life ---------------------------------------------------------

  #connect() {
    clearTimeout(this.#retryTimer);
    this.#draining = false;
    this.#emit("status", { state: "connecting", until: 0 });
    const url = chatSocketUrl(this.#base, this.#session.id, this.#userId);
    const ws = new WebSocket(url, socketProtocols(this.#session.token));
    let opened = false;
    this.#socket = ws;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (event) => {
      const frame = parseFrame(event.data);
      if (frame) this.#receive(frame.type, frame.data);
    };
    ws.onclose = (event) => {
      if (this.#socket !== ws) return; // replaced on purpose (new conversation)
      this.#socket = null;
      if (!opened) this.#refusedOrDown();
      else if (sessionEnd(event.code)) this.#sessionGone(event.code);
      else if (closeAction(event.code) === "terminal") this.#closedForGood(event.code);
      else this.#scheduleReconnect();
    };
  }

  // The server closed with a terminal code: reconnecting would loop, so stop.
  #closedForGood(code) {
    this.#closed = true;
    this.#requeueInflight();
    this.#emit("typing", { on: false });
    this.#emit("status", { state: "disconnected", until: 0, code: code });
  }

  // The session is gone for good (4001-4003): its token would only be refused.
  // A new session starts at once, unless this one was such a new session and
  // unused: a server that ended every new session would make that a loop.
  #sessionGone(code) {
    const again = this.#autoStarted;
    this.#replaceSession(sessionEnd(code));
    if (again) {
      this.#closedForGood(code);
    } else {
      this.#autoStarted = true;
      this.#connect();
    }
  }

  // The handshake failed: the server is down, or it refused this session.
  #refusedOrDown() {
    fetch(healthUrl(this.#base), { cache: "no-store" })
      .then((response) => {
        if (response.ok && this.#session.token) {
          // The server is up and refused us: the session is not ours any more.
          this.#replaceSession("refused");
          this.#connect();
        } else {
          this.#scheduleReconnect();
        }
      })
      .catch(() => this.#scheduleReconnect());
  }

  #scheduleReconnect() {
    this.#requeueInflight();
    const delay = reconnectDelay(this.#attempt);
    this.#attempt += 1;
    this.#emit("status", { state: "retrying", until: Date.now() + delay });
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  // A new session (no token yet) takes this one's place, here and in the store.
  #replaceSession(reason) {
    this.#session = newSession();
    this.#store.save(this.#session);
    this.#attempt = 0;
    this.#dropConversation(reason);
  }

  // Forgets the conversation shown; what it never got answered goes to the owner.
  #dropConversation(reason) {
    const unsent = [...this.#inflight.splice(0), ...this.#outbox.splice(0)].map((item) => item.text);
    this.#seen.clear();
    this.#lastId = 0;
    this.#emit("typing", { on: false });
    this.#emit("newsession", { reason: reason, unsent: unsent });
  }
}
