"""The preference center's HTML: one server-rendered page, no script at all, every string from
a catalog (``preference_strings/<lang>.json``), every value escaped.

Plain forms do everything (toggles, delete with confirmation, language), so the page works
without JavaScript, in an iframe, and with a screen reader: labelled controls, fieldset and
legend, headings for each section, status and alert roles for what changed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from functools import cache
from html import escape
from pathlib import Path
from urllib.parse import quote

import msgspec

from edge_node.preferences import PreferenceView

CATALOG_DIR = Path(__file__).parent / "preference_strings"
DEFAULT_LANGUAGE = "en"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

CSS = """
:root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--muted:#555;--line:#c8c8c8;--accent:#0b57d0;--danger:#b3261e}
@media (prefers-color-scheme:dark){
:root{--fg:#eee;--bg:#161616;--muted:#bbb;--line:#555;--accent:#8ab4f8;--danger:#f2b8b5}}
body{font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:42rem;margin:0 auto;padding:1.5rem}
body.embed main{padding:.75rem}
h1{font-size:1.5rem;margin:.2rem 0 .5rem}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}
h3{font-size:1rem;margin:1rem 0 .3rem}
fieldset{border:1px solid var(--line);border-radius:.5rem;padding:.75rem 1rem}
legend{font-weight:600;padding:0 .3rem}
.purpose{display:grid;grid-template-columns:auto 1fr;gap:.1rem .6rem;margin:.6rem 0}
.purpose input{width:1.3rem;height:1.3rem;margin-top:.15rem}
.purpose label{font-weight:600}.hint{grid-column:2;margin:0;color:var(--muted);font-size:.92rem}
button{font:inherit;padding:.45rem 1rem;border-radius:.4rem;border:1px solid var(--accent);background:var(--accent);
color:var(--bg);cursor:pointer;margin:.6rem .4rem 0 0}
button.secondary{background:transparent;color:var(--accent)}
button.danger{background:var(--danger);border-color:var(--danger)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.notice{border-left:4px solid var(--accent);padding:.4rem .8rem}
.alert{border-left:4px solid var(--danger);padding:.4rem .8rem}
ul{padding-left:1.2rem}select{font:inherit}
"""


class Page(msgspec.Struct, kw_only=True):
    """Where the page's forms post back, and what they carry (the token in the body, never a URL)."""

    client_key: str
    token: str
    lang: str
    embed: bool
    policy: str = ""
    app_name: str = ""  # whose choices these are, and where its privacy policy is read
    policy_url: str = ""
    policy_version: str = ""


@cache
def catalogs() -> dict[str, dict[str, str]]:
    """Every language with a catalog; each falls back to English for a missing string."""
    base = json.loads((CATALOG_DIR / f"{DEFAULT_LANGUAGE}.json").read_text(encoding="utf-8"))
    found = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        found[path.stem] = {**base, **json.loads(path.read_text(encoding="utf-8"))}
    return found


def negotiate(asked: str | None, accept_language: str | None) -> str:
    """The language asked for (``lang``), else the best of Accept-Language, else English."""
    known = catalogs()
    if asked and asked.lower() in known:
        return asked.lower()
    ranked = []
    for part in (accept_language or "").split(",")[:20]:
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((weight, tag.split("-")[0].lower()))
    for _, tag in sorted(ranked, reverse=True):
        if tag in known:
            return tag
    return DEFAULT_LANGUAGE


def frame_ancestors(origins: list[str]) -> str:
    """Who may embed the page: the app's registered browser origins (well-formed ones only)."""
    if "*" in origins:
        return "*"
    allowed = [o for o in origins if _ORIGIN.match(o)]
    return " ".join(["'self'", *allowed])


def headers(nonce: str, origins: list[str]) -> dict[str, str]:
    return {"content-security-policy": f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
                                       f"base-uri 'none'; frame-ancestors {frame_ancestors(origins)}",
            # same-origin: the page's own form posts carry its origin (no-referrer would make it
            # "null"), and nothing else ever sees the URL, which may hold the token.
            "referrer-policy": "same-origin", "cache-control": "no-store", "x-content-type-options": "nosniff"}


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def _t(strings: dict[str, str], key: str, **values: str) -> str:
    text = strings.get(key, key)
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def _shell(strings: dict[str, str], lang: str, nonce: str, embed: bool, body: str) -> str:
    return (f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="same-origin"><title>{escape(strings["title"])}</title>'
            f'<style nonce="{nonce}">{CSS}</style></head>'
            f'<body class="{"embed" if embed else "page"}"><main>{body}</main></body></html>')


def _form(page: Page, inner: str, *, label: str = "", keep_lang: bool = True) -> str:
    action = f"/v1/preferences?client_key={quote(page.client_key, safe='')}"
    carried = [("token", page.token), ("embed", "1" if page.embed else ""), ("policy", page.policy)]
    if keep_lang:
        carried.append(("lang", page.lang))
    hidden = "".join(f'<input type="hidden" name="{name}" value="{escape(value)}">' for name, value in carried)
    aria = f' aria-label="{escape(label)}"' if label else ""
    return f'<form method="post" action="{escape(action)}"{aria}>{hidden}{inner}</form>'


def render(view: PreferenceView, page: Page, nonce: str, *, notice: str = "", confirm: bool = False,
           error: str = "") -> str:
    s = catalogs()[page.lang]
    e = escape
    parts = [f'<h1>{e(s["title"])}</h1>']
    if page.app_name:
        parts.append(f'<p class="app">{e(_t(s, "app_line", app=page.app_name))}</p>')
    parts.append(f'<p>{e(s["intro"])}</p>')
    if page.policy_url:
        version = f" ({e(page.policy_version)})" if page.policy_version else ""
        parts.append(f'<p><a href="{e(page.policy_url)}" rel="noopener noreferrer" target="_blank">'
                     f'{e(s["policy_link"])}</a>{version}</p>')
    if notice:
        parts.append(f'<p role="status" class="notice">{e(notice)}</p>')
    rows = []
    for purpose in view.purposes:
        since = ""
        if purpose.at:
            date = dt.datetime.fromtimestamp(purpose.at, dt.UTC).date().isoformat()
            since = " " + e(_t(s, "granted_since" if purpose.granted else "withdrawn_since", date=date))
        rows.append(f'<div class="purpose"><input type="checkbox" id="p-{purpose.name}" '
                    f'name="purpose.{purpose.name}" value="on"{" checked" if purpose.granted else ""} '
                    f'aria-describedby="d-{purpose.name}"><label for="p-{purpose.name}">'
                    f'{e(s[f"purpose.{purpose.name}.label"])}</label><p class="hint" id="d-{purpose.name}">'
                    f'{e(s[f"purpose.{purpose.name}.description"])}{since}</p></div>')
    parts.append(_form(page, f'<fieldset><legend>{e(s["purposes_legend"])}</legend>{"".join(rows)}</fieldset>'
                             f'<button type="submit" name="action" value="save">{e(s["save"])}</button>',
                       label=s["purposes_legend"]))

    parts.append(f'<section aria-labelledby="h-inferred"><h2 id="h-inferred">{e(s["inferred_title"])}</h2>')
    if not view.profiled:
        personal = next(p for p in view.purposes if p.name == "personalization")
        parts.append(f'<p>{e(s["inferred_empty" if personal.granted else "inferred_off"])}</p>')
    else:
        items = "".join(f'<li>{e(_t(s, f"interest.{i.level}", category=i.category))}</li>' for i in view.interests)
        parts.append(f'<ul>{items}</ul>' if items else f'<p>{e(s["inferred_empty"])}</p>')
        parts.append(f'<h3>{e(s["mood_title"])}</h3><p>{e(s[f"mood.{view.mood}"])}</p>')
    parts.append('</section>')

    parts.append(f'<section aria-labelledby="h-reasons"><h2 id="h-reasons">{e(s["reasons_title"])}</h2>')
    if view.reasons:
        items = "".join(f'<li>{e(_t(s, "reason_item", item=r.category or r.item_id, reason=r.reason))}</li>'
                        for r in view.reasons)
        parts.append(f'<ul>{items}</ul>')
    else:
        parts.append(f'<p>{e(s["reasons_none"])}</p>')
    parts.append('</section>')

    parts.append(f'<section aria-labelledby="h-delete"><h2 id="h-delete">{e(s["delete_title"])}</h2>'
                 f'<p>{e(s["delete_explain"])}</p>')
    if confirm:
        alert = f'<p role="alert" class="alert">{e(error)}</p>' if error else ""
        parts.append(_form(page, f'<h3>{e(s["confirm_title"])}</h3><p>{e(s["confirm_explain"])}</p>{alert}'
                                 f'<p><input type="checkbox" id="confirm" name="confirm" value="yes" required> '
                                 f'<label for="confirm">{e(s["confirm_checkbox"])}</label></p>'
                                 f'<button type="submit" name="action" value="confirm_delete" class="danger">'
                                 f'{e(s["confirm_button"])}</button>'
                                 f'<button type="submit" name="action" value="cancel" class="secondary" '
                                 f'formnovalidate>{e(s["cancel"])}</button>', label=s["confirm_title"]))
    else:
        parts.append(_form(page, f'<button type="submit" name="action" value="delete" class="danger">'
                                 f'{e(s["delete_button"])}</button>', label=s["delete_title"]))
    parts.append('</section>')

    options = "".join(f'<option value="{code}"{" selected" if code == page.lang else ""}>'
                      f'{e(strings["language_name"])}</option>' for code, strings in catalogs().items())
    parts.append(_form(page, f'<p><label for="lang">{e(s["language_label"])}</label> '
                             f'<select id="lang" name="lang">{options}</select> '
                             f'<button type="submit" name="action" value="view" class="secondary">OK</button></p>',
                       keep_lang=False))
    return _shell(s, page.lang, nonce, page.embed, "".join(parts))


def refused(lang: str, nonce: str, embed: bool) -> str:
    s = catalogs()[lang]
    return _shell(s, lang, nonce, embed, f'<h1>{escape(s["refused_title"])}</h1>'
                                         f'<p role="alert">{escape(s["refused_text"])}</p>')
