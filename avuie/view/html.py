"""Small HTML helpers for the viewer's server-rendered pages: escaping, tables, filter forms, pagination, and the
page layout (templates/base.html, a string.Template)."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import urlencode

NAV = (("/", "Samples"), ("/rejects", "Rejects"), ("/stats", "Stats and data card"), ("/review", "Review"))


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included); None becomes ""."""
    return "" if value is None else html.escape(str(value), quote=True)


def link(href: str, text: Any, **attrs: str) -> str:
    """An <a> element with escaped href, text and attributes (attribute names use _ for -)."""
    extra = "".join(f' {name.rstrip("_").replace("_", "-")}="{esc(value)}"' for name, value in attrs.items())
    return f'<a href="{esc(href)}"{extra}>{esc(text)}</a>'


def url(path: str, params: dict[str, Any]) -> str:
    """path with the non-empty params as a query string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def kv_table(pairs: list[tuple[str, Any]]) -> str:
    """A two-column table of (name, value); values keep their line breaks; empty values are left out."""
    rows = "".join(
        f'<tr><th>{esc(k)}</th><td class="pre">{esc(v)}</td></tr>' for k, v in pairs if v not in (None, "")
    )
    return f'<table class="kv">{rows}</table>'


def table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    """A table from headers (escaped here) and rows of cells that are ALREADY HTML (escape them first)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def select(name: str, label: str, options: list[tuple[str, int]], chosen: str) -> str:
    """A <select> with an "any" entry and each (value, count) option."""
    items = [f'<option value="">any {esc(label)}</option>']
    for value, count in options:
        mark = " selected" if value == chosen else ""
        items.append(f'<option value="{esc(value)}"{mark}>{esc(value)} ({count:,})</option>')
    return (
        f'<label>{esc(label)} <select name="{esc(name)}" id="f-{esc(name)}">{"".join(items)}</select></label>'
    )


def pager(path: str, params: dict[str, str], number: int, pages: int, total: int) -> str:
    """Previous / next links and "page x of y" for a 0-based page number."""
    parts = []
    if number > 0:
        parts.append(link(url(path, {**params, "page": number}), "« previous", rel="prev"))
    parts.append(f"<span>page {number + 1:,} of {pages:,} ({total:,} rows)</span>")
    if number + 1 < pages:
        parts.append(link(url(path, {**params, "page": number + 2}), "next »", rel="next", id="next-page"))
    return '<nav class="pager">' + " ".join(parts) + "</nav>"


@cache
def _template(name: str) -> Template:
    return Template(resources.files("avuie.view").joinpath("templates", name).read_text(encoding="utf-8"))


def layout(title: str, body: str, active: str = "/", notice: str = "", error: bool = False) -> str:
    """The whole page: title, navigation (active path marked), an optional notice line, and body (HTML)."""
    nav = " ".join(
        f'<a href="{p}"{" class=active" if p == active else ""}>{esc(text)}</a>' for p, text in NAV
    )
    note = f'<p class="notice{" error" if error else ""}" id="notice">{esc(notice)}</p>' if notice else ""
    return _template("base.html").substitute(title=esc(title), nav=nav, notice=note, body=body)
