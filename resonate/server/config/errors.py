"""The one exception of the configuration loader."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem, described in one line that names where the bad value came from.

    Examples: ``RESONATE_AIO_POLL_TTC: invalid duration 'x'``,
    ``resonate.yml: unknown key 'api.htp.addr' (did you mean 'api.http.addr'?)``.
    The CLI prints it as ``error: <message>`` and exits with status 2.
    """
