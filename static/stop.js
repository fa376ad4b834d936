// The Stop button while the assistant answers, and what it is doing meanwhile
// (docs/protocol.md: `cancel`, `reply_status`). Self-contained: it reads the
// connection's `frame` events, adds its own bar above the composer and its
// own marks on stopped replies, and sends a cancel through the connection.
import { cancelRequest } from "./protocol.js";

const TEXT = {
  hu: {
    stop: "Leállítás",
    stopLabel: "A válasz leállítása",
    stopped: "leállítva",
    working: "Az asszisztens dolgozik…",
    tools: {
      search_products: "Keresés a termékek között…",
      get_product: "A termék adatainak megnézése…",
      compare_products: "A termékek összehasonlítása…",
      order_status: "A rendelés megnézése…",
      list_coupons: "A kuponok megnézése…",
      shop_policy: "A bolt szabályainak megnézése…",
      handoff_to_human: "Egy kolléga értesítése…",
    },
  },
  en: {
    stop: "Stop",
    stopLabel: "Stop the reply",
    stopped: "stopped",
    working: "The assistant is working…",
    tools: {
      search_products: "Searching the catalogue…",
      get_product: "Looking up the product…",
      compare_products: "Comparing products…",
      order_status: "Looking up your order…",
      list_coupons: "Looking up coupons…",
      shop_policy: "Looking up the shop's policy…",
      handoff_to_human: "Asking a colleague…",
    },
  },
};

/**
 * Adds the Stop bar to `doc` (before the composer) and keeps it in step with
 * `connection`.
 * @param {import("./connection.js").ChatConnection} connection
 * @param {Document} doc
 * @param {string} lang "hu" or "en"
 * @returns {{setLanguage(lang: string): void}}
 */
export function attachStop(connection, doc, lang) {
  const words = () => TEXT[lang] || TEXT.en;
  const bar = doc.createElement("div");
  bar.className = "stopbar";
  bar.hidden = true;
  const activity = doc.createElement("span");
  activity.className = "activity";
  activity.setAttribute("role", "status");
  const button = doc.createElement("button");
  button.type = "button";
  button.id = "stop";
  button.className = "ghost";
  bar.append(activity, button);
  doc.getElementById("composer").before(bar);

  // Our messages sent and not answered yet (oldest first), and the reply being
  // written now (its id, from its first chunk or status), if known.
  const waiting = [];
  let replyId = 0;
  let tool = "";

  function render() {
    const busy = Boolean(replyId || waiting.length);
    bar.hidden = !busy;
    button.textContent = words().stop;
    button.setAttribute("aria-label", words().stopLabel);
    activity.textContent = tool ? words().tools[tool] || words().working : "";
    for (const mark of doc.querySelectorAll(".msg .stopped")) mark.textContent = words().stopped;
  }

  function markStopped(id) {
    const li = doc.querySelector(`.msg[data-id="${Number(id)}"]`);
    if (!li || li.querySelector(".stopped")) return;
    const mark = doc.createElement("span");
    mark.className = "stopped";
    li.querySelector(".meta").append(" · ", mark);
    render();
  }

  // A reply is over (a `chat_response`, or an `error` about a stored message).
  // Our own answered message leaves `waiting` through `confirmed`; one that
  // failed is the oldest (replies come in order), which no event names.
  function finished(type, data) {
    replyId = 0;
    tool = "";
    if (type === "error") waiting.shift();
    if (data.cancelled) markStopped(data.message_id);
    render();
  }

  connection.addEventListener("sending", ({ detail }) => {
    if (!waiting.includes(detail.cmid)) waiting.push(detail.cmid);
    render();
  });
  connection.addEventListener("confirmed", ({ detail }) => {
    const index = waiting.indexOf(detail.cmid);
    if (index >= 0) waiting.splice(index, 1);
    render();
  });
  connection.addEventListener("failed", ({ detail }) => {
    const index = waiting.indexOf(detail.cmid);
    if (index >= 0) waiting.splice(index, 1);
    render();
  });
  connection.addEventListener("newsession", () => {
    waiting.length = 0;
    replyId = 0;
    tool = "";
    render();
  });
  connection.addEventListener("frame", ({ detail }) => {
    const { type, data } = detail;
    if (type === "chat_response_chunk") {
      replyId = data.message_id;
      tool = "";
    } else if (type === "reply_status") {
      replyId = data.message_id;
      tool = data.tool || "";
    } else if (type === "chat_response" || (type === "error" && data.in_reply_to)) {
      finished(type, data);
      return;
    } else if (type === "history") {
      for (const message of data.messages) if (message.cancelled) markStopped(message.id);
      return;
    } else {
      return;
    }
    render();
  });

  button.addEventListener("click", () => {
    // By the reply's id once a chunk or status named it; before that, by our
    // oldest message's client id (the server finds it queued or being answered).
    const target = replyId ? { messageId: replyId } : { cmid: waiting[0] };
    if (target.messageId || target.cmid) connection.sendFrame(cancelRequest(target));
  });

  render();
  return {
    setLanguage(next) {
      lang = next;
      render();
    },
  };
}
