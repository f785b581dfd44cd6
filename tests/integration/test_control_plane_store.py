"""The control-plane store test-suite, run against SQLite and against a real PostgreSQL:
ledger states, rollouts, nodes, cohort merge, tokens, bundles, durability."""

import io
import tarfile
from pathlib import Path

import msgspec
import pytest

from control_plane.cohorts import CohortMerge
from control_plane.errors import BundleRejected, CpError, FailedPrecondition, InvalidArgument, NotFound
from control_plane.ledger import Ledger, pseudonymize
from control_plane.nodes import NodeRegistry
from control_plane.registry import Registry, bucket
from control_plane.store import Aggregate, ModelRow, Node, Store
from edge_node.privacy import Pseudonymizer

KEY = b"k" * 32


def node(store, node_id, now=100.0):
    store.upsert_node(Node(node_id=node_id, registered_at=now, last_seen=now))


def test_pseudonyms_match_the_edges():
    assert pseudonymize(KEY, "alice") == Pseudonymizer(KEY)("alice")


def test_a_request_moves_pending_in_progress_completed(store):
    for n in ("a", "b", "c"):
        node(store, n)
    ledger = Ledger(store, KEY)
    entry = ledger.delete("alice", 100.0)
    assert entry.subject == pseudonymize(KEY, "alice") and "alice" not in entry.subject
    assert ledger.status(entry.request_id).state == "pending"
    store.add_receipt(entry.seq, "a", 101.0)
    status = ledger.status(entry.request_id)
    assert status.state == "in_progress" and status.missing == ["b", "c"]
    store.add_receipt(entry.seq, "b", 102.0)
    assert store.add_receipt(entry.seq, "b", 103.0) is False  # a receipt twice counts once
    store.upsert_node(Node(node_id="c", registered_at=100.0, decommissioned=True))
    status = ledger.status(entry.request_id)
    assert status.state == "completed" and status.completed_at == 102.0


def test_sequence_numbers_are_monotonic_and_filing_is_idempotent(store):
    ledger = Ledger(store, KEY)
    first = ledger.revoke("bob", ["personalization"], 1.0)
    subject = pseudonymize(KEY, "carol")
    filed, new = ledger.file("req-x", 1, subject, [], 2.0, "edge-1", 2.0)
    again, new_again = ledger.file("req-x", 1, subject, [], 3.0, "edge-1", 3.0)
    assert new and not new_again and again.seq == filed.seq > first.seq
    assert [e.seq for e in store.privacy_after(0)] == [first.seq, filed.seq]


def test_compaction_waits_for_every_receipt_and_keeps_the_proof(store):
    for n in ("a", "b"):
        node(store, n)
    ledger = Ledger(store, KEY)
    entries = [ledger.delete(f"user-{i}", 100.0 + i) for i in range(4)]
    for e in entries:
        store.add_receipt(e.seq, "a", 200.0)
    for e in entries[:2] + entries[3:]:  # b misses the third one
        store.add_receipt(e.seq, "b", 200.0)
    assert ledger.compact(now=1000.0, after_s=10_000) == (0, 0)  # too young
    assert ledger.compact(now=1000.0, after_s=0) == (2, 2)  # up to the entry b has not applied
    assert [e.seq for e in store.privacy_after(0)] == [entries[2].seq, entries[3].seq]
    compacted = ledger.status(entries[0].request_id)
    assert compacted.entry.subject == "" and compacted.state == "completed"
    assert [n for n, _ in compacted.receipts] == ["a", "b"]  # the proof stays
    store.upsert_node(Node(node_id="b", registered_at=100.0, decommissioned=True))
    assert ledger.compact(now=1000.0, after_s=0) == (4, 2)  # a decommissioned node no longer holds it back
    assert store.privacy_after(0) == [] and store.privacy_floor() == 4


def test_an_idempotency_key_files_a_request_once(store):
    ledger = Ledger(store, KEY)
    first = ledger.delete("alice", 1.0, idempotency_key="k-1")
    assert ledger.delete("alice", 2.0, idempotency_key="k-1").request_id == first.request_id
    revoke = ledger.revoke("alice", ["sentiment"], 3.0, idempotency_key="k-2")
    assert ledger.revoke("alice", ["sentiment"], 4.0, idempotency_key="k-2").seq == revoke.seq
    with pytest.raises(InvalidArgument, match="already used"):
        ledger.delete("bob", 5.0, idempotency_key="k-1")
    assert len(store.privacy_after(0)) == 2


@pytest.mark.parametrize("call, message", [
    (lambda ledger: ledger.revoke("bob", [], 1.0), "at least one purpose"),
    (lambda ledger: ledger.revoke("bob", ["ads"], 1.0), "unknown purpose"),
    (lambda ledger: ledger.delete("  ", 1.0), "empty"),
    (lambda ledger: ledger.file("r", 1, "not-a-hash", [], 1.0, "e", 1.0), "pseudonymized"),
    (lambda ledger: ledger.status("req-nope"), "no privacy request"),
])
def test_bad_privacy_requests_are_refused_with_a_reason(store, call, message):
    with pytest.raises((InvalidArgument, NotFound), match=message):
        call(Ledger(store, KEY))


def _join(store, *node_ids, bundled=("m", "0", "s0")):
    for node_id in node_ids:
        NodeRegistry(store, stale_after_s=60).hello(node_id, "eu", bundled, 0, 1.0, bundled=bundled)


def test_rollout_percent_is_sticky_and_rollback_returns(store, tmp_path):
    registry = Registry(store, tmp_path)
    for sha, version in (("s1", "1"), ("s2", "2")):
        store.add_model(ModelRow(manifest_sha=sha, name="m", version=version, bundle_sha="b", size=1, pushed_at=1.0))
    nodes = [f"n{i}" for i in range(200)]
    _join(store, *nodes)
    registry.rollout("m", "1", None, [], 1.0)
    registry.rollout("m", "2", 34, [], 2.0)
    moved = {n for n in nodes if registry.desired(n).version == "2"}
    assert len(moved) == 68  # ceil(34% of 200)
    assert moved == set(sorted(nodes, key=lambda n: (bucket(n, "m"), n))[:68])
    registry.rollout("m", "2", 0, ["n0"], 3.0)
    assert registry.desired("n0").version == "2" and registry.desired("n1").version == "1"
    registry.rollback("m", 4.0)
    assert {registry.desired(n).version for n in nodes} == {"1"}
    with pytest.raises(NotFound):
        registry.rollout("m", "7", None, [], 5.0)
    with pytest.raises(FailedPrecondition):
        registry.rollback("other", 5.0)


def test_a_percentage_picks_the_ceiling_of_the_fleet_and_keeps_it_as_nodes_join(store, tmp_path):
    registry = Registry(store, tmp_path)
    store.add_model(ModelRow(manifest_sha="s1", name="m", version="1", bundle_sha="b", size=1, pushed_at=1.0))
    _join(store, "pop-ams", "pop-fra", "pop-lhr")
    rollout, _ = registry.rollout("m", "1", 34, [], 1.0)
    first = registry.targets(rollout)
    assert len(first) == 2  # ceil(34% of 3): 34 is not "none"
    assert len(registry.targets(registry.rollout("m", "1", 1, [], 2.0)[0])) == 1  # any share > 0: one node
    assert len(registry.targets(registry.rollout("m", "1", 50, [], 3.0)[0])) == 2  # not all three
    rollout, warnings = registry.rollout("m", "1", 0, [], 4.0)
    assert registry.targets(rollout) == set() and "no node" in warnings[0]
    assert {registry.desired(n).version for n in ("pop-ams", "pop-fra", "pop-lhr")} == {"0"}  # still bundled
    rollout, _ = registry.rollout("m", "1", 34, [], 5.0)
    chosen = registry.targets(rollout)
    _join(store, *(f"pop-new{i}" for i in range(6)))  # 9 nodes: ceil(34% of 9) = 4
    grown = registry.targets(rollout)
    assert chosen <= grown and len(grown) == 4  # sticky: the first picks stay, new ones are added


def test_named_nodes_must_be_known_unless_allowed(store, tmp_path):
    registry = Registry(store, tmp_path)
    store.add_model(ModelRow(manifest_sha="s1", name="m", version="1", bundle_sha="b", size=1, pushed_at=1.0))
    _join(store, "pop-fra")
    with pytest.raises(InvalidArgument, match="unknown node.*pop-ams.*--allow-unknown"):
        registry.rollout("m", "1", None, ["pop-ams"], 1.0)
    assert store.rollouts() == []
    _, warnings = registry.rollout("m", "1", None, ["pop-ams"], 1.0, allow_unknown=True)
    assert "pop-ams" in warnings[0]


def test_rollback_after_the_first_rollout_returns_to_each_nodes_bundled_model(store, tmp_path):
    registry = Registry(store, tmp_path)
    store.add_model(ModelRow(manifest_sha="s2", name="m", version="2", bundle_sha="b", size=1, pushed_at=1.0))
    _join(store, "a", bundled=("m", "1.1.1", "sha-a"))
    _join(store, "b", bundled=("m", "1.1.0", "sha-b"))
    registry.rollout("m", "2", None, [], 1.0)
    assert registry.desired("a").version == "2"
    registry.rollback("m", 2.0)
    back = {n: registry.desired(n) for n in ("a", "b")}
    assert (back["a"].version, back["a"].manifest_sha, back["a"].bundled) == ("1.1.1", "sha-a", True)
    assert (back["b"].version, back["b"].manifest_sha) == ("1.1.0", "sha-b")
    registry.rollback("m", 3.0)  # and forward again
    assert registry.desired("b").version == "2"


def test_a_parked_version_is_cleared_when_the_operator_acts(store, tmp_path):
    registry = Registry(store, tmp_path)
    store.add_model(ModelRow(manifest_sha="s1", name="m", version="1", bundle_sha="b", size=1, pushed_at=1.0))
    store.set_node_model("n1", "s1", "parked", "too big", 1.0)
    assert store.node_model("n1", "s1") == ("parked", "too big")
    registry.rollout("m", "1", None, [], 2.0)
    assert store.node_model("n1", "s1") is None


def tar_with(name: str, data: bytes = b"x", kind=tarfile.REGTYPE) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize("payload, message", [
    (tar_with("../evil.txt"), "not a plain top-level file"),
    (tar_with("/etc/evil"), "not a plain top-level file"),
    (tar_with("sub/manifest.json"), "not a plain top-level file"),
    (tar_with("link", kind=tarfile.SYMTYPE), "not a plain top-level file"),
    (b"this is not a tar", "not a readable"),
    (tar_with("notes.txt"), "no manifest.json"),
])
def test_hostile_or_broken_uploads_are_rejected_and_nothing_is_stored(store, tmp_path, payload, message):
    registry = Registry(store, tmp_path)
    upload = tmp_path / "upload.tar"
    upload.write_bytes(payload)
    with pytest.raises(BundleRejected, match=message):
        registry.accept(upload, 1.0)
    assert store.models() == [] and not (tmp_path.parent / "evil.txt").exists()
    assert store.bundle_shas() == []


def test_nodes_turn_stale_and_show_their_lag(store):
    registry = NodeRegistry(store, stale_after_s=30)
    registry.hello("a", "eu", ("m", "1", "s"), 0, 100.0)
    Ledger(store, KEY).delete("x", 100.0)
    views = {v.node.node_id: v for v in registry.views(110.0)}
    assert views["a"].state == "connected" and views["a"].cursor_lag == 1
    registry.gone("a", 110.0)
    assert registry.views(120.0)[0].state == "disconnected"
    assert registry.views(200.0)[0].state == "stale"


def agg(cohort, users, window=0, sentiment=0.0):
    return Aggregate(window_start=window, window_seconds=1800, cohort=cohort, users=users, texts=users, negative=0,
                     events=users, sentiment_sum=sentiment, categories={"books": float(users)})


def test_cohorts_merge_across_edges_without_double_counting_and_hide_small_ones(store):
    merge = CohortMerge(store, min_size=50, horizon_s=10**10)
    merge.ingest("e1", [agg("eu/mobile/evening", 30, sentiment=3.0), agg("us/web/night", 10)])
    merge.ingest("e2", [agg("eu/mobile/evening", 30, sentiment=-1.0)])
    merge.ingest("e2", [agg("eu/mobile/evening", 30, sentiment=-1.0)])  # a resend replaces
    merged = merge.merged(now=100.0)
    assert [(c.cohort, c.users, c.sentiment_sum) for c in merged] == [("eu/mobile/evening", 60, 2.0)]
    assert merge.priors(100.0)[0].categories == {"books": 60.0}


def test_cohorts_merge_per_tenant_and_never_across_tenants(store):
    """The same cohort and window in two tenants are two merged cells and two priors; the
    one-node share cap holds in each tenant's cell apart."""
    merge = CohortMerge(store, min_size=50, horizon_s=10**10)
    casino = msgspec.structs.replace(agg("eu/mobile/evening", 60, sentiment=-30.0), tenant="casino")
    pharmacy_e1 = msgspec.structs.replace(agg("eu/mobile/evening", 90, sentiment=9.0), tenant="pharmacy")
    merge.ingest("e1", [casino, pharmacy_e1])
    merge.ingest("e2", [msgspec.structs.replace(agg("eu/mobile/evening", 10, sentiment=1.0), tenant="pharmacy")])
    merged = {(c.tenant, c.cohort): c for c in merge.merged(now=100.0)}
    assert set(merged) == {("casino", "eu/mobile/evening"), ("pharmacy", "eu/mobile/evening")}
    assert merged[("casino", "eu/mobile/evening")].sentiment_sum == -30.0  # e1 alone: bounded by its cap only
    pharmacy = merged[("pharmacy", "eu/mobile/evening")]
    # e1 reports 90 beside e2's 10: capped at 3 × max(10, min size 50) = 150 → not scaled here,
    # and the casino's 60 users never count in the pharmacy's cell.
    assert pharmacy.users == 100 and pharmacy.sentiment_sum == 10.0
    priors = {(p.tenant, p.cohort): p for p in merge.priors(100.0)}
    assert priors[("casino", "eu/mobile/evening")].users == 60
    assert priors[("pharmacy", "eu/mobile/evening")].users == 100
    assert [c.tenant for c in merge.merged(100.0, "casino")] == ["casino"]
    assert merge.merged(100.0, "nobody") == []


def test_one_node_is_share_capped_in_each_tenants_cell(store):
    merge = CohortMerge(store, min_size=10, horizon_s=10**10, new_node_users=1000)
    merge.ingest("rogue", [msgspec.structs.replace(agg("eu/mobile/evening", 900, sentiment=900.0), tenant="shop")])
    merge.ingest("honest", [msgspec.structs.replace(agg("eu/mobile/evening", 100, sentiment=-100.0), tenant="shop"),
                            msgspec.structs.replace(agg("eu/mobile/evening", 100, sentiment=-100.0), tenant="other")])
    merged = {c.tenant: c for c in merge.merged(100.0)}
    assert merged["shop"].users == 300 + 100  # the rogue counts at most 3 × the others in the shop's cell
    assert merged["other"].users == 100 and merged["other"].sentiment_sum == -100.0  # untouched by the rogue


def test_rows_without_a_tenant_are_the_legacy_tenants_or_nobodys(store):
    merge = CohortMerge(store, min_size=10, horizon_s=10**10)
    merge.ingest("e1", [agg("eu/mobile/evening", 20)])  # from before tenants: tenant ""
    merge.ingest("e2", [msgspec.structs.replace(agg("eu/mobile/evening", 30), tenant="shop")])
    assert {(c.tenant, c.users) for c in merge.merged(100.0)} == {("", 20), ("shop", 30)}  # "" serves nobody
    merge.legacy_tenant = "shop"
    assert [(c.tenant, c.users) for c in merge.merged(100.0)] == [("shop", 50)]


def test_experiment_counts_are_kept_per_tenant_and_reported_for_one(store):
    from control_plane.experiments import ExperimentBook
    from sentiedge_core.experiments import Arm, Experiment

    book = ExperimentBook(store)
    book.add(Experiment(name="x", salt="x", arms=[Arm(name="a", weight=1), Arm(name="h", weight=1, holdout=True)]), 1.0)
    book.ingest("e1", [(0, "x", "a", "eu/mobile/evening", 200, 0, 40, 0.0, "shop"),
                       (0, "x", "h", "eu/mobile/evening", 200, 0, 20, 0.0, "shop"),
                       (0, "x", "a", "eu/mobile/evening", 100, 0, 5, 0.0, "casino")], 2.0)
    overall = {r.arm: r for r in book.report("x")[1] if r.cohort == "all"}
    assert overall["a"].exposures == 300 and overall["a"].conversions == 45
    shop = {r.arm: r for r in book.report("x", "shop")[1] if r.cohort == "all"}
    assert shop["a"].exposures == 200 and shop["a"].conversions == 40 and shop["h"].exposures == 200
    casino = {r.arm: r for r in book.report("x", "casino")[1]}
    assert set(casino) == {"a"} and casino["a"].exposures == 100


def test_state_survives_a_reopen(backend):
    store = backend()
    Ledger(store, KEY).delete("x", 1.0)
    store.put_bundle("sha", b"0123456789")
    store.close()
    store = backend()
    assert store.privacy_head() == 1
    assert store.bundle_chunk("sha", 3, 4) == b"3456" and store.bundle_shas() == ["sha"]
    store.close()


def test_tokens_and_audit_persist(store):
    assert store.add_token("alice", "h1", 1.0) and not store.add_token("alice", "h2", 2.0)
    assert store.token_name("h1") == "alice" and store.revoke_token("alice", 3.0)
    assert store.token_name("h1") is None and store.add_token("alice", "h3", 4.0)  # a revoked name can return
    store.audit(5.0, "ops", "Privacy.Delete", "req-1", True)
    assert store.audit_entries(10) == [(5.0, "ops", "Privacy.Delete", "req-1", True)]


def test_sequence_numbers_have_no_gaps_after_a_failed_append(store):
    ledger = Ledger(store, KEY)
    ledger.delete("a", 1.0)
    with pytest.raises(InvalidArgument):
        ledger.file("r", 1, "not-hex", [], 1.0, "e", 1.0)
    ledger.delete("b", 2.0)
    assert [e.seq for e in store.privacy_after(0)] == [1, 2]


def test_merged_windows_keep_per_category_counts_and_old_rows_still_read(store):
    merge = CohortMerge(store, min_size=2, horizon_s=86400, window_s=60)
    for node_id, negative in (("a", 2), ("b", 1)):
        merge.ingest(node_id, [Aggregate(window_start=960, window_seconds=60, cohort="eu/mobile/evening", users=2,
                                         texts=3, negative=negative, events=4, sentiment_sum=-0.5,
                                         categories={"garden": 1.0}, topic_texts={"garden": 3},
                                         topic_negative={"garden": negative}, topic_events={"garden": 4},
                                         topic_sentiment={"garden": -0.5})], now=2000)
    (cell,) = merge.merged(2000)
    assert (cell.topic_texts, cell.topic_negative, cell.topic_events) == ({"garden": 6}, {"garden": 3}, {"garden": 8})
    assert cell.topic_sentiment == {"garden": -1.0} and cell.categories == {"garden": 2.0}
    with store._tx() as db:  # a row from before per-category counts: the weights alone, as a flat object
        db.execute("UPDATE cohorts SET categories = ? WHERE node_id = ?", ('{"garden": 1.0}', "a"))
    (cell,) = merge.merged(2000)
    assert cell.categories == {"garden": 2.0} and cell.topic_negative == {"garden": 1}


def test_a_database_from_the_first_release_is_migrated_forward(tmp_path):
    """The previous release's SQLite database (tests/data/control-plane-v1.sql) opens: it gains
    the newer tables and a schema version, keeps its rows, and the new rules work on them."""
    import sqlite3

    from control_plane import migrations

    dump = (Path(__file__).resolve().parents[1] / "data" / "control-plane-v1.sql").read_text()
    (tmp_path / "cp").mkdir()
    old = sqlite3.connect(tmp_path / "cp" / "control-plane.db")
    old.executescript(dump)
    old.close()
    store = Store(tmp_path / "cp")
    assert store.schema_version == migrations.LATEST >= 2
    assert store._rows("SELECT version FROM schema_version") == [(migrations.LATEST,)]
    (node,) = store.nodes()
    assert (node.node_id, node.model_version, node.privacy_cursor) == ("pop-ams", "1.1.1", 3)
    (rollout,) = store.rollouts()
    assert rollout.current_sha == "sha200" and rollout.previous_sha == ""
    (_, cell), = store.aggregates_since(0)
    assert cell.categories == {"garden": 4.0} and cell.topic_texts == {}  # an old row, read as it was written
    assert cell.tenant == ""  # from before tenants (migration 6): the legacy tenant's, or nobody's
    # The migrated tables work: the node reports its bundled model, and a rollback returns it there.
    NodeRegistry(store, stale_after_s=60).hello("pop-ams", "eu", ("sentiedge-sentiment", "2.0.0", "sha200"), 3, 2.0,
                                                bundled=("sentiedge-sentiment", "1.1.1", "sha111"))
    registry = Registry(store, tmp_path)
    registry.rollback("sentiedge-sentiment", 3.0)
    assert registry.desired("pop-ams").manifest_sha == "sha111"
    # Old privacy-log rows read with no policy version; a withdrawal filed now keeps its own (migration 5).
    assert {e.policy_version for e in store.privacy_after(0)} <= {""}
    entry, _ = store.append_privacy("req-v5", 2, "a" * 32, ["personalization"], 4.0, "pop-ams", 4.0, "2026-11")
    assert store.privacy_entry("req-v5").policy_version == "2026-11" == entry.policy_version
    store.close()
    assert Store(tmp_path / "cp").schema_version == migrations.LATEST  # opening again changes nothing


def test_a_database_from_a_newer_release_is_refused(tmp_path):
    from control_plane import migrations

    store = Store(tmp_path)
    with store._tx() as db:
        db.execute("UPDATE schema_version SET version = ?", (migrations.LATEST + 1,))
    store.close()
    with pytest.raises(CpError, match="newer than this control plane"):
        Store(tmp_path)


def test_the_postgresql_store_reconnects_after_the_server_drops_its_connections(postgres, tmp_path):
    """A restart, a failover or an idle timeout closes the server side; the next call works."""
    import psycopg

    url = postgres.new_database()
    store = Store(tmp_path, url)
    store.upsert_node(Node(node_id="pop-ams", registered_at=1.0))
    with psycopg.connect(url, autocommit=True) as admin:
        dropped = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    assert dropped and all(ok for (ok,) in dropped)
    assert [n.node_id for n in store.nodes()] == ["pop-ams"]  # a read on a fresh connection
    store.upsert_node(Node(node_id="pop-fra", registered_at=2.0))  # and a write
    assert sorted(n.node_id for n in store.nodes()) == ["pop-ams", "pop-fra"]
    store.close()


def test_adaptation_jobs_updates_ledger_and_unsigned_candidates_on_both_backends(store):
    assert store.add_adaptation("adapt-1", "m", '{"x": 1}', [0.0, 2.0], 10.0)
    assert not store.add_adaptation("adapt-2", "m", "{}", [1.0], 11.0), "one running job per model name"
    assert store.add_adaptation("adapt-3", "other", "{}", [3.0], 12.0)
    assert store.adaptation_bodies(name="m") == ['{"x": 1}']
    assert len(store.adaptation_bodies(state="running")) == 2 and store.adaptation_active()
    # Compare-and-set on (state, round): a second replica's stale update changes nothing.
    assert store.update_adaptation("adapt-1", '{"x": 2}', "running", 1, expected_state="running", expected_round=0,
                                   now=13.0)
    assert not store.update_adaptation("adapt-1", '{"x": 3}', "running", 1, expected_state="running",
                                       expected_round=0, now=14.0)
    assert store.adaptation_bodies(job_id="adapt-1") == ['{"x": 2}']
    # One answer per job, round and node: a resend is ignored.
    assert store.put_adaptation_update("adapt-1", 1, "edge-a", "ok", 40, "[0.5]", 15.0)
    assert not store.put_adaptation_update("adapt-1", 1, "edge-a", "ok", 99, "[9.0]", 16.0)
    assert store.adaptation_updates("adapt-1", 1) == [("edge-a", "ok", 40, "[0.5]")]
    assert store.answered("adapt-1", 1, "edge-a") and not store.answered("adapt-1", 1, "edge-b")
    store.prune_adaptation_updates("adapt-1")
    assert store.adaptation_updates("adapt-1", 1) == []
    assert store.privacy_spend() == {"m": [0.0, 2.0], "other": [3.0]}
    # An unsigned candidate: marked, then replaced by its signed tar.
    store.put_bundle("sha-c", b"unsigned tar")
    store.add_model(ModelRow(manifest_sha="sha-c", name="m", version="1-adapted.1", bundle_sha="b1", size=12,
                             pushed_at=1.0))
    store.mark_unsigned("sha-c")
    assert store.unsigned("sha-c")
    store.replace_signed_bundle("sha-c", b"signed tar!!", "b2")
    assert not store.unsigned("sha-c")
    assert store.bundle_chunk("sha-c", 0, 100) == b"signed tar!!"
    row = store.model(sha="sha-c")
    assert (row.bundle_sha, row.size) == ("b2", 12)


def test_a_store_from_before_tenants_with_apps_opens_and_keeps_its_users(tmp_path):
    """The upgrade path: apps registered by the release before tenants become one legacy tenant."""
    import msgspec

    from control_plane.apps import AppBook
    from control_plane.store import Store
    from sentiedge_core.access import App, KeyDigest

    store = Store(tmp_path)
    for name in ("shop", "shop-ios"):  # as the earlier release stored them: no tenant field
        body = msgspec.json.encode(App(app_id=f"app_{name}", name=name, client_keys=[KeyDigest(sha256="x")]))
        store.put_app(name, body.decode().replace(',"tenant":""', ""), 1.0)
    book = AppBook(store)
    assert book.legacy_tenant == "shop" and {a.tenant_id for a in book.all()} == {"shop"}
    assert AppBook(store).legacy_tenant == "shop"  # decided once
    store.close()


def test_privacy_requests_still_name_a_revoked_apps_tenant(tmp_path):
    from control_plane.apps import AppBook
    from control_plane.errors import InvalidArgument
    from control_plane.store import Store

    store = Store(tmp_path)
    book = AppBook(store)
    book.add("shop", [], "", 1.0)
    book.add("clinic", [], "", 1.0)
    book.revoke("shop", "", 2.0)
    assert book.tenant_of_request("shop") == "shop"  # its users still have data to erase
    with pytest.raises(InvalidArgument):  # two tenants: never guessed, even with one revoked
        book.tenant_of_request("")
    store.close()
