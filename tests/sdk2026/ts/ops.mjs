// The SDK's client API against the server: `node ops.mjs <report.json> <group> <pid> <target>`.
//
// resonate.promises.create/get/resolve/reject/cancel/createWithTask/registerCallback/
// registerListener, resonate.schedules.create/get/delete, resonate.get(id) handles, and
// resonate.schedule(name, cron, func, ...args) whose firings run `square` on <target>.
// Each step is {name, ok, problems, value}; the SDK throws on any non-200 answer, and a reply
// that fails its guards surfaces as a ResonateTimeoutException (so a step that throws fails).
import { writeFileSync } from "node:fs";
import { connect, log } from "./lib.mjs";

const [out, group, pid, target] = process.argv.slice(2);
const resonate = await connect({ group, pid, ttl: 60_000 });
const R = `ops${Date.now().toString(36)}`;
const steps = [];
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");
const unb64 = (data) => (data ? JSON.parse(Buffer.from(data, "base64").toString()) : undefined);

async function step(name, fn) {
  const problems = [];
  let value;
  try {
    value = await fn(problems);
  } catch (err) {
    problems.push(`threw ${err?.constructor?.name}: ${err?.message ?? err}`);
  }
  steps.push({ name, ok: problems.length === 0, problems, value });
  log(problems.length ? "FAIL" : "ok", name, problems.join("; "));
  return value;
}

const eq = (problems, what, actual, expected) => {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) problems.push(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
};

const inAMinute = () => Date.now() + 60_000;

// Promises
await step("promises.create", async (p) => {
  const promise = await resonate.promises.create(`${R}-a`, inAMinute(), { data: b64({ x: 1 }), tags: { ops: R } });
  eq(p, "state", promise.state, "pending");
  eq(p, "param", unb64(promise.param.data), { x: 1 });
  return promise;
});
await step("promises.create again -> stored", async (p) => {
  const promise = await resonate.promises.create(`${R}-a`, inAMinute() + 5000, { data: b64({ x: 2 }) });
  eq(p, "param (stored)", unb64(promise.param.data), { x: 1 });
});
await step("promises.get", async (p) => eq(p, "id", (await resonate.promises.get(`${R}-a`)).id, `${R}-a`));
await step("promises.get missing throws", async (p) => {
  try {
    await resonate.promises.get(`${R}-missing`);
    p.push("did not throw");
  } catch (err) {
    if (err?.constructor?.name === "ResonateTimeoutException") p.push(`platform failure instead of a 404: ${err.message}`);
  }
});
await step("promises.resolve", async (p) => {
  const promise = await resonate.promises.resolve(`${R}-a`, { data: b64("done") });
  eq(p, "state", promise.state, "resolved");
  eq(p, "value", unb64(promise.value.data), "done");
});
for (const [verb, state] of [
  ["reject", "rejected"],
  ["cancel", "rejected_canceled"],
]) {
  await step(`promises.${verb}`, async (p) => {
    await resonate.promises.create(`${R}-${verb}`, inAMinute());
    eq(p, "state", (await resonate.promises[verb](`${R}-${verb}`, { data: b64(verb) })).state, state);
  });
}
await step("promises.createWithTask", async (p) => {
  const id = `${R}-t`;
  const { promise, task } = await resonate.promises.createWithTask(id, inAMinute(), `${R}-pid`, 30_000, {
    data: b64({ func: "square", args: [2], version: 1 }),
    tags: { "resonate:target": `poll://any@${R}-nobody`, "resonate:origin": id, "resonate:branch": id, "resonate:parent": id },
  });
  eq(p, "promise.state", promise.state, "pending");
  eq(p, "task.state", task?.state, "acquired");
  eq(p, "task.version", task?.version, 1);
});
await step("promises.registerCallback", async (p) => {
  const awaited = `${R}-t:1`;
  await resonate.promises.create(awaited, inAMinute(), { tags: { "resonate:origin": `${R}-t`, "resonate:parent": `${R}-t`, "resonate:branch": awaited } });
  const { promise } = await resonate.promises.registerCallback(awaited, `${R}-t`);
  eq(p, "promise.id", promise.id, awaited);
});
await step("promises.registerListener", async (p) => {
  const { promise } = await resonate.promises.registerListener(`${R}-t:1`, `poll://uni@${group}/${pid}`);
  eq(p, "promise.id", promise.id, `${R}-t:1`);
  eq(p, "promise.state", promise.state, "pending");
});
await step("resonate.get handle + unblock -> result", async (p) => {
  const id = `${R}-l`;
  await resonate.promises.create(id, inAMinute());
  const handle = await resonate.get(id); // registers this process's unicast listener
  const result = handle.result();
  await resonate.promises.resolve(id, { data: b64({ ok: true }) });
  const value = await Promise.race([result, new Promise((_, rej) => setTimeout(() => rej(new Error("no unblock within 10 s")), 10_000))]);
  eq(p, "result", value, { ok: true });
});

// Schedules (client API)
await step("schedules.create/get/delete", async (p) => {
  const id = `${R}-s`;
  const created = await resonate.schedules.create(id, "0 0 1 1 *", "{{.id}}-{{.timestamp}}", 60_000, {
    promiseTags: { "resonate:target": `poll://any@${R}-nobody` },
  });
  eq(p, "created.id", created.id, id);
  if ("lastRunAt" in created) p.push("lastRunAt present before the first firing");
  eq(p, "get.cron", (await resonate.schedules.get(id)).cron, "0 0 1 1 *");
  await resonate.schedules.delete(id);
  try {
    await resonate.schedules.get(id);
    p.push("get after delete did not throw");
  } catch (err) {
    if (err?.constructor?.name === "ResonateTimeoutException") p.push(`platform failure instead of a 404: ${err.message}`);
  }
});

// resonate.schedule: fires every second, each firing runs square(3) on <target>.
const name = `${R}-tick`;
const schedule = await step("resonate.schedule", async () => {
  return await resonate.schedule(name, "* * * * * *", "square", 3, resonate.options({ target }));
});
await step("a firing runs on the target and resolves", async (p) => {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${process.env.RESONATE_URL}/`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        kind: "promise.search",
        head: { corrId: `${R}-search`, version: "2026-04-01" },
        data: { tags: { "resonate:schedule": name }, state: "resolved" },
      }),
    });
    const body = await res.json();
    const fired = body?.data?.promises ?? [];
    if (fired.length) {
      const first = fired[0];
      eq(p, "value", unb64(first.value.data), 9);
      if (!first.id.startsWith(`${name}-`)) p.push(`id ${first.id} does not follow {{.id}}-{{.timestamp}}`);
      for (const tag of ["resonate:origin", "resonate:branch", "resonate:parent"]) eq(p, tag, first.tags[tag], first.id);
      eq(p, "resonate:target", first.tags["resonate:target"], `poll://any@${target}`);
      return first.id;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  p.push("no resolved firing within 15 s");
});
await step("schedule handle delete", async () => schedule && (await schedule.delete()));

const failed = steps.filter((s) => !s.ok).length;
writeFileSync(out, JSON.stringify({ prefix: R, passed: steps.length - failed, failed, steps }, null, 1));
process.exit(0);
