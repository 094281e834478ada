// The application of the async/await engine (@resonatehq/sdk/async, same package, same
// protocol). Its operations are eager: a fan-out is Promise.all over ctx.rpc/ctx.run, so one
// task sends several fenced creates at once.
import { localStep, square } from "./app.mjs";

const REMOTE = process.env.SDK_REMOTE_GROUP ?? "sdkts-remote";

/** A local step, `n` concurrent remote calls, a durable sleep, two concurrent local steps. */
async function fanAsync(ctx, n, sleepMs) {
  const remote = ctx.options({ target: REMOTE });
  const base = await ctx.run(localStep, "base-async", n);
  const calls = [];
  for (let i = 1; i <= n; i++) calls.push(ctx.rpc("square", i, remote));
  const squares = await Promise.all(calls);
  await ctx.sleep(sleepMs);
  const locals = await Promise.all([ctx.run(localStep, "la", 1), ctx.run(localStep, "lb", 2)]);
  return { base, squares, locals };
}

export function registerAllAsync(resonate) {
  resonate.register("fanAsync", fanAsync);
  resonate.register("square", square);
}
