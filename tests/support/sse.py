"""A minimal SSE worker for tests: connects to a poll stream and reads `data:` events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class Worker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> Worker:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self.response = await self.session.get(self.url)
        assert self.response.status == 200, await self.response.text()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.response is not None:
            self.response.close()
        if self.session is not None:
            await self.session.close()

    async def next_event(self, within: float = 3.0) -> dict[str, Any]:
        """The next `data:` event; fails after ``within`` seconds or at the end of the stream."""
        assert self.response is not None

        async def read() -> dict[str, Any]:
            assert self.response is not None
            while True:
                line = await self.response.content.readline()
                if not line:
                    raise AssertionError("the stream ended")
                if line.startswith(b"data: "):
                    return dict(json.loads(line[len(b"data: ") :]))

        return await asyncio.wait_for(read(), within)

    async def no_event(self, within: float = 0.2) -> None:
        """Nothing arrives for ``within`` seconds (used only where absence is the point)."""
        try:
            event = await self.next_event(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event {event}")
