// Connects a ChatConnection to a ChatView: what the user does goes to the
// connection, and what the connection reports is shown. The page (chat.js) and
// the widget's frame (widget-frame.js) both wire their parts with it, so the
// two behave alike; neither touches the other's globals.
import { MAX_CHARS, serverLength } from "./protocol.js";

// What the user is told when a conversation was dropped, by the connection's
// reason (none when they asked for a new one themselves).
const DROPPED_NOTICES = {
  refused: "newSession", lost: "lostSession",
  expired: "sessionExpired", replaced: "sessionReplaced", deleted: "sessionDeleted",
};
// What the user is told when the server closed for good, by close code.
const CLOSED_NOTICES = { 1008: "policyNotice" };

/**
 * @param {import("./connection.js").ChatConnection} connection
 * @param {import("./view.js").ChatView} view
 * @param {(name: string, detail: object) => void} [notify] told what an
 *   embedding page may want to know: `message` {role: "user" | "assistant",
 *   text} for each message sent or answered while the page is open, and
 *   `status` {state} for each change of the connection's state
 * @returns {{send(text: string): boolean}} `send` sends `text` as if typed
 *   (false, and nothing sent, when it is blank or too long)
 */
export function bindChat(connection, view, notify = () => {}) {
  function send(text) {
    if (typeof text !== "string" || !text.trim() || serverLength(text) > MAX_CHARS) return false;
    const message = connection.prepare(text);
    view.addOwn(message.cmid, message.text);
    if (!connection.send(message)) view.notice(view.t("queuedNotice"));
    notify("message", { role: "user", text: text });
    return true;
  }

  // What the user does.
  view.addEventListener("send", (event) => {
    view.clearInput();
    send(event.detail.text);
  });
  view.addEventListener("ping", () => connection.ping());
  view.addEventListener("sessioninfo", () => connection.requestSessionInfo());
  view.addEventListener("newchat", () => connection.newSession());
  view.addEventListener("retry", () => connection.reopen());

  // What the connection reports.
  const when = (type, show) => connection.addEventListener(type, (event) => show(event.detail));
  when("status", ({ state, until, code }) => {
    view.setStatus(state, until);
    if (state === "disconnected") view.notice(view.t(CLOSED_NOTICES[code] || "closedNotice"), "error");
    notify("status", { state: state });
  });
  when("established", ({ info }) => view.showConnection(info));
  when("message", ({ message }) => view.showStored(message));
  when("historypage", () => view.showWelcomeIfEmpty());
  when("chunk", ({ id, delta }) => view.appendChunk(id, delta));
  when("reply", (reply) => {
    view.showReply(reply);
    notify("message", { role: "assistant", text: reply.content });
  });
  when("sending", ({ cmid }) => view.markSending(cmid));
  when("queued", ({ cmid }) => view.markQueued(cmid));
  when("confirmed", ({ cmid, id }) => view.confirm(cmid, id));
  when("failed", ({ cmid, message }) => {
    view.markFailed(cmid);
    view.notice(message, "error");
  });
  when("problem", ({ message }) => view.notice(message, "error"));
  when("draining", () => view.notice(view.t("restartingNotice")));
  when("typing", ({ on }) => view.showTyping(on));
  when("info", ({ info }) => view.showSessionInfo(info));
  when("pong", ({ ms }) => view.notice(view.t("pong", { ms: ms })));
  when("newsession", ({ reason, unsent }) => {
    view.clear();
    if (DROPPED_NOTICES[reason]) view.notice(view.t(DROPPED_NOTICES[reason]));
    // Written for the old conversation: the user decides whether to send it again.
    if (unsent.length) {
      view.restoreDraft(unsent);
      view.notice(view.t("unsentRestored"));
    }
  });

  return { send: send };
}
