"""Start one workflow and wait for its result; write it as JSON to the output file.

python client.py trigger <out.json> <promise id> <target> <func> <json args>
    a process in group $SDK_CLIENTS_GROUP (default `clients`) calls
    resonate.trigger(id, target, func, *args): the server routes the invoke task to `target`;
    the result comes back as a notify (subscription).
python client.py run <out.json> <promise id> <group> <func> <json args>
    a process in `group` calls resonate.run(id, func, *args): it creates the root promise
    with a claimed task (POST /promises/task) and executes the workflow itself.
"""

from __future__ import annotations

import json
import os
import sys

import app


def main() -> None:
    mode, out, promise_id, where, func, raw_args = sys.argv[1:7]
    args = json.loads(raw_args)
    if mode == "trigger":
        resonate = app.make_resonate(os.environ.get("SDK_CLIENTS_GROUP", "clients"))
        handle = resonate.trigger(promise_id, where, func, *args)
    elif mode == "run":
        resonate = app.make_resonate(where)
        handle = resonate.run(promise_id, getattr(app, func), *args)
    else:
        raise SystemExit(f"unknown mode {mode}")
    app.record("client-started", promise_id)
    result = handle.result(timeout=float(os.environ.get("SDK_CLIENT_TIMEOUT", "90")))
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"result": result}, f)
    os.replace(tmp, out)
    app.record("client-done", promise_id)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the SDK's threads never stop on their own


if __name__ == "__main__":
    main()
