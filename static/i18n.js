// UI text in Hungarian and English, and which of the two to show. Only our own
// strings live here; what users and the assistant write is never translated or
// interpreted.

// The saved choice; without one the page follows the browser's language.
const LANG_KEY = "chatbuddy.lang";

/** The strings by language, then by key. Every key exists in English. */
export const STRINGS = {
  hu: {
    title: "ChatBuddy – vásárlási asszisztens",
    newChat: "Új beszélgetés",
    switchTo: "English",
    switchToLang: "en",
    sessionPanel: "Munkamenet",
    sessionId: "Munkamenet",
    userId: "Felhasználó",
    connectionId: "Kapcsolat",
    connectedSince: "Kapcsolódva",
    messageCount: "Üzenetek",
    ping: "Ping",
    sessionInfo: "Munkamenet adatai",
    conversation: "Beszélgetés",
    typing: "Az asszisztens ír…",
    message: "Üzenet",
    placeholder: "Írjon üzenetet… (Enter: küldés, Shift+Enter: új sor)",
    placeholderTouch: "Írjon üzenetet…",
    send: "Küldés",
    connected: "Kapcsolódva",
    connecting: "Kapcsolódás…",
    disconnected: "Nincs kapcsolat",
    retryIn: "újra {s} mp múlva",
    retryNow: "Újrapróbálás most",
    closedNotice: "A szerver lezárta a kapcsolatot. Az „Újrapróbálás most” gombbal újra csatlakozhat.",
    policyNotice: "Túl sok üzenet érkezett rövid idő alatt, ezért a szerver lezárta a kapcsolatot. " +
      "Várjon egy kicsit, majd nyomja meg az „Újrapróbálás most” gombot.",
    queued: "sorban áll",
    failed: "nem sikerült",
    you: "Ön",
    assistant: "Asszisztens",
    youSaid: "Ön:",
    assistantSaid: "Asszisztens:",
    openChat: "Csevegés megnyitása",
    closeChat: "Csevegés bezárása",
    chatTitle: "Vásárlási asszisztens",
    pong: "Pong: {ms} ms",
    tooLong: "Az üzenet túl hosszú ({n}/{max} karakter).",
    newSession: "Új beszélgetés indult.",
    lostSession: "Az előző beszélgetés nem állítható vissza; új indult.",
    sessionExpired: "Ez a beszélgetés lejárt; új beszélgetés indult.",
    sessionReplaced: "Ez a beszélgetés már nem érhető el; új beszélgetés indult.",
    sessionDeleted: "Ezt a beszélgetést törölték; új beszélgetés indult.",
    unsentRestored: "Az el nem küldött üzenete visszakerült az üzenetmezőbe: küldje el újra, ha még kell.",
    queuedNotice: "Nincs kapcsolat – az üzenet elküldése a kapcsolat helyreállásakor.",
    restartingNotice: "A szerver újraindul – az üzenet elküldése a kapcsolat helyreállásakor.",
    welcome: "Üdvözöljük! Kérdezzen termékekről, rendelésekről vagy kuponokról.",
    talkToPerson: "Beszélnék egy emberrel",
    handoffPending: "Megkértünk egy kollégát, hogy csatlakozzon; addig az asszisztens válaszol.",
    operatorJoined: "{name} csatlakozott a beszélgetéshez.",
    operatorLeft: "{name} kilépett a beszélgetésből; újra az asszisztens válaszol.",
    operatorTimedOut: "{name} nem válaszol; újra az asszisztens válaszol.",
    operatorTyping: "{name} ír…",
    operator: "ügyfélszolgálat",
    readByOperator: "Elolvasva",
    helpful: "Hasznos válasz",
    notHelpful: "Nem hasznos válasz",
    agents: {
      product: "termék", order: "rendelés", recommendation: "ajánló",
      marketing: "akciók", general: "általános", echo: "visszhang",
    },
  },
  en: {
    title: "ChatBuddy – shopping assistant",
    newChat: "New conversation",
    switchTo: "Magyar",
    switchToLang: "hu",
    sessionPanel: "Session",
    sessionId: "Session",
    userId: "User",
    connectionId: "Connection",
    connectedSince: "Connected since",
    messageCount: "Messages",
    ping: "Ping",
    sessionInfo: "Session info",
    conversation: "Conversation",
    typing: "The assistant is typing…",
    message: "Message",
    placeholder: "Type a message… (Enter to send, Shift+Enter for a new line)",
    placeholderTouch: "Type a message…",
    send: "Send",
    connected: "Connected",
    connecting: "Connecting…",
    disconnected: "Disconnected",
    retryIn: "retrying in {s} s",
    retryNow: "Retry now",
    closedNotice: "The server closed the connection. Use “Retry now” to connect again.",
    policyNotice: "Too many messages in a short time, so the server closed the connection. " +
      "Wait a moment, then use “Retry now”.",
    queued: "queued",
    failed: "failed",
    you: "You",
    assistant: "Assistant",
    youSaid: "You:",
    assistantSaid: "Assistant:",
    openChat: "Open chat",
    closeChat: "Close chat",
    chatTitle: "Shopping assistant",
    pong: "Pong: {ms} ms",
    tooLong: "The message is too long ({n}/{max} characters).",
    newSession: "Started a new conversation.",
    lostSession: "The previous conversation could not be restored; a new one started.",
    sessionExpired: "This conversation has expired; a new one has started.",
    sessionReplaced: "This conversation is no longer available; a new one has started.",
    sessionDeleted: "This conversation was deleted; a new one has started.",
    unsentRestored: "Your unsent message is back in the message box: send it again if you still need it.",
    queuedNotice: "Offline – the message will be sent when the connection is back.",
    restartingNotice: "The server is restarting – the message will be sent when the connection is back.",
    welcome: "Welcome! Ask about products, orders or coupons.",
    talkToPerson: "Talk to a person",
    handoffPending: "We have asked a colleague to join; the assistant answers until then.",
    operatorJoined: "{name} joined the conversation.",
    operatorLeft: "{name} left the conversation; the assistant answers again.",
    operatorTimedOut: "{name} is not answering; the assistant answers again.",
    operatorTyping: "{name} is typing…",
    operator: "customer service",
    readByOperator: "Read",
    helpful: "Helpful reply",
    notHelpful: "Not helpful",
    agents: {
      product: "product", order: "order", recommendation: "recommendation",
      marketing: "offers", general: "general", echo: "echo",
    },
  },
};

/**
 * The language to show: the one chosen before, else the browser's if it is
 * Hungarian, else English.
 * @param {Storage} storage where the choice is kept (e.g. window.localStorage)
 * @param {string} [browserLanguage] e.g. navigator.language
 * @returns {"hu" | "en"}
 */
export function pickLanguage(storage, browserLanguage) {
  const saved = storage.getItem(LANG_KEY);
  if (saved === "hu" || saved === "en") return saved;
  return (browserLanguage || "en").toLowerCase().startsWith("hu") ? "hu" : "en";
}

/**
 * Remembers the user's choice for the next visit.
 * @param {Storage} storage
 * @param {"hu" | "en"} lang
 */
export function saveLanguage(storage, lang) {
  storage.setItem(LANG_KEY, lang);
}

/**
 * The language the toggle switches to.
 * @param {"hu" | "en"} lang
 * @returns {"hu" | "en"}
 */
export function otherLanguage(lang) {
  return lang === "hu" ? "en" : "hu";
}

/**
 * The text for `key` in `lang`, with each `{name}` filled from `values`;
 * English when `lang` lacks the key, the key itself when English does too.
 * @param {"hu" | "en"} lang
 * @param {string} key
 * @param {Object<string, string | number>} [values]
 * @returns {string}
 */
export function translate(lang, key, values) {
  let text = STRINGS[lang][key] || STRINGS.en[key] || key;
  for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", value);
  return text;
}

/**
 * How to name an agent under its reply: its translated name, else its own
 * name, else "Assistant".
 * @param {"hu" | "en"} lang
 * @param {string | undefined} agent
 * @returns {string}
 */
export function agentName(lang, agent) {
  return (STRINGS[lang].agents || {})[agent] || agent || translate(lang, "assistant");
}

/**
 * A message's time of day (hours and minutes) as people of `lang` write it.
 * @param {"hu" | "en"} lang
 * @param {string | null} [iso] the message's timestamp; now when missing
 * @returns {string}
 */
export function timeOfDay(lang, iso) {
  const date = iso ? new Date(iso) : new Date();
  return date.toLocaleTimeString(lang === "hu" ? "hu-HU" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}
