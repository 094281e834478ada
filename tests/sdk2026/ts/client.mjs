// A client: `node client.mjs <mode> <out.json> <group> <pid> <id> <func> <argsJSON> [target]`.
//
//   run: joins <group> as a worker too and calls resonate.run(id, func, ...args) — task.create,
//        the first run in this process, later executes routed back here (poll://any@group/pid).
//   rpc: calls resonate.rpc(id, func, ...args, {target}) — promise.create with
//        resonate:target = poll://any@<target>, then waits for the unblock on its unicast address.
//   run-async: `run` with the async/await engine (@resonatehq/sdk/async, app_async.mjs).
//   rpc-many: args = [count, ...args]: `count` concurrent rpc of ids <id>-0 … <id>-<count-1>.
//
// Writes {"result": ...} (or {"error": ...}) to <out.json> and exits.
import { registerAll } from "./app.mjs";
import { registerAllAsync } from "./app_async.mjs";
import { connect, log, record, writeJson } from "./lib.mjs";

const [mode, out, group, pid, id, func, argsJson, target] = process.argv.slice(2);
const args = JSON.parse(argsJson);
const engine = mode === "run-async" ? "async" : "generator";
const resonate = await connect({ group, pid, ttl: Number(process.env.SDK_TTL ?? 60000), engine });
if (engine === "async") registerAllAsync(resonate);
else registerAll(resonate);
record("client-started", id);
try {
  let result;
  if (mode === "run") {
    result = await resonate.run(id, func, ...args);
  } else if (mode === "run-async") {
    result = await (await resonate.run(id, func, ...args)).result();
  } else if (mode === "rpc-many") {
    const [count, ...rest] = args;
    const options = resonate.options({ target });
    const calls = [];
    for (let k = 0; k < count; k++) calls.push(resonate.rpc(`${id}-${k}`, func, ...rest, options));
    result = await Promise.all(calls);
  } else if (mode === "rpc") {
    result = await resonate.rpc(id, func, ...args, resonate.options({ target }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  log("result", JSON.stringify(result));
  record("client-result", id);
  writeJson(out, { result });
  process.exit(0);
} catch (err) {
  log("error", String(err?.stack ?? err));
  writeJson(out, { error: String(err?.message ?? err) });
  process.exit(1);
}
