// ChatBuddy's browser client (protocol: docs/protocol.md).
//
// Everything users or the assistant wrote is rendered with textContent, never
// as HTML. The session id and token live in localStorage, so a reload
// continues the conversation. When the connection drops, the page reconnects
// by itself (exponential backoff with jitter, 0.5 s up to 20 s), fetches what
// it missed with `history`, and sends what was typed offline, each message
// with a client_message_id so that nothing is lost or shown twice.
"use strict";
(function () {
  const MAX_CHARS = 4000;
  const COUNTER_FROM = 3500;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 20000;
  const NOTICE_MS = 6000;
  const SESSION_KEY = "chatbuddy.session";
  const LANG_KEY = "chatbuddy.lang";
  const I18N = window.CHATBUDDY_I18N;

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), statusText: $("status-text"), messages: $("messages"),
    typing: $("typing"), notices: $("notices"), form: $("composer"), input: $("input"),
    counter: $("counter"), send: $("send"), lang: $("lang"), newChat: $("new-chat"),
    ping: $("ping"), sessionInfo: $("session-info"),
    info: {
      session: $("info-session"), user: $("info-user"), connection: $("info-connection"),
      since: $("info-since"), count: $("info-count"),
    },
  };

  // -- state ------------------------------------------------------------------

  let lang = pickLanguage();
  let session = loadSession();      // {id, token}
  let socket = null;
  let attempt = 0;                  // reconnect attempts since the last success
  let retryTimer = null;
  let statusState = "connecting";
  let statusSeconds = 0;
  let lastId = 0;                   // highest message id shown
  let sentCounter = 0;
  const shown = new Map();          // message id -> its <li>
  const byClientId = new Map();     // client_message_id -> its <li> (ours)
  const streaming = new Map();      // reply message id -> its <li> while streaming
  const outbox = [];                // [{cmid, text}] not yet sent (offline)
  const inflight = [];              // [{cmid, text}] sent, not yet confirmed
  let pingSentAt = 0;

  function t(key, values) {
    let text = I18N[lang][key] || I18N.en[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", value);
    return text;
  }

  function pickLanguage() {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "hu" || saved === "en") return saved;
    return (navigator.language || "en").toLowerCase().startsWith("hu") ? "hu" : "en";
  }

  function newSessionId() {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function loadSession() {
    try {
      const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
      if (saved && typeof saved.id === "string" && /^[A-Za-z0-9_.:-]{1,128}$/.test(saved.id)) {
        return { id: saved.id, token: typeof saved.token === "string" ? saved.token : null };
      }
    } catch (e) { /* a broken entry: start afresh */ }
    return { id: newSessionId(), token: null };
  }

  function saveSession() {
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  }

  // -- rendering ------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
    ui.lang.textContent = t("languageShort");
    ui.lang.setAttribute("aria-label", t("language"));
    ui.lang.title = t("language");
    for (const el of document.querySelectorAll(".msg .agent")) el.textContent = agentLabel(el.dataset.agent);
    for (const el of document.querySelectorAll(".msg .state")) el.textContent = t(el.dataset.state);
    setStatus(statusState, statusSeconds);
    updateCounter();
  }

  function agentLabel(agent) {
    return (I18N[lang].agents || {})[agent] || agent || t("assistant");
  }

  function clock(iso) {
    const date = iso ? new Date(iso) : new Date();
    return date.toLocaleTimeString(lang === "hu" ? "hu-HU" : "en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  function setStatus(state, seconds) {
    statusState = state;
    statusSeconds = seconds || 0;
    ui.status.dataset.state = state;
    ui.statusText.textContent = state === "retrying" ? t("reconnectIn", { s: statusSeconds }) : t(state);
  }

  function scrollDown() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  // The hint an empty conversation shows (removed by the first message).
  function emptyState(on) {
    const hint = ui.messages.querySelector(".empty");
    if (on && !hint) {
      const li = document.createElement("li");
      li.className = "empty";
      li.dataset.i18n = "welcome";
      li.textContent = t("welcome");
      ui.messages.appendChild(li);
    } else if (!on && hint) {
      hint.remove();
    }
  }

  function bubble(role) {
    emptyState(false);
    const li = document.createElement("li");
    li.className = "msg " + role;
    const body = document.createElement("p");
    body.className = "body";
    const meta = document.createElement("span");
    meta.className = "meta";
    li.append(body, meta);
    ui.messages.appendChild(li);
    scrollDown();
    return li;
  }

  function setMeta(li, iso, agent, state) {
    const meta = li.querySelector(".meta");
    meta.textContent = "";
    const time = document.createElement("time");
    time.textContent = clock(iso);
    if (iso) time.dateTime = iso;
    meta.appendChild(time);
    if (agent) {
      const label = document.createElement("span");
      label.className = "agent";
      label.dataset.agent = agent;
      label.textContent = agentLabel(agent);
      meta.append(" · ", label);
    }
    if (state) {
      const mark = document.createElement("span");
      mark.className = "state";
      mark.dataset.state = state;
      mark.textContent = t(state);
      meta.append(" · ", mark);
    }
  }

  function remember(li, id) {
    if (!id) return;
    li.dataset.id = String(id);
    shown.set(id, li);
    if (id > lastId) lastId = id;
  }

  // A stored message (from history or another tab): shown once, whatever the route.
  function showStored(message) {
    if (shown.has(message.id)) return;
    let li = message.client_message_id ? byClientId.get(message.client_message_id) : null;
    if (li) {
      confirmSent(message.client_message_id);
    } else {
      li = streaming.get(message.id) || bubble(message.role);
      streaming.delete(message.id);
    }
    li.querySelector(".body").textContent = message.content;
    setMeta(li, message.timestamp, message.role === "assistant" ? message.agent : null);
    remember(li, message.id);
  }

  function notice(text, kind) {
    const item = document.createElement("div");
    item.className = "notice " + (kind || "info");
    item.textContent = text;
    ui.notices.appendChild(item);
    setTimeout(() => item.remove(), NOTICE_MS);
  }

  function showTyping(on) {
    ui.typing.hidden = !on;
    if (on) scrollDown();
  }

  // -- sending --------------------------------------------------------------------

  function transmit(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function sendChat(item) {
    const sent = transmit({
      type: "chat_message", content: item.text, session_id: session.id,
      client_message_id: item.cmid, timestamp: new Date().toISOString(),
    });
    if (sent) {
      inflight.push(item);
      showTyping(true);
    }
    return sent;
  }

  function flushOutbox() {
    while (outbox.length && sendChat(outbox[0])) outbox.shift();
    for (const item of inflight) {
      const li = byClientId.get(item.cmid);
      if (li) setMeta(li, null, null, null);
    }
  }

  function confirmSent(cmid) {
    const index = inflight.findIndex((item) => item.cmid === cmid);
    if (index >= 0) inflight.splice(index, 1);
    const li = byClientId.get(cmid);
    if (li) li.classList.remove("pending", "failed");
  }

  function submit() {
    const text = ui.input.value;
    if (!text.trim()) return;
    if (text.length > MAX_CHARS) {
      notice(t("tooLong", { n: text.length, max: MAX_CHARS }), "error");
      return;
    }
    sentCounter += 1;
    const item = { cmid: "web-" + Date.now().toString(36) + "-" + sentCounter, text: text };
    const li = bubble("user");
    li.classList.add("pending");
    li.dataset.cmid = item.cmid;
    li.querySelector(".body").textContent = text;
    byClientId.set(item.cmid, li);
    ui.input.value = "";
    updateCounter();
    if (!sendChat(item)) {
      outbox.push(item);
      setMeta(li, null, null, "queued");
      notice(t("queuedNotice"));
    } else {
      setMeta(li, null, null, null);
    }
  }

  // -- receiving ------------------------------------------------------------------

  const handlers = {
    connection_established(data) {
      attempt = 0;
      const wasResuming = Boolean(session.token) && shown.size > 0;
      session.token = data.session_token;
      saveSession();
      setStatus("connected");
      ui.info.session.textContent = data.session_id;
      ui.info.user.textContent = data.user_id || "–";
      ui.info.connection.textContent = data.connection_id;
      ui.info.since.textContent = clock(data.timestamp);
      if (!data.resumed && wasResuming) {
        // The server no longer knows this session (it expired, or lost it).
        shown.clear();
        lastId = 0;
        notice(t("lostSession"));
      }
      transmit(lastId ? { type: "history", after: lastId } : { type: "history" });
      transmit({ type: "session_info" });
      // Messages that were in flight when the connection dropped go again,
      // before anything typed offline; the server drops the ones it stored.
      outbox.unshift(...inflight.splice(0));
      flushOutbox();
      if (!inflight.length) showTyping(false);
    },
    history(data) {
      data.messages.forEach(showStored);
      if (data.has_more && data.messages.length) {
        transmit({ type: "history", after: data.messages[data.messages.length - 1].id });
      }
      emptyState(!ui.messages.querySelector(".msg"));
    },
    user_message(data) {
      showStored(data);
      showTyping(true);
    },
    chat_response_chunk(data) {
      if (shown.has(data.message_id)) return; // already complete (seen via history)
      let li = streaming.get(data.message_id);
      if (!li) {
        li = bubble("assistant");
        li.classList.add("streaming");
        streaming.set(data.message_id, li);
        showTyping(false);
      }
      li.querySelector(".body").textContent += data.delta;
      scrollDown();
    },
    chat_response(data) {
      // Our own message is confirmed by its reply: the oldest one in flight.
      if (!shown.has(data.in_reply_to) && inflight.length) {
        const mine = inflight[0];
        confirmSent(mine.cmid);
        const li = byClientId.get(mine.cmid);
        if (li) remember(li, data.in_reply_to);
      }
      if (!shown.has(data.message_id)) {
        const li = streaming.get(data.message_id) || bubble("assistant");
        streaming.delete(data.message_id);
        li.classList.remove("streaming");
        li.querySelector(".body").textContent = data.content;
        setMeta(li, data.timestamp, (data.metadata && data.metadata.agent) || data.agent_type);
        remember(li, data.message_id);
      }
      showTyping(inflight.length > 0);
      transmit({ type: "session_info" });
    },
    session_info(data) {
      ui.info.count.textContent = String(data.message_count);
      ui.info.user.textContent = data.user_id || "–";
    },
    pong() {
      notice(t("pong", { ms: Math.round(performance.now() - pingSentAt) }));
    },
    error(data) {
      if (data.request_type === "chat_message") chatError(data);
      else notice(data.error_message, "error");
    },
  };

  function chatError(data) {
    const retryable = data.error_type === "storage_unavailable" || data.error_type === "rate_limited";
    if (data.error_type === "duplicate_message" && inflight.length) {
      // Stored before; its reply will come (or is in history).
      const mine = inflight[0];
      confirmSent(mine.cmid);
      const li = byClientId.get(mine.cmid);
      if (li && data.in_reply_to) remember(li, data.in_reply_to);
      return;
    }
    if (data.in_reply_to) {
      // A stored message the assistant could not answer.
      showTyping(inflight.length > 0);
      notice(data.error_message, "error");
      return;
    }
    const mine = inflight.shift();
    showTyping(inflight.length > 0);
    if (!mine) {
      notice(data.error_message, "error");
      return;
    }
    const li = byClientId.get(mine.cmid);
    if (retryable) {
      outbox.unshift(mine);
      if (li) setMeta(li, null, null, "queued");
      setTimeout(flushOutbox, 2000);
    } else {
      if (li) {
        li.classList.add("failed");
        setMeta(li, null, null, "failed");
      }
      notice(data.error_message, "error");
    }
  }

  // -- the connection -------------------------------------------------------------

  function connect() {
    clearTimeout(retryTimer);
    setStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + "/ws/chat/" + encodeURIComponent(session.id);
    if (session.token) url += "?session_token=" + encodeURIComponent(session.token);
    const ws = new WebSocket(url);
    let opened = false;
    socket = ws;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      const handle = handlers[frame.type];
      if (handle) handle(frame.data || {});
    };
    ws.onclose = () => {
      if (socket !== ws) return; // replaced on purpose (new conversation)
      socket = null;
      if (!opened) refusedOrDown();
      else scheduleReconnect();
    };
  }

  // The handshake failed: the server is down, or it refused this session.
  function refusedOrDown() {
    fetch("/healthz", { cache: "no-store" })
      .then((response) => {
        if (response.ok && session.token) {
          // The server is up and refused us: the session is not ours any more.
          startNewSession(true);
        } else {
          scheduleReconnect();
        }
      })
      .catch(scheduleReconnect);
  }

  function scheduleReconnect() {
    inflight.splice(0).reverse().forEach((item) => outbox.unshift(item));
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    attempt += 1;
    setStatus("retrying", Math.max(1, Math.round(delay / 1000)));
    retryTimer = setTimeout(connect, delay);
  }

  function startNewSession(announce) {
    session = { id: newSessionId(), token: null };
    saveSession();
    shown.clear();
    byClientId.clear();
    streaming.clear();
    inflight.length = 0;
    outbox.length = 0;
    lastId = 0;
    ui.messages.textContent = "";
    showTyping(false);
    if (announce) notice(t("newSession"));
    const old = socket;
    socket = null;
    if (old) old.close();
    attempt = 0;
    connect();
  }

  // -- controls -------------------------------------------------------------------

  function updateCounter() {
    const n = ui.input.value.length;
    ui.counter.textContent = n >= COUNTER_FROM ? n + " / " + MAX_CHARS : "";
    ui.counter.classList.toggle("over", n > MAX_CHARS);
    ui.send.disabled = !ui.input.value.trim() || n > MAX_CHARS;
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  ui.input.addEventListener("input", updateCounter);
  ui.ping.addEventListener("click", () => {
    pingSentAt = performance.now();
    transmit({ type: "ping", timestamp: new Date().toISOString() });
  });
  ui.sessionInfo.addEventListener("click", () => transmit({ type: "session_info" }));
  ui.newChat.addEventListener("click", () => startNewSession(false));
  ui.lang.addEventListener("click", () => {
    lang = lang === "hu" ? "en" : "hu";
    localStorage.setItem(LANG_KEY, lang);
    applyLanguage();
  });
  window.addEventListener("online", () => {
    if (!socket) connect();
  });

  applyLanguage();
  connect();
  ui.input.focus();
})();
