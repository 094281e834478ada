"""The http transport: POST each task message to the recv's URL (http-api.md §6).

A push counts as delivered only on a 2xx answer within the timeout (D8); anything else is a
failed delivery that the enqueue loop retries after ``ttr``. Redirects are not followed: a
worker endpoint that redirects is misconfigured, and following would re-send the message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from multidict import CIMultiDict

from resonate.server.http.protocol import JSON_CONTENT_TYPE, dumps

log = logging.getLogger("resonate.push")


def _seconds(milliseconds: int) -> float | None:
    return milliseconds / 1000 if milliseconds > 0 else None


def push_headers(head: dict[str, str] | None, extra: dict[str, str] | None) -> CIMultiDict[str]:
    """Trace head, then the recv's own headers, then the content type; later ones win
    whatever the letter case of the name."""
    headers: CIMultiDict[str] = CIMultiDict()
    for source in (head or {}, extra or {}):
        for name, value in source.items():
            headers[name] = value
    headers["Content-Type"] = JSON_CONTENT_TYPE
    return headers


class HttpPush:
    """The ``http`` plugin; at most ``concurrency`` pushes are in flight, the rest wait."""

    name = "http"

    def __init__(
        self,
        *,
        timeout_ms: int = 30000,
        conn_timeout_ms: int = 10000,
        ttr_ms: int = 15000,
        ttc_ms: int = 60000,
        concurrency: int = 10,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.conn_timeout_ms = conn_timeout_ms
        self.ttr_ms = ttr_ms
        self.ttc_ms = ttc_ms
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                timeout=aiohttp.ClientTimeout(
                    total=_seconds(self.timeout_ms), connect=_seconds(self.conn_timeout_ms)
                ),
                cookie_jar=aiohttp.DummyCookieJar(),  # pushes must not share state
            )
        return self._session

    async def deliver(
        self, data: dict[str, Any], message: dict[str, Any], head: dict[str, str] | None
    ) -> bool:
        """POST ``message`` to ``data["url"]``; True only for a 2xx answer. Never raises."""
        url = data.get("url")
        if self._closed or not isinstance(url, str):
            return False
        async with self._slots:
            if self._closed:
                return False
            try:
                headers = push_headers(head, data.get("headers"))
                async with self._client().post(
                    url, data=dumps(message), headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.debug("push to %s failed: %s", url, type(error).__name__)
                return False
            except Exception:
                log.warning("push to %s failed", url, exc_info=True)
                return False
        if not 200 <= status < 300:
            log.debug("push to %s answered %d", url, status)
            return False
        return True

    async def close(self) -> None:
        """Stop pushing; pushes in flight are abandoned (their tasks stay retryable)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["HttpPush", "push_headers"]
