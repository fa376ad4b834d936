// ChatBuddy's minimal browser client. Everything users type is rendered with
// textContent, never as HTML.
"use strict";
(function () {
  const STORE = "chatbuddy.session";
  const messages = document.getElementById("messages");
  const statusEl = document.getElementById("status");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const streaming = new Map(); // message_id -> element being streamed into

  function loadSession() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "null");
      if (saved && saved.id && saved.token) return saved;
    } catch (e) { /* start fresh */ }
    const id = "web-" + crypto.getRandomValues(new Uint32Array(2)).join("-");
    return { id: id, token: null };
  }

  let session = loadSession();
  let socket = null;

  function setStatus(text, connected) {
    statusEl.textContent = text;
    statusEl.classList.toggle("connected", connected);
  }

  function bubble(role, text, meta) {
    const li = document.createElement("li");
    li.className = "msg " + role;
    li.textContent = text;
    if (meta) {
      const span = document.createElement("span");
      span.className = "meta";
      span.textContent = meta;
      li.appendChild(span);
    }
    messages.appendChild(li);
    messages.scrollTop = messages.scrollHeight;
    return li;
  }

  function show(stored) {
    if (stored.role === "assistant") bubble("assistant", stored.content, stored.agent || "");
    else bubble("user", stored.content);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + "/ws/chat/" + encodeURIComponent(session.id);
    if (session.token) url += "?session_token=" + encodeURIComponent(session.token);
    setStatus("connecting…", false);
    socket = new WebSocket(url);
    socket.onmessage = function (event) { handle(JSON.parse(event.data)); };
    socket.onclose = function () {
      setStatus("disconnected", false);
      setTimeout(function () {
        if (!session.token) session = loadSession();
        connect();
      }, 2000);
    };
  }

  function handle(frame) {
    const data = frame.data || {};
    switch (frame.type) {
      case "connection_established":
        session.token = data.session_token;
        localStorage.setItem(STORE, JSON.stringify(session));
        setStatus("connected", true);
        messages.textContent = "";
        socket.send(JSON.stringify({ type: "history" }));
        break;
      case "history":
        data.messages.forEach(show);
        break;
      case "user_message":
        show(data);
        break;
      case "chat_response_chunk": {
        let el = streaming.get(data.message_id);
        if (!el) { el = bubble("assistant", ""); streaming.set(data.message_id, el); }
        el.textContent += data.delta;
        break;
      }
      case "chat_response": {
        const el = streaming.get(data.message_id) || bubble("assistant", "");
        streaming.delete(data.message_id);
        el.textContent = data.content;
        const span = document.createElement("span");
        span.className = "meta";
        span.textContent = (data.metadata && data.metadata.agent) || data.agent_type;
        el.appendChild(span);
        break;
      }
      case "error":
        bubble("error", data.error_message);
        break;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "chat_message", content: text, session_id: session.id }));
    bubble("user", text);
    input.value = "";
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  connect();
})();
