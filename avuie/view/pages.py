"""The list pages of the viewer: browse samples, the rejects table, and the review queue with its apply button."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from avuie.view.edits import ApplyOutcome, is_edited
from avuie.view.html import esc, link, pager, select, table, url
from avuie.view.store import Filters, Page


def sample_href(build: str, key: str, filters: Filters | None = None) -> str:
    """The URL of a sample's page (the browse filters ride along for previous / next)."""
    return "/sample?" + urlencode({"build": build, "key": key, **(filters.as_params() if filters else {})})


def _filter_form(
    path: str, facets: dict[str, list], filters: Filters, names: tuple[str, ...], text: str
) -> str:
    labels = {
        "source": "source",
        "split": "split",
        "family": "family",
        "origin": "reasoning",
        "reason": "reason",
    }
    selects = "".join(select(n, labels[n], facets.get(n, []), getattr(filters, n)) for n in names)
    search = (
        f'<label>text <input type="search" name="q" id="f-q" value="{esc(filters.q)}" placeholder="{esc(text)}">'
        "</label>"
        if text
        else ""
    )
    return (
        f'<form class="filters" method="get" action="{esc(path)}">{selects}{search}'
        f'<button type="submit" id="apply-filters">Filter</button> {link(path, "clear")}</form>'
    )


def browse_page(
    page: Page, facets: dict[str, list], filters: Filters, text_columns: list[str], pending: set
) -> str:
    """The sample list: filters, one row per sample with a thumbnail, and pagination."""
    form = _filter_form(
        "/", facets, filters, ("source", "split", "family", "origin"), " or ".join(text_columns)
    )
    rows = []
    for r in page.rows:
        href = sample_href(r["build"], r["key"], filters)
        thumb = "/thumb?" + urlencode({"build": r["build"], "key": r["key"]})
        mark = (
            ' <span class="pending" title="pending in the review file">✎</span>' if r["id"] in pending else ""
        )
        rows.append(
            [
                f'<a href="{esc(href)}"><img class="thumb" loading="lazy" src="{esc(thumb)}" alt=""></a>',
                link(href, r["id"], class_="sample-link") + mark,
                esc(r["source"]),
                esc(r["split"]),
                esc(r["family"]),
                esc(r["reasoning_kind"]),
                esc(r["label"]),
                f"<code>{esc(r['answer'])}</code>",
            ]
        )
    headers = ["", "sample", "source", "split", "family", "reasoning", "label", "answer"]
    listing = table(headers, rows, "samples") if rows else "<p>No sample matches these filters.</p>"
    nav = pager("/", filters.as_params(), page.number, page.pages, page.total)
    return form + f'<p id="count">{page.total:,} samples match.</p>' + listing + nav


def rejects_page(page: Page, facets: dict[str, list], filters: Filters) -> str:
    """The rejects table: filters (source, split, reason) and one row per rejected entry with its raw entry."""
    form = _filter_form("/rejects", facets, filters, ("source", "split", "reason"), "")
    rows = []
    for r in page.rows:
        raw = url("/raw", {"build": r["build"], "file": r["annotation_file"], "row": r["annotation_row"]})
        rows.append(
            [
                esc(r["build"]),
                esc(r["source"]),
                esc(r["split"]),
                f"<b>{esc(r['reason'])}</b>",
                f'<span class="pre">{esc(r["detail"])}</span>',
                f'<details data-src="{esc(raw)}"><summary>{esc(r["annotation_file"])}:{esc(r["annotation_row"])}'
                '</summary><pre class="raw">…</pre></details>',
            ]
        )
    headers = ["build", "source", "split", "reason", "detail", "raw entry"]
    listing = table(headers, rows, "rejects") if rows else "<p>No rejected entry matches.</p>"
    nav = pager("/rejects", filters.as_params(), page.number, page.pages, page.total)
    return form + listing + nav


def review_page(pending: dict[str, list[dict[str, Any]]], keys: dict[str, str]) -> str:
    """The pending edits and flags of every build, and the one button that applies them (`review apply`)."""
    rows, edits = [], 0
    for build, items in pending.items():
        for row in items:
            edited = is_edited(row)
            edits += edited
            key = keys.get(row["id"])
            name = link(sample_href(build, key), row["id"]) if key else esc(row["id"])
            rows.append(
                [
                    esc(build),
                    name,
                    "edited chain" if edited else "flag",
                    f'<span class="pre">{esc(row["reasoning"])}</span>',
                ]
            )
    if not rows:
        return "<p>Nothing pending: edit a chain or flag a sample on its page.</p>"
    button = (
        '<form method="post" action="/apply"><button type="submit" id="apply-edits">'
        f"Apply {edits} pending edit{'s' if edits != 1 else ''} (avuie review apply)</button></form>"
    )
    return (
        "<p>Applying re-checks every edited chain and rewrites only the shards that hold them, exactly as "
        "<code>avuie review apply BUILD BUILD/review.jsonl</code> does; flags stay in the file.</p>"
        + button
        + table(["build", "sample", "what", "chain"], rows, "pending")
    )


def applied_page(outcomes: list[ApplyOutcome]) -> str:
    """What the apply did per build: samples changed, refused (with the check's reason) and shards rewritten."""
    if not outcomes:
        return "<p>Nothing was pending.</p>"
    parts = []
    for o in outcomes:
        refused = "".join(f"<li>{esc(i)}: {esc(why)}</li>" for i, why in sorted(o.failed.items()))
        parts.append(
            f"<h2>{esc(o.build)}</h2>"
            + (f'<p class="bad">{esc(o.error)}</p>' if o.error else "")
            + f'<p class="applied">{len(o.changed)} chain(s) written as human chains; shards rewritten: '
            f"{esc(', '.join(o.shards) or 'none')}.</p>"
            + (f'<p>Refused (still pending):</p><ul class="refused">{refused}</ul>' if refused else "")
        )
    return "".join(parts) + "<p>" + link("/review", "back to the review queue") + "</p>"
