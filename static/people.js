// A person in the conversation (docs/protocol.md): an operator who takes the
// chat over from the assistant, and what the customer's page does about it —
// the operator's messages with their name, "joined" and "left" lines, "Anna is
// typing…", read ticks on the customer's messages, 👍/👎 on replies, and the
// "Talk to a person" button. It wires itself to a ChatConnection and a ChatView
// from the outside (their events, the view's list), so the two stay as they are.
//
// Everything people wrote is set with textContent, never as HTML.
import { handoffRequest, reactionFrame, readFrame, typingFrame } from "./protocol.js";

// The page says "typing" at most this often while the customer types, and
// "stopped" after this long without a keystroke.
const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;

/**
 * @param {import("./connection.js").ChatConnection} connection
 * @param {import("./view.js").ChatView} view
 * @param {Document | Element} root holds the page's markup (#messages, #typing,
 *   #input, and optionally #talk-to-person)
 */
// How near the end of the list still counts as reading the newest message (as view.js).
const AT_BOTTOM_PX = 24;

export function bindPeople(connection, view, root) {
  const doc = root.ownerDocument || root;
  const $ = (id) => root.querySelector("#" + id);
  const list = $("messages");
  const typingBox = $("typing");
  const typingText = typingBox.querySelector("[data-i18n]") || typingBox.lastElementChild;
  const input = $("input");
  const askButton = $("talk-to-person");

  let operator = null;       // who holds the conversation now, or null
  let operatorTyping = false;
  let readMark = 0;          // the operator has read the customer's messages up to this id
  let shownUpTo = 0;         // the last message id this page has shown
  let reportedUpTo = 0;      // ...and reported as read
  let typingSentAt = 0;      // when "typing: start" last went out
  let typingTimer = null;
  let pendingShown = false;  // "we asked a colleague" was said for this request
  const names = new Map();     // operator message id -> the operator's name
  const reactions = new Map(); // reply id -> "up" | "down"

  // -- what the server says ------------------------------------------------------

  connection.addEventListener("frame", ({ detail: { type, data } }) => {
    switch (type) {
      case "history":
        for (const message of data.messages) remember(message);
        break;
      case "operator_message":
      case "user_message":
        remember(data);
        break;
      case "chat_response":
        seen(data.message_id);
        break;
      case "operator_joined":
        if (operator !== data.operator) line("operatorJoined", data.operator);
        operator = data.operator;
        showAsk();
        break;
      case "operator_left":
        line(data.reason === "timeout" ? "operatorTimedOut" : "operatorLeft", data.operator);
        operator = null;
        pendingShown = false;
        setOperatorTyping(false);
        showAsk();
        break;
      case "typing":
        if (data.who === "operator") setOperatorTyping(data.state === "start", data.name);
        break;
      case "read":
        if (data.reader === "operator" && data.message_id > readMark) readMark = data.message_id;
        break;
      case "reaction":
        if (data.reaction) reactions.set(data.message_id, data.reaction);
        else reactions.delete(data.message_id);
        break;
      case "handoff_pending":
        if (!pendingShown) line("handoffPending");
        pendingShown = true;
        if (askButton) askButton.disabled = true;
        break;
      default:
        return;
    }
    decorate();
    report();
  });
  // While a person holds the conversation the assistant is not typing.
  connection.addEventListener("typing", () => {
    if (operator) view.showTyping(operatorTyping);
  });
  connection.addEventListener("newsession", () => {
    operator = null;
    pendingShown = false;
    readMark = shownUpTo = reportedUpTo = 0;
    names.clear();
    reactions.clear();
    setOperatorTyping(false);
    showAsk();
  });
  doc.addEventListener("visibilitychange", report);

  function remember(message) {
    if (message.role === "operator" && message.name) names.set(message.id, message.name);
    if (message.reaction) reactions.set(message.id, message.reaction);
    seen(message.id);
  }

  function seen(id) {
    if (id > shownUpTo) shownUpTo = id;
  }

  // -- what the customer does -------------------------------------------------------

  if (askButton) {
    askButton.addEventListener("click", () => {
      if (connection.sendFrame(handoffRequest())) askButton.disabled = true;
    });
  }
  input.addEventListener("input", () => {
    if (!operator) return;
    const now = Date.now();
    if (now - typingSentAt > TYPING_EVERY_MS) {
      typingSentAt = now;
      connection.sendFrame(typingFrame("start"));
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  });
  view.addEventListener("send", stopTyping);

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSentAt) {
      typingSentAt = 0;
      connection.sendFrame(typingFrame("stop"));
    }
  }

  // The operator sees what the customer has read: while someone holds the
  // conversation, the page reports the last message it has shown (in a tab in view).
  function report() {
    if (!operator || shownUpTo <= reportedUpTo || doc.visibilityState === "hidden") return;
    if (connection.sendFrame(readFrame(shownUpTo))) reportedUpTo = shownUpTo;
  }

  // -- the view -------------------------------------------------------------------------

  new MutationObserver(decorate).observe(list, { childList: true, subtree: true, attributes: true,
    attributeFilter: ["data-id", "class"] });

  function decorate() {
    // 👍/👎 and ticks make messages taller: a reader at the newest one stays there.
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight <= AT_BOTTOM_PX;
    for (const li of list.querySelectorAll(".msg.operator[data-id]")) nameBubble(li);
    for (const li of list.querySelectorAll(".msg.assistant[data-id]:not(.streaming), .msg.operator[data-id]")) {
      reactionButtons(li);
    }
    for (const li of list.querySelectorAll(".msg.user[data-id]")) readTick(li);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function nameBubble(li) {
    const name = names.get(Number(li.dataset.id));
    if (!name || li.dataset.name === name) return;
    li.dataset.name = name;
    const speaker = li.querySelector(".speaker");
    if (speaker) {
      delete speaker.dataset.i18n; // a name needs no translation
      speaker.textContent = name + ":";
    }
    let label = li.querySelector(".operator-name");
    if (!label) {
      label = doc.createElement("span");
      label.className = "operator-name";
      li.insertBefore(label, li.querySelector(".body"));
    }
    label.textContent = name;
  }

  function reactionButtons(li) {
    const id = Number(li.dataset.id);
    let group = li.querySelector(".reactions");
    if (!group) {
      group = doc.createElement("span");
      group.className = "reactions";
      group.append(reactionButton(id, "up", "👍", "helpful"), reactionButton(id, "down", "👎", "notHelpful"));
      li.appendChild(group);
    }
    for (const button of group.querySelectorAll("button")) {
      const pressed = reactions.get(id) === button.dataset.reaction;
      if (button.getAttribute("aria-pressed") !== String(pressed)) button.setAttribute("aria-pressed", String(pressed));
    }
  }

  function reactionButton(id, value, mark, label) {
    const button = doc.createElement("button");
    button.type = "button";
    button.className = "reaction";
    button.dataset.reaction = value;
    button.setAttribute("aria-pressed", "false");
    const icon = doc.createElement("span");
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = mark;
    const name = doc.createElement("span");
    name.className = "visually-hidden";
    name.dataset.i18n = label;
    name.textContent = view.t(label);
    button.append(icon, name);
    button.addEventListener("click", () => {
      const next = reactions.get(id) === value ? null : value;
      if (!connection.sendFrame(reactionFrame(id, next))) return;
      if (next) reactions.set(id, next);
      else reactions.delete(id);
      decorate();
    });
    return button;
  }

  function readTick(li) {
    const read = Number(li.dataset.id) <= readMark;
    let tick = li.querySelector(".read-tick");
    if (read && !tick) {
      tick = doc.createElement("span");
      tick.className = "read-tick";
      const mark = doc.createElement("span");
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = "✓✓";
      const text = doc.createElement("span");
      text.className = "visually-hidden";
      text.dataset.i18n = "readByOperator";
      text.textContent = view.t("readByOperator");
      tick.append(mark, text);
      li.appendChild(tick);
    }
  }

  // A line in the conversation: someone joined or left, or a person was asked for.
  function line(key, name) {
    const li = doc.createElement("li");
    li.className = "system-line";
    li.textContent = view.t(key, { name: name || "" });
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function setOperatorTyping(on, name) {
    operatorTyping = on;
    if (on) {
      delete typingText.dataset.i18n;
      typingText.textContent = view.t("operatorTyping", { name: name || operator || "" });
    } else if (!typingText.dataset.i18n) {
      typingText.dataset.i18n = "typing";
      typingText.textContent = view.t("typing");
    }
    view.showTyping(on);
  }

  function showAsk() {
    if (askButton) askButton.disabled = Boolean(operator);
  }
}
