// The chat's DOM: message bubbles, streaming replies, the typing indicator,
// notices, the connection status (with its countdown), the session panel for
// developers, and the composer.
//
// Everything users or the assistant wrote is set with textContent, never as
// HTML. The view holds no chat logic: it shows what it is told, and reports
// what the user does as events.
//
// Screen readers: the conversation is a list (not a live region, which would
// read every streamed chunk); a completed reply is announced once, whole,
// through a separate polite live region, and every bubble names its speaker.
import { MAX_CHARS, serverLength } from "./protocol.js";
import { agentName, timeOfDay, translate } from "./i18n.js";

// From this length on the counter shows "n / 4000".
const COUNTER_FROM = 3500;
const NOTICE_MS = 6000;
// How often the "retrying in N s" countdown is redrawn (under a second, so no
// second is skipped).
const COUNTDOWN_MS = 250;
// How close to the end of the list counts as "reading the newest message".
const AT_BOTTOM_PX = 24;

/**
 * The chat UI inside `root`, which must hold the page's markup (the elements
 * of index.html, found by id under `root`: the session panel, `retry-now` and
 * `retry-in` may be left out). It changes nothing outside `root`.
 *
 * Events it emits (CustomEvents) when the user:
 * - `send` {text}: submits a message (never blank, never over MAX_CHARS as
 *   the server counts: protocol.js serverLength())
 * - `ping`, `sessioninfo`, `newchat`, `language`, `retry`: clicks that button
 */
export class ChatView extends EventTarget {
  #doc;               // creates the elements (the root's own document)
  #ui;                // the elements the view updates
  #lang;
  #welcome;           // the empty conversation's greeting, or null for the default one
  #status = "connecting";
  #retryAt = 0;       // when the next attempt is (Date.now() clock), while retrying
  #countdown = null;  // redraws the countdown while retrying
  #byClientId = new Map(); // client_message_id -> its <li> (messages typed here)
  #streaming = new Map();  // reply message id -> its <li> while it streams
  #pinned = true;     // the newest message is in view: it stays so when the list shrinks

  /**
   * @param {Document | ShadowRoot | Element} root
   * @param {"hu" | "en"} lang the language to start in (setLanguage() applies it)
   * @param {{touch?: boolean, debug?: boolean, welcome?: string | null}} [options]
   *   `touch`: the keyboard is a touch keyboard (no Shift+Enter in the hint);
   *   `debug`: show the session panel (ids, Ping, Session info), for developers;
   *   `welcome`: the greeting of an empty conversation instead of the default
   */
  constructor(root, lang, { touch = false, debug = false, welcome = null } = {}) {
    super();
    this.#doc = root.ownerDocument || root;
    const $ = (id) => root.querySelector("#" + id);
    this.#ui = {
      root: root, status: $("status"), statusText: $("status-text"), messages: $("messages"),
      typing: $("typing"), notices: $("notices"), form: $("composer"), input: $("input"),
      counter: $("counter"), send: $("send"), lang: $("lang"), newChat: $("new-chat"),
      announcer: $("announcer"), retryIn: $("retry-in"), retryNow: $("retry-now"),
      panel: $("session-panel"), ping: $("ping"), sessionInfo: $("session-info"),
      info: {
        session: $("info-session"), user: $("info-user"), connection: $("info-connection"),
        since: $("info-since"), count: $("info-count"),
      },
    };
    this.#lang = lang;
    this.#welcome = welcome;
    if (this.#ui.panel) this.#ui.panel.hidden = !debug;
    if (touch) this.#ui.input.dataset.i18nPlaceholder = "placeholderTouch";
    this.#listen();
    // Notices, the typing indicator, a growing composer or the session panel
    // take room from the list; whoever was reading the newest message still sees it.
    const list = this.#ui.messages;
    list.addEventListener("scroll", () => {
      this.#pinned = list.scrollHeight - list.scrollTop - list.clientHeight <= AT_BOTTOM_PX;
    });
    new ResizeObserver(() => { if (this.#pinned) this.#scrollDown(); }).observe(list);
  }

  /**
   * Our own text for `key` in the view's language (see i18n.js translate()).
   * @param {string} key
   * @param {Object<string, string | number>} [values]
   * @returns {string}
   */
  t(key, values) {
    return translate(this.#lang, key, values);
  }

  /**
   * Shows every label, status and counter in `lang`, messages included.
   * @param {"hu" | "en"} lang
   */
  setLanguage(lang) {
    const ui = this.#ui;
    this.#lang = lang;
    for (const el of ui.root.querySelectorAll("[data-i18n]")) el.textContent = this.t(el.dataset.i18n);
    for (const el of ui.root.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = this.t(el.dataset.i18nPlaceholder);
    }
    for (const el of ui.root.querySelectorAll("[data-i18n-label]")) {
      el.setAttribute("aria-label", this.t(el.dataset.i18nLabel));
    }
    // The toggle shows the other language's name, in that language, and that
    // visible name is its accessible name too (WCAG 2.5.3, label in name).
    ui.lang.textContent = this.t("switchTo");
    ui.lang.lang = this.t("switchToLang");
    for (const el of ui.root.querySelectorAll(".msg .agent")) el.textContent = agentName(lang, el.dataset.agent);
    for (const el of ui.root.querySelectorAll(".msg .state")) el.textContent = this.t(el.dataset.state);
    if (this.#welcome) {
      for (const el of ui.root.querySelectorAll(".empty")) el.textContent = this.#welcome;
    }
    this.setStatus(this.#status, this.#retryAt);
    this.updateCounter();
  }

  /**
   * Shows the connection's state; while retrying, a countdown to the next
   * attempt and "Retry now" (also after a terminal close). The state is a live
   * region; the countdown is not, so a screen reader is not read every second.
   * @param {"connecting" | "connected" | "retrying" | "disconnected"} state
   * @param {number} [until] when retrying: the next attempt's time (Date.now() clock)
   */
  setStatus(state, until) {
    const ui = this.#ui;
    this.#status = state;
    this.#retryAt = until || 0;
    ui.status.dataset.state = state;
    ui.statusText.textContent = this.t(state === "retrying" ? "disconnected" : state);
    clearInterval(this.#countdown);
    this.#countdown = null;
    if (ui.retryNow) ui.retryNow.hidden = state !== "retrying" && state !== "disconnected";
    if (state === "retrying") {
      this.#drawCountdown();
      this.#countdown = setInterval(() => this.#drawCountdown(), COUNTDOWN_MS);
    } else if (ui.retryIn) {
      ui.retryIn.textContent = "";
    }
  }

  /** Fills the session panel from `connection_established` data. @param {object} info */
  showConnection(info) {
    const panel = this.#ui.info;
    if (!panel.session) return;
    panel.session.textContent = info.session_id;
    panel.user.textContent = info.user_id || "–";
    panel.connection.textContent = info.connection_id;
    panel.since.textContent = timeOfDay(this.#lang, info.timestamp);
  }

  /** Updates the session panel from `session_info` data. @param {object} info */
  showSessionInfo(info) {
    if (!this.#ui.info.count) return;
    this.#ui.info.count.textContent = String(info.message_count);
    this.#ui.info.user.textContent = info.user_id || "–";
  }

  /** @param {boolean} on whether "the assistant is typing" shows */
  showTyping(on) {
    this.#ui.typing.hidden = !on;
    if (on) this.#scrollDown();
  }

  /**
   * A short message that goes away by itself.
   * @param {string} text shown as text, so server error messages are safe here
   * @param {"info" | "error"} [kind]
   */
  notice(text, kind) {
    const item = this.#doc.createElement("div");
    item.className = "notice " + (kind || "info");
    item.textContent = text;
    // Notices sit between the conversation and the composer, not over the
    // conversation: the list gets shorter (and keeps its newest message in view).
    this.#ui.notices.appendChild(item);
    setTimeout(() => item.remove(), NOTICE_MS);
  }

  // -- messages -------------------------------------------------------------------

  /**
   * Shows a message the user just wrote here, as pending until confirm().
   * @param {string} cmid its client_message_id: later calls name it by this
   * @param {string} text
   */
  addOwn(cmid, text) {
    const li = this.#bubble("user");
    li.classList.add("pending");
    li.dataset.cmid = cmid;
    li.querySelector(".body").textContent = text;
    this.#byClientId.set(cmid, li);
  }

  /** Our message went out: it shows the time, no state. @param {string} cmid */
  markSending(cmid) {
    const li = this.#byClientId.get(cmid);
    if (li) this.#setMeta(li, null, null, null);
  }

  /** Our message waits for the connection. @param {string} cmid */
  markQueued(cmid) {
    const li = this.#byClientId.get(cmid);
    if (li) this.#setMeta(li, null, null, "queued");
  }

  /** The server refused our message for good. @param {string} cmid */
  markFailed(cmid) {
    const li = this.#byClientId.get(cmid);
    if (!li) return;
    li.classList.add("failed");
    this.#setMeta(li, null, null, "failed");
  }

  /**
   * The server has our message.
   * @param {string} cmid
   * @param {number} [id] its message id, when known
   */
  confirm(cmid, id) {
    const li = this.#byClientId.get(cmid);
    if (!li) return;
    li.classList.remove("pending", "failed");
    if (id) li.dataset.id = String(id);
  }

  /**
   * A stored message (history, or another tab's): fills our own bubble when
   * its client_message_id is one of ours, else the reply streaming under its
   * id, else a new bubble. The caller shows each message id once.
   * @param {{id: number, role: string, content: string, timestamp: string,
   *   agent?: string, client_message_id?: string}} message
   */
  showStored(message) {
    let li = message.client_message_id ? this.#byClientId.get(message.client_message_id) : null;
    if (li) {
      this.confirm(message.client_message_id);
    } else {
      li = this.#streaming.get(message.id) || this.#bubble(message.role);
      this.#streaming.delete(message.id);
    }
    li.querySelector(".body").textContent = message.content;
    this.#setMeta(li, message.timestamp, message.role === "assistant" ? message.agent : null);
    if (message.id) li.dataset.id = String(message.id);
  }

  /**
   * Adds a piece to reply `id`; its first piece opens a streaming bubble,
   * which takes the typing indicator's place.
   * @param {number} id
   * @param {string} delta
   */
  appendChunk(id, delta) {
    let li = this.#streaming.get(id);
    if (!li) {
      li = this.#bubble("assistant");
      li.classList.add("streaming");
      li.setAttribute("aria-busy", "true");
      this.#streaming.set(id, li);
      this.showTyping(false);
    }
    li.querySelector(".body").textContent += delta;
    this.#scrollDown();
  }

  /**
   * A whole reply that just arrived: completes its streaming bubble, or shows
   * a new one, and is announced to screen readers once, whole.
   * @param {{id: number, content: string, timestamp: string, agent?: string}} reply
   */
  showReply(reply) {
    const li = this.#streaming.get(reply.id) || this.#bubble("assistant");
    this.#streaming.delete(reply.id);
    li.classList.remove("streaming");
    li.removeAttribute("aria-busy");
    li.querySelector(".body").textContent = reply.content;
    this.#setMeta(li, reply.timestamp, reply.agent);
    if (reply.id) li.dataset.id = String(reply.id);
    if (this.#ui.announcer) this.#ui.announcer.textContent = this.t("assistantSaid") + " " + reply.content;
  }

  /** Shows the welcome hint if no message is shown, and removes it otherwise. */
  showWelcomeIfEmpty() {
    this.#emptyState(!this.#ui.messages.querySelector(".msg"));
  }

  /** Removes every message (a new conversation starts). */
  clear() {
    this.#byClientId.clear();
    this.#streaming.clear();
    this.#ui.messages.textContent = "";
    this.showTyping(false);
  }

  // -- the composer ---------------------------------------------------------------

  /** Shows the length near the limit and allows sending only what may be sent. */
  updateCounter() {
    const ui = this.#ui;
    const n = serverLength(ui.input.value);
    ui.counter.textContent = n >= COUNTER_FROM ? n + " / " + MAX_CHARS : "";
    ui.counter.classList.toggle("over", n > MAX_CHARS);
    ui.send.disabled = !ui.input.value.trim() || n > MAX_CHARS;
  }

  /**
   * Puts texts the user wrote but never got sent back into the composer,
   * before whatever is being typed there now.
   * @param {string[]} texts
   */
  restoreDraft(texts) {
    const input = this.#ui.input;
    input.value = [...texts, input.value].filter((text) => text.trim()).join("\n\n");
    this.updateCounter();
  }

  /** Empties the composer (its text was sent). */
  clearInput() {
    this.#ui.input.value = "";
    this.updateCounter();
  }

  /** Puts the cursor in the composer. */
  focus() {
    this.#ui.input.focus();
  }

  // -- inside ---------------------------------------------------------------------

  #listen() {
    const ui = this.#ui;
    const emit = (type, detail) => this.dispatchEvent(new CustomEvent(type, { detail: detail }));
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#submit(emit);
    });
    ui.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#submit(emit);
      }
    });
    ui.input.addEventListener("input", () => this.updateCounter());
    const click = (button, type) => { if (button) button.addEventListener("click", () => emit(type, {})); };
    click(ui.ping, "ping");
    click(ui.sessionInfo, "sessioninfo");
    click(ui.newChat, "newchat");
    click(ui.lang, "language");
    click(ui.retryNow, "retry");
  }

  #submit(emit) {
    const text = this.#ui.input.value;
    if (!text.trim()) return;
    const n = serverLength(text);
    if (n > MAX_CHARS) {
      this.notice(this.t("tooLong", { n: n, max: MAX_CHARS }), "error");
      return;
    }
    emit("send", { text: text });
  }

  #drawCountdown() {
    const seconds = Math.max(0, Math.ceil((this.#retryAt - Date.now()) / 1000));
    if (this.#ui.retryIn) this.#ui.retryIn.textContent = this.t("retryIn", { s: seconds });
  }

  #scrollDown() {
    this.#ui.messages.scrollTop = this.#ui.messages.scrollHeight;
  }

  // The hint an empty conversation shows (removed by the first message).
  #emptyState(on) {
    const hint = this.#ui.messages.querySelector(".empty");
    if (on && !hint) {
      const li = this.#doc.createElement("li");
      li.className = "empty";
      if (this.#welcome) {
        li.textContent = this.#welcome;
      } else {
        li.dataset.i18n = "welcome";
        li.textContent = this.t("welcome");
      }
      this.#ui.messages.appendChild(li);
    } else if (!on && hint) {
      hint.remove();
    }
  }

  #bubble(role) {
    this.#emptyState(false);
    const li = this.#doc.createElement("li");
    li.className = "msg " + role;
    // Who speaks, for screen readers (the bubble's side and colour say it to the eye).
    const speaker = this.#doc.createElement("span");
    speaker.className = "speaker visually-hidden";
    speaker.dataset.i18n = role === "user" ? "youSaid" : "assistantSaid";
    speaker.textContent = this.t(speaker.dataset.i18n);
    const body = this.#doc.createElement("p");
    body.className = "body";
    const meta = this.#doc.createElement("span");
    meta.className = "meta";
    li.append(speaker, body, meta);
    this.#ui.messages.appendChild(li);
    this.#scrollDown();
    return li;
  }

  // The line under a bubble: its time, the agent that wrote it, its state.
  #setMeta(li, iso, agent, state) {
    const meta = li.querySelector(".meta");
    meta.textContent = "";
    const time = this.#doc.createElement("time");
    time.textContent = timeOfDay(this.#lang, iso);
    if (iso) time.dateTime = iso;
    meta.appendChild(time);
    if (agent) {
      const label = this.#doc.createElement("span");
      label.className = "agent";
      label.dataset.agent = agent;
      label.textContent = agentName(this.#lang, agent);
      meta.append(" · ", label);
    }
    if (state) {
      const mark = this.#doc.createElement("span");
      mark.className = "state";
      mark.dataset.state = state;
      mark.textContent = this.t(state);
      meta.append(" · ", mark);
    }
  }
}
