"""A long-running SDK worker: `python worker.py <group>`. Serves until killed.

Writes ``ready <group> <os pid> <sdk pid>`` to the record file once the SDK is started.
"""

from __future__ import annotations

import sys
import time

import app


def main() -> None:
    group = sys.argv[1]
    app.make_resonate(group)
    app.record("ready", group)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
