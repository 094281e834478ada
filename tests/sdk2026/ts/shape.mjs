// Shape test of the 2026-04-01 protocol: `node shape.mjs <report.json>`.
//
// Sends every request kind of protocol-2026.md §3 with plain fetch to POST / of RESONATE_URL,
// drives each task through its states (create → fence → suspend 200 → acquire → fulfill →
// acquire → suspend 300 → release → halt → continue → acquire → fulfill), and checks each reply:
//   - HTTP status == the expected status == head.status; Content-Type JSON (404 too);
//   - kind and corrId echoed, head.version "2026-04-01";
//   - the SDK's own exported guard for that kind (isPromiseGetRes, isTaskFenceRes, …) accepts it;
//   - no `null` anywhere (§10.3: absent fields are omitted, never null);
//   - error replies (4xx) carry a bare string as data;
//   - per-step semantics (states, versions, stored-vs-requested, preload, cursor).
// Also the message stream GET /poll/{group}/{id}: 200 text/event-stream, an `execute` and an
// `unblock` that pass isExecuteMsg / isUnblockMsg.
// Writes {checks: [{name, kind, expect, status, ok, problems, sent, reply}], passed, failed}.
import { writeFileSync } from "node:fs";
import { SERVER_URL, sdk } from "./lib.mjs";

const out = process.argv[2];
const POLL_URL = process.env.SDK_POLL_URL; // the REST-era poll listener, for P9
const VERSION = "2026-04-01";
const R = `shape${Date.now().toString(36)}`;
const checks = [];
let seq = 0;

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");

const GUARDS = {
  "promise.get": sdk.isPromiseGetRes,
  "promise.create": sdk.isPromiseCreateRes,
  "promise.settle": sdk.isPromiseSettleRes,
  "promise.register_callback": sdk.isPromiseRegisterCallbackRes,
  "promise.register_listener": sdk.isPromiseRegisterListenerRes,
  "promise.search": sdk.isPromiseSearchRes,
  "task.get": sdk.isTaskGetRes,
  "task.create": sdk.isTaskCreateRes,
  "task.acquire": sdk.isTaskAcquireRes,
  "task.release": sdk.isTaskReleaseRes,
  "task.suspend": sdk.isTaskSuspendRes,
  "task.halt": sdk.isTaskHaltRes,
  "task.continue": sdk.isTaskContinueRes,
  "task.fulfill": sdk.isTaskFulfillRes,
  "task.fence": sdk.isTaskFenceRes,
  "task.heartbeat": sdk.isTaskHeartbeatRes,
  "task.search": sdk.isTaskSearchRes,
  "schedule.get": sdk.isScheduleGetRes,
  "schedule.create": sdk.isScheduleCreateRes,
  "schedule.delete": sdk.isScheduleDeleteRes,
  "schedule.search": sdk.isScheduleSearchRes,
  "debug.snap": sdk.isDebugSnapRes,
};

// The request guards too: what we send must be what the SDK itself would send.
const REQUEST_GUARDS = {
  "promise.get": sdk.isPromiseGetReq,
  "promise.create": sdk.isPromiseCreateReq,
  "promise.settle": sdk.isPromiseSettleReq,
  "promise.register_callback": sdk.isPromiseRegisterCallbackReq,
  "promise.register_listener": sdk.isPromiseRegisterListenerReq,
  "promise.search": sdk.isPromiseSearchReq,
  "task.get": sdk.isTaskGetReq,
  "task.create": sdk.isTaskCreateReq,
  "task.acquire": sdk.isTaskAcquireReq,
  "task.release": sdk.isTaskReleaseReq,
  "task.suspend": sdk.isTaskSuspendReq,
  "task.halt": sdk.isTaskHaltReq,
  "task.continue": sdk.isTaskContinueReq,
  "task.fulfill": sdk.isTaskFulfillReq,
  "task.fence": sdk.isTaskFenceReq,
  "task.heartbeat": sdk.isTaskHeartbeatReq,
  "task.search": sdk.isTaskSearchReq,
  "schedule.get": sdk.isScheduleGetReq,
  "schedule.create": sdk.isScheduleCreateReq,
  "schedule.delete": sdk.isScheduleDeleteReq,
  "schedule.search": sdk.isScheduleSearchReq,
  "debug.snap": sdk.isDebugSnapReq,
};

function nulls(value, path = "$", found = []) {
  if (value === null) found.push(path);
  else if (Array.isArray(value)) value.forEach((v, i) => nulls(v, `${path}[${i}]`, found));
  else if (typeof value === "object") for (const [k, v] of Object.entries(value)) nulls(v, `${path}.${k}`, found);
  return found;
}

function envelope(kind, data, head = {}) {
  seq += 1;
  return { kind, head: { corrId: `${R}-c${seq}`, version: VERSION, ...head }, data };
}

function createReq(id, { timeoutAt = Date.now() + 60_000, tags = {}, param = { headers: {}, data: b64({ n: 1 }) } } = {}) {
  return envelope("promise.create", { id, timeoutAt, param, tags });
}

function settleReq(id, state = "resolved", value = { headers: {}, data: b64(42) }) {
  return envelope("promise.settle", { id, state, value });
}

function callbackReq(awaiter, awaited) {
  return envelope("promise.register_callback", { awaiter, awaited });
}

/** Lineage tags the SDK puts on a root, a local child and a remote child (§10.1). */
const rootTags = (id, target) => ({
  "resonate:origin": id,
  "resonate:branch": id,
  "resonate:parent": id,
  "resonate:scope": "global",
  ...(target ? { "resonate:target": target } : {}),
});
const localTags = (root) => ({
  "resonate:scope": "local",
  "resonate:branch": root,
  "resonate:parent": root,
  "resonate:origin": root,
});
const remoteTags = (root, id, target) => ({
  "resonate:scope": "global",
  "resonate:target": target,
  "resonate:branch": id,
  "resonate:parent": root,
  "resonate:origin": root,
});

function clip(value, n = 3000) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text && text.length > n ? `${text.slice(0, n)}…` : text;
}

/**
 * Send `req` (an envelope, or a raw string body), check the reply against `expect` (status)
 * and `semantics(reply)` (returns a list of problems), record a check named `name`.
 */
async function call(name, req, expect, semantics = () => []) {
  const body = typeof req === "string" ? req : JSON.stringify(req);
  const problems = [];
  let status;
  let reply;
  let text;
  // (Requests meant to be rejected with 400 may fail the request guard on purpose.)
  if (expect !== 400 && typeof req !== "string" && REQUEST_GUARDS[req.kind] && !REQUEST_GUARDS[req.kind](req)) {
    problems.push("test bug: the request fails the SDK's own request guard");
  }
  try {
    const res = await fetch(`${SERVER_URL}/`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    status = res.status;
    text = await res.text();
    const type = res.headers.get("content-type") ?? "";
    if (!type.includes("application/json")) problems.push(`Content-Type ${JSON.stringify(type)} is not JSON`);
    try {
      reply = JSON.parse(text);
    } catch {
      problems.push("body is not JSON");
    }
  } catch (err) {
    problems.push(`network error: ${err?.message ?? err}`);
  }
  if (status !== undefined && status !== expect) problems.push(`HTTP ${status}, expected ${expect}`);
  if (reply !== undefined) {
    if (typeof reply !== "object" || reply === null) problems.push("reply is not an object");
    else {
      const expectKind = typeof req === "string" ? undefined : req.kind;
      if (expectKind !== undefined && reply.kind !== expectKind) problems.push(`kind ${JSON.stringify(reply.kind)} not echoed (${expectKind})`);
      if (typeof req !== "string" && typeof req.head?.corrId === "string" && reply.head?.corrId !== req.head.corrId) {
        problems.push(`corrId ${JSON.stringify(reply.head?.corrId)} not echoed`);
      }
      if (reply.head?.status !== status) problems.push(`head.status ${reply.head?.status} != HTTP ${status}`);
      if (reply.head?.version !== VERSION) problems.push(`head.version ${JSON.stringify(reply.head?.version)}`);
      const guard = GUARDS[reply.kind];
      if (guard && !guard(reply)) problems.push(`${guard.name}() rejects the reply`);
      if (!guard && status === 200) problems.push(`no guard for kind ${reply.kind}`);
      const nullPaths = nulls(reply);
      if (nullPaths.length) problems.push(`null at ${nullPaths.join(", ")}`);
      if (status >= 400 && typeof reply.data !== "string") problems.push("error data is not a string");
      if (status === expect && problems.length === 0) {
        try {
          problems.push(...semantics(reply));
        } catch (err) {
          problems.push(`semantics check threw: ${err?.message ?? err}`);
        }
      }
    }
  }
  const kind = typeof req === "string" ? "(raw)" : req.kind;
  checks.push({ name, kind, expect, status, ok: problems.length === 0, problems, sent: clip(body), reply: clip(reply ?? text) });
  return reply;
}

const expectEq = (what, actual, expected) =>
  JSON.stringify(actual) === JSON.stringify(expected) ? [] : [`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`];
const expectAbsent = (what, obj, key) => (obj && key in obj ? [`${what}.${key} present (${JSON.stringify(obj[key])}), expected omitted`] : []);
const expectType = (what, value, type) => (typeof value === type ? [] : [`${what}: ${JSON.stringify(value)} is not a ${type}`]);

// ---------------------------------------------------------------------------------------------
// Promises

async function promises() {
  const p1 = `${R}-p1`;
  const created = await call("promise.create new", createReq(p1, { tags: { shape: R, k: "v" } }), 200, (r) => [
    ...expectEq("state", r.data.promise.state, "pending"),
    ...expectAbsent("promise", r.data.promise, "settledAt"),
    ...expectEq("tags.k", r.data.promise.tags.k, "v"),
    ...expectEq("value", r.data.promise.value, {}),
  ]);
  const stored = checks.at(-1).ok ? created.data.promise : undefined;
  await call("promise.create existing -> stored", createReq(p1, { timeoutAt: Date.now() + 999_999, tags: { k: "other" } }), 200, (r) => [
    ...expectEq("tags.k (stored)", r.data.promise.tags.k, "v"),
    ...(stored ? expectEq("timeoutAt (stored)", r.data.promise.timeoutAt, stored.timeoutAt) : []),
  ]);
  await call("promise.get", envelope("promise.get", { id: p1 }), 200, (r) => expectEq("id", r.data.promise.id, p1));
  await call("promise.get missing", envelope("promise.get", { id: `${R}-missing` }), 404);
  await call("promise.settle", settleReq(p1), 200, (r) => [
    ...expectEq("state", r.data.promise.state, "resolved"),
    ...expectType("settledAt", r.data.promise.settledAt, "number"),
    ...expectEq("value.data", r.data.promise.value.data, b64(42)),
  ]);
  await call("promise.settle again -> stored", settleReq(p1, "rejected"), 200, (r) => expectEq("state", r.data.promise.state, "resolved"));
  await call("promise.settle missing", settleReq(`${R}-missing`), 404);
  await call("promise.create past timeout", createReq(`${R}-p2`, { timeoutAt: 1, tags: { shape: R } }), 200, (r) => [
    ...expectEq("state", r.data.promise.state, "rejected_timedout"),
    ...expectType("settledAt", r.data.promise.settledAt, "number"),
  ]);
  await call("promise.create past timeout timer", createReq(`${R}-p3`, { timeoutAt: 1, tags: { shape: R, "resonate:timer": "true" } }), 200, (r) =>
    expectEq("state", r.data.promise.state, "resolved"),
  );
  await call("promise.create bad id (origin tag with ':')", createReq(`${R}-p4`, { tags: { "resonate:origin": `${R}:x` } }), 400);
  // Search: 3 promises carry the shape tag; pages of 2.
  const first = await call("promise.search page 1", envelope("promise.search", { tags: { shape: R }, limit: 2 }), 200, (r) => [
    ...expectEq("ids", r.data.promises.map((p) => p.id), [p1, `${R}-p2`]),
    ...expectType("cursor", r.data.cursor, "string"),
  ]);
  if (first?.data?.cursor) {
    await call("promise.search page 2", envelope("promise.search", { tags: { shape: R }, limit: 2, cursor: first.data.cursor }), 200, (r) => [
      ...expectEq("ids", r.data.promises.map((p) => p.id), [`${R}-p3`]),
      ...expectAbsent("data", r.data, "cursor"),
    ]);
  }
  await call("promise.search state", envelope("promise.search", { state: "rejected_timedout", tags: { shape: R } }), 200, (r) =>
    expectEq("ids", r.data.promises.map((p) => p.id), [`${R}-p2`]),
  );
  await call("promise.search limit > 1000", envelope("promise.search", { limit: 5000 }), 400);

  // Lazy timeout (§7): read after its timeoutAt, a pending promise is settled by timeout:
  // rejected_timedout, or resolved for a resonate:timer one; settledAt = timeoutAt.
  const soon = Date.now() + 300;
  await call("promise.create short timeout", createReq(`${R}-lazy`, { timeoutAt: soon }), 200);
  await call("promise.create short timeout timer", createReq(`${R}-lazyt`, { timeoutAt: soon, tags: { "resonate:timer": "true" } }), 200);
  while (Date.now() <= soon + 20) await new Promise((r) => setTimeout(r, 25));
  await call("promise.get overdue -> rejected_timedout", envelope("promise.get", { id: `${R}-lazy` }), 200, (r) => [
    ...expectEq("state", r.data.promise.state, "rejected_timedout"),
    ...expectEq("settledAt", r.data.promise.settledAt, soon),
  ]);
  await call("promise.get overdue timer -> resolved", envelope("promise.get", { id: `${R}-lazyt` }), 200, (r) => [
    ...expectEq("state", r.data.promise.state, "resolved"),
    ...expectEq("settledAt", r.data.promise.settledAt, soon),
  ]);

  // resonate:delay: an integer >= 0 below timeoutAt, with a target.
  const later = Date.now() + 30_000;
  await call("promise.create resonate:delay with target", createReq(`${R}-delay`, { tags: { "resonate:target": `poll://any@${R}-nobody`, "resonate:delay": String(later) } }), 200);
  await call("promise.create resonate:delay without target -> 400", createReq(`${R}-delay2`, { tags: { "resonate:delay": String(later) } }), 400);
  await call("promise.create resonate:delay not an integer -> 400", createReq(`${R}-delay3`, { tags: { "resonate:target": `poll://any@${R}-nobody`, "resonate:delay": "soon" } }), 400);
  await call("promise.create bad target address -> 400", createReq(`${R}-badtarget`, { tags: { "resonate:target": "poll://nogroup" } }), 400);

  // Head fields: unknown ones and resonate:origin are ignored; resonate:debug_time is ignored
  // outside debug mode (were it read, a timeoutAt of now + 60 s would be long past at 1 ms).
  const head = { "resonate:origin": `${R}-h`, "x-unknown": "1", "resonate:debug_time": Date.now() + 3_600_000 };
  await call("unknown head fields ignored, debug_time ignored", envelope("promise.create", createReq(`${R}-h`).data, head), 200, (r) =>
    expectEq("state", r.data.promise.state, "pending"),
  );

  // Ids (§4.4, lenient variant P4): `<tag>:` and `<tag>.` both extend a tag; ':' in an
  // origin is refused.
  const old = `${R}-old`;
  await call("id rule: child minted `root.1` (SDK <= 0.11.4)", createReq(`${old}.1`, { tags: { "resonate:origin": old, "resonate:parent": old, "resonate:branch": old } }), 200);
  await call("id rule: child `root:1` (SDK 0.11.5)", createReq(`${old}:1`, { tags: { "resonate:origin": old, "resonate:parent": old, "resonate:branch": old } }), 200);
  await call("id rule: id does not extend its origin -> 400", createReq(`${R}-other:1`, { tags: { "resonate:origin": old } }), 400);
  await call("id rule: NUL in id -> 400", createReq(`${R}-nul\u0000`), 400);
}

// ---------------------------------------------------------------------------------------------
// Tasks, callbacks, listeners

async function tasks() {
  const wf = `${R}-wf`;
  const pid = `${R}-pid`;
  const target = `poll://any@${R}-g/${pid}`;
  const taskCreate = (id, tags, ttl = 30_000) => envelope("task.create", { pid, ttl, action: createReq(id, { tags }) });

  await call("task.create new -> acquired v1", taskCreate(wf, rootTags(wf, target)), 200, (r) => [
    ...expectEq("task.state", r.data.task?.state, "acquired"),
    ...expectEq("task.version", r.data.task?.version, 1),
    ...expectEq("task.pid", r.data.task?.pid, pid),
    ...expectEq("task.ttl", r.data.task?.ttl, 30_000),
    ...expectEq("promise.id", r.data.promise.id, wf),
    ...expectEq("preload", r.data.preload, []),
  ]);
  await call("task.create live -> 409", taskCreate(wf, rootTags(wf, target)), 409);
  await call("task.get acquired", envelope("task.get", { id: wf }), 200, (r) => [
    ...expectEq("state", r.data.task.state, "acquired"),
    ...expectEq("pid", r.data.task.pid, pid),
    ...expectType("ttl", r.data.task.ttl, "number"),
  ]);
  await call("task.get missing", envelope("task.get", { id: `${R}-missing` }), 404);
  await call("task.heartbeat (several origins)", envelope("task.heartbeat", { pid, tasks: [{ id: wf, version: 1 }, { id: `${R}-other`, version: 3 }] }), 200, (r) =>
    expectEq("data", r.data, {}),
  );

  // Fenced creates and settles (a local child, a settle of a missing promise, a remote child).
  const fence = (version, action, id = wf) => envelope("task.fence", { id, version, action });
  await call("task.fence create local child", fence(1, createReq(`${wf}:0`, { tags: localTags(wf) })), 200, (r) => [
    ...expectEq("action.kind", r.data.action.kind, "promise.create"),
    ...expectEq("action.head.status", r.data.action.head.status, 200),
    ...expectEq("action.promise.state", r.data.action.data.promise.state, "pending"),
  ]);
  await call("task.fence settle local child", fence(1, settleReq(`${wf}:0`)), 200, (r) => [
    ...expectEq("action.kind", r.data.action.kind, "promise.settle"),
    ...expectEq("action.promise.state", r.data.action.data.promise.state, "resolved"),
  ]);
  await call("task.fence settle missing -> inner 404", fence(1, settleReq(`${wf}:404`)), 200, (r) => [
    ...expectEq("action.head.status", r.data.action.head.status, 404),
    ...expectType("action.data", r.data.action.data, "string"),
  ]);
  await call("task.fence wrong version -> 409", fence(7, createReq(`${wf}:9`, { tags: localTags(wf) })), 409);
  await call("task.fence missing task -> 404", fence(1, createReq(`${R}-nowf:0`), `${R}-nowf`), 404);
  const remote = `poll://any@${R}-remote`;
  await call("task.fence create remote child", fence(1, createReq(`${wf}:1`, { tags: remoteTags(wf, `${wf}:1`, remote) })), 200, (r) =>
    expectEq("action.promise.state", r.data.action.data.promise.state, "pending"),
  );
  await call("task.get remote child pending v0", envelope("task.get", { id: `${wf}:1` }), 200, (r) => [
    ...expectEq("state", r.data.task.state, "pending"),
    ...expectEq("version", r.data.task.version, 0),
    ...expectAbsent("task", r.data.task, "pid"),
    ...expectAbsent("task", r.data.task, "ttl"),
  ]);

  // Suspend on the pending remote child: 200, suspended.
  const suspend = (version, awaited, id = wf) => envelope("task.suspend", { id, version, actions: awaited.map((a) => callbackReq(id, a)) });
  await call("task.suspend -> 200 suspended", suspend(1, [`${wf}:1`]), 200, (r) => expectEq("data", r.data, {}));
  await call("task.get suspended", envelope("task.get", { id: wf }), 200, (r) => [
    ...expectEq("state", r.data.task.state, "suspended"),
    ...expectAbsent("task", r.data.task, "pid"),
  ]);
  await call("task.suspend not acquired -> 409", suspend(1, [`${wf}:1`]), 409);

  // The remote child: acquire (404/409 first), fulfill.
  const acquire = (id, version, who = `${R}-remote-pid`) => envelope("task.acquire", { id, version, pid: who, ttl: 30_000 });
  await call("task.acquire wrong version -> 409", acquire(`${wf}:1`, 5), 409);
  await call("task.acquire missing -> 404", acquire(`${R}-missing`, 0), 404);
  await call("task.acquire remote child", acquire(`${wf}:1`, 0), 200, (r) => [
    ...expectEq("task.state", r.data.task?.state, "acquired"),
    ...expectEq("task.version", r.data.task?.version, 1),
    ...expectEq("promise.id", r.data.promise.id, `${wf}:1`),
  ]);
  const fulfill = (id, version, state = "resolved") => envelope("task.fulfill", { id, version, action: settleReq(id, state) });
  await call("task.fulfill remote child", fulfill(`${wf}:1`, 1), 200, (r) => expectEq("promise.state", r.data.promise.state, "resolved"));
  await call("task.fulfill again -> 409", fulfill(`${wf}:1`, 1), 409);
  await call("task.fulfill missing -> 404", fulfill(`${R}-missing`, 1), 404);
  await call("task.get woken -> pending", envelope("task.get", { id: wf }), 200, (r) => [
    ...expectEq("state", r.data.task.state, "pending"),
    ...expectEq("version", r.data.task.version, 1),
  ]);
  await call("task.search pending", envelope("task.search", { state: "pending", limit: 1000 }), 200, (r) =>
    r.data.tasks.some((t) => t.id === wf) ? [] : [`${wf} not among the pending tasks`],
  );
  await call("task.search limit 1 -> cursor", envelope("task.search", { limit: 1 }), 200, (r) => [
    ...expectEq("tasks.length", r.data.tasks.length, 1),
    ...expectType("cursor", r.data.cursor, "string"),
  ]);
  await call("task.search limit > 1000", envelope("task.search", { limit: 5000 }), 400);

  // Re-acquire the workflow: preload = its local child only.
  await call("task.acquire workflow v1 -> v2 + preload", acquire(wf, 1, pid), 200, (r) => [
    ...expectEq("task.version", r.data.task?.version, 2),
    ...expectEq("preload ids", r.data.preload.map((p) => p.id), [`${wf}:0`]),
  ]);
  await call("task.suspend on a settled awaited -> 300", suspend(2, [`${wf}:1`]), 300, (r) => [
    ...(Array.isArray(r.data.preload) ? [] : ["no preload"]),
  ]);
  await call("task.get still acquired after 300", envelope("task.get", { id: wf }), 200, (r) => [
    ...expectEq("state", r.data.task.state, "acquired"),
    ...expectEq("version", r.data.task.version, 2),
  ]);
  await call("task.suspend awaited missing -> 422", suspend(2, [`${wf}:404`]), 422);
  await call("task.suspend missing task -> 404", suspend(1, [`${R}-nowf:1`], `${R}-nowf`), 404);
  await call("task.release", envelope("task.release", { id: wf, version: 2 }), 200, (r) => expectEq("data", r.data, {}));
  await call("task.release again -> 409", envelope("task.release", { id: wf, version: 2 }), 409);
  await call("task.release missing -> 404", envelope("task.release", { id: `${R}-missing`, version: 0 }), 404);
  await call("task.get released -> pending v2", envelope("task.get", { id: wf }), 200, (r) => [
    ...expectEq("state", r.data.task.state, "pending"),
    ...expectEq("version", r.data.task.version, 2),
  ]);

  await call("task.halt", envelope("task.halt", { id: wf }), 200, (r) => expectEq("data", r.data, {}));
  await call("task.halt again", envelope("task.halt", { id: wf }), 200);
  await call("task.get halted", envelope("task.get", { id: wf }), 200, (r) => expectEq("state", r.data.task.state, "halted"));
  await call("task.acquire halted -> 409", acquire(wf, 2, pid), 409);
  await call("task.continue", envelope("task.continue", { id: wf }), 200, (r) => expectEq("data", r.data, {}));
  await call("task.continue not halted -> 409", envelope("task.continue", { id: wf }), 409);
  await call("task.continue missing -> 404", envelope("task.continue", { id: `${R}-missing` }), 404);
  await call("task.halt missing -> 404", envelope("task.halt", { id: `${R}-missing` }), 404);
  await call("task.acquire workflow v2 -> v3", acquire(wf, 2, pid), 200, (r) => expectEq("task.version", r.data.task?.version, 3));
  await call("task.fulfill workflow", fulfill(wf, 3), 200, (r) => expectEq("promise.state", r.data.promise.state, "resolved"));
  await call("task.halt fulfilled -> 409", envelope("task.halt", { id: wf }), 409);
  await call("task.create on a fulfilled task -> 200", taskCreate(wf, rootTags(wf, target)), 200, (r) => [
    ...expectEq("task.state", r.data.task?.state, "fulfilled"),
    ...expectEq("promise.state", r.data.promise.state, "resolved"),
    ...expectEq("preload", r.data.preload, []),
  ]);
  const plain = `${R}-plain`;
  await call("promise.create plain (no target)", createReq(plain, { tags: rootTags(plain) }), 200);
  await call("task.create on a promise without task -> 422", taskCreate(plain, rootTags(plain, target)), 422);
  await call("task.create past timeout -> fulfilled v0", envelope("task.create", { pid, ttl: 30_000, action: createReq(`${R}-late`, { timeoutAt: 1, tags: rootTags(`${R}-late`, target) }) }), 200, (r) => [
    ...expectEq("promise.state", r.data.promise.state, "rejected_timedout"),
    ...(r.data.task ? expectEq("task.state", r.data.task.state, "fulfilled") : []),
  ]);
  await call("task.create without target -> 400", taskCreate(`${R}-notarget`, rootTags(`${R}-notarget`)), 400);
  await call(
    "task.create with resonate:delay -> 400",
    taskCreate(`${R}-delayed`, { ...rootTags(`${R}-delayed`, target), "resonate:delay": String(Date.now() + 1000) }),
    400,
  );

  // promise.settle of a promise that has a task fulfils the task (§5).
  const st = `${R}-st`;
  await call("promise.create with target (task pending v0)", createReq(st, { tags: rootTags(st, `poll://any@${R}-nobody`) }), 200);
  await call("promise.settle of a promise with a task", settleReq(st), 200);
  await call("task.get -> fulfilled by the settle", envelope("task.get", { id: st }), 200, (r) => expectEq("state", r.data.task.state, "fulfilled"));

  // register_callback on an already settled awaited wakes a suspended awaiter (§3.1).
  const w = `${R}-wake`;
  await call("task.create (wake)", taskCreate(w, rootTags(w, target)), 200);
  await call("task.fence create pending child (wake)", fence(1, createReq(`${w}:0`, { tags: remoteTags(w, `${w}:0`, `poll://any@${R}-nobody`) }), w), 200);
  await call("task.suspend (wake)", suspend(1, [`${w}:0`], w), 200);
  await call("promise.create settled child (wake)", createReq(`${w}:1`, { timeoutAt: 1, tags: { "resonate:origin": w, "resonate:parent": w, "resonate:branch": `${w}:1` } }), 200);
  await call("promise.register_callback on a settled awaited", callbackReq(w, `${w}:1`), 200, (r) => expectEq("promise.state", r.data.promise.state, "rejected_timedout"));
  await call("task.get -> suspended awaiter woken (pending)", envelope("task.get", { id: w }), 200, (r) => expectEq("state", r.data.task.state, "pending"));

  // Callbacks and listeners.
  const cb = `${R}-cb`;
  await call("promise.create awaiter with target", createReq(cb, { tags: rootTags(cb, `poll://any@${R}-nobody`) }), 200);
  await call("promise.create awaited", createReq(`${cb}:1`, { tags: remoteTags(cb, `${cb}:1`, `poll://any@${R}-nobody`) }), 200);
  await call("promise.register_callback", callbackReq(cb, `${cb}:1`), 200, (r) => [
    ...expectEq("promise.id (awaited)", r.data.promise.id, `${cb}:1`),
    ...expectEq("promise.state", r.data.promise.state, "pending"),
  ]);
  await call("promise.register_callback awaited missing -> 404", callbackReq(cb, `${cb}:9`), 404);
  await call("promise.create awaited of plain", createReq(`${plain}:1`, { tags: localTags(plain) }), 200);
  await call("promise.register_callback awaiter without target -> 422", callbackReq(plain, `${plain}:1`), 422);
  await call("promise.create awaited of ghost", createReq(`${R}-ghost:1`, { tags: { "resonate:origin": `${R}-ghost` } }), 200);
  await call("promise.register_callback awaiter missing -> 422", callbackReq(`${R}-ghost`, `${R}-ghost:1`), 422);
  await call("promise.register_callback across origins -> 400", callbackReq(cb, `${plain}:1`), 400);
  // A dotted root (0.11.5 allows '.' in a root id) and its child share an origin.
  const dotted = `${R}.my.app`;
  await call("promise.create dotted root with target", createReq(dotted, { tags: rootTags(dotted, `poll://any@${R}-nobody`) }), 200);
  await call("promise.create child of dotted root", createReq(`${dotted}:1`, { tags: remoteTags(dotted, `${dotted}:1`, `poll://any@${R}-nobody`) }), 200);
  await call("promise.register_callback dotted root <- its child", callbackReq(dotted, `${dotted}:1`), 200);
  const listener = (awaited, address) => envelope("promise.register_listener", { awaited, address });
  await call("promise.register_listener", listener(`${cb}:1`, `poll://uni@${R}-g/listener`), 200, (r) => [
    ...expectEq("promise.id", r.data.promise.id, `${cb}:1`),
    ...expectEq("promise.state", r.data.promise.state, "pending"),
  ]);
  await call("promise.register_listener settled", listener(`${R}-p1`, `poll://uni@${R}-g/listener`), 200, (r) =>
    expectEq("promise.state", r.data.promise.state, "resolved"),
  );
  await call("promise.register_listener bad address -> 400", listener(`${cb}:1`, "not an address"), 400);
  await call("promise.register_listener missing -> 404", listener(`${R}-missing`, `poll://uni@${R}-g/listener`), 404);
}

// ---------------------------------------------------------------------------------------------
// Schedules

async function schedules() {
  const id = `${R}-sched`;
  const create = (sid, cron = "0 0 1 1 *") =>
    envelope("schedule.create", {
      id: sid,
      cron,
      promiseId: "{{.id}}-{{.timestamp}}",
      promiseTimeout: 60_000,
      promiseParam: { headers: {}, data: b64({ func: "f", args: [] }) },
      promiseTags: { "resonate:target": `poll://any@${R}-g`, shape: R },
    });
  await call("schedule.create", create(id), 200, (r) => [
    ...expectEq("id", r.data.schedule.id, id),
    ...expectAbsent("schedule", r.data.schedule, "lastRunAt"),
    ...(r.data.schedule.nextRunAt > Date.now() ? [] : ["nextRunAt not in the future"]),
  ]);
  await call("schedule.create existing -> stored", create(id, "*/5 * * * *"), 200, (r) => expectEq("cron (stored)", r.data.schedule.cron, "0 0 1 1 *"));
  await call("schedule.create second", create(`${id}2`), 200);
  await call("schedule.create bad cron -> 400", create(`${id}3`, "not a cron"), 400);
  await call("schedule.create id with '.' -> 400", create(`${id}.4`), 400);
  const noTarget = create(`${id}5`);
  delete noTarget.data.promiseTags["resonate:target"];
  await call("schedule.create without resonate:target -> 400", noTarget, 400);
  await call("schedule.get", envelope("schedule.get", { id }), 200, (r) => expectEq("id", r.data.schedule.id, id));
  await call("schedule.get missing -> 404", envelope("schedule.get", { id: `${R}-missing` }), 404);
  await call("schedule.search", envelope("schedule.search", { tags: { shape: R } }), 200, (r) => [
    ...expectEq("ids", r.data.schedules.map((s) => s.id).sort(), [id, `${id}2`]),
    ...expectAbsent("data", r.data, "cursor"),
  ]);
  await call("schedule.search limit 1 -> cursor", envelope("schedule.search", { tags: { shape: R }, limit: 1 }), 200, (r) => [
    ...expectEq("schedules.length", r.data.schedules.length, 1),
    ...expectType("cursor", r.data.cursor, "string"),
  ]);
  await call("schedule.delete", envelope("schedule.delete", { id }), 200, (r) => expectEq("data", r.data, {}));
  await call("schedule.delete again -> 404", envelope("schedule.delete", { id }), 404);
  await call("schedule.get deleted -> 404", envelope("schedule.get", { id }), 404);
}

// ---------------------------------------------------------------------------------------------
// Envelope errors (§2): JSON, data a string, kind/corrId echoed where they can be.

async function envelopeErrors() {
  await call("unknown kind -> 400", envelope("promise.nope", { id: "x" }), 400);
  await call("wrong version -> 400", { ...envelope("promise.get", { id: "x" }), head: { corrId: `${R}-v`, version: "2025-01-01" } }, 400);
  await call("data not an object -> 400", envelope("promise.get", ["x"]), 400);
  await call("invalid data -> 400", envelope("promise.create", { id: 7 }), 400);
  await call("debug.snap outside debug mode -> 403", envelope("debug.snap", {}), 403);
  await call("no corrId -> 400", JSON.stringify({ kind: "promise.get", head: { version: VERSION }, data: { id: "x" } }), 400, (r) =>
    [...expectEq("kind", r.kind, "promise.get"), ...expectType("head.corrId", r.head.corrId, "string")],
  );
  await call("unparsable body -> 400", "{not json", 400, (r) => [...expectType("kind", r.kind, "string"), ...expectType("head.corrId", r.head.corrId, "string")]);
}

// ---------------------------------------------------------------------------------------------
// The message stream (§6.2)

async function probes() {
  for (const path of ["/health", "/ready"]) {
    const problems = [];
    let status;
    try {
      const res = await fetch(`${SERVER_URL}${path}`);
      status = res.status;
      if (status !== 200) problems.push(`HTTP ${status}`);
    } catch (err) {
      problems.push(String(err?.message ?? err));
    }
    checks.push({ name: `GET ${path}`, kind: "http", expect: 200, status, ok: problems.length === 0, problems, sent: `GET ${path}`, reply: "" });
  }
}

/** Open an SSE stream; its `data:` payloads accumulate in `events`. */
async function openStream(url, controller) {
  const events = [];
  const res = await fetch(url, { signal: controller.signal, headers: { Accept: "text/event-stream" } });
  if (res.status === 200 && res.body) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    (async () => {
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
          let cut = buffer.indexOf("\n\n");
          while (cut !== -1) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const data = block
              .split("\n")
              .filter((l) => l.startsWith("data:"))
              .map((l) => l.slice(5).replace(/^ /, ""))
              .join("\n");
            if (data) events.push(data);
            cut = buffer.indexOf("\n\n");
          }
        }
      } catch {
        // aborted
      }
    })();
  }
  return { res, events };
}

async function stream() {
  const group = `${R}-sse`;
  const problems = [];
  const controller = new AbortController();
  let res;
  let events = [];
  try {
    ({ res, events } = await openStream(`${SERVER_URL}/poll/${group}/w1`, controller));
  } catch (err) {
    problems.push(`GET /poll: ${err?.message ?? err}`);
  }
  const type = res?.headers.get("content-type") ?? "";
  if (res && res.status !== 200) problems.push(`GET /poll: HTTP ${res.status}`);
  if (res && !type.startsWith("text/event-stream")) problems.push(`GET /poll: Content-Type ${type}`);
  checks.push({ name: "GET /poll/{group}/{id}", kind: "sse", expect: 200, status: res?.status, ok: problems.length === 0, problems, sent: `GET /poll/${group}/w1`, reply: type });
  if (!res || res.status !== 200 || !res.body) return;
  // A second connection of the group: poll://any@G/w1 prefers w1 and poll://uni@G/w1 goes
  // to w1 only (§6.1), so w2 must see neither message.
  let sibling;
  try {
    sibling = await openStream(`${SERVER_URL}/poll/${group}/w2`, controller);
  } catch {
    // reported below as missing events
  }
  // P9: the REST-era stream of the same group and id (poll listener) must get none of the
  // 2026 messages.
  let restEvents;
  if (POLL_URL) {
    try {
      const rest = await openStream(`${POLL_URL}/${group}/w1`, controller);
      if (rest.res.status === 200) restEvents = rest.events;
    } catch {
      // no REST stream: nothing to compare
    }
  }

  async function waitEvent(name, predicate, guard) {
    const deadline = Date.now() + 8000;
    const problems = [];
    let found;
    while (Date.now() < deadline && found === undefined) {
      found = events.find((e) => {
        try {
          return predicate(JSON.parse(e));
        } catch {
          return false;
        }
      });
      if (found === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    if (found === undefined) problems.push(`no such event within 8 s; events: ${clip(events)}`);
    else {
      const msg = JSON.parse(found);
      if (!guard(msg)) problems.push(`${guard.name}() rejects the message`);
      const nullPaths = nulls(msg);
      if (nullPaths.length) problems.push(`null at ${nullPaths.join(", ")}`);
    }
    checks.push({ name, kind: "sse", expect: "event", status: found ? "event" : "none", ok: problems.length === 0, problems, sent: "", reply: clip(found ?? "") });
    return found && JSON.parse(found);
  }

  const id = `${R}-ssewf`;
  await call("promise.create with a target on the stream", createReq(id, { tags: rootTags(id, `poll://any@${group}/w1`) }), 200);
  const execute = await waitEvent("sse execute", (m) => m.kind === "execute" && m.data?.task?.id === id, sdk.isExecuteMsg);
  if (execute) {
    checks.at(-1).problems.push(...expectEq("execute version", execute.data.task.version, 0), ...expectType("head.serverUrl", execute.head?.serverUrl, "string"));
    checks.at(-1).ok = checks.at(-1).problems.length === 0;
  }
  await call("promise.register_listener on the stream", envelope("promise.register_listener", { awaited: id, address: `poll://uni@${group}/w1` }), 200);
  await call("promise.settle (fires the listener)", settleReq(id), 200);
  const unblock = await waitEvent("sse unblock", (m) => m.kind === "unblock" && m.data?.promise?.id === id, sdk.isUnblockMsg);
  if (unblock) {
    checks.at(-1).problems.push(...expectEq("unblock state", unblock.data.promise.state, "resolved"));
    checks.at(-1).ok = checks.at(-1).problems.length === 0;
  }
  if (sibling?.res?.status === 200) {
    const leaked = sibling.events.filter((e) => e.includes(id));
    checks.push({
      name: "the sibling connection w2 gets neither the execute nor the unblock (§6.1)",
      kind: "sse",
      expect: "none",
      status: leaked.length ? "leaked" : "none",
      ok: leaked.length === 0,
      problems: leaked.length ? [`w2 got: ${clip(leaked)}`] : [],
      sent: `GET /poll/${group}/w2`,
      reply: clip(sibling.events),
    });
  }
  if (restEvents !== undefined) {
    const leaked = restEvents.filter((e) => e.includes(id));
    checks.push({
      name: "REST stream of the same group gets no 2026 message (P9)",
      kind: "sse",
      expect: "none",
      status: leaked.length ? "leaked" : "none",
      ok: leaked.length === 0,
      problems: leaked.length ? [`the REST stream got: ${clip(leaked)}`] : [],
      sent: `GET ${POLL_URL}/${group}/w1`,
      reply: clip(restEvents),
    });
  }
  controller.abort();
}

// ---------------------------------------------------------------------------------------------

const sections = { promises, tasks, schedules, envelopeErrors, probes, stream };
for (const [name, section] of Object.entries(sections)) {
  try {
    await section();
  } catch (err) {
    checks.push({ name: `${name} (aborted)`, kind: "-", ok: false, problems: [String(err?.stack ?? err)] });
  }
}
const failed = checks.filter((c) => !c.ok);
const report = { prefix: R, passed: checks.length - failed.length, failed: failed.length, checks };
writeFileSync(out, JSON.stringify(report, null, 1));
for (const c of checks) process.stdout.write(`${c.ok ? "ok  " : "FAIL"} ${c.name}${c.ok ? "" : ` :: ${c.problems.join("; ")}`}\n`);
process.stdout.write(`${report.passed} passed, ${report.failed} failed\n`);
process.exit(0);
