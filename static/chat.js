// ChatBuddy's browser page (protocol: docs/protocol.md): the entry module that
// wires the parts below to this page's document, location and localStorage.
// Only this module touches the page's globals (document, location,
// localStorage, navigator); the embedded widget's frame (widget-frame.js)
// wires the same parts to its own.
//
//   binding.js     connects the connection to the view (both entries use it)
//   people.js      an operator in the conversation: names, typing, read ticks, 👍/👎
//   connection.js  the WebSocket: reconnect, resume with history, offline outbox
//   protocol.js    the frames sent and read, the limits, the close codes (no DOM)
//   view.js        the DOM (it renders with textContent, never as HTML)
//   i18n.js        Hungarian and English text, and the language choice
//   storage.js     the session id and token, kept across reloads
//   stop.js        the Stop button while a reply is written, and what the assistant does
import { bindChat } from "./binding.js";
import { ChatConnection } from "./connection.js";
import { otherLanguage, pickLanguage, saveLanguage, translate } from "./i18n.js";
import { attachStop } from "./stop.js";
import { bindPeople } from "./people.js";
import { sessionStore } from "./storage.js";
import { ChatView } from "./view.js";

let lang = pickLanguage(localStorage, navigator.language);
const view = new ChatView(document, lang, {
  // The session panel (ids, Ping, Session info) is for developers: ?debug=1.
  debug: new URLSearchParams(location.search).get("debug") === "1",
  // A touch keyboard has no Shift+Enter to mention.
  touch: matchMedia("(pointer: coarse)").matches,
});
const connection = new ChatConnection({ base: location.origin, store: sessionStore(localStorage) });
bindChat(connection, view);
const stop = attachStop(connection, document, lang);
bindPeople(connection, view, document);

// The document's own language and title follow the page's language; the view
// leaves them alone, as a widget must not retitle the shop's page.
function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = translate(lang, "title");
  view.setLanguage(lang);
  stop.setLanguage(lang);
}

view.addEventListener("language", () => {
  lang = otherLanguage(lang);
  saveLanguage(localStorage, lang);
  applyLanguage();
});
window.addEventListener("online", () => connection.reconnectNow());

applyLanguage();
connection.start();
view.focus();
