"""The demo's outbox viewer: the .eml files the SMTP sandbox wrote, listed and rendered (demo only).

Registered by the demo on its own app instance, never by ``create_app``: production has no such page.
An email's HTML is shown in a sandboxed iframe (``srcdoc``), so it can neither run scripts nor reach the app.
"""

from __future__ import annotations

import html
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, current_app

bp = Blueprint("demo_outbox", __name__, url_prefix="/demo/outbox")

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
 body {{ font-family: -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #303030; }}
 table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
 th, td {{ text-align: left; padding: 6px 8px; border-bottom: 1px solid #e3e3e3; }}
 th {{ background: #f7f7f7; }} a {{ color: #005bd3; }}
 iframe {{ width: 100%; height: 70vh; border: 1px solid #e3e3e3; }}
 .meta {{ color: #616161; font-size: 13px; }}
</style></head><body>{body}</body></html>"""


def init_app(app: Flask, outbox_dir: Path) -> None:
    """Register the viewer on the demo's app, reading ``outbox_dir``."""
    app.config["AFTERCARE_DEMO_OUTBOX"] = str(outbox_dir)
    app.register_blueprint(bp)


def _folder() -> Path:
    return Path(current_app.config["AFTERCARE_DEMO_OUTBOX"])


def _read(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh)  # type: ignore[return-value]


def summary(path: Path) -> dict[str, Any]:
    """Return the subject, recipient, date and file name of one .eml file."""
    message = _read(path)
    date = message.get("Date")
    return {"name": path.name, "subject": str(message.get("Subject", "")), "to": str(message.get("To", "")),
            "date": parsedate_to_datetime(date) if date else None}


@bp.get("/")
def index() -> str:
    """List the emails, newest first."""
    files = sorted(_folder().glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)
    rows = []
    for path in files[:1000]:
        item = summary(path)
        rows.append(f"<tr><td>{html.escape(str(item['date'] or ''))}</td><td>{html.escape(item['to'])}</td>"
                    f"<td><a href=\"{html.escape(item['name'])}\">{html.escape(item['subject'])}</a></td></tr>")
    more = f"<p class=meta>Showing the newest 1,000 of {len(files):,}.</p>" if len(files) > 1000 else ""
    body = (f"<h1>Demo outbox</h1><p class=meta>{len(files):,} emails received by the SMTP sandbox in "
            f"{html.escape(str(_folder()))}</p>{more}<table><tr><th>Date</th><th>To</th><th>Subject</th></tr>"
            + "".join(rows) + "</table>")
    return PAGE.format(title="Demo outbox", body=body)


@bp.get("/<name>")
def show(name: str) -> str:
    """Render one email: headers, then its HTML part (or plain text) in a sandboxed frame."""
    folder = _folder().resolve()
    path = (folder / name).resolve()
    if path.parent != folder or path.suffix != ".eml" or not path.is_file():
        abort(404)
    message = _read(path)
    part = message.get_body(preferencelist=("html", "plain"))
    content = part.get_content() if part is not None else ""
    if part is not None and part.get_content_type() == "text/plain":
        content = f"<pre>{html.escape(content)}</pre>"
    headers = "".join(f"<div><b>{html.escape(key)}:</b> {html.escape(str(message.get(key, '')))}</div>"
                      for key in ("From", "To", "Subject", "Date", "List-Unsubscribe"))
    body = (f"<p><a href=\"./\">&larr; Outbox</a></p><div class=meta>{headers}</div>"
            f"<iframe sandbox title=\"Email\" srcdoc=\"{html.escape(content, quote=True)}\"></iframe>")
    return PAGE.format(title=html.escape(str(message.get("Subject", ""))), body=body)
