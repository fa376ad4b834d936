/*
 * ChatBuddy's widget loader. A shop adds, on any page:
 *
 *   <script src="https://CHAT_HOST/widget.js" defer></script>
 *
 * with optional data-lang="hu|en", data-position="right|left",
 * data-accent="#0a7d55", data-greeting="…", data-user-id="…".
 * It asks CHAT_HOST whether this page's origin is allowed, then adds the chat
 * as a frame of CHAT_HOST (launcher button and window live in the frame), and
 * defines one global, `ChatBuddy`: open(), close(), send(text), on(event, fn),
 * identify(fn) (a signed-in customer's token, asked for before each connection).
 * docs/widget.md: the attributes, the API and its events, the CSP a shop adds,
 * and why a frame.
 *
 * A classic script (not a module) so that one plain tag works everywhere; it
 * runs in the shop's page, so it keeps to itself: no other global, no inline
 * styles or markup (style properties are set through the CSSOM, which a shop's
 * CSP allows), nothing the shop's scripts could read but what `on` gives.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (window.ChatBuddy) {
    console.warn("ChatBuddy: widget.js is included more than once; only the first one runs.");
    return;
  }
  if (!script || !script.src) {
    console.error("ChatBuddy: load widget.js with a <script src> tag, not as a module.");
    return;
  }

  var host = new URL(script.src, location.href).origin;
  var options = script.dataset;
  var compact = window.matchMedia("(max-width: 520px)");
  var listeners = new Map(); // event name -> Set of functions
  var queued = [];           // commands given before the frame is ready
  var frame = null;
  var ready = false;
  var open = false;
  var identity = null;       // the shop's token hook (identify), or null: anonymous

  function emit(name, detail) {
    (listeners.get(name) || new Set()).forEach(function (fn) {
      try {
        fn(detail);
      } catch (error) {
        console.error(error);
      }
    });
  }

  function command(message) {
    message.chatbuddy = 1;
    if (ready) frame.contentWindow.postMessage(message, host);
    else queued.push(message);
  }

  window.ChatBuddy = Object.freeze({
    /** Opens the chat window. */
    open: function () { command({ type: "open" }); },
    /** Closes the chat window (the conversation stays). */
    close: function () { command({ type: "close" }); },
    /** Opens the window and sends `text` as if the customer typed it. */
    send: function (text) { command({ type: "send", text: String(text) }); },
    /**
     * Calls `fn(detail)` on each `event`: "ready", "open", "close",
     * "message" {role, text}, "status" {state}, "error" {message}.
     * Returns a function that stops it.
     */
    on: function (event, fn) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(fn);
      return function () { listeners.get(event).delete(fn); };
    },
    /** `fn()` gives a signed-in customer's fresh token (or a Promise of it), else null. */
    identify: function (fn) {
      identity = typeof fn === "function" ? fn : null;
    },
  });

  // The frame asks before each connection: it gets a token or null, never an error.
  function answerIdentity(id) {
    function reply(token) {
      frame.contentWindow.postMessage(
        { chatbuddy: 1, type: "identity", id: id, token: typeof token === "string" ? token : null },
        host);
    }
    var asked = new Promise(function (resolve) { resolve(identity && identity()); });
    asked.then(reply, function (error) {
      console.error("ChatBuddy: identify() failed; chatting anonymously:", error);
      reply(null);
    });
  }

  function fail(message) {
    console.error("ChatBuddy: " + message);
    emit("error", { message: message });
  }

  // Only for browsers that refuse the frame storage of its own (docs/widget.md):
  // the frame's items (its session id and token among them), in this page's
  // storage, under keys of the frame's own prefix.
  var PREFIX = "chatbuddy.";

  function localStore() {
    try { return window.localStorage; } catch (error) { return null; }
  }

  function tabStore() {
    try { return window.sessionStorage; } catch (error) { return null; }
  }

  function kept(storage) {
    var items = {};
    if (!storage) return items;
    for (var i = 0; i < storage.length; i += 1) {
      var key = storage.key(i);
      if (key && key.indexOf(PREFIX) === 0) items[key] = storage.getItem(key);
    }
    return items;
  }

  function keep(storage, key, value) {
    if (!storage || typeof key !== "string" || key.indexOf(PREFIX) !== 0) return;
    try {
      storage.setItem(key, String(value));
    } catch (error) { /* full or refused: the chat lasts as long as the page */ }
  }

  function size() {
    var style = frame.style;
    if (open && compact.matches) {
      style.width = "100%";
      style.height = "100%";
    } else if (open) {
      style.width = "400px";
      style.height = "min(720px, 100%)";
    } else {
      style.width = "88px";
      style.height = "88px";
    }
  }

  function mount(framePath) {
    var params = new URLSearchParams();
    params.set("origin", location.origin);
    params.set("layout", compact.matches ? "compact" : "float");
    params.set("position", options.position === "left" ? "left" : "right");
    var lang = options.lang || document.documentElement.lang;
    if (lang) params.set("lang", lang);
    if (options.accent) params.set("accent", options.accent);
    if (options.greeting) params.set("greeting", options.greeting);
    if (options.userId) params.set("user", options.userId);

    frame = document.createElement("iframe");
    // The fragment never reaches a server or a log.
    frame.src = host + framePath + "#" + params.toString();
    frame.title = "ChatBuddy";
    var style = frame.style;
    style.position = "fixed";
    style.bottom = "0";
    style[options.position === "left" ? "left" : "right"] = "0";
    style.border = "0";
    style.margin = "0";
    style.maxWidth = "100%";
    style.maxHeight = "100%";
    style.zIndex = "2147483000";
    style.background = "transparent";
    style.colorScheme = "light"; // as the frame's: else the browser paints it opaque
    size();
    document.body.appendChild(frame);

    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow || event.origin !== host) return;
      var message = event.data;
      if (!message || message.chatbuddy !== 1) return;
      if (message.type === "storage") {
        frame.contentWindow.postMessage(
          { chatbuddy: 1, type: "storage", local: kept(localStore()), session: kept(tabStore()) }, host);
      } else if (message.type === "store") {
        keep(message.area === "session" ? tabStore() : localStore(), message.key, message.value);
      } else if (message.type === "identity") {
        answerIdentity(message.id);
      } else if (message.type === "ready") {
        ready = true;
        queued.splice(0).forEach(command);
        emit("ready", {});
      } else if (message.type === "state") {
        open = Boolean(message.open);
        size();
      } else if (message.type === "event" && typeof message.name === "string") {
        emit(message.name, message.detail || {});
      }
    });
    compact.addEventListener("change", function () {
      size();
      command({ type: "layout", compact: compact.matches });
    });
  }

  function start() {
    fetch(host + "/widget/config", { credentials: "omit" })
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.ok && body.frame) mount(body.frame);
          else fail((body.error && body.error.message) || "the chat server refused this page");
        });
      })
      .catch(function () {
        fail("cannot reach " + host + "/widget/config: is the server up, and does this page's " +
          "Content-Security-Policy allow connect-src " + host + "? (docs/widget.md)");
      });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
