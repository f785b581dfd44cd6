"""Operator commands for topics, their trends and the webhooks that carry notifications:
``topics add|list|remove|seed|trends`` and ``webhooks set|list|remove|log|test``.

``cli.py`` joins them to :data:`control_plane.cli_commands.COMMANDS` (same table, same rendering).
"""

from __future__ import annotations

from control_plane.cli_commands import Command, Rpc, _args, _none, _pb, a, rows, when

GROUPS = {
    "topics": "what customers talk about, per tenant: add, list, remove, seed the starter set, trends",
    "webhooks": "a signed webhook per tenant for trend and trigger notifications: set, list, remove, log, test",
}
TENANT = a("--tenant", default="", help="the tenant (may be left out while there is one)")
SPARK = "▁▂▃▄▅▆▇█"


async def _add(args, rpc: Rpc):
    from protos.sentiedge.v1 import sync_pb2

    topic = sync_pb2.Topic(name=args.name, examples=args.examples, keywords=args.keywords)
    return await rpc.topics.Add(_pb().AddTopicRequest(tenant=args.tenant, topic=topic), metadata=rpc.metadata)


def _set_table(args, d: dict) -> str:
    sets = d["sets"] if "sets" in d else [d.get("set", d)]
    if not sets:
        return "no topics yet: control-plane topics seed (the starter set) or topics add NAME --examples ..."
    out = []
    for s in sets:
        out.append(f"tenant {s['tenant']} (topic set v{s['version']}): {len(s['topics'])} topics")
        out.append(rows(["topic", "examples", "keywords"],
                        [[t["name"], "; ".join(t["examples"])[:70] or "-", ", ".join(t["keywords"])[:50] or "-"]
                         for t in s["topics"]]))
    if "added" in d:
        out.append(f"added: {', '.join(d['added']) or 'none'}; already there (kept as they are): "
                   f"{', '.join(d['kept']) or 'none'}")
    return "\n".join(out)


def spark(values: list[float]) -> str:
    """Shares in [0, 1] as a bar per window."""
    return "".join(SPARK[min(len(SPARK) - 1, int(v * len(SPARK)))] for v in values)


def _trends_table(args, d: dict) -> str:
    if not d["trends"]:
        return "no topics yet: control-plane topics seed, or topics add NAME --examples ..."
    body = []
    for t in d["trends"]:
        shares = [w["negative"] / w["texts"] if w["texts"] else 0.0 for w in t["windows"]]
        state = "FIRING" if t["firing"] else ("rising" if t["rising"] else "-")
        body.append([t["tenant"], t["topic"], f"{t['recent_negative']}/{t['recent_texts']}",
                     f"{t['baseline_negative']}/{t['baseline_texts']}",
                     f"{t['recent_share']:.2f} vs {t['baseline_share']:.2f}",
                     f"{t['p_value']:.2g}" if not t["note"] else "-", state, f"{t['mean_sentiment']:+.2f}",
                     spark(shares) or "-"])
    notes = [f"{t['tenant']}/{t['topic']}: {t['note']}" for t in d["trends"] if t["note"]]
    return "\n".join([f"rule: {d['rule']}",
                      rows(["tenant", "topic", "recent neg/texts", "baseline neg/texts", "negative share", "p",
                            "state", "mean sentiment", "negative share per window"], body), *notes])


def _hook_table(args, d: dict) -> str:
    hooks = d["webhooks"] if "webhooks" in d else [d]
    if not hooks:
        return "no webhooks: control-plane webhooks set --tenant T --url https://..."
    out = [rows(["tenant", "url", "pending", "failed", "updated"],
                [[h["tenant"], h["url"], h["pending"], h["failed"], when(h["updated_at"])] for h in hooks])]
    if len(hooks) == 1 and hooks[0]["secret"]:
        out.append(f"signing secret: {hooks[0]['secret']}\n(shown once: keep it where the receiver verifies "
                   "Sentiedge-Signature; webhooks set --rotate-secret makes a new one)")
    return "\n".join(out)


def _log_table(args, d: dict) -> str:
    if not d["deliveries"]:
        return "no notifications yet"
    return "\n".join([
        "notifications:", rows(["event", "tenant", "type", "state", "attempts", "created", "last error"],
                               [[n["event_id"], n["tenant"], n["type"], n["state"], n["attempts"],
                                 when(n["created_at"]), n["last_error"] or "-"] for n in d["deliveries"]]),
        "attempts:", rows(["when", "event", "attempt", "status", "ms", "error"],
                          [[when(x["at"]), x["event_id"], x["attempt"], x["status"] or "-", f"{x['duration_ms']:.0f}",
                            x["error"] or "-"] for x in d["attempts"]])])


COMMANDS: dict[str, Command] = {
    "topics add": Command(
        "add a topic to a tenant's set (or replace the one of that name); every edge gets the new set",
        _args(a("name", help="1-48 of a-z, 0-9, '_' or '-'"),
              a("--examples", nargs="+", default=[], help="example phrases (\"box arrived crushed\" ...)"),
              a("--keywords", nargs="+", default=[], help="words that name the topic on their own"), TENANT),
        _add, _set_table),
    "topics list": Command(
        "every tenant's topics (or one tenant's)", _args(a("--tenant", default="", help="this tenant's only")),
        lambda args, rpc: rpc.topics.List(_pb().ListTopicsRequest(tenant=args.tenant), metadata=rpc.metadata),
        _set_table),
    "topics remove": Command(
        "remove a topic from a tenant's set", _args(a("name"), TENANT),
        lambda args, rpc: rpc.topics.Remove(_pb().RemoveTopicRequest(tenant=args.tenant, name=args.name),
                                            metadata=rpc.metadata), _set_table),
    "topics seed": Command(
        "add the starter DTC topics (delivery, packaging, ...) the tenant lacks; edit them afterwards", _args(TENANT),
        lambda args, rpc: rpc.topics.Seed(_pb().SeedTopicsRequest(tenant=args.tenant), metadata=rpc.metadata),
        _set_table),
    "topics trends": Command(
        "each topic's merged sentiment over recent windows; flags a rising negative share (stated rule)",
        _args(a("--tenant", default="", help="this tenant's topics only"), a("--topic", default="", help="one topic")),
        lambda args, rpc: rpc.topics.Trends(_pb().TopicTrendsRequest(tenant=args.tenant, topic=args.topic),
                                            metadata=rpc.metadata), _trends_table),
    "webhooks set": Command(
        "send the tenant's trend and trigger notifications to URL (a new hook's signing secret is printed once)",
        _args(TENANT, a("--url", required=True, help="http(s) URL that receives signed POSTs"),
              a("--rotate-secret", action="store_true", help="a new signing secret (printed once)")),
        lambda args, rpc: rpc.webhooks.Set(_pb().SetWebhookRequest(tenant=args.tenant, url=args.url,
                                                                   rotate_secret=args.rotate_secret),
                                           metadata=rpc.metadata), _hook_table),
    "webhooks list": Command(
        "every tenant's webhook, with notifications pending and given up", _none,
        lambda args, rpc: rpc.webhooks.List(_pb().ListWebhooksRequest(), metadata=rpc.metadata), _hook_table),
    "webhooks remove": Command(
        "stop notifying a tenant (what still waits is cancelled)", _args(TENANT),
        lambda args, rpc: rpc.webhooks.Remove(_pb().RemoveWebhookRequest(tenant=args.tenant), metadata=rpc.metadata),
        _hook_table),
    "webhooks log": Command(
        "notifications and every delivery attempt, newest first",
        _args(a("--tenant", default="", help="this tenant's only"),
              a("--limit", type=int, default=50, help="how many of each, newest first")),
        lambda args, rpc: rpc.webhooks.Log(_pb().WebhookLogRequest(tenant=args.tenant, limit=args.limit),
                                           metadata=rpc.metadata), _log_table),
    "webhooks test": Command(
        "queue a signed test notification to the tenant's URL (see webhooks log)", _args(TENANT),
        lambda args, rpc: rpc.webhooks.Test(_pb().TestWebhookRequest(tenant=args.tenant), metadata=rpc.metadata),
        lambda args, d: f"queued {d['type']} {d['event_id']} for tenant {d['tenant']} (control-plane webhooks log)"),
}
