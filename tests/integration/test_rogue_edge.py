"""One enrolled, malicious edge beside honest ones, against every merge of the control
plane: it holds a real credential, so nothing refuses its stream; what it says is bounded.
Cohorts, segments and experiments go through the real gRPC control plane (in process, a free
port); adaptation through the sync use cases the servicer calls, on the real release bundle,
as tests/integration/test_adaptation_cp.py does. Each test asserts the bound docs/operations.md states
("One node, bounded influence")."""

import math

import numpy as np
import pytest

from protos.sentiedge.v1 import sync_pb2
from sentiedge_core import adaptation
from sentiedge_core.experiments import Arm, Experiment
from tests.integration.test_adaptation_cp import connect, pushed, started  # noqa: F401 (fixture)
from tests.integration.test_control_plane_grpc import run
from tests.integration.test_control_plane_trust import STRICT, Stream, enroll

COHORT = "eu/mobile/evening"


async def beat(channel, node, secret, **fields):
    stream = Stream(channel, node, secret)
    await stream.until("welcome")
    stream.queue.put_nowait(sync_pb2.EdgeMessage(heartbeat=sync_pb2.Heartbeat(seq=1, **fields)))
    assert (await stream.until("heartbeat_receipt")).heartbeat_receipt.seq == 1
    stream.close()


def cell(window: int, users: int, categories: dict) -> sync_pb2.CohortAggregate:
    return sync_pb2.CohortAggregate(window_start=window, window_seconds=1800, cohort=COHORT, users=users,
                                    texts=users, events=users, sentiment_sum=users * 0.5, categories=categories)


def test_a_rogue_cannot_ramp_a_cohort_by_heartbeats_nor_own_a_prior(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        clock = [cp.now()]
        cp.now = lambda: clock[0]
        window = int(clock[0] // 1800 * 1800)
        # An honest edge whose traffic grew over six hours to 2,000 users per cell: its cap grows
        # with time (doubling per hour), so it is counted in full.
        for i, users in enumerate((100, 200, 400, 800, 1600, 2000)):
            await beat(channel, "honest", secrets["honest"], cohorts=[
                cell(window - (12 - i) * 1800, users, {"books": 2.0 * users})])
            clock[0] += 3600
        window = int(clock[0] // 1800 * 1800)
        # The attack of the issue: 100 -> 10,000 users in 7 heartbeats under a second.
        for i in range(7):
            await beat(channel, "rogue", secrets["rogue"], cohorts=[
                cell(window - (i + 1) * 1800, 100 * 2 ** (i + 1), {"poison": 1e9})])
            clock[0] += 0.1
        assert cp.cohorts.cap("rogue", clock[0]) <= 100 * 2 ** (0.7 / 3600) + 1, "growth is per hour, not per beat"
        stored = {a.window_start: a.users for n, a in cp.store.aggregates_since(0) if n == "rogue"}
        assert max(stored.values()) <= 101
        honest = {a.window_start: a.users for n, a in cp.store.aggregates_since(0) if n == "honest"}
        assert max(honest.values()) == 2000, "an honest edge growing with time is never clipped"
        # The rogue's weight in the prior is at most CP_MAX_NODE_SHARE (here its cap keeps it
        # far below), so it moves the prior's mean by at most that.
        prior = {p.cohort: p for p in cp.cohorts.priors(clock[0])}[COHORT]
        rogue_users = sum(stored.values())
        assert rogue_users / prior.users <= 0.75 + 1e-9
        assert prior.categories["poison"] / prior.users <= 0.75 * 3.0 + 1e-9  # 3.0: a user's category clip
        assert prior.categories["books"] > prior.categories["poison"]

    run(tmp_path, scenario, **STRICT)


def seed(window: int, index: int, users: int, direction: np.ndarray, category: str) -> sync_pb2.SegmentAggregate:
    return sync_pb2.SegmentAggregate(window_start=window, version=0, index=index, seed=True, users=users,
                                     vector_sum=(users * direction).tolist(), categories={category: 2.0 * users})


def test_a_rogues_topic_complaints_are_bounded_by_its_users_and_its_share(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        window = int(cp.now() // 1800 * 1800) - 1800
        calm = cell(window, 100, {})
        calm.tenant, calm.texts, calm.events = "shop", 200, 200
        calm.aspect_texts["packaging"], calm.aspect_negative["packaging"] = 100, 10  # one in ten negative
        calm.aspect_sentiment["packaging"] = 30.0
        await beat(channel, "honest", secrets["honest"], cohorts=[calm])
        # The rogue claims a flood of packaging complaints in the same cell, and topics of junk.
        flood = cell(window, 100, {})
        flood.tenant, flood.texts, flood.events = "shop", 1_000_000, 1_000_000
        flood.aspect_texts.update({"packaging": 1_000_000, **{f"junk{i}": 9 for i in range(500)}})
        flood.aspect_negative["packaging"] = 1_000_000
        flood.aspect_sentiment["packaging"] = -1e9
        await beat(channel, "rogue", secrets["rogue"], cohorts=[flood])
        (rogue,) = [a for n, a in cp.store.aggregates_since(0) if n == "rogue"]
        assert rogue.aspect_texts["packaging"] == 100 * 5  # at most 5 mentions per user it may claim
        assert rogue.aspect_sentiment["packaging"] == -100.0 and len(rogue.aspect_texts) <= 64
        (merged,) = cp.cohorts.merged(cp.now(), "shop")
        # Two nodes of 100 users: neither is scaled; the rogue's complaints count as its users allow.
        share = merged.aspect_negative["packaging"] / merged.aspect_texts["packaging"]
        assert share <= (500 + 10) / (500 + 100)
        # Sent again, its claims replace the stored ones: they never add up over heartbeats.
        again = cell(window, 20, {})
        again.tenant, again.texts, again.events = "shop", 100, 100
        again.aspect_texts["packaging"], again.aspect_negative["packaging"] = 100, 100
        await beat(channel, "rogue", secrets["rogue"], cohorts=[again])
        (merged,) = cp.cohorts.merged(cp.now(), "shop")
        assert merged.aspect_negative["packaging"] == 10 + 100 and merged.aspect_texts["packaging"] == 200

    run(tmp_path, scenario, app="shop", **STRICT)


def test_one_node_of_seed_clusters_seeds_nothing_and_owns_at_most_its_quota(tmp_path):
    k, dim = 8, 32
    eye = np.eye(dim)

    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        window = int(cp.now() // 1800 * 1800) - 1800
        # The attack of the issue: one heartbeat of 16 seed clusters claiming 160,000 members.
        poison = [seed(window, j, 10_000, eye[16 + j] if j < 16 else eye[j], f"Poison/{j}") for j in range(16)]
        await beat(channel, "rogue", secrets["rogue"], segments=poison)
        assert not cp.segments.advance(cp.now() + 1), "one node's seed clusters alone seed nothing"
        assert not cp.segments.current().segments
        # An honest edge sends its own 8 clusters: now seeding runs, the rogue alone is the
        # source of at most ceil(k / 2) = 4 centroids (16 of them asked for all 8).
        honest = [seed(window, j, 60, eye[j], f"honest/{j}") for j in range(8)]
        await beat(channel, "honest", secrets["honest"], segments=honest)
        cp.segments.advance(cp.now() + 60)
        seeded = cp.segments.current().segments
        assert len(seeded) == k
        alone = [g for g in seeded if all(c.startswith("Poison") for c in g.categories)]
        assert len(alone) <= math.ceil(k / 2), [g.label for g in seeded]
        # In a centroid seeded from both, the rogue's seeds weigh at most CP_MAX_NODE_SHARE.
        for g in seeded:
            if g not in alone:
                honest_mean = sum(v for c, v in g.categories.items() if c.startswith("honest"))
                assert honest_mean >= (1 - 0.75) * 2.0 - 1e-9, g  # 2.0: each member's category weight

    run(tmp_path, scenario, **STRICT, CP_SEGMENTS=str(k), CP_COHORT_MIN_SIZE="5", CP_SEGMENT_ROUND_DELAY_S="0")


def test_experiment_counts_are_bounded_by_the_nodes_traffic_and_share(tmp_path):
    async def scenario(channel, cp):
        cp.experiments.add(Experiment(name="exp", salt="s", arms=[Arm(name="treatment", weight=1),
                                                                   Arm(name="holdout", weight=1, holdout=True)]),
                           cp.now())
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        window = int(cp.now() // 1800 * 1800) - 1800

        def counts(arm, exposures, conversions, value=1.0):
            return sync_pb2.ExperimentAggregate(window_start=window, experiment="exp", arm=arm, cohort=COHORT,
                                                exposures=exposures, conversions=conversions, value=value)

        await beat(channel, "honest", secrets["honest"], experiments=[counts("treatment", 2000, 200, 200.0),
                                                                        counts("holdout", 2000, 200, 200.0)])
        # The attack of the issue: 10^12 exposures and conversions per arm (conversions above),
        # and a value no traffic could make.
        await beat(channel, "rogue", secrets["rogue"], experiments=[counts("treatment", 10**12, 2 * 10**12, 1e15),
                                                                      counts("holdout", 10**12, 0)])
        stored = {r[0]: r for r in cp.store.experiment_counts_by_node("exp") if r[2] == "rogue"}
        most = cp.cohorts.cap("rogue", cp.now()) * cp.settings.experiment_exposures_per_user
        assert all(r[3] <= most and r[4] <= r[3] for r in stored.values()), stored
        _, results = cp.experiments.report("exp")
        treatment = next(r for r in results if r.arm == "treatment" and r.cohort == "all")
        assert treatment.exposures <= 2000 + most and treatment.conversions <= treatment.exposures
        # The rogue's weight in the arm is at most CP_MAX_NODE_SHARE: the honest 10% rate moves
        # by at most 0.75 x (1 - 0.10).
        assert treatment.conversion_rate - 0.10 <= 0.75 * 0.90 + 1e-9
        # Its value too: at most 3 times the honest node's (a 0.75 share of the arm's value).
        assert treatment.value <= 200.0 / (1 - 0.75) + 1e-6

    run(tmp_path, scenario, **STRICT)


def test_one_node_cannot_make_two_items_neighbours(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "honest2", "rogue", "reader")}
        day = int(cp.now() // 86400 * 86400) - 86400

        def pairs(items: dict, counts: list) -> sync_pb2.PairWindow:
            return sync_pb2.PairWindow(tenant="shop", window_start=day, window_seconds=86400, items=items,
                                       pairs=[sync_pb2.ItemPair(a=a, b=b, users=n) for a, b, n in counts])

        await beat(channel, "honest", secrets["honest"], cooccurrence=[pairs({"serum": 60, "cream": 50},
                                                                             [("cream", "serum", 40)])])
        await beat(channel, "honest2", secrets["honest2"], cooccurrence=[pairs({"serum": 30, "cream": 30},
                                                                               [("cream", "serum", 20)])])
        # The attack: every "serum" buyer should read "often chosen with serum" on "poison", and
        # "cream" should drown in made-up serum buyers: one node, any numbers it likes.
        await beat(channel, "rogue", secrets["rogue"], cooccurrence=[pairs(
            {"serum": 10**9, "poison": 10**9, "cream": 10**9},
            [("poison", "serum", 10**9), ("cream", "poison", 10**9), ("cream", "serum", 1)])])
        reader = Stream(channel, "reader", secrets["reader"])
        table = (await reader.until("neighbours")).neighbours
        reader.close()
        got = {e.item: dict(zip(e.neighbours, e.similarity, strict=True)) for e in table.items}
        assert table.tenant == "shop" and "poison" not in got and set(got["serum"]) == {"cream"}
        # Its made-up buyers count at most its cap and a bounded share of each item: cream stays a
        # strong neighbour (60 honest users of 90 chose both; the rogue's 100 capped users dilute it).
        assert got["serum"]["cream"] >= 60 / (190 * 180) ** 0.5 * 60 / 65 - 1e-4
        stored = {n: w for n, w in cp.store.pair_windows_since(0)}
        assert max(stored["rogue"].items.values()) <= cp.cohorts.cap("rogue", cp.now())

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5")


def test_adaptation_weighs_edges_alike_bounds_norms_trims_and_probes(tmp_path, pushed):  # noqa: F811
    tar, manifest, sha = pushed
    # The probe is the shipped default (out-of-domain and customer validation texts, 204, none sent
    # to an edge). out_of_domain.csv alone is answered almost wholly by the fast stage and the
    # early exits, which adaptation does not touch: it did not see this attack.
    cp, sync, ops = started(tmp_path, tar)
    edges = {n: connect(sync, n, manifest, sha) for n in ("honest-1", "honest-2", "honest-3", "rogue")}
    job = ops.adapt(manifest.name, manifest.version, rounds=2, clip=1.0, noise_multiplier=1.0)
    size = adaptation.size(job.dimension)
    rng = np.random.default_rng(7)
    # Norm: an honest noisy update passes, one 117 x the clip (the issue's) is refused; the bound
    # is clip + sigma*clip*(sqrt d + 6).
    bound = adaptation.norm_bound(1.0, 1.0, size)
    assert bound == pytest.approx(1.0 + math.sqrt(size) + 6.0, rel=1e-5)
    task = sync.pending(edges["rogue"]).adaptation
    sync.adaptation_update(edges["rogue"], task.job, 0, "ok", list(np.full(size, 117.0 / math.sqrt(size))), 5000, "")
    refused = [e for e in cp.store.audit_entries(20) if e[2] == "EdgeSync.Adaptation"]
    assert refused and "over the round's bound" in refused[0][3]
    # Three honest edges (100 labels each) and the rogue (5,000 claimed): every edge weighs
    # alike, and from three edges each coordinate stays within the honest edges' range.
    honest = {n: adaptation.noised(adaptation.clip(rng.normal(size=size), 1.0), 1.0, 1.0, rng)
              for n in ("honest-1", "honest-2", "honest-3")}
    evil = np.full(size, (bound * 0.99) / math.sqrt(size))  # inside the norm bound, every coordinate pushed
    for n, delta in honest.items():
        sync.pending(edges[n])
        sync.adaptation_update(edges[n], task.job, 0, "ok", list(delta), 100, "")
    sync.adaptation_update(edges["rogue"], task.job, 0, "ok", list(evil), 5000, "")
    after = ops.adaptations("", job.job_id)[0][0]
    assert after.round == 1 and after.history[0].edges == 4
    moved = np.asarray(after.theta) - np.asarray(job.theta)
    stacked = np.stack(list(honest.values()))
    assert (moved >= stacked.min(axis=0) - 1e-9).all() and (moved <= stacked.max(axis=0) + 1e-9).all()
    # The last round: the rogue alone answers (the honest edges decline), with the largest
    # update its norm bound allows, against the head's direction. Its golden examples are not
    # asked first: the probe set (texts no edge sees) refuses the candidate, nothing is registered.
    # Only the head's direction and offset are pushed: reversing every coordinate would flip the route
    # stackers too, whose weight on the transformer's margin then undoes the head's flip.
    head = np.asarray(after.theta)[: job.dimension + 1]
    against = np.zeros(size)
    against[: job.dimension + 1] = -head / np.linalg.norm(head) * bound * 0.99
    for n in honest:
        sync.pending(edges[n])
        sync.adaptation_update(edges[n], task.job, 1, "too_few_labels", [], 3, "")
    sync.pending(edges["rogue"])
    sync.adaptation_update(edges["rogue"], task.job, 1, "ok", list(against), 5000, "")
    done = ops.adaptations("", job.job_id)[0][0]
    assert done.state == "failed" and "probe set" in done.error, done.error
    assert cp.store.model(name=manifest.name, version=f"{manifest.version}-adapted.1") is None
    cp.close()


def test_a_rogue_cannot_complete_a_request_for_others_nor_flood_the_ledger(tmp_path):
    from protos.sentiedge.v1 import common_pb2, operator_pb2, operator_pb2_grpc
    from tests.integration.test_control_plane_trust import AUTH

    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        honest, rogue = Stream(channel, "honest", secrets["honest"]), Stream(channel, "rogue", secrets["rogue"])
        await honest.until("welcome")
        await rogue.until("welcome")
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        request = await privacy.Delete(operator_pb2.DeleteRequest(user_id="zoe"), metadata=AUTH)
        # The rogue acknowledges every sequence number it can think of, its own and beyond.
        for seq in range(1, 50):
            rogue.queue.put_nowait(sync_pb2.EdgeMessage(ack=sync_pb2.Ack(status=common_pb2.ACK_STATUS_ACK,
                                                                         privacy_seq=seq)))
        await rogue.until("privacy")
        status = await privacy.Status(operator_pb2.PrivacyStatusRequest(request_id=request.request_id), metadata=AUTH)
        assert status.state != "completed" and list(status.missing) == ["honest"]  # only its own receipt counts
        # A burst of filings past its bucket: the surplus is refused, the ledger stays bounded.
        head = cp.store.privacy_head()
        burst = int(cp.settings.filings_burst_per_node)
        for i in range(burst + 300):
            rogue.queue.put_nowait(sync_pb2.EdgeMessage(filing=sync_pb2.PrivacyFiling(
                request_id=f"req-rogue-{i}", kind=1, subject=f"{i:032x}", at=1.0)))
        for _ in range(burst):
            await rogue.until("filing_receipt", timeout=60)
        grown = cp.store.privacy_head() - head
        elapsed_allowance = 60 * cp.settings.filings_per_node_per_s  # the refill over the test's own minute, at most
        assert burst <= grown <= burst + elapsed_allowance
        honest.close()
        rogue.close()

    run(tmp_path, scenario, app="shop", **STRICT)


def test_a_rogues_label_counts_cannot_set_the_fleets_model_quality():
    from control_plane.model_quality import MAX_LABELS_PER_NODE, bound_quality, merge_quality, wilson

    rogue = bound_quality([("m 2", 10**15, 10**16), ("m 2", -5, 3)])
    assert rogue[0] == ("m 2", MAX_LABELS_PER_NODE, MAX_LABELS_PER_NODE) and rogue[1] == ("m 2", 0, 0)
    merged = merge_quality([("honest", "m 2", 1000, 100), ("rogue", "m 2", MAX_LABELS_PER_NODE, 0)])
    labelled, disagreements = merged["m 2"]
    assert labelled <= 1000 / (1 - 0.75) + 1  # its weight: at most 0.75 of the version's labels
    assert disagreements / labelled >= 100 / 1000 * (1 - 0.75) - 1e-9  # the honest rate still shows
    assert wilson(10**16, 10) == wilson(10, 10)  # impossible counts never crash the report


def test_trusted_proxies_are_matched_as_uvicorn_matches_them():
    from edge_node.config import load_settings

    settings = load_settings({"EDGE_TRUSTED_PROXIES": "10.1.2.3/16, 127.0.0.1"})
    assert settings.trusted_proxy_list == ["10.1.0.0/16", "127.0.0.1"]


def mentions(window: int, cohort: str, users: int, texts: int, negative: int, *, seconds: int = 1800,
             tenant: str = "shop") -> sync_pb2.CohortAggregate:
    """A cell whose texts mention packaging ``texts`` times, ``negative`` of them negative."""
    return sync_pb2.CohortAggregate(tenant=tenant, window_start=window, window_seconds=seconds, cohort=cohort,
                                    users=users, texts=texts, events=texts, aspect_texts={"packaging": texts},
                                    aspect_negative={"packaging": negative},
                                    aspect_sentiment={"packaging": -0.5 * negative})


def honest_history(latest: int, recent_negative: int) -> list:
    """An honest edge's "all" cells of 14 windows: 30 packaging mentions each, 3 negative in the
    12 baseline windows and ``recent_negative`` in the 2 recent ones."""
    return [mentions(latest - k * 1800, "all", 60, 30, recent_negative if k < 2 else 3) for k in range(14)]


async def trend_world(channel, cp):
    from sentiedge_core.topics import Topic

    cp.topics.add("shop", Topic(name="packaging", examples=("box arrived crushed",)), cp.now())
    latest = int(cp.now() // 1800 * 1800) - 1800
    return {n: await enroll(channel, n) for n in ("honest", "rogue")}, latest


def test_a_rogue_cannot_fire_a_tenants_topic_trend(tmp_path):
    async def scenario(channel, cp):
        secrets, latest = await trend_world(channel, cp)
        await beat(channel, "honest", secrets["honest"], cohorts=honest_history(latest, 3))  # calm throughout
        assert cp.trends.evaluate(cp.now()) == []
        # The rogue: packaging complaints in the two recent windows, in twenty cohorts only it
        # reports, in its own tenant-wide cell, in windows of its own length (600 s, also making
        # that length the most common) and in windows that start where no window starts.
        flood = [mentions(latest - k * 1800, f"zz/evil-{i}/night", 100, 500, 500) for k in (0, 1) for i in range(20)]
        flood += [mentions(latest - k * 1800, "all", 100, 500, 500) for k in (0, 1)]
        flood += [mentions(latest - k * 600, "all", 100, 500, 500, seconds=600) for k in range(1, 60)]
        flood += [mentions(latest - 900, "eu/mobile/evening", 100, 500, 500)]
        flood += [mentions(latest, bad, 100, 500, 500) for bad in ("eu/mobile/evening/x", "EU/mobile/night",
                                                                   "eu/mobile/teatime")]
        await beat(channel, "rogue", secrets["rogue"], cohorts=flood)
        assert cp.trends.evaluate(cp.now()) == [], "one node fired the tenant's trend"
        (trend,) = cp.trends.report(cp.now(), "shop")
        assert not trend.firing and trend.note.startswith("held quiet: without node rogue"), trend.note
        # Its mentions count at most 3 times the honest edge's in a window, over every cohort it reports.
        (recent,) = [w for w in trend.windows if w.window_start == latest]
        assert recent.texts <= 30 + 3 * 30
        # The topic triggers read the merged cells the edges are sent: the rogue's made-up cohorts
        # hold at most that share of the tenant's packaging mentions too.
        cells = [c for c in cp.cohorts.merged(cp.now(), "shop") if c.window_start == latest and c.cohort != "all"]
        assert sum(c.aspect_texts.get("packaging", 0) for c in cells) <= 3 * 30
        # What no edge builds was refused on intake, counted per reason.
        refused = {s.labels["reason"]: s.value for m in cp.metrics.registry.collect()
                   if m.name == "sentiedge_cp_cohort_aggregates_refused" for s in m.samples
                   if s.name.endswith("_total") and s.labels["node"] == "rogue"}
        assert refused == {"window_length": 59, "window_start": 1, "cohort": 3}, refused

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5")


def test_a_rogue_cannot_clear_an_honest_trend(tmp_path):
    async def scenario(channel, cp):
        secrets, latest = await trend_world(channel, cp)
        await beat(channel, "honest", secrets["honest"], cohorts=honest_history(latest, 15))  # half negative lately
        (fired,) = cp.trends.evaluate(cp.now())
        assert fired.firing and fired.recent_share == 0.5
        # The rogue drowns the recent windows in calm mentions, fills the baseline with complaints,
        # and reports windows of its own length everywhere.
        calm = [mentions(latest - k * 1800, "all", 100, 500, 0) for k in (0, 1)]
        calm += [mentions(latest - k * 1800, "all", 100, 500, 500) for k in range(2, 14)]
        calm += [mentions(latest - k * 1800, f"zz/calm-{i}/night", 100, 500, 0) for k in (0, 1) for i in range(10)]
        calm += [mentions(latest - k * 300, "all", 100, 500, 0, seconds=300) for k in range(1, 100)]
        await beat(channel, "rogue", secrets["rogue"], cohorts=calm)
        assert cp.trends.evaluate(cp.now()) == [], "one node cleared the tenant's trend"
        (trend,) = cp.trends.report(cp.now(), "shop")
        assert trend.firing and trend.note.startswith("held firing: without node rogue"), trend.note

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5")


def test_a_rogue_that_dilutes_an_honest_rise_is_named_by_the_trend(tmp_path):
    async def scenario(channel, cp):
        secrets, latest = await trend_world(channel, cp)
        # The rogue reports three times the honest edge's mentions in every window, calm lately
        # and as negative in the baseline as the honest edge is lately: the honest rise alone
        # would fire the trend; with the rogue's counts it does not (the shares barely move).
        calm = [mentions(latest - k * 1800, "all", 100, 90, 0 if k < 2 else 12) for k in range(14)]
        await beat(channel, "rogue", secrets["rogue"], cohorts=calm)
        await beat(channel, "honest", secrets["honest"], cohorts=honest_history(latest, 15))
        assert cp.trends.evaluate(cp.now()) == []  # a rise one node contradicts holds the trend quiet
        (trend,) = cp.trends.report(cp.now(), "shop")
        assert not trend.firing and trend.note == ("quiet, but without node rogue the counts fire it (one node may "
                                                   "be holding it)"), trend.note

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5")


def test_an_honest_edge_beside_a_silent_node_still_fires_its_trend(tmp_path):
    async def scenario(channel, cp):
        secrets, latest = await trend_world(channel, cp)
        # The other node reports the tenant's windows but never mentions packaging: the honest
        # edge's mentions are bounded by the others' floor, their shares kept, and the rise shows.
        quiet = [sync_pb2.CohortAggregate(tenant="shop", window_start=latest - k * 1800, window_seconds=1800,
                                          cohort="all", users=60, texts=60, events=60) for k in range(14)]
        await beat(channel, "rogue", secrets["rogue"], cohorts=quiet)
        await beat(channel, "honest", secrets["honest"], cohorts=honest_history(latest, 15))
        (fired,) = cp.trends.evaluate(cp.now())
        assert fired.firing and fired.note == "" and abs(fired.recent_share - 0.5) < 0.05

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5")


def test_a_rogue_beside_one_honest_edge_neither_empties_nor_joins_its_neighbour_table(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue", "reader")}
        day = int(cp.now() // 86400 * 86400) - 86400

        def pairs(items: dict, counts: list, back: int = 0) -> sync_pb2.PairWindow:
            return sync_pb2.PairWindow(tenant="shop", window_start=day - back * 86400, window_seconds=86400,
                                       items=items, pairs=[sync_pb2.ItemPair(a=a, b=b, users=n) for a, b, n in counts])

        await beat(channel, "honest", secrets["honest"], cooccurrence=[pairs(
            {"serum": 60, "cream": 50, "mask": 40, "toner": 30},
            [("cream", "serum", 40), ("mask", "toner", 20)])])
        # The rogue reports its own junk (its pairs are its own business: nobody else sees those
        # items), some of the honest edge's items (under a third of its users of each), and pairs
        # tying the honest items to its own; many junk items with big counts over three days, to
        # crowd the honest ones out of a small table.
        junk = {f"junk{i}": 100 for i in range(20)}
        chain = [(f"junk{i}", f"junk{i + 1}", 100) for i in range(19)]
        await beat(channel, "rogue", secrets["rogue"], cooccurrence=[
            pairs({**junk, "serum": 19, "cream": 16, "toner": 9, "poison": 100},
                  [*chain, ("poison", "serum", 19), ("cream", "poison", 16), ("poison", "toner", 9)]),
            *(pairs(junk, chain, back=b) for b in (1, 2))])
        reader = Stream(channel, "reader", secrets["reader"])
        table = (await reader.until("neighbours")).neighbours
        reader.close()
        got = {e.item: set(e.neighbours) for e in table.items}
        # The honest edge's pairs stand (a second node that reports "anything" empties nothing) ...
        assert got["serum"] == {"cream"} and got["cream"] == {"serum"}, got
        assert got["mask"] == {"toner"} and got["toner"] == {"mask"}, got
        # ... and nothing ties an item the honest edge sees to one of the rogue's.
        assert "poison" not in got, got
        # The table's 6 places: the items both report first, then each node's own in turn.
        assert {"serum", "toner", "cream", "mask"} <= set(got) and len(got) <= 6, got

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5", CP_NEIGHBOURS_MAX_ITEMS="6",
        CP_NEIGHBOURS_REBUILD_MIN_S="0")


def event(rule: str, key: str, at: float, *, tenant: str = "shop", active: bool = True) -> sync_pb2.TriggerEvent:
    return sync_pb2.TriggerEvent(rule=rule, cohort=f"{tenant}:{key}" if tenant else key, tenant=tenant, active=active,
                                 value=0.9, at=at)


def test_a_rogue_cannot_forge_trigger_transitions_nor_flood_the_webhook_and_history(tmp_path):
    from control_plane.trigger_intake import MAX_PER_BEAT
    from sentiedge_core.rules import Rule

    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        now = cp.now()
        cp.now = lambda: now  # the clock stands still: no bucket refills while the test runs
        cp.apps.add("clinic", [], "", now)
        cp.rules.add(Rule(name="pack", cohort="eu/*/*", signal="negative_share", topic="packaging", op=">",
                          threshold=0.5, clear=0.4, window_minutes=30, min_size=3, action="note"), now)
        cp.rules.add(Rule(name="clinic-only", cohort="*/*/*", signal="negative_share", op=">", threshold=0.5,
                          clear=0.4, window_minutes=30, min_size=3, action="x", tenant="clinic"), now)
        cp.webhooks.set("shop", "http://127.0.0.1:9/in", rotate=False, now=now)
        # Forged: a rule that does not exist, a rule of another tenant, a tenant that does not
        # exist, a cohort the rule's selector does not match, a cohort no edge builds, the "all"
        # cell, a transition dated in the future and one older than the horizon.
        forged = [event("nope", COHORT, now), event("clinic-only", COHORT, now),
                  event("pack", COHORT, now, tenant="x"), event("pack", "us/mobile/evening", now),
                  event("pack", "EU/x/teatime", now), event("pack", "all", now),
                  event("pack", COHORT, now + 86400), event("pack", COHORT, now - 30 * 86400)]
        await beat(channel, "rogue", secrets["rogue"], triggers=forged)
        def reported():  # the history's rows edges reported (an operator's "added" has no node)
            return [row for row in cp.store.rule_history(10 * MAX_PER_BEAT) if row[1]]

        assert cp.store.outbox("shop", 100) == [] and reported() == []
        # A flood: flapping a real rule in invented cohort keys the selector matches, far past
        # what one heartbeat may carry and one node may report per second.
        flood = [event("pack", f"eu/junk-{i}/night", now + i * 1e-3, active=i % 2 == 0)
                 for i in range(3 * MAX_PER_BEAT)]
        await beat(channel, "rogue", secrets["rogue"], triggers=flood)
        await beat(channel, "rogue", secrets["rogue"], triggers=[event("pack", "eu/more/night", now + 5)] * 50)
        assert len(reported()) == MAX_PER_BEAT  # the bucket
        refused = {s.labels["reason"]: s.value for m in cp.metrics.registry.collect()
                   if m.name == "sentiedge_cp_trigger_events_refused" for s in m.samples
                   if s.name.endswith("_total") and s.labels["node"] == "rogue"}
        assert refused["rule"] == 2 and refused["tenant"] == 1 and refused["cohort"] == 3 and refused["time"] == 2
        assert refused["too_many"] == 2 * MAX_PER_BEAT and refused["rate"] == 50, refused
        # Quarantined, nothing it reports reaches the history or the webhook; an honest edge's does.
        await cp_quarantine(channel, "rogue")
        before = len(cp.store.outbox("shop", 10_000))
        await beat(channel, "rogue", secrets["rogue"], triggers=[event("pack", "eu/web/night", now + 10)])
        await beat(channel, "honest", secrets["honest"], triggers=[event("pack", "eu/web/evening", now + 10)])
        queued = cp.store.outbox("shop", 10_000)
        assert len(queued) == before + 1 and any("eu/web/evening" in q.body for q in queued)
        assert not any("eu/web/night" in q.body for q in queued)

    run(tmp_path, scenario, app="shop", **STRICT, CP_WEBHOOK_ALLOW_PRIVATE="true")


async def cp_quarantine(channel, node: str) -> None:
    from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc
    from tests.integration.test_control_plane_trust import AUTH

    await operator_pb2_grpc.NodesStub(channel).Quarantine(operator_pb2.QuarantineRequest(node_id=node), metadata=AUTH)


def test_a_rogue_cannot_multiply_its_pair_windows_by_their_length_or_alignment(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue", "reader")}
        day = int(cp.now() // 86400 * 86400) - 86400

        def pairs(start: int, seconds: int, items: dict, counts: list) -> sync_pb2.PairWindow:
            return sync_pb2.PairWindow(tenant="shop", window_start=start, window_seconds=seconds, items=items,
                                       pairs=[sync_pb2.ItemPair(a=a, b=b, users=n) for a, b, n in counts])

        await beat(channel, "honest", secrets["honest"], cooccurrence=[pairs(
            day, 86400, {"serum": 60, "cream": 50}, [("cream", "serum", 40)])])
        # The rogue cuts the day into one-second windows (and windows starting off the day), each
        # at its cap, to carry far more than three times the honest edge's users of the serum
        # and tie its own item to it; and stores a row per window.
        short = [pairs(day + i, 1, {"serum": 100, "poison": 100}, [("poison", "serum", 100)]) for i in range(150)]
        shifted = [pairs(day - k * 86400 + 3600, 86400, {"serum": 100, "poison": 100}, [("poison", "serum", 100)])
                   for k in range(1, 51)]
        await beat(channel, "rogue", secrets["rogue"], cooccurrence=short + shifted)
        reader = Stream(channel, "reader", secrets["reader"])
        table = (await reader.until("neighbours")).neighbours
        reader.close()
        got = {e.item: set(e.neighbours) for e in table.items}
        assert got["serum"] == {"cream"} and "poison" not in got, got
        assert [w for n, w in cp.store.pair_windows_since(0) if n == "rogue"] == []  # no row of it stored
        refused = {s.labels["reason"]: s.value for m in cp.metrics.registry.collect()
                   if m.name == "sentiedge_cp_pair_windows_refused" for s in m.samples
                   if s.name.endswith("_total") and s.labels["node"] == "rogue"}
        assert refused == {"window_length": 150, "window_start": 50}, refused

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5", CP_NEIGHBOURS_REBUILD_MIN_S="0")


def test_a_rogue_resending_a_window_cannot_make_every_heartbeat_rebuild_the_tables(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("honest", "rogue")}
        clock = [cp.now()]
        cp.now = lambda: clock[0]
        day = int(clock[0] // 86400 * 86400) - 86400
        builds = []
        build = cp.neighbours.build
        cp.neighbours.build = lambda tenant, now: builds.append(tenant) or build(tenant, now)
        window = sync_pb2.PairWindow(tenant="shop", window_start=day, window_seconds=86400,
                                     items={"serum": 60, "cream": 50}, pairs=[sync_pb2.ItemPair(a="cream", b="serum",
                                                                                                users=40)])
        for _ in range(30):  # the same window, heartbeat after heartbeat
            await beat(channel, "rogue", secrets["rogue"], cooccurrence=[window])
            clock[0] += 0.1
        assert builds == ["shop"], "one rebuild per CP_NEIGHBOURS_REBUILD_MIN_S, not one per heartbeat"
        clock[0] += 10
        await beat(channel, "honest", secrets["honest"])  # any node's next heartbeat rebuilds what waited
        assert builds == ["shop", "shop"]

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5")


def test_a_rogue_cannot_grow_the_store_by_inventing_cohort_keys(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("rogue",)}
        window = int(cp.now() // 1800 * 1800) - 1800

        def invented(i: int, users: int = 5) -> sync_pb2.CohortAggregate:
            return sync_pb2.CohortAggregate(tenant="shop", window_start=window, window_seconds=1800,
                                            cohort=f"zz/made-up-{i}/night", users=users, texts=users, events=users)

        # Heartbeat after heartbeat of new keys in one window, each beat well under its row bound.
        for beat_no in range(3):
            await beat(channel, "rogue", secrets["rogue"], cohorts=[
                invented(beat_no * 40 + i) for i in range(40)] + [mentions(window, "all", 5, 5, 0)])
        rows = [a for n, a in cp.store.aggregates_since(0) if n == "rogue"]
        assert len([a for a in rows if a.cohort != "all"]) == 50 and len(rows) == 51
        # A resend of a key it holds still replaces its row; a new one is refused.
        await beat(channel, "rogue", secrets["rogue"], cohorts=[invented(0, users=7), invented(999)])
        rows = {a.cohort: a.users for n, a in cp.store.aggregates_since(0) if n == "rogue"}
        assert rows["zz/made-up-0/night"] == 7 and "zz/made-up-999/night" not in rows and len(rows) == 51
        refused = {s.labels["reason"]: s.value for m in cp.metrics.registry.collect()
                   if m.name == "sentiedge_cp_cohort_aggregates_refused" for s in m.samples
                   if s.name.endswith("_total") and s.labels["node"] == "rogue"}
        assert refused == {"too_many_cohorts": 70 + 1}, refused

    run(tmp_path, scenario, app="shop", **STRICT, CP_COHORT_MIN_SIZE="5", CP_MAX_NODE_COHORTS_PER_WINDOW="50")


def test_a_rogue_cannot_grow_the_experiment_counts_with_made_up_names_keys_or_windows(tmp_path):
    async def scenario(channel, cp):
        cp.experiments.add(Experiment(name="exp", salt="s", arms=[Arm(name="treatment", weight=1),
                                                                   Arm(name="holdout", weight=1, holdout=True)]),
                           cp.now())
        secrets = {n: await enroll(channel, n) for n in ("rogue",)}
        window = int(cp.now() // 1800 * 1800) - 1800

        def counts(experiment="exp", arm="treatment", cohort=COHORT, start=window):
            return sync_pb2.ExperimentAggregate(window_start=start, experiment=experiment, arm=arm, cohort=cohort,
                                                exposures=10, conversions=1, value=1.0, tenant="shop")

        junk = [counts(experiment="nope"), counts(arm="arm-9"), counts(cohort="EU/x/teatime"),
                *(counts(start=window - k) for k in range(1, 40))]  # windows cut finer than the cohort window
        junk += [counts(cohort=f"zz/made-up-{i}/night") for i in range(120)]
        await beat(channel, "rogue", secrets["rogue"], experiments=junk)
        await beat(channel, "rogue", secrets["rogue"], experiments=[counts(cohort=f"zz/more-{i}/night")
                                                                      for i in range(30)])
        rows = [r for r in cp.store.experiment_counts_by_node("exp") if r[2] == "rogue"]
        assert len(rows) == 50 and {r[0] for r in rows} == {"treatment"}, len(rows)  # the key limit, one arm
        assert cp.store.experiment_counts_by_node("nope") == []

    run(tmp_path, scenario, app="shop", **STRICT, CP_MAX_NODE_COHORTS_PER_WINDOW="50")
