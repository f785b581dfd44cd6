"""A history backfill on Dask: every partition scored by a worker, written as Parquet by day,
then the daily aggregates.

* The cluster: an embedded ``LocalCluster`` (one single-threaded worker process per core by
  default) or an existing one (``scheduler`` address). Nothing here schedules work itself.
* The bundle travels once per worker: a :class:`BundlePlugin` carries the bundle's archive and
  the scoring settings; each worker (and one that joins or is restarted later) unpacks it once
  into its local directory and loads one :class:`SentimentModel`; tasks only name partitions.
* Each partition is one task (``retries`` on an error; a worker that dies has its tasks run
  again elsewhere by the scheduler). It writes one file, ``_scored/part-ID.parquet`` (named by
  the partition's id, sorted by day), then its marker ``_partitions/ID.json`` (rows per day): a
  rerun skips partitions with a marker, and a partition run twice overwrites its own file, so
  nothing is ever counted twice.
* Then runs of consecutive days (about four per worker) are materialized: each day's records
  gathered from the partitions' files into one ``scored/day=YYYY-MM-DD/part-0.parquet`` (a few
  hundred files for a year, not one per partition and day), and that day's aggregates computed
  from them; rows under the minimum size are dropped. A rerun that scored nothing new keeps them.

Output layout under ``out``: ``scored/day=YYYY-MM-DD/part-0.parquet`` (the input columns, then
the result), ``daily.parquet``, ``_scored/``, ``_partitions/``, ``_batch.json`` (what made the outputs).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import msgspec

from edge_node.batch import aggregate
from edge_node.batch.inputs import InputError, Partition, plan, read
from edge_node.scoring import EMPTY_TEXT, judge
from sentiedge_core.daily import FORMAT

if TYPE_CHECKING:
    from sentiedge_core.inference import SentimentModel
    from sentiedge_core.language import LanguageGate

PLUGIN = "sentiedge-bundle"
RESULT_COLUMNS = ["label", "score", "confidence", "stage", "model", "version", "language", "error"]
DERIVED = ["cohort"]
TIME_COLUMNS = ("created_at", "timestamp", "time", "date", "datetime")
ROW_GROUP = 2048  # rows per row group of a partition's file: a run of days reads only its groups


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """What a partition task needs besides its partition (small: sent with every task)."""

    out: str
    text_column: str = "text"
    time_column: str | None = None
    category_column: str | None = None
    user_column: str | None = None
    cohort_column: str | None = None
    region_column: str | None = None
    device_column: str | None = None
    batch_size: int = 64
    min_size: int = 50


class Summary(msgspec.Struct, kw_only=True):
    partitions: int
    skipped: int  # finished by an earlier run
    rows: int  # records scored by this run
    seconds: float
    days: int
    daily_rows: int
    out: str


def bundle_archive(model_dir: Path) -> bytes:
    """The bundle directory as an uncompressed tar in memory (its files are already compressed models)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(Path(model_dir).iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
    return buffer.getvalue()


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the batch extra is not installed: the CLI says so before anything runs
    WorkerPlugin = object  # type: ignore[misc,assignment]  # a stand-in base: nothing runs without the extra


class BundlePlugin(WorkerPlugin):
    """The bundle and the scoring settings, sent to each worker once; the worker's model."""

    name = PLUGIN

    def __init__(self, archive: bytes, *, digest: str, threads: int, languages: str, min_confidence: float) -> None:
        self.archive = archive
        self.digest = digest
        self.threads = threads
        self.languages = languages
        self.min_confidence = min_confidence
        self.model: SentimentModel | None = None  # set up on each worker (setup)
        self.gate: LanguageGate | None = None

    def setup(self, worker) -> None:
        from sentiedge_core.inference import SentimentModel
        from sentiedge_core.language import LanguageGate, parse_languages

        root = Path(worker.local_directory) / f"sentiedge-bundle-{self.digest[:16]}"
        if not (root / "manifest.json").exists():
            staging = root.with_name(root.name + f".{os.getpid()}")
            with tarfile.open(fileobj=io.BytesIO(self.archive)) as tar:
                tar.extractall(staging, filter="data")
            os.replace(staging, root)
        self.archive = b""  # the worker keeps the model, not a second copy of its bytes
        self.model = SentimentModel(root, threads=self.threads)  # verifies digests and golden examples
        self.gate = LanguageGate(parse_languages(self.languages), min_confidence=self.min_confidence)


def _fs(url: str):
    from fsspec.core import url_to_fs

    return url_to_fs(url)


def output_names(columns: list[str], text_column: str) -> dict[str, str]:
    """Input columns by their output name, as ``edge-node score`` names them: the text column
    is ``text``; one named like a result column (or ``day``, the partition key) gets ``input_``."""
    reserved = set(RESULT_COLUMNS) | set(DERIVED) | {"day"}
    out = {}
    for c in map(str, columns):
        if c == text_column:
            out[c] = "text"
        elif c in reserved or (c == "text" and text_column != "text"):
            out[c] = f"input_{c}"
        else:
            out[c] = c
    return out


def score_frame(frame, model, gate, options: Options):
    """The scored records of one partition's DataFrame: the input columns (renamed as
    :func:`output_names` says), the result columns, ``cohort`` where the input names one, and ``day``."""
    import pandas as pd

    texts = list(frame[options.text_column])
    results = judge(model, gate, texts, batch_size=options.batch_size)
    seconds = (aggregate.epoch_seconds(frame[options.time_column]) if options.time_column
               else aggregate.epoch_seconds([None] * len(frame)))
    cohorts = aggregate.cohort_keys(frame, seconds, cohort=options.cohort_column, region=options.region_column,
                                    device=options.device_column)
    names = output_names(list(frame.columns), options.text_column)
    out = frame.rename(columns={c: names[str(c)] for c in frame.columns})
    out["label"] = pd.Series([r.label if r else None for r in results], dtype="string", index=out.index)
    out["score"] = pd.Series([r.score if r else None for r in results], dtype="float64", index=out.index)
    out["confidence"] = pd.Series([r.confidence if r else None for r in results], dtype="float64", index=out.index)
    for field in ("stage", "model", "version", "language"):
        out[field] = pd.Series([getattr(r, field) if r else None for r in results], dtype="string", index=out.index)
    out["error"] = pd.Series([None if r else EMPTY_TEXT for r in results], dtype="string", index=out.index)
    if cohorts is not None:
        out["cohort"] = pd.Series(cohorts, dtype="string", index=out.index)
    out["day"] = aggregate.days(seconds)
    return out


def score_partition(partition: Partition, options: Options) -> dict:
    """A worker's task: read, score, write the partition's one file (sorted by day, the input's
    order within a day), then its marker."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from distributed import get_worker

    plugin = cast(BundlePlugin, get_worker().plugins[PLUGIN])
    assert plugin.model is not None and plugin.gate is not None  # the worker ran its setup before any task
    started = time.perf_counter()
    frame = read(partition, options.text_column)
    scored = score_frame(frame, plugin.model, plugin.gate, options)
    scored = scored.sort_values("day", kind="stable")
    fs, root = _fs(options.out)
    fs.makedirs(f"{root}/_scored", exist_ok=True)
    table = pa.Table.from_pandas(scored, preserve_index=False)
    _atomic(fs, f"{root}/_scored/part-{partition.id}.parquet",
            lambda fh: pq.write_table(table, fh, row_group_size=ROW_GROUP))
    counts = scored["day"].value_counts()
    done = {"id": partition.id, "url": partition.url, "start": partition.start, "stop": partition.stop,
            "rows": len(scored), "days": {str(d): int(n) for d, n in sorted(counts.items())},
            "seconds": round(time.perf_counter() - started, 3), "worker": get_worker().address}
    fs.makedirs(f"{root}/_partitions", exist_ok=True)
    _atomic(fs, f"{root}/_partitions/{partition.id}.json", lambda fh: fh.write(json.dumps(done).encode()))
    return done


def _atomic(fs, path: str, write) -> None:
    """Written beside ``path``, then moved onto it: a reader never sees half a file."""
    staging = f"{path}.{os.getpid()}.tmp"
    with fs.open(staging, "wb") as fh:
        write(fh)
    fs.mv(staging, path)


def materialize(days: list[str], ids: list[str], options: Options, labels: list[str]):
    """A worker's task over a run of days: each day's records, gathered from the partitions'
    files (in input order), written as ``scored/day=D/part-0.parquet`` (replaced whole, so a
    rerun over more partitions rewrites it), and the daily rows of those days."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    fs, root = _fs(options.out)
    wanted = set(days)
    tables = []
    for pid in ids:
        with fs.open(f"{root}/_scored/part-{pid}.parquet", "rb") as fh:
            tables.append(pq.read_table(fh, filters=[("day", "in", days)]))
    if not tables:
        return aggregate._empty(labels)
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.take(pc.sort_indices(table, sort_keys=[("day", "ascending")]))  # stable: input order in a day
    day_column = table.column("day").to_pylist()
    body = table.drop_columns(["day"])
    at = 0
    while at < len(day_column):
        day = day_column[at]
        end = at
        while end < len(day_column) and day_column[end] == day:
            end += 1
        if day in wanted:
            folder = f"{root}/scored/day={day}"
            fs.makedirs(folder, exist_ok=True)
            part = body.slice(at, end - at)
            _atomic(fs, f"{folder}/part-0.parquet", lambda fh, part=part: pq.write_table(part, fh))
        at = end
    frame = table.select([c for c in ("day", "label", "score", "cohort") if c in table.column_names]).to_pandas()
    user = output_names([options.user_column], options.text_column)[options.user_column] if options.user_column \
        else None
    category = output_names([options.category_column], options.text_column)[options.category_column] \
        if options.category_column else None
    view = frame
    if user:
        view[user] = table.column(user).to_pandas()
    if category:
        view["category"] = aggregate.categories(table.column(category).to_pylist())
    return aggregate.daily(view, labels=labels, min_size=options.min_size, user=user)


def day_runs(markers: list[dict], tasks: int) -> list[tuple[list[str], list[str]]]:
    """Days cut into about ``tasks`` runs of consecutive days with similar record counts, each
    with the partitions that hold any of its days."""
    per_day: dict[str, int] = {}
    for m in markers:
        for day, n in m["days"].items():  # day=unknown is written too (it counts in no aggregate)
            per_day[day] = per_day.get(day, 0) + n
    if not per_day:
        return []
    target = max(1, -(-sum(per_day.values()) // max(1, tasks)))
    runs, current, size = [], [], 0
    for day in sorted(per_day):
        current.append(day)
        size += per_day[day]
        if size >= target:
            runs.append(current)
            current, size = [], 0
    if current:
        runs.append(current)
    out = []
    for days in runs:
        chosen = set(days)
        out.append((days, [m["id"] for m in markers if chosen & set(m["days"])]))
    return out


def resolve_columns(partitions: list[Partition], options: Options, *, time_given: bool) -> Options:
    """Options with the time, category, user and cohort columns found in the first partition's
    header where not given (a named column that is missing is an error)."""
    first = read(partitions[0], options.text_column) if partitions else None
    columns = [str(c) for c in first.columns] if first is not None else []
    changes = {}
    if options.time_column and options.time_column not in columns:
        if time_given:
            raise InputError(f"no time column {options.time_column!r} (columns: {', '.join(columns)})")
    if not time_given:
        found = next((c for c in TIME_COLUMNS if c in columns), None)
        if found is None:
            raise InputError(f"no time column ({', '.join(TIME_COLUMNS)}) in {', '.join(columns)}: name one with "
                             "--time-column, or --time-column none to put every record in day=unknown")
        changes["time_column"] = found
    for field, default in (("category_column", "category"), ("user_column", "user_id"), ("cohort_column", "cohort"),
                           ("region_column", "region"), ("device_column", "device")):
        named = getattr(options, field)
        if named and named not in columns:
            raise InputError(f"no column {named!r} (columns: {', '.join(columns)})")
        if named is None and default in columns:
            changes[field] = default
    resolved = msgspec.structs.replace(options, **changes)
    if resolved.cohort_column and (resolved.region_column or resolved.device_column):
        resolved = msgspec.structs.replace(resolved, region_column=None, device_column=None)
    return resolved


def _fingerprint(model_dir: Path, options: Options) -> dict:
    from sentiedge_core.bundle import read_manifest

    manifest = read_manifest(model_dir)
    return {"format": FORMAT, "model": manifest.name, "version": manifest.version,
            "text_column": options.text_column, "time_column": options.time_column}


def _claim(out: str, fingerprint: dict) -> None:
    """Refuse an output directory made by another model or other columns; mark it as ours."""
    fs, root = _fs(out)
    path = f"{root}/_batch.json"
    if fs.exists(path):
        with fs.open(path, "rb") as fh:
            earlier = json.loads(fh.read())
        if earlier != fingerprint:
            raise InputError(f"{out} holds outputs of another run ({earlier}); this run is {fingerprint}: "
                             "choose another --out")
        return
    fs.makedirs(root, exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(json.dumps(fingerprint).encode())


def markers(out: str) -> dict[str, dict]:
    """The finished partitions' markers, by partition id."""
    fs, root = _fs(out)
    if not fs.exists(f"{root}/_partitions"):
        return {}
    found = {}
    for path in fs.glob(f"{root}/_partitions/*.json"):
        with fs.open(path, "rb") as fh:
            found[Path(path).name[: -len(".json")]] = json.loads(fh.read())
    return found


def finished(out: str) -> set[str]:
    return set(markers(out))


def run(source: str, options: Options, *, model_dir: Path, fmt: str | None = None, rows_per_partition: int = 5000,
        scheduler: str | None = None, workers: int | None = None, threads: int = 1, retries: int = 3,
        languages: str = "en", language_min_confidence: float = 0.8, progress: bool = True,
        time_given: bool = True, client=None, log=None) -> Summary:
    """Score ``source`` into ``options.out`` and write the daily aggregates (see the module)."""
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    from sentiedge_core.bundle import read_manifest, verify

    log = log or (lambda message: print(message, file=sys.stderr))
    started = time.perf_counter()
    verify(model_dir)  # a broken bundle is refused here, before any worker starts
    partitions = plan(source, fmt=fmt, rows_per_partition=rows_per_partition)
    options = resolve_columns(partitions, options, time_given=time_given)
    _claim(options.out, _fingerprint(model_dir, options))
    done = finished(options.out)
    todo = [p for p in partitions if p.id not in done]
    labels = list(read_manifest(model_dir).labels)
    cluster = own = None
    if client is None:
        if scheduler:
            client = own = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0)
            client = own = Client(cluster)
    try:
        log(f"batch: {len(partitions)} partitions ({sum(p.rows for p in partitions)} records), "
            f"{len(partitions) - len(todo)} finished earlier; {len(client.scheduler_info(n_workers=-1)['workers'])} "
            f"workers at {client.scheduler.address}")
        archive = bundle_archive(model_dir)
        import hashlib

        client.register_plugin(BundlePlugin(archive, digest=hashlib.sha256(archive).hexdigest(), threads=threads,
                                            languages=languages, min_confidence=language_min_confidence),
                               name=PLUGIN)
        rows = 0
        futures = [client.submit(score_partition, p, options, key=f"sentiedge-score-{p.id}", retries=retries,
                                 pure=False) for p in todo]
        with tqdm(total=sum(p.rows for p in todo), unit="text", desc="scoring", disable=not progress,
                  file=sys.stderr, smoothing=0.1) as bar:
            expected = {f.key: p.rows for f, p in zip(futures, todo, strict=False)}
            for future in as_completed(futures):
                result = future.result()
                rows += result["rows"]
                bar.update(expected[future.key])
        fs, root = _fs(options.out)
        if not todo and fs.exists(f"{root}/daily.parquet"):  # nothing new: the outputs stand as they are
            import pyarrow.parquet as pq

            with fs.open(f"{root}/daily.parquet", "rb") as fh:
                daily = pq.read_table(fh, columns=["day"]).column("day").to_pylist()
            return Summary(partitions=len(partitions), skipped=len(partitions), rows=0,
                           seconds=round(time.perf_counter() - started, 3), days=len(set(daily)),
                           daily_rows=len(daily), out=options.out)
        done_now = markers(options.out)
        ordered = [done_now[p.id] for p in partitions if p.id in done_now]  # input order
        workers_now = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
        runs = day_runs(ordered, tasks=4 * workers_now)
        day_futures = [client.submit(materialize, days, ids, options, labels, retries=retries, pure=False,
                                     key=f"sentiedge-days-{days[0]}-{days[-1]}-{time.time_ns()}") for days, ids in runs]
        import pandas as pd

        frames = client.gather(day_futures)
        daily = pd.concat(frames, ignore_index=True) if frames else aggregate._empty(labels)
        days = [d for days_, _ in runs for d in days_ if d != aggregate.UNKNOWN_DAY]
        _write_daily(options.out, daily, options, labels, unit="users" if options.user_column else "texts")
        return Summary(partitions=len(partitions), skipped=len(partitions) - len(todo), rows=rows,
                       seconds=round(time.perf_counter() - started, 3), days=len(days), daily_rows=len(daily),
                       out=options.out)
    finally:
        if own is not None:
            own.close()
        if cluster is not None:
            cluster.close()


def _write_daily(out: str, daily, options: Options, labels: list[str], *, unit: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = _fs(out)
    table = pa.Table.from_pandas(daily, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"sentiedge": json.dumps(
        {"format": FORMAT, "users": unit, "min_size": options.min_size, "labels": labels}).encode()})
    _atomic(fs, f"{root}/daily.parquet", lambda fh: pq.write_table(table, fh))
