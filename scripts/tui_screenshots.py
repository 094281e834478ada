"""Regenerate the screenshots in docs/images/tui/ (SVG, 120x40) from the fixed data of the
snapshot tests: `.venv/bin/python scripts/tui_screenshots.py` from the repository root."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tui.test_snapshots import SCREENS, fixed_app  # noqa: E402

OUT = ROOT / "docs" / "images" / "tui"


async def shoot(name: str) -> Path:
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await SCREENS[name](pilot)
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(OUT)))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in SCREENS:
        print(asyncio.run(shoot(name)).relative_to(ROOT))


if __name__ == "__main__":
    main()
