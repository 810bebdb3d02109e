"""The viewer's page: one self-contained HTML file (data, script and styles inline; nothing
fetched from the network), built by ``assets/viewer.js`` in the browser."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1>{title}</h1><p class="sub">{count} run(s) · written by vf-view</p></header>
<main id="app"><p class="empty">This page is drawn by its inline script; enable JavaScript
to see the runs.</p></main>
<script type="application/json" id="vf-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def _asset(name: str) -> str:
    return resources.files("verifiers.viewer").joinpath("assets", name).read_text()


def render_page(runs: list[dict[str, Any]], title: str = "vf-view") -> str:
    """The HTML page for ``runs`` (as :func:`verifiers.viewer.runs.load_run` returns them)."""
    data = json.dumps({"runs": runs}, allow_nan=False, default=str)
    data = data.replace("</", "<\\/").replace("<!--", "<\\u0021--")  # stays one script block
    return TEMPLATE.format(title=html.escape(title), count=len(runs), data=data,
                           css=_asset("viewer.css"), js=_asset("viewer.js"))


__all__ = ["render_page"]
