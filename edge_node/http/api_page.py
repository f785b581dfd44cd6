"""``/schema``: the API reference as one server-rendered page that needs nothing from the
network (Litestar's default viewers load scripts and fonts from CDNs, so an edge without
internet access served a blank page). Every operation with its summary, description,
parameters, body and answers; the machine-readable spec stays at ``/schema/openapi.json``."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

STYLE = """<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}.op{margin:1.2rem 0 1.8rem}
.method{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}
code,pre{font:13px ui-monospace,monospace}
pre{background:#f5f5f5;padding:.6rem;overflow:auto;max-height:22rem}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}</style>"""
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def _schema_of(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    media, body = next(iter(content.items()))
    return f"<p>{escape(media)}</p><pre>{escape(json.dumps(body.get('schema', {}), indent=1))}</pre>"


def render_spec(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    out = [f"<h1>{escape(info.get('title', 'API'))} <small>{escape(str(info.get('version', '')))}</small></h1>",
           '<p>Machine-readable: <a href="/schema/openapi.json">/schema/openapi.json</a>. Every <code>/v1</code> '
           "request carries the app's client key (<code>X-Client-Key</code>); user-scoped ones a user token or a "
           "server key (<code>Authorization: Bearer</code>).</p>"]
    for path, operations in spec.get("paths", {}).items():
        for method in METHODS:
            op = operations.get(method)
            if op is None:
                continue
            out.append(f'<div class="op"><h2><span class="method">{method}</span> <code>{escape(path)}</code></h2>')
            if op.get("summary"):
                out.append(f"<p><b>{escape(op['summary'])}</b></p>")
            if op.get("description"):
                out.append(f"<p>{escape(op['description'])}</p>")
            params = op.get("parameters", [])
            if params:
                rows = "".join(f"<tr><td><code>{escape(p.get('name', ''))}</code></td><td>{escape(p.get('in', ''))}"
                               f"</td><td>{'yes' if p.get('required') else 'no'}</td>"
                               f"<td>{escape(p.get('description', '') or '')}</td></tr>" for p in params)
                out.append(f"<table><tr><th>parameter</th><th>in</th><th>required</th><th></th></tr>{rows}</table>")
            body = op.get("requestBody")
            if body:
                out.append(f"<h3>Body</h3>{_schema_of(body.get('content'))}")
            answers = op.get("responses", {})
            if answers:
                out.append("<h3>Answers</h3><ul>" + "".join(
                    f"<li><code>{escape(code)}</code> {escape(r.get('description', ''))}</li>"
                    for code, r in answers.items()) + "</ul>")
            out.append("</div>")
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out.append("<h2>Schemas</h2>")
        out += [f"<h3 id=\"{escape(name)}\">{escape(name)}</h3><pre>{escape(json.dumps(body, indent=1))}</pre>"
                for name, body in schemas.items()]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(info.get("title", "API"))}'
            f"</title>{STYLE}</head><body>{''.join(out)}</body></html>")


class OfflinePage(OpenAPIRenderPlugin):
    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request, openapi_schema: dict[str, Any]) -> bytes:
        return render_spec(openapi_schema).encode()


def plugins() -> list[OpenAPIRenderPlugin]:
    return [OfflinePage(), JsonRenderPlugin(path="/openapi.json")]
