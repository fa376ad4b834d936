#!/usr/bin/env node
// An independent WebSocket load client for ChatBuddy's benchmark suite.
//
// One process drives every connection. It shares no code with ChatBuddy (the
// project's own generator is cli/loadgen.py): the WebSocket layer is the `ws`
// package, pinned in package-lock.json, and each protocol is a few lines here
// that classify incoming frames. The same `ws` framing is used for every
// server, so the client costs about the same per message whoever answers.
//
//   node client.mjs --protocol chatbuddy --url ws://127.0.0.1:8000 --mode closed -c 50 -d 5
//
// Modes:
//   closed  each connection sends one message, waits for its reply, sends the next;
//   open    each connection sends one message every --interval seconds whatever
//           the replies, start times spread uniformly over the first interval;
//   idle    open the connections and hold them until stdin closes (or --hold s).
//
// Output: one JSON document on stdout when the run ends. Progress events go to
// stderr as JSON lines ({"event": "opened" | "window_start" | "window_end"}), so
// a runner can sample the machine's CPU exactly over the measured window.
//
// Errors are counted over the whole run (opening, warm-up, window, drain), not
// only in the window: any error fails the run. Latencies and replies/s are over
// the measured window only, and the percentiles are over every measured message.
//
// Open-loop latency matching: the client cannot know the id the server gives a
// message, so replies are matched FIFO per connection (ChatBuddy answers one
// session's messages in order; an echo is in order on one TCP stream). A
// message still unanswered when the connection's next message is due is
// counted once as `late` (an error) and stays in the queue, so the FIFO stays
// aligned; its latency is still recorded when the reply comes. Messages still
// unanswered --drain seconds after the window are `unanswered` (if not already
// `late`). An error frame answers the oldest outstanding message.
//
// Latency runs from the moment the frame was handed to the socket. How far that
// moment was behind the message's schedule is reported apart, as send_lag_ms
// (about 1 ms is the granularity of Node's timers): a client too busy to keep
// its schedule shows there, and the runner flags it, instead of its delay being
// charged to the server or hidden.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import WebSocket from "ws";

const WS_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/ws/package.json", import.meta.url), "utf8"),
).version;

const USAGE = `usage: node client.mjs --protocol chatbuddy|echo|socketio --url URL
  [--mode closed|open|idle] [-c CONNECTIONS] [--warmup S] [-d DURATION]
  [--interval S] [--drain S] [--message TEXT] [--parallel N] [--timeout S] [--hold S]
  [--deflate] [--prime]

  --deflate   offer permessage-deflate (as browsers do) and take it if the server does
  --prime     idle: every connection sends one message and waits for its reply before
              the hold (memory after a conversation, not after a bare handshake)

  --url       chatbuddy: ws://HOST:PORT (the client adds /ws/chat/{session_id});
              socketio: ws://HOST:PORT (the client adds /socket.io/?EIO=4&transport=websocket);
              echo: the full URL, e.g. ws://127.0.0.1:PORT/echo`;

// What a frame is, as a protocol's classify() sees it.
const IGNORE = 0; // keep-alives, chunks, frames for other purposes
const READY = 1; // the connection is usable (the handshake of the protocol is done)
const REPLY = 2; // the answer to the oldest outstanding message
const ERROR_FRAME = 3; // the server refused the oldest outstanding message
const CLOSING = 4; // the server says it is disconnecting us

function chatPayload(sessionId, text) {
  return JSON.stringify({ type: "chat_message", session_id: sessionId, content: text });
}

// Each protocol: where to connect, the text frame to send, and what a received
// frame means. `detail` receives an error's type, for the breakdown.
const PROTOCOLS = {
  // A bare echo server: open once the WebSocket is, any frame back is the reply.
  // It gets ChatBuddy's message, so the bytes on the wire are the same.
  echo: {
    url: (base) => base,
    frame: chatPayload,
    readyOnOpen: true,
    classify: () => REPLY,
  },
  // ChatBuddy (docs/protocol.md). Every frame is parsed, not matched on its
  // first bytes, so nothing here depends on how the server orders JSON keys.
  chatbuddy: {
    url: (base, sessionId) => `${base}/ws/chat/${sessionId}`,
    frame: chatPayload,
    readyOnOpen: false,
    classify(conn, data, detail) {
      let frame;
      try {
        frame = JSON.parse(data);
      } catch {
        detail("invalid_json_from_server");
        return ERROR_FRAME;
      }
      switch (frame.type) {
        case "chat_response":
          return REPLY;
        case "connection_established":
          return READY;
        case "error":
          detail(frame.data?.error_type ?? "unknown");
          return ERROR_FRAME;
        default:
          return IGNORE; // chat_response_chunk, pong, ...
      }
    },
  },
  // python-socketio, spoken here directly: Engine.IO v4 packets over one
  // WebSocket, Socket.IO v5 packets inside them, default namespace only.
  socketio: {
    url: (base) => `${base}/socket.io/?EIO=4&transport=websocket`,
    frame: (sessionId, text) =>
      "42" + JSON.stringify(["chat", { session_id: sessionId, content: text }]),
    readyOnOpen: false,
    classify(conn, data, detail) {
      const text = data.toString();
      if (text === "2") {
        conn.ws.send("3"); // Engine.IO ping from the server: pong
        return IGNORE;
      }
      if (text.startsWith('42["reply"')) return REPLY;
      if (text.startsWith("0{")) {
        conn.ws.send("40"); // Engine.IO open: now connect to the "/" namespace
        return IGNORE;
      }
      if (text.startsWith("40")) return READY; // namespace connected
      if (text.startsWith("44")) {
        detail("connect_error");
        return ERROR_FRAME;
      }
      if (text === "1" || text.startsWith("41")) return CLOSING;
      return IGNORE;
    },
  },
};

function fail(message) {
  process.stderr.write(`client.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        protocol: { type: "string" },
        url: { type: "string" },
        mode: { type: "string", default: "closed" },
        connections: { type: "string", short: "c", default: "10" },
        warmup: { type: "string", default: "1" },
        duration: { type: "string", short: "d", default: "5" },
        interval: { type: "string", default: "5" },
        drain: { type: "string" },
        message: { type: "string", default: "hello" },
        parallel: { type: "string", default: "200" },
        timeout: { type: "string", default: "10" },
        hold: { type: "string", default: "600" },
        deflate: { type: "boolean", default: false },
        prime: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    fail(error.message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const number = (name, min) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value) || value < min) fail(`--${name} must be a number >= ${min}, got ${values[name]}`);
    return value;
  };
  if (!(values.protocol in PROTOCOLS)) fail(`unknown --protocol ${values.protocol}`);
  if (!["closed", "open", "idle"].includes(values.mode)) fail(`unknown --mode ${values.mode}`);
  if (!values.url || !values.url.startsWith("ws://")) fail(`--url must be ws://..., got ${values.url}`);
  const interval = number("interval", 0.001);
  return {
    protocol: values.protocol,
    url: values.url.replace(/\/$/, ""),
    mode: values.mode,
    connections: Math.floor(number("connections", 1)),
    warmup: number("warmup", 0),
    duration: number("duration", 0.001),
    interval,
    drain: values.drain === undefined ? interval : number("drain", 0),
    message: values.message,
    parallel: Math.floor(number("parallel", 1)),
    timeout: number("timeout", 0.001),
    hold: number("hold", 0.001),
    deflate: values.deflate,
    prime: values.prime,
  };
}

function emit(event, fields = {}) {
  process.stderr.write(JSON.stringify({ event, ...fields }) + "\n");
}

function cpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

// Nearest-rank percentile of an ascending array.
function percentile(sorted, share) {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(0, Math.ceil(share * sorted.length) - 1)];
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  const round = (x) => Math.round(x * 1000) / 1000;
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    mean: round(sorted.length ? total / sorted.length : 0),
    p50: round(percentile(sorted, 0.5)),
    p90: round(percentile(sorted, 0.9)),
    p99: round(percentile(sorted, 0.99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : 0),
  };
}

class Run {
  constructor(config) {
    // The parsed command line.
    this.config = config;
    // How frames are built and read for the chosen server.
    this.protocol = PROTOCOLS[config.protocol];
    // Sets this run's session ids apart from any other run's on the same server.
    this.runId = randomBytes(3).toString("hex");
    // Every connection that opened, in the order their messages are scheduled.
    this.connections = [];
    // Errors by kind; every one of them fails the run.
    this.errors = {
      handshake_refused: 0, // the server answered the upgrade with an HTTP error
      connect_failed: 0, // no TCP connection, or no upgrade / ready frame within --timeout
      error_frame: 0, // the server answered a message with an error
      closed_early: 0, // the server closed a connection we still used
      timeout: 0, // closed loop: no answer within --timeout
      late: 0, // open loop: unanswered when the connection's next message was due
      unanswered: 0, // open loop: no answer by the end of the drain
      unmatched: 0, // a reply with no message outstanding
    };
    // Error frames by the server's error type (e.g. rate_limited).
    this.errorTypes = {};
    this.failed = 0;
    this.sent = 0;
    this.replies = 0;
    // Messages sent / answered that belong to the measured window.
    this.sentInWindow = 0;
    this.repliesInWindow = 0;
    // Latency of every measured message, in ms.
    this.latencies = [];
    // Open loop: how far behind its schedule the client sent, in ms (a busy client shows here).
    this.sendLag = [];
    // True while replies count as measured (closed loop).
    this.recording = false;
    // Once true, connections closing are our doing, not errors.
    this.finished = false;
  }

  detail = (kind) => {
    this.errorTypes[kind] = (this.errorTypes[kind] ?? 0) + 1;
  };

  // Opens one connection; resolves when it is ready or has failed.
  openOne(index) {
    const sessionId = `bench-${this.runId}-${index}`;
    const conn = {
      ws: null,
      index,
      frame: this.protocol.frame(sessionId, this.config.message),
      // FIFO of outstanding messages: {at: scheduled/sent time in ms, measured, late}.
      outstanding: [],
      ready: false,
      closed: false,
    };
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok, kind) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (ok) {
          conn.ready = true;
          this.connections.push(conn);
        } else {
          this.errors[kind] += 1;
          this.failed += 1;
          conn.ws.terminate();
        }
        resolve();
      };
      const timer = setTimeout(() => settle(false, "connect_failed"), this.config.timeout * 1000);
      const ws = new WebSocket(this.protocol.url(this.config.url, sessionId), {
        // Off unless asked: then ws offers what browsers do (permessage-deflate;
        // client_max_window_bits) and compresses its own messages over 1 KiB.
        perMessageDeflate: this.config.deflate,
        handshakeTimeout: this.config.timeout * 1000,
      });
      conn.ws = ws;
      ws.on("unexpected-response", (request, response) => {
        settle(false, "handshake_refused");
        response.resume();
      });
      ws.on("error", () => settle(false, "connect_failed"));
      ws.on("open", () => {
        if (this.protocol.readyOnOpen) settle(true);
      });
      ws.on("upgrade", (response) => {
        conn.extensions = response.headers["sec-websocket-extensions"] ?? null;
      });
      ws.on("message", (data) => {
        const kind = this.protocol.classify(conn, data, this.detail);
        if (kind === READY) settle(true);
        else if (kind !== IGNORE) this.onFrame(conn, kind);
      });
      ws.on("close", () => {
        conn.closed = true;
        if (!settled) settle(false, "connect_failed");
        else if (conn.ready && !this.finished) this.closedEarly(conn);
      });
    });
  }

  closedEarly(conn) {
    if (conn.counted) return;
    conn.counted = true;
    this.errors.closed_early += 1;
    conn.outstanding.length = 0; // counted once, as closed_early, not again as unanswered
  }

  async openAll() {
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < this.config.connections) await this.openOne(next++);
    };
    const workers = Math.min(this.config.parallel, this.config.connections);
    await Promise.all(Array.from({ length: workers }, worker));
    // Keep the schedule's order stable whatever order the handshakes finished in.
    this.connections.sort((a, b) => a.index - b.index);
    this.openSeconds = (performance.now() - started) / 1000;
    if (this.config.prime) await this.prime();
    emit("opened", { opened: this.connections.length, failed: this.failed });
  }

  send(conn, at, measured) {
    if (conn.closed) return;
    conn.outstanding.push({ at, measured, late: false });
    conn.ws.send(conn.frame);
    this.sent += 1;
    if (measured) this.sentInWindow += 1;
  }

  onFrame(conn, kind) {
    if (kind === CLOSING) {
      if (!this.finished) this.closedEarly(conn);
      return;
    }
    const now = performance.now();
    const message = conn.outstanding.shift();
    if (message === undefined) {
      this.errors.unmatched += 1;
      return;
    }
    if (kind === ERROR_FRAME) {
      this.errors.error_frame += 1;
    } else {
      this.replies += 1;
      const measured = this.config.mode === "open" ? message.measured : this.recording;
      if (measured) {
        this.repliesInWindow += 1;
        this.latencies.push(now - message.at);
      }
    }
    if (this.config.mode === "closed" && !this.finished && this.sending) {
      this.send(conn, performance.now(), this.recording);
    }
    if (conn.primed) {
      conn.primed();
      conn.primed = null;
    }
  }

  // Closed loop: every connection keeps one message outstanding.
  async closedLoop() {
    const { warmup, duration, timeout } = this.config;
    this.sending = true;
    const watchdog = setInterval(() => this.checkTimeouts(timeout * 1000), 250);
    for (const conn of this.connections) this.send(conn, performance.now(), false);
    await sleep(warmup * 1000);
    const window = this.startWindow();
    this.recording = true;
    await sleep(duration * 1000);
    this.recording = false;
    this.sending = false;
    this.endWindow(window);
    clearInterval(watchdog);
    this.checkTimeouts(timeout * 1000);
  }

  checkTimeouts(limit) {
    const now = performance.now();
    for (const conn of this.connections) {
      const message = conn.outstanding[0];
      if (message !== undefined && !message.late && now - message.at > limit) {
        message.late = true; // counted once; its reply, if it comes, is still matched
        this.errors.timeout += 1;
      }
    }
  }

  // Open loop: message m of the whole run is due at start + m * interval / N and
  // goes to connection m mod N, so each connection sends every `interval`
  // seconds and the first round of sends is spread evenly over one interval.
  async openLoop() {
    const { warmup, duration, interval, drain } = this.config;
    const count = this.connections.length;
    if (count === 0) return;
    const step = (interval * 1000) / count;
    const start = performance.now() + 50;
    const windowFrom = start + warmup * 1000;
    const windowTo = windowFrom + duration * 1000;
    let window = null;
    let m = 0;
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (window === null && now >= windowFrom) window = this.startWindow();
        for (let due = start + m * step; due <= now && due < windowTo; due = start + ++m * step) {
          const conn = this.connections[m % count];
          for (const earlier of conn.outstanding) {
            if (!earlier.late) {
              earlier.late = true;
              this.errors.late += 1;
            }
          }
          const measured = due >= windowFrom;
          const sentAt = performance.now();
          if (measured) this.sendLag.push(sentAt - due);
          this.send(conn, sentAt, measured);
        }
        const next = start + m * step;
        if (next >= windowTo) resolve();
        else {
          const wake = window === null ? Math.min(next, windowFrom) : next;
          setTimeout(tick, Math.max(0, Math.min(wake - performance.now(), 100)));
        }
      };
      tick();
    });
    await sleep(Math.max(0, windowTo - performance.now()));
    if (window === null) window = this.startWindow();
    this.endWindow(window);
    // Wait for the window's replies, at most --drain seconds.
    const drainUntil = performance.now() + drain * 1000;
    while (performance.now() < drainUntil && this.anyOutstanding()) await sleep(20);
    for (const conn of this.connections) {
      for (const message of conn.outstanding) {
        if (!message.late) this.errors.unanswered += 1;
      }
    }
  }

  anyOutstanding() {
    return this.connections.some((conn) => conn.outstanding.length > 0 && !conn.closed);
  }

  // Idle: hold the connections until stdin closes, SIGTERM, or --hold seconds.
  async idle() {
    const window = this.startWindow();
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, this.config.hold * 1000);
      const stop = () => {
        clearTimeout(timer);
        resolve();
      };
      process.stdin.on("end", stop);
      process.stdin.on("close", stop);
      process.stdin.resume();
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    this.endWindow(window);
  }

  // Every connection sends one message and waits for its reply (idle --prime).
  async prime() {
    await Promise.all(
      this.connections.map(
        (conn) =>
          new Promise((resolve) => {
            conn.primed = resolve;
            this.send(conn, performance.now(), false);
          }),
      ),
    );
  }

  // Bytes on the wire (TCP payload: frames, compressed or not) of every connection.
  wireBytes() {
    let received = 0;
    let sent = 0;
    for (const conn of this.connections) {
      const socket = conn.ws._socket; // ws keeps the net.Socket there; null once closed
      if (socket) {
        received += socket.bytesRead;
        sent += socket.bytesWritten;
      }
    }
    return { received, sent };
  }

  startWindow() {
    emit("window_start");
    return { at: performance.now(), cpu: cpuSeconds(), wire: this.wireBytes() };
  }

  endWindow(window) {
    const wire = this.wireBytes();
    this.windowWire = { received: wire.received - window.wire.received, sent: wire.sent - window.wire.sent };
    this.windowSeconds = (performance.now() - window.at) / 1000;
    this.windowCpu = cpuSeconds() - window.cpu;
    emit("window_end");
  }

  document() {
    const config = this.config;
    const errors = Object.values(this.errors).reduce((a, b) => a + b, 0);
    const seconds = this.windowSeconds ?? 0;
    const round = (x) => Math.round(x * 1000) / 1000;
    return {
      client: { node: process.version, ws: WS_VERSION },
      protocol: config.protocol,
      mode: config.mode,
      url: config.url,
      settings: {
        warmup: config.warmup,
        duration: config.duration,
        interval: config.mode === "open" ? config.interval : null,
        drain: config.mode === "open" ? config.drain : null,
        parallel: config.parallel,
        timeout: config.timeout,
        message: config.message,
        deflate: config.deflate,
        prime: config.prime,
      },
      connections: {
        requested: config.connections,
        opened: this.connections.length,
        failed: this.failed,
        open_seconds: round(this.openSeconds ?? 0),
      },
      messages: {
        sent: this.sent,
        replies: this.replies,
        sent_in_window: this.sentInWindow,
        replies_in_window: this.repliesInWindow,
      },
      window_seconds: round(seconds),
      rate: seconds > 0 ? Math.round((this.repliesInWindow / seconds) * 10) / 10 : 0,
      latency_ms: summary(this.latencies),
      send_lag_ms: config.mode === "open" ? summary(this.sendLag) : null,
      errors: { total: errors, ...this.errors },
      error_types: this.errorTypes,
      wire_bytes: this.windowWire ?? { received: 0, sent: 0 },
      // What the server answered to the offer, on the first connection (null: none).
      extensions: this.connections[0]?.extensions ?? null,
      cpu_seconds: round(this.windowCpu ?? 0),
      cpu_seconds_total: round(cpuSeconds()),
    };
  }

  finish() {
    this.finished = true;
    for (const conn of this.connections) conn.ws.terminate();
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const config = options();
  const run = new Run(config);
  await run.openAll();
  if (config.mode === "closed") await run.closedLoop();
  else if (config.mode === "open") await run.openLoop();
  else await run.idle();
  const document = run.document();
  run.finish();
  process.stdout.write(JSON.stringify(document) + "\n", () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(`client.mjs: ${error?.stack ?? error}\n`);
  process.exit(1);
});
