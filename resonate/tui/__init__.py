"""`resonate tui`: the live operator dashboard (Textual).

`app.py` is the App (keys, views, the refresh loop); `screens/` one module per screen;
`widgets/` the reusable pieces; `data.py` the only module that talks to the server; `metrics.py`,
`values.py` and `formatting.py` are pure helpers; `styles.tcss` the one stylesheet.
Nothing here is imported by `resonate --help` or shell completion.
"""

from __future__ import annotations


def run(
    server_url: str,
    *,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    metrics_url: str | None = None,
    refresh_seconds: float = 2.0,
    read_only: bool = False,
) -> None:
    from resonate.client import Credentials
    from resonate.tui.app import ResonateApp
    from resonate.tui.data import DataSource

    data = DataSource(server_url, Credentials(token, username, password), metrics_url)
    ResonateApp(data, refresh_seconds=refresh_seconds, read_only=read_only).run()
