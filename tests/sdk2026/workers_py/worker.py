"""A long-running SDK worker: `python worker.py <group>`. Serves until killed.

Writes ``ready <group> <os pid> <sdk pid>`` to the record file once its SSE stream is open.
"""

from __future__ import annotations

import asyncio
import sys

import app


async def main() -> None:
    group = sys.argv[1]
    await app.start(group)
    app.record("ready", group)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
