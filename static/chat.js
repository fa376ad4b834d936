// ChatBuddy's browser page (protocol: docs/protocol.md): the entry module that
// wires the parts below to this page's document, location and localStorage.
// Only this module touches the page's globals (document, location,
// localStorage, navigator); an embedded widget wires the same parts to its own
// root, server and storage.
//
//   connection.js  the WebSocket: reconnect, resume with history, offline outbox
//   protocol.js    the frames sent and read, and the limits (no DOM)
//   view.js        the DOM (it renders with textContent, never as HTML)
//   i18n.js        Hungarian and English text, and the language choice
//   storage.js     the session id and token, kept across reloads
import { ChatConnection } from "./connection.js";
import { otherLanguage, pickLanguage, saveLanguage, translate } from "./i18n.js";
import { sessionStore } from "./storage.js";
import { ChatView } from "./view.js";

let lang = pickLanguage(localStorage, navigator.language);
const view = new ChatView(document, lang);
const connection = new ChatConnection({ base: location.origin, store: sessionStore(localStorage) });

// The document's own language and title follow the page's language; the view
// leaves them alone, as a widget must not retitle the shop's page.
function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = translate(lang, "title");
  view.setLanguage(lang);
}

// What the user does.
view.addEventListener("send", (event) => {
  const message = connection.prepare(event.detail.text);
  view.addOwn(message.cmid, message.text);
  view.clearInput();
  if (!connection.send(message)) view.notice(view.t("queuedNotice"));
});
view.addEventListener("ping", () => connection.ping());
view.addEventListener("sessioninfo", () => connection.requestSessionInfo());
view.addEventListener("newchat", () => connection.newSession());
view.addEventListener("language", () => {
  lang = otherLanguage(lang);
  saveLanguage(localStorage, lang);
  applyLanguage();
});

// What the connection reports.
const when = (type, show) => connection.addEventListener(type, (event) => show(event.detail));
when("status", ({ state, seconds }) => view.setStatus(state, seconds));
when("established", ({ info, lost }) => {
  view.showConnection(info);
  if (lost) view.notice(view.t("lostSession"));
});
when("message", ({ message }) => view.showStored(message));
when("historypage", () => view.showWelcomeIfEmpty());
when("chunk", ({ id, delta }) => view.appendChunk(id, delta));
when("reply", (reply) => view.showReply(reply));
when("sending", ({ cmid }) => view.markSending(cmid));
when("queued", ({ cmid }) => view.markQueued(cmid));
when("confirmed", ({ cmid, id }) => view.confirm(cmid, id));
when("failed", ({ cmid, message }) => {
  view.markFailed(cmid);
  view.notice(message, "error");
});
when("problem", ({ message }) => view.notice(message, "error"));
when("typing", ({ on }) => view.showTyping(on));
when("info", ({ info }) => view.showSessionInfo(info));
when("pong", ({ ms }) => view.notice(view.t("pong", { ms: ms })));
when("newsession", ({ refused }) => {
  view.clear();
  if (refused) view.notice(view.t("newSession"));
});

window.addEventListener("online", () => connection.reconnectNow());

applyLanguage();
connection.start();
view.focus();
