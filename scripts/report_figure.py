#!/usr/bin/env python3
"""One row's attention figures from a sweep's report.html, as the PNG that README "Findings" shows.

    python3 scripts/report_figure.py experiments/results/<sweep> ROW [OUT.png]

Takes the first figure block (mean attention distance per head against depth, and the attention
rollout) of the report's "Inside the models" section for ROW (a summary row, e.g. variant=rel),
and renders it alone in headless Chromium, 1220x350 px, the size the report lays it out at.
OUT defaults to <sweep>/report-attention.png. Standard library and Debian's chromium only.
"""
import os
import re
import subprocess
import sys
import tempfile


def fail(message):
    print(f"report_figure: {message}", file=sys.stderr)
    sys.exit(2)


def figure_block(html, row):
    anchor = f'id="analysis-{row}"'
    if anchor not in html:
        rows = re.findall(r'id="analysis-([^"]+)"', html)
        fail(f"report.html: no analysis of row {row!r}; analysed rows: {', '.join(rows) or 'none'}")
    start = html.index('<div class="figures">', html.index(anchor))
    depth = 0
    for tag in re.finditer(r"<div\b|</div>", html[start:]):
        depth += 1 if tag.group().startswith("<div") else -1
        if depth == 0:
            return html[start:start + tag.end()]
    fail("report.html: the figure block is not closed")


def main():
    if len(sys.argv) not in (3, 4):
        fail("usage: scripts/report_figure.py SWEEP_DIR ROW [OUT.png]")
    sweep, row = sys.argv[1], sys.argv[2]
    out = os.path.abspath(sys.argv[3] if len(sys.argv) == 4 else os.path.join(sweep, "report-attention.png"))
    report = os.path.join(sweep, "report.html")
    if not os.path.isfile(report):
        fail(f"{report}: no such file (vitlab report writes it)")
    html = open(report, encoding="utf-8").read()
    head = html[:html.index("<body")]  # the report's styles
    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(tmp, "figure.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(head + '<body style="margin:8px">' + figure_block(html, row) + "</body></html>")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--hide-scrollbars", f"--screenshot={out}", "--window-size=1220,350", "file://" + page],
                       check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
