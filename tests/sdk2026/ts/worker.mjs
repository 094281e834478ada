// A worker: `node worker.mjs <group> <pid> [ttlMs]`. Connects to RESONATE_URL, registers the
// application (app.mjs), writes a `ready` record once its message stream is open, and serves
// executes until it is killed.
import { registerAll } from "./app.mjs";
import { connect, log } from "./lib.mjs";

const [group, pid, ttl = "60000"] = process.argv.slice(2);
const resonate = await connect({ group, pid, ttl: Number(ttl) });
registerAll(resonate);
log("worker ready", group, pid, `ttl=${ttl}`);
// The SDK's stream and timers keep the event loop alive.
