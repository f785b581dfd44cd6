"""Federated adaptation at the control plane, without gRPC: a real control plane on a real
SQLite store and the real release bundle, driven through the sync and operator use cases as
the servicers drive them. The edges here are protocol peers answering rounds; the edge's own
side is tested in test_adaptation_edge.py and end to end in tests/e2e/test_adaptation.py."""

import shutil
import tarfile

import msgspec
import numpy as np
import pytest

from control_plane.config import load_settings
from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound
from control_plane.operator_service import OperatorService
from control_plane.state import ControlPlane
from control_plane.sync_service import SyncService
from sentiedge_core import adaptation, signing
from sentiedge_core.bundle import pack, read_manifest, sha256_file
from sentiedge_core.inference import SentimentModel
from sentiedge_core.stages import read_head
from tests.bundles import head_inside_graph


def plane(tmp_path, **extra) -> ControlPlane:
    return ControlPlane(load_settings({"CP_DATA_DIR": str(tmp_path / "cp"), "CP_ADMIN_TOKENS": "ops:integration-token",
                                       "CP_PSEUDONYM_KEY": "k" * 32, "CP_ADAPT_MIN_LABELS": "20", **extra}))


@pytest.fixture
def pushed(bundle_dir, tmp_path):
    tar = tmp_path / "bundle.tar"
    pack(bundle_dir, tar)
    return tar, read_manifest(bundle_dir), sha256_file(bundle_dir / "manifest.json")


def started(tmp_path, tar, **extra):
    """A control plane with the release bundle pushed, and its sync and operator use cases."""
    cp = plane(tmp_path, **extra)
    cp.registry.accept(tar, cp.now())
    return cp, SyncService(cp), OperatorService(cp)


def connect(sync, node, manifest, sha):
    stream, _ = sync.connect(node, "eu", (manifest.name, manifest.version, sha), 0, None)
    return stream


def answer_round(sync, stream, updates):
    task = sync.pending(stream).adaptation
    assert task is not None
    delta, count = updates
    sync.adaptation_update(stream, task.job, task.round, "ok", list(delta), count, "")
    return task


def test_rounds_average_edges_alike_and_leave_a_verified_candidate(tmp_path, pushed):
    tar, manifest, sha = pushed
    cp, sync, ops = started(tmp_path, tar)
    with pytest.raises(NotFound, match="no pushed model"):
        ops.adapt(manifest.name, "9.9.9", rounds=2)
    with pytest.raises(FailedPrecondition, match="no connected edge serves"):
        ops.adapt(manifest.name, manifest.version, rounds=2)
    a, b = connect(sync, "edge-a", manifest, sha), connect(sync, "edge-b", manifest, sha)
    with pytest.raises(InvalidArgument, match="--min-labels"):
        ops.adapt(manifest.name, manifest.version, rounds=2, min_labels=3)
    job = ops.adapt(manifest.name, manifest.version, rounds=2, clip=1.0)
    with pytest.raises(FailedPrecondition, match="already has an adaptation running"):
        ops.adapt(manifest.name, manifest.version, rounds=1)
    size = adaptation.size(job.dimension)
    rng = np.random.default_rng(0)
    up_a, up_b = adaptation.clip(rng.normal(size=size), 1.0), adaptation.clip(rng.normal(size=size), 1.0)

    task = answer_round(sync, a, (up_a, 30))
    assert task.round == 0 and task.theta == job.theta and task.min_labels == 20
    assert sync.pending(a).adaptation is None  # answered: not sent again
    # A forged answer is refused and audited: too large, too few labels, wrong length, not a round.
    sync.adaptation_update(b, job.job_id, 0, "ok", list(up_b * 5), 30, "")
    sync.adaptation_update(b, job.job_id, 0, "ok", list(up_b), 3, "")
    sync.adaptation_update(b, job.job_id, 0, "ok", list(up_b[:-1]), 30, "")
    sync.adaptation_update(b, job.job_id, 7, "ok", list(up_b), 30, "")
    elsewhere = connect(sync, "edge-other", manifest, "f" * 64)  # serves another version
    assert sync.pending(elsewhere).adaptation is None
    sync.adaptation_update(elsewhere, job.job_id, 0, "ok", list(up_b), 30, "")
    refused = [e for e in cp.store.audit_entries(50) if e[2] == "EdgeSync.Adaptation"]
    assert len(refused) == 5 and not any(e[4] for e in refused)
    assert "does not serve" in refused[0][3]
    assert ops.adaptations(manifest.name, "")[0][0].round == 0, "edge-b has not answered: the round is open"
    answer_round(sync, b, (up_b, 20))
    after_one = ops.adaptations("", job.job_id)[0][0]
    assert after_one.round == 1 and after_one.history[0].edges == 2 and after_one.history[0].labels == 50
    # Every edge weighs alike: a label count is reported (labels == 50), never a weight.
    expected = np.asarray(job.theta) + (up_a + up_b) / 2
    assert np.allclose(after_one.theta, expected)

    second = answer_round(sync, a, (np.zeros(size), 25))
    assert second.round == 1 and np.allclose(second.theta, expected)
    answer_round(sync, b, (np.zeros(size), 25))
    done = ops.adaptations("", job.job_id)[0][0]
    assert done.state == "done", done.error
    assert done.candidate == f"{manifest.version}-adapted.1"
    assert not cp.store.adaptation_updates(job.job_id, 0), "per-edge updates are not kept after the job"

    # The candidate: same encoder byte for byte, the averaged head, provenance, and it verifies.
    out = tmp_path / "candidate"
    out.mkdir()
    row = cp.store.model(name=manifest.name, version=done.candidate)
    (tmp_path / "c.tar").write_bytes(cp.store.bundle_chunk(row.manifest_sha, 0, 1 << 30))
    with tarfile.open(tmp_path / "c.tar") as t:
        t.extractall(out, filter="data")
    candidate = read_manifest(out)
    assert candidate.files["transformer.onnx"] == manifest.files["transformer.onnx"]
    assert candidate.files["fast.onnx"] == manifest.files["fast.onnx"]
    assert candidate.files["transformer-head.json"] != manifest.files["transformer-head.json"]
    provenance = candidate.provenance["adaptation"]
    assert provenance["job"] == job.job_id and provenance["labels"] == 100 and provenance["edges_per_round"] == [2, 2]
    assert provenance["epsilon"] == "inf (no noise)"
    theta = adaptation.initial(read_head(out / "transformer-head.json"), candidate.cascade)
    assert np.allclose(theta, expected, atol=1e-9)
    SentimentModel(out)  # digests and golden examples
    assert ops.rollout(manifest.name, done.candidate, 50, [], False)[0].rollout.percent == 50
    cp.close()


def test_a_bundle_with_its_head_inside_the_graph_cannot_be_adapted(tmp_path, pushed, bundle_dir):
    tar, manifest, sha = pushed
    old = head_inside_graph(bundle_dir, tmp_path / "old")
    pack(old, tmp_path / "old.tar")
    cp, sync, ops = started(tmp_path, tmp_path / "old.tar")
    connect(sync, "edge-a", read_manifest(old), sha256_file(old / "manifest.json"))
    with pytest.raises(FailedPrecondition, match="keeps its classification head inside the transformer graph"):
        ops.adapt(manifest.name, "1.2.9", rounds=1)
    cp.close()


def test_a_round_without_enough_updates_fails_the_job_naming_why(tmp_path, pushed):
    tar, manifest, sha = pushed
    cp, sync, ops = started(tmp_path, tar)
    a = connect(sync, "edge-a", manifest, sha)
    job = ops.adapt(manifest.name, manifest.version, rounds=3)
    task = sync.pending(a).adaptation
    sync.adaptation_update(a, task.job, 0, "too_few_labels", [], 7, "7 labelled samples, 50 needed")
    failed = ops.adaptations("", job.job_id)[0][0]
    assert failed.state == "failed"
    assert "0 edge(s) sent an update" in failed.error and "edge-a: too_few_labels (7)" in failed.error
    assert sync.pending(a).adaptation is None
    cp.close()


def test_a_round_closes_at_its_timeout_with_whoever_answered(tmp_path, pushed):
    tar, manifest, sha = pushed
    cp, sync, ops = started(tmp_path, tar, CP_ADAPT_ROUND_TIMEOUT_S="5")
    clock = [cp.now()]
    cp.now = lambda: clock[0]
    a, _ = connect(sync, "edge-a", manifest, sha), connect(sync, "edge-slow", manifest, sha)
    job = ops.adapt(manifest.name, manifest.version, rounds=2)
    answer_round(sync, a, (np.zeros(adaptation.size(job.dimension)), 40))
    sync.advance_adaptations()
    assert ops.adaptations("", job.job_id)[0][0].round == 0
    clock[0] += 6
    sync.advance_adaptations()
    assert ops.adaptations("", job.job_id)[0][0].round == 1
    # A replica that stopped while writing the candidate leaves the job "building": it fails after
    # a while, so the model name is free for a new job.
    stuck = ops.adaptations("", job.job_id)[0][0]
    body = msgspec.json.encode(msgspec.structs.replace(stuck, state="building", round=2)).decode()
    assert cp.store.update_adaptation(job.job_id, body, "building", 2, expected_state="running", expected_round=1,
                                      now=clock[0])
    clock[0] += 601
    sync.advance_adaptations()
    failed = ops.adaptations("", job.job_id)[0][0]
    assert failed.state == "failed" and "stopped while writing" in failed.error
    assert not cp.adaptations.running()
    assert cp.store.add_adaptation("adapt-next", manifest.name, "{}", [0.0], clock[0]), "the name is free again"
    cp.close()


def test_epsilon_picks_the_noise_and_the_ledger_keeps_the_lineage_within_it(tmp_path, pushed):
    tar, manifest, sha = pushed
    cp, sync, ops = started(tmp_path, tar)
    a = connect(sync, "edge-a", manifest, sha)
    job = ops.adapt(manifest.name, manifest.version, rounds=1, epsilon=4.0)
    assert job.noise_multiplier > 0 and job.epsilon == pytest.approx(4.0)
    task = sync.pending(a).adaptation
    assert task.noise_multiplier == job.noise_multiplier
    # A noisy update may be over the clip by the noise's size, not by more.
    size = adaptation.size(job.dimension)
    noisy = adaptation.noised(adaptation.clip(np.ones(size), job.clip), job.noise_multiplier, job.clip,
                              np.random.default_rng(1))
    sync.adaptation_update(a, task.job, 0, "ok", list(noisy), 60, "")
    assert not [e for e in cp.store.audit_entries(50) if e[2] == "EdgeSync.Adaptation"], "the noisy update counts"
    closed = ops.adaptations("", job.job_id)[0][0]
    # One edge's noise at this epsilon wrecks the head: the candidate then fails its golden examples
    # or the probe set, and is never stored. Either way the round closed and its privacy cost is spent.
    assert closed.round == 1 and (closed.state == "done" or "golden" in closed.error
                                  or "probe set" in closed.error), closed.error
    ledger = {r.lineage: r for r in ops.adaptations("", "")[1]}[manifest.name]
    assert ledger.noisy_rounds == 1 and ledger.noiseless_rounds == 0 and ledger.epsilon == pytest.approx(4.0)
    with pytest.raises(FailedPrecondition, match="budget"):
        ops.adapt(manifest.name, manifest.version, rounds=1, epsilon=4.0)
    more = ops.adapt(manifest.name, manifest.version, rounds=2, epsilon=8.0, round_timeout_s=1)
    assert more.noise_multiplier > 0
    ledger = {r.lineage: r for r in ops.adaptations("", "")[1]}[manifest.name]
    assert ledger.noisy_rounds == 3 and ledger.epsilon == pytest.approx(8.0)
    cp.close()


def test_with_trusted_keys_a_candidate_waits_for_the_operators_signature(tmp_path, pushed, bundle_dir):
    _, manifest, _ = pushed
    key = tmp_path / "publisher.key"
    public = signing.generate(key)
    signed = tmp_path / "signed-base"
    shutil.copytree(bundle_dir, signed)
    signing.sign(signed, signing.load_private(key))
    tar = tmp_path / "signed.tar"
    pack(signed, tar)
    cp, sync, ops = started(tmp_path, tar, CP_TRUSTED_KEYS=signing.public_text(public))
    sha = sha256_file(signed / "manifest.json")
    a = connect(sync, "edge-a", manifest, sha)
    job = ops.adapt(manifest.name, manifest.version, rounds=1)
    answer_round(sync, a, (np.zeros(adaptation.size(job.dimension)), 40))
    done = ops.adaptations("", job.job_id)[0][0]
    assert done.state == "done" and ops.awaiting_signature(done)
    with pytest.raises(FailedPrecondition, match="awaiting a signature"):
        ops.rollout(manifest.name, done.candidate, 10, [], False)
    # The operator pulls it, signs it with the key the control plane never held, pushes it back.
    row = ops.bundle_of(manifest.name, done.candidate)
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    (tmp_path / "p.tar").write_bytes(cp.store.bundle_chunk(row.manifest_sha, 0, 1 << 30))
    with tarfile.open(tmp_path / "p.tar") as t:
        t.extractall(pulled, filter="data")
    assert not (pulled / signing.SIGNATURE).exists(), "the base's signature does not cover the new head"
    signing.sign(pulled, signing.load_private(key))
    pack(pulled, tmp_path / "signed-candidate.tar")
    again, new = cp.registry.accept(tmp_path / "signed-candidate.tar", cp.now())
    assert not new and again.manifest_sha == row.manifest_sha
    assert not ops.awaiting_signature(ops.adaptations("", job.job_id)[0][0])
    assert ops.rollout(manifest.name, done.candidate, 10, [], False)[0].rollout is not None
    cp.close()


@pytest.mark.parametrize("candidate_errors, verdict", [(5, "promoted"), (40, "rolled back")])
def test_the_optional_canary_gate_promotes_a_better_candidate_and_rolls_back_a_worse(
        tmp_path, pushed, bundle_dir, candidate_errors, verdict):
    tar, manifest, sha = pushed
    cp, sync, ops = started(tmp_path, tar, CP_CANARY_AUTO="true", CP_CANARY_MIN_LABELS="50")
    other = tmp_path / "other"
    shutil.copytree(bundle_dir, other)
    raw = (other / "manifest.json").read_text().replace(f'"version": "{manifest.version}"', '"version": "9.0.0"')
    (other / "manifest.json").write_text(raw)
    pack(other, tmp_path / "other.tar")
    cp.registry.accept(tmp_path / "other.tar", cp.now())
    base = (manifest.name, manifest.version, sha)
    streams = {n: sync.connect(n, "eu", base, 0, base)[0] for n in ("edge-a", "edge-b")}
    ops.rollout(manifest.name, "9.0.0", 50, [], False)
    from control_plane.sync_service import Heartbeat

    def beat(node, version, labelled, errors):
        sync.heartbeat(streams[node], Heartbeat(model=base, serving_personal=True,
                                                quality=[(f"{manifest.name} {version}", labelled, errors)]))

    beat("edge-a", "9.0.0", 40, 2)  # too few labels on either side: nothing happens
    beat("edge-b", manifest.version, 40, 12)
    assert cp.store.rollouts()[0].percent == 50
    beat("edge-a", "9.0.0", 100, candidate_errors)
    beat("edge-b", manifest.version, 100, 20)
    rollout = cp.store.rollouts()[0]
    if verdict == "promoted":
        assert rollout.percent == 100 and cp.store.model(sha=rollout.current_sha).version == "9.0.0"
    else:
        assert rollout.percent == 100 and rollout.previous_sha == cp.store.model(name=manifest.name,
                                                                                 version="9.0.0").manifest_sha
    entries = [e for e in cp.store.audit_entries(20) if e[1] == "canary-gate"]
    assert len(entries) == 1 and entries[0][3].startswith(verdict)
    cp.close()
