// The widget's frame: the entry module of widget.html, which a shop's page
// opens through widget.js (the loader; docs/widget.md). It wires the same
// parts as chat.js to this frame's own document and storage, adds the launcher
// button, and speaks with the loader by postMessage.
//
// Trust between the shop's page and this frame is only what the browser
// proves: the server lets only the allowed shops frame this page
// (frame-ancestors); the loader names its origin in the URL's fragment; this
// frame posts only to that origin (the browser drops a message to a parent of
// any other origin), and takes messages only from its parent window at that
// origin.
//
// Where the session lives: in this frame's own storage, which browsers
// partition by the shop's site and which the shop's scripts cannot read. Some
// browsers and settings refuse a frame of another site any storage (third-party
// storage blocked, or partitioning off); there the loader keeps this frame's items
// in the shop's storage instead, so the chat still continues across the
// shop's pages (docs/widget.md says what that exposes).
import { bindChat } from "./binding.js";
import { ChatConnection } from "./connection.js";
import { otherLanguage, pickLanguage, saveLanguage, translate } from "./i18n.js";
import { bindPeople } from "./people.js";
import { isValidId } from "./protocol.js";
import { memoryStorage, sessionStore, usableStorage } from "./storage.js";
import { attachStop } from "./stop.js";
import { ChatView } from "./view.js";

const GREETING_MAX = 300;
// How long the shop's identify() hook may take before the chat goes on anonymously.
const IDENTITY_WAIT_MS = 10000;
const ORIGIN_RE = /^https?:\/\/[^/?#\s]+$/;

const params = new URLSearchParams(location.hash.slice(1));
// The embedding page's origin, as the loader says (see above for why that is enough).
const shop = ORIGIN_RE.test(params.get("origin") || "") ? params.get("origin") : null;
const embedded = shop !== null && window.parent !== window;
const root = document.documentElement;
const $ = (id) => document.getElementById(id);
const ui = { window: $("window"), launcher: $("launcher"), launcherLabel: $("launcher-label"), close: $("close") };
// Keys carry the shop's origin: two shops of one site keep two conversations.
const SESSION_KEY = "chatbuddy.widget.session:" + shop;
const OPEN_KEY = "chatbuddy.widget.open:" + shop;

/** Tells the loader something; only the shop's origin can receive it. */
function tell(type, fields) {
  if (embedded) window.parent.postMessage({ chatbuddy: 1, type: type, ...fields }, shop);
}

/** Calls `handle(message)` for each message of the loader (and of nobody else). */
function listen(handle) {
  window.addEventListener("message", (event) => {
    if (!embedded || event.source !== window.parent || event.origin !== shop) return;
    if (event.data && event.data.chatbuddy === 1) handle(event.data);
  });
}

// Answers of the loader to "identity" questions, by question number.
const identityAnswers = new Map();
let identityQuestions = 0;

/**
 * A signed-in customer's token, from the shop's identify() hook through the
 * loader (asked anew for each connection); null when the shop gives none.
 * @returns {Promise<string | null>}
 */
function askIdentity() {
  if (!embedded) return Promise.resolve(null);
  const id = ++identityQuestions;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      console.warn("ChatBuddy: identify() gave no token within 10 s; chatting anonymously");
      answer(null);
    }, IDENTITY_WAIT_MS);
    function answer(token) {
      clearTimeout(timer);
      identityAnswers.delete(id);
      resolve(token);
    }
    identityAnswers.set(id, answer);
    tell("identity", { id: id });
  });
}

listen((message) => {
  if (message.type !== "identity") return;
  const answer = identityAnswers.get(message.id);
  if (answer) answer(typeof message.token === "string" ? message.token : null);
});

// Storage the loader keeps in the shop's page: filled from what it sends, and
// every change sent back to it.
function loaderStorage(area, items) {
  const storage = memoryStorage((key, value) => tell("store", { area: area, key: key, value: value }));
  for (const [key, value] of Object.entries(items || {})) storage.setItem(key, String(value));
  return storage;
}

const local = usableStorage(() => localStorage);
const tab = usableStorage(() => sessionStorage);
if ((local && tab) || !embedded) {
  main(local || memoryStorage(), tab || memoryStorage());
} else {
  let started = false;
  listen((message) => {
    if (message.type !== "storage" || started) return;
    started = true;
    main(local || loaderStorage("local", message.local), tab || loaderStorage("session", message.session));
  });
  tell("storage", {}); // asks the loader for the items it kept
}

/**
 * The widget, once it knows where its items are.
 * @param {Storage} storage kept across the shop's pages and visits
 * @param {Storage} tabStorage kept across the shop's pages in this tab
 */
function main(storage, tabStorage) {
  let lang = pickLanguage(storage, params.get("lang") || navigator.language);
  const greeting = (params.get("greeting") || "").trim().slice(0, GREETING_MAX) || null;
  const view = new ChatView(document, lang, {
    touch: matchMedia("(pointer: coarse)").matches, welcome: greeting,
  });
  const userId = params.get("user");
  if (userId && !isValidId(userId)) console.warn("ChatBuddy: data-user-id is not a valid id; it is ignored");
  const connection = new ChatConnection({
    base: location.origin,
    store: sessionStore(storage, SESSION_KEY),
    userId: userId && isValidId(userId) ? userId : null,
    identity: askIdentity,
  });
  const chat = bindChat(connection, view, (name, detail) => tell("event", { name: name, detail: detail }));
  const stop = attachStop(connection, document, lang);
  bindPeople(connection, view, document);
  let started = false; // the socket opens when the chat is first opened, not on every page view

  function setOpen(open, { focus = true } = {}) {
    if ((root.dataset.open === "true") === open) return;
    root.dataset.open = String(open);
    ui.window.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", String(open));
    ui.launcherLabel.dataset.i18n = open ? "closeChat" : "openChat";
    ui.launcherLabel.textContent = translate(lang, ui.launcherLabel.dataset.i18n);
    tabStorage.setItem(OPEN_KEY, open ? "1" : "");
    tell("state", { open: open });
    tell("event", { name: open ? "open" : "close", detail: {} });
    if (open && !started) {
      started = true;
      connection.start();
    }
    if (focus) {
      if (open) view.focus();
      else ui.launcher.focus();
    }
  }

  function applyLanguage() {
    root.lang = lang;
    document.title = translate(lang, "title");
    view.setLanguage(lang);
    stop.setLanguage(lang);
  }

  view.addEventListener("language", () => {
    lang = otherLanguage(lang);
    saveLanguage(storage, lang);
    applyLanguage();
  });
  ui.launcher.addEventListener("click", () => setOpen(root.dataset.open !== "true"));
  ui.close.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.dataset.open === "true") setOpen(false);
  });
  window.addEventListener("online", () => connection.reconnectNow());

  // Commands from the shop's page (the ChatBuddy object of widget.js).
  listen((command) => {
    switch (command.type) {
      case "open": setOpen(true); break;
      case "close": setOpen(false); break;
      case "send":
        setOpen(true, { focus: false });
        if (!chat.send(command.text)) {
          tell("event", { name: "error", detail: { message: "ChatBuddy.send(): the text is empty or too long" } });
        }
        break;
      case "layout": root.dataset.layout = command.compact ? "compact" : "float"; break;
    }
  });

  root.dataset.position = params.get("position") === "left" ? "left" : "right";
  root.dataset.layout = params.get("layout") === "compact" ? "compact" : "float";
  applyAccent(params.get("accent"));
  applyLanguage();
  if (tabStorage.getItem(OPEN_KEY) === "1") setOpen(true, { focus: false }); // as on the last page
  tell("ready", {});
}

// The shop's accent colour, with whichever text colour reads better on it.
function applyAccent(colour) {
  if (!colour || !CSS.supports("color", colour)) return;
  root.style.setProperty("--accent", colour);
  const channels = getComputedStyle(ui.launcher).backgroundColor.match(/[\d.]+/g);
  if (!channels || channels.length < 3) return;
  const accent = luminance(channels.slice(0, 3).map(Number));
  const onWhite = 1.05 / (accent + 0.05);
  const onDark = (accent + 0.05) / (luminance([17, 24, 39]) + 0.05); // --text
  root.style.setProperty("--accent-text", onWhite >= onDark ? "#ffffff" : "#111827");
}

// WCAG's relative luminance of an sRGB colour.
function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
