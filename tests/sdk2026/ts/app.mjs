// The application the TypeScript SDK processes run (generator engine of @resonatehq/sdk 0.11.5).
// Every step writes a record (see lib.mjs) so that the test can tell which process ran what,
// and how many times.
import { record, waitForFile } from "./lib.mjs";

const REMOTE = process.env.SDK_REMOTE_GROUP ?? "sdkts-remote";
const RELEASE = process.env.SDK_RELEASE;

/** A local step: records `local <name>` and returns n * 100. */
export function localStep(_ctx, name, n) {
  record("local", name);
  return n * 100;
}

/** A slow local step: records `slow-start`, waits for the release file, records `slow-finish`. */
async function slowStep(_ctx, n) {
  record("slow-start", n);
  if (RELEASE) await waitForFile(RELEASE);
  record("slow-finish", n);
  return n * 1000;
}

/** Remote: runs in the REMOTE group. */
export function square(_ctx, i) {
  record("square", i);
  return i * i;
}

/**
 * (a) A local step, one remote call, a durable sleep of `sleepMs`, a fan-out of `fan` remote
 * calls gathered, and a local step after it all.
 */
function* workflow(ctx, n, sleepMs, fan) {
  const remote = ctx.options({ target: REMOTE });
  const base = yield* ctx.run(localStep, "base", n);
  const one = yield* ctx.rpc("square", n, remote);
  yield* ctx.sleep(sleepMs);
  const futures = [];
  for (let i = 1; i <= fan; i++) {
    futures.push(yield* ctx.beginRpc("square", i, remote));
  }
  const squares = [];
  for (const future of futures) {
    squares.push(yield* future);
  }
  const after = yield* ctx.run(localStep, "after", n);
  return { base, one, squares, after, total: base + one + squares.reduce((a, b) => a + b, 0) + after };
}

/** slowStep, but its value says which process computed it. */
async function slowTagged(ctx, n) {
  const value = await slowStep(ctx, n);
  return { value, by: process.pid };
}

/** A quick local step, then a slow one whose value names the process that computed it. */
function* fenced(ctx, n) {
  const before = yield* ctx.run(localStep, "before", n);
  const slow = yield* ctx.run(slowTagged, n);
  return { before, slow };
}

/** (b) A quick local step, then a slow one that blocks until the release file exists. */
function* crashy(ctx, n) {
  const before = yield* ctx.run(localStep, "before", n);
  const slow = yield* ctx.run(slowStep, n);
  return { before, slow, total: before + slow };
}

/** (b') The same, but reached as a remote call: the slow step runs in the REMOTE group. */
function* process_(ctx, n) {
  const prepare = yield* ctx.run(localStep, "prepare", n);
  const slow = yield* ctx.run(slowStep, n);
  return prepare + slow;
}

function* delegating(ctx, n) {
  const before = yield* ctx.run(localStep, "before", n);
  const processed = yield* ctx.rpc("process", n, ctx.options({ target: REMOTE }));
  return { before, processed, total: before + processed };
}

/** (c) A local step, a durable sleep of `sleepMs`, a local step. */
function* sleepy(ctx, n, sleepMs) {
  const before = yield* ctx.run(localStep, "before-sleep", n);
  record("sleep-start", n);
  yield* ctx.sleep(sleepMs);
  const after = yield* ctx.run(localStep, "after-sleep", n);
  return { before, after, total: before + after };
}

/**
 * (P3) Waits on a latent promise (ctx.promise(): no target, no task) that someone else
 * settles — in the test, a REST client with PATCH /promises/{id}.
 */
function* approval(ctx, n) {
  const before = yield* ctx.run(localStep, "before-approval", n);
  const future = yield* ctx.promise();
  record("awaiting", future.id);
  const approved = yield* future;
  return { before, approved };
}

/** A remote call to a group nobody serves, with a short timeout: the child times out. */
function* impatient(ctx, timeoutMs) {
  try {
    yield* ctx.rpc("square", 1, ctx.options({ target: `${REMOTE}-nobody`, timeout: timeoutMs }));
    return { caught: false };
  } catch (err) {
    return { caught: true, error: err === undefined ? null : String(err?.message ?? err) };
  }
}

export function registerAll(resonate) {
  resonate.register("impatient", impatient);
  resonate.register("approval", approval);
  resonate.register("workflow", workflow);
  resonate.register("crashy", crashy);
  resonate.register("fenced", fenced);
  resonate.register("delegating", delegating);
  resonate.register("process", process_);
  resonate.register("sleepy", sleepy);
  resonate.register("square", square);
}
