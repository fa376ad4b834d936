// Where the page keeps its session between reloads: the session id and its
// token, so that a reload (or a second tab) continues the same conversation.
// The token is what proves the session is ours (docs/protocol.md), so it is kept
// only in the storage the caller gives, never in a URL or a cookie.
import { isValidId, isValidToken, newSessionId } from "./protocol.js";

/** @typedef {{id: string, token: string | null}} Session */

/**
 * A session that the server does not know yet (it has no token).
 * @returns {Session}
 */
export function newSession() {
  return { id: newSessionId(), token: null };
}

/**
 * Keeps one session in a Web Storage object under one key.
 * @param {Storage} storage e.g. window.localStorage
 * @param {string} [key] a widget on a shop's site may want its own
 * @returns {{load(): Session, save(session: Session): void}} `load` gives the
 *   saved session, or a new one when none (or a broken one) is saved; it does
 *   not save the new one: that happens once the server has accepted it.
 */
export function sessionStore(storage, key = "chatbuddy.session") {
  return {
    load() {
      try {
        const saved = JSON.parse(storage.getItem(key) || "null");
        if (saved && isValidId(saved.id)) {
          return { id: saved.id, token: isValidToken(saved.token) ? saved.token : null };
        }
      } catch (e) { /* a broken entry: start afresh */ }
      return newSession();
    },
    save(session) {
      storage.setItem(key, JSON.stringify(session));
    },
  };
}

/**
 * A Web Storage stand-in that keeps its items in memory, for when the browser
 * refuses real storage (e.g. to a frame of another site, when the user blocks
 * third-party storage).
 * @param {(key: string, value: string) => void} [onSet] told of every setItem,
 *   to keep the items elsewhere too
 * @returns {Storage}
 */
export function memoryStorage(onSet = () => {}) {
  const items = new Map();
  return /** @type {Storage} */ ({
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => {
      items.set(key, String(value));
      onSet(key, String(value));
    },
    removeItem: (key) => { items.delete(key); },
  });
}

/**
 * The storage `get` returns if the browser lets us use it, else null.
 * @param {() => Storage} get e.g. () => window.localStorage (reading it may throw)
 * @returns {Storage | null}
 */
export function usableStorage(get) {
  try {
    const storage = get();
    storage.getItem("chatbuddy.session");
    return storage;
  } catch (e) {
    return null;
  }
}
