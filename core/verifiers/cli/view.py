"""vf-view: a static HTML page for saved runs, written to a file and optionally served.

    vf-view outputs/evals                              # every vf-eval run below it
    vf-view outputs/runs/smollm2-arithmetic            # a vf-train run: curves, before/after
    vf-view RUN_A RUN_B -o compare.html                # two runs, side by side
    vf-view outputs/evals --serve                      # and serve it on http://127.0.0.1:PORT/

The page holds its data, script and styles inline: it opens offline, from a file or a server.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path

DEFAULT_RUNS = ("outputs/evals", "outputs/runs")


def write_page(run_dirs: list[Path], output: Path, title: str = "vf-view") -> tuple[Path, int]:
    """Write the page for the runs at or below ``run_dirs``; returns (page, number of runs).
    Raises :class:`verifiers.viewer.runs.RunError` for a folder without runs."""
    from verifiers.viewer.page import render_page
    from verifiers.viewer.runs import find_runs, load_run

    runs = [load_run(path) for path in find_runs(run_dirs)]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_page(runs, title=title), encoding="utf-8")
    return output, len(runs)


class PageServer:
    """Serves one folder on 127.0.0.1 (``port`` 0: a free one) in a background thread."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> PageServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vf-view", description="Write (and optionally serve) an HTML page for saved vf-eval "
        "runs (vf-eval -s) and vf-train runs: summary, rollouts with tool calls and rewards, "
        "filters, side-by-side comparison, training curves.")
    parser.add_argument("runs", nargs="*", type=Path,
                        help="run folders, or folders holding runs (default: "
                             + " and ".join(DEFAULT_RUNS) + ", those that exist)")
    parser.add_argument("-o", "--output", type=Path, default=Path("outputs/view/index.html"),
                        help="the HTML file to write (default: outputs/view/index.html)")
    parser.add_argument("--title", default="vf-view", help="the page's title")
    parser.add_argument("--serve", action="store_true",
                        help="serve the page on 127.0.0.1 until interrupted (Ctrl-C)")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (default: a free one)")
    args = parser.parse_args(argv)
    if args.port and not args.serve:
        parser.error("--port only applies with --serve.")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535; got {args.port}.")

    from verifiers.viewer.runs import RunError

    run_dirs = list(args.runs) or [Path(p) for p in DEFAULT_RUNS if Path(p).is_dir()]
    if not run_dirs:
        print("vf-view: no run folders given and none of " + ", ".join(DEFAULT_RUNS) + " exists. "
              "Pass the folders of saved runs: vf-view outputs/evals/ENV--MODEL/RUN_ID",
              file=sys.stderr)
        return 2
    try:
        page, count = write_page(run_dirs, args.output, args.title)
    except RunError as exc:
        print(f"vf-view: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {page} ({count} run{'s' if count != 1 else ''}).")
    if not args.serve:
        return 0
    try:
        server = PageServer(page.parent.resolve(), args.port).start()
    except OSError as exc:
        print(f"vf-view: cannot serve on 127.0.0.1:{args.port} ({exc}); pick another --port.",
              file=sys.stderr)
        return 2
    print(f"Serving {server.url(page.name)} (Ctrl-C stops).", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
