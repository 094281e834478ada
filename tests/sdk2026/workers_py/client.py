"""Start one workflow and wait for its result; write it as JSON to the output file.

python client.py rpc <out.json> <promise id> <target group> <func> <json args>
    a process in group $SDK_CLIENTS_GROUP (default `clients`) calls
    resonate.options(target=...).rpc(id, func, *args): the server sends the task's execute to
    `poll://any@<target group>`; the result comes back as an `unblock` on this process's
    listener (`poll://uni@<its group>/<pid>`).
python client.py run <out.json> <promise id> <group> <func> <json args>
    a process in `group` calls resonate.run(id, func, *args): `task.create` gives it the task
    acquired, and it executes the workflow itself (wake-ups go to `poll://any@<group>`).

The output is {"result": ...} or, when the workflow failed, {"error": "<type>: <message>"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import app


async def main() -> None:
    mode, out, promise_id, where, func, raw_args = sys.argv[1:7]
    args = json.loads(raw_args)
    if mode == "rpc":
        resonate = await app.start(os.environ.get("SDK_CLIENTS_GROUP", "clients"))
        handle = resonate.options(target=where).rpc(promise_id, func, *args)
    elif mode == "run":
        resonate = await app.start(where)
        handle = resonate.run(promise_id, func, *args)
    else:
        raise SystemExit(f"unknown mode {mode}")
    await handle.id()  # the root promise exists
    app.record("client-started", promise_id)
    try:
        outcome = {"result": await handle.result()}
    except Exception as exc:
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(outcome, f)
    os.replace(tmp, out)
    app.record("client-done", promise_id)


if __name__ == "__main__":
    asyncio.run(main())
    app.exit_now()
