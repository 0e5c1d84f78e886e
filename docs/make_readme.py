"""Regenerate README.md from docs/README.template.md: the plugin example and the CLI help are
inserted from the files and the parser they describe, so the README cannot drift from them.

    python docs/make_readme.py          # rewrite README.md
    python docs/make_readme.py --check  # exit 1 if README.md is stale (the tests run this)
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _help(argv: list[str]) -> str:
    from bench.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main(argv)
    return buf.getvalue().rstrip()


def render() -> str:
    import os

    os.environ.setdefault("COLUMNS", "100")
    template = (ROOT / "docs" / "README.template.md").read_text()
    cli = "\n\n".join(
        _help(argv)
        for argv in (
            ["--help"],
            ["run", "--help"],
            ["sweep", "--help"],
            ["eval", "--help"],
            ["leaderboard", "--help"],
            ["report", "--help"],
            ["list", "--help"],
        )
    )
    return (
        template.replace("{example}", (ROOT / "docs" / "plugin_example.py").read_text())
        .replace("{cli}", cli)
        .replace("{methods}", _help(["list", "methods"]))
        .replace("{datasets}", _help(["list", "datasets"]))
    )


def main() -> int:
    text = render()
    readme = ROOT / "README.md"
    if "--check" in sys.argv:
        if readme.read_text() != text:
            print("README.md is stale: run python docs/make_readme.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
