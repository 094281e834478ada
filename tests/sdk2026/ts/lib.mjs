// Shared by the TypeScript SDK (@resonatehq/sdk 0.11.5) processes of tests/sdk2026/test_ts_sdk.py.
//
// The SDK declares Node >= 22 but only needs Promise.withResolvers (Node 22). The stand-in is
// defined here, before the SDK is loaded (dynamic import below), so Node 20 runs it.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

import { appendFileSync, existsSync, renameSync, writeFileSync } from "node:fs";

export const sdk = await import("@resonatehq/sdk");
export const { Resonate } = sdk;

export const SERVER_URL = process.env.RESONATE_URL ?? "http://127.0.0.1:8001";
const RECORDS = process.env.SDK_RECORDS;
const NAME = process.env.SDK_NAME ?? "node";
const TRACE = process.env.SDK_TRACE !== "0";

let sdkPid = "-";

/** One line `event key os-pid sdk-pid` in the records file the test reads. */
export function record(event, key = "-") {
  const line = `${event} ${String(key).replace(/\s+/g, "_")} ${process.pid} ${sdkPid}\n`;
  if (RECORDS) appendFileSync(RECORDS, line);
}

export function log(...parts) {
  process.stdout.write(`${new Date().toISOString()} [${NAME}] ${parts.join(" ")}\n`);
}

/** JSON paths of every `null` in `value`. */
export function nullPaths(value, path = "$", found = []) {
  if (value === null) found.push(path);
  else if (Array.isArray(value)) value.forEach((v, i) => nullPaths(v, `${path}[${i}]`, found));
  else if (typeof value === "object") for (const [k, v] of Object.entries(value)) nullPaths(v, `${path}.${k}`, found);
  return found;
}

function clip(text, n = 2000) {
  return text.length > n ? `${text.slice(0, n)}…(${text.length} chars)` : text;
}

// Every POST / of this process is logged with its reply, and every reply is checked with the
// SDK's own guard (isResponse) plus kind/corrId echo and HTTP status == head.status: a reply the
// SDK cannot take becomes a silent retry loop in the SDK (protocol-2026.md §2), so we make it
// loud: an `invalid-reply` record the test fails on.
const realFetch = globalThis.fetch;
const wrappedFetch = async (input, init = {}) => {
  const method = (init.method ?? "GET").toUpperCase();
  const target = typeof input === "string" ? input : String(input?.url ?? input);
  if (method !== "POST") {
    if (TRACE) log("fetch", method, target);
    return realFetch(input, init);
  }
  const body = typeof init.body === "string" ? init.body : "";
  let req;
  try {
    req = JSON.parse(body);
  } catch {
    req = undefined;
  }
  let res;
  try {
    res = await realFetch(input, init);
  } catch (err) {
    if (TRACE) log(">>", clip(body), "!! network error:", String(err?.message ?? err));
    throw err;
  }
  const text = await res.clone().text();
  if (TRACE) log(">>", clip(body), "\n   <<", res.status, res.headers.get("content-type"), clip(text));
  if (req && typeof req.kind === "string") {
    const problems = [];
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      problems.push("reply is not JSON");
    }
    if (parsed !== undefined) {
      if (!sdk.isResponse(parsed)) problems.push("isResponse() rejects the reply");
      if (parsed?.kind !== req.kind) problems.push(`kind ${parsed?.kind} != ${req.kind}`);
      if (parsed?.head?.corrId !== req.head?.corrId) problems.push("corrId not echoed");
      if (parsed?.head?.status !== res.status) problems.push(`HTTP ${res.status} != head.status ${parsed?.head?.status}`);
      const nullAt = nullPaths(parsed);
      if (nullAt.length) problems.push(`null at ${nullAt.join(",")}`); // P5: omitted, never null
    }
    if (![200, 300, 404, 409, 422].includes(res.status)) problems.push(`unexpected status ${res.status}`);
    if (problems.length) {
      log("INVALID REPLY", req.kind, problems.join("; "));
      record("invalid-reply", `${req.kind}:${res.status}:${problems.join("|")}`);
    }
  }
  return res;
};
if (process.env.SDK_WRAP_FETCH !== "0") globalThis.fetch = wrappedFetch;

/** A logger for the SDK: JSON lines on stdout, and `onConnected` when the SSE stream opens. */
export function makeLogger(onConnected) {
  const emit = (level) => (fields, msg) => {
    log(level, msg, JSON.stringify(fields ?? {}));
    if ((msg === "adapter connected" || msg === "adapter reconnected") && onConnected) onConnected();
    if (msg === "adapter reconnected") record("reconnected", fields?.attempt ?? "-");
    // A stream message that fails the SDK's isMessage() is dropped by the SDK: make it loud.
    if (msg === "message parse error") record("invalid-reply", `sse:${fields?.error ?? "?"}`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/**
 * A Resonate client/worker on the server at RESONATE_URL, in `group`, with pid `pid`; resolves
 * once its message stream (GET /poll/<group>/<pid>) is open and the `ready` record is written.
 */
export async function connect({ group, pid, ttl, engine = "generator" }) {
  const { promise: connected, resolve } = Promise.withResolvers();
  sdkPid = pid;
  // The package ships two engines over the same protocol: generators (the default export)
  // and async/await (@resonatehq/sdk/async).
  const Ctor = engine === "async" ? (await import("@resonatehq/sdk/async")).Resonate : Resonate;
  const resonate = new Ctor({
    url: SERVER_URL,
    group,
    pid,
    ttl,
    // Passed explicitly: the SDK reads RESONATE_TOKEN for POST / only, not for its stream.
    token: process.env.SDK_TOKEN || undefined,
    logger: makeLogger(resolve),
  });
  await connected;
  record("ready", group);
  return resonate;
}

export function writeJson(path, value) {
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path); // atomic: the test never reads half a file
}

export async function waitForFile(path, intervalMs = 20) {
  while (!existsSync(path)) {
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// SIGTERM from the test's cleanup: exit at once, no drain.
process.on("SIGTERM", () => process.exit(143));
process.on("unhandledRejection", (err) => log("unhandledRejection", String(err?.stack ?? err)));
