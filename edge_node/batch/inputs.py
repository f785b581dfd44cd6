"""Inputs of a backfill: files found under a local path or any fsspec URL, cut into
partitions a worker can read on its own, and one partition read back as a DataFrame.

A partition is a byte range of a CSV or JSON-lines file that starts and ends on record
boundaries (a CSV scan that knows quoted newlines; the CSV header travels with each range), or
a run of row groups of a Parquet file. Its id is a digest of the file (URL, size, modification
stamp), the range and the format, so a rerun over the same inputs finds the same partitions.
Compressed CSV/JSON lines cannot be cut and are not read (decompress first, or convert to Parquet).
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
             ".pq": "parquet"}
BLOCK = 8 << 20  # bytes read at a time while planning
_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')


class InputError(ValueError):
    """An input the backfill cannot read (no files, unknown format, missing column)."""


class Partition(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    format: str
    start: int  # byte offset (csv, jsonl) or first row group (parquet)
    stop: int  # byte offset past the last record, or row group past the last
    rows: int  # records in the range (blank lines included: an estimate for the progress bar)
    header: bytes = b""  # csv: the header record, prepended to the range when it is read


def format_of(path: str, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise InputError(f"unknown format {given!r} (one of {', '.join(FORMATS)})")
        return given
    lower = path.lower()
    for suffix, fmt in _SUFFIXES.items():
        if lower.endswith(suffix):
            return fmt
    if lower.endswith((".gz", ".bz2", ".zst", ".xz")):
        raise InputError(f"{path}: compressed text cannot be cut into partitions; decompress it or convert it "
                         "to Parquet")
    raise InputError(f"{path}: cannot tell the format from the name; give --format csv|jsonl|parquet")


def expand(source: str, fmt: str | None = None) -> tuple[AbstractFileSystem, list[str]]:
    """The filesystem and the files of ``source``: a file, a directory (every file of a known
    format below it, sorted) or a glob, local or any fsspec URL."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(source)
    if any(ch in path for ch in "*?["):
        paths = sorted(fs.glob(path))
    elif fs.isdir(path):
        paths = sorted(p for p in fs.find(path) if _known(p, fmt) and "/_" not in p[len(path):] and
                       "/." not in p[len(path):])
    elif fs.exists(path):
        paths = [path]
    else:
        raise InputError(f"{source}: no such file or directory")
    if not paths:
        raise InputError(f"{source}: no input files (csv, jsonl, parquet)")
    return fs, paths


def _known(path: str, fmt: str | None) -> bool:
    if fmt:
        return True
    lower = path.lower()
    return any(lower.endswith(s) for s in _SUFFIXES)


def _stamp(fs, path: str) -> str:
    info = fs.info(path)
    changed = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("etag") or ""
    return f"{info.get('size')}|{changed}"


def _pid(*parts) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:20]


def plan(source: str, *, fmt: str | None = None, rows_per_partition: int = 5000) -> list[Partition]:
    """Every partition of ``source``, in file order."""
    if rows_per_partition < 1:
        raise InputError("rows per partition must be at least 1")
    fs, paths = expand(source, fmt)
    out: list[Partition] = []
    for path in paths:
        kind = format_of(path, fmt)
        url = fs.unstrip_protocol(path)
        stamp = _stamp(fs, path)
        if kind == "parquet":
            import pyarrow.parquet as pq

            with fs.open(path, "rb") as fh:
                meta = pq.ParquetFile(fh).metadata
            groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            start = rows = 0
            for i, n in enumerate(groups):
                rows += n
                if rows >= rows_per_partition or i == len(groups) - 1:
                    out.append(Partition(id=_pid(url, stamp, kind, start, i + 1), url=url, format=kind, start=start,
                                         stop=i + 1, rows=rows))
                    start, rows = i + 1, 0
            continue
        with fs.open(path, "rb") as fh:
            header, ranges = record_ranges(fh, rows_per_partition, csv=kind == "csv")
        for start, stop, rows in ranges:
            out.append(Partition(id=_pid(url, stamp, kind, start, stop), url=url, format=kind, start=start, stop=stop,
                                 rows=rows, header=header))
    return out


def record_ranges(fh, every: int, *, csv: bool) -> tuple[bytes, list[tuple[int, int, int]]]:
    """(header, [(start, stop, records)]): byte ranges of ``every`` records each, cut only at a
    newline outside quotes (csv) or at any newline (JSON lines). The CSV header is the first record."""
    header = b""
    in_quotes = False
    pos = 0  # absolute offset of the block's first byte
    start = 0  # where the current range starts
    count = 0  # records in the current range
    need_header = csv
    ranges: list[tuple[int, int, int]] = []
    head_buf = bytearray()
    tail = False  # bytes after the last newline seen
    while True:
        block = fh.read(BLOCK)
        if not block:
            break
        if need_header:
            head_buf.extend(block)
        if not csv or (not in_quotes and b'"' not in block):
            cuts = _newlines(block)
        else:
            cuts = None
        if cuts is None:  # quotes: walk them
            cuts = []
            for m in _QUOTE_OR_NEWLINE.finditer(block):
                if m.group() == b'"':
                    in_quotes = not in_quotes
                elif not in_quotes:
                    cuts.append(m.end())
        for end in cuts:
            absolute = pos + end
            if need_header:
                header = bytes(head_buf[: absolute])
                need_header = False
                start = absolute
                continue
            count += 1
            if count == every:
                ranges.append((start, absolute, count))
                start, count = absolute, 0
        pos += len(block)
        tail = block[-1:] != b"\n"
    if need_header:  # a header without a newline: no records
        return bytes(head_buf), []
    if pos > start:  # records after the last cut (the last one may lack its newline)
        ranges.append((start, pos, count + (1 if tail else 0)))
    return header, ranges


def _newlines(block: bytes) -> list[int]:
    """Offsets after each newline of a quote-free block (every one: callers count them)."""
    out = []
    i = block.find(b"\n")
    while i != -1:
        out.append(i + 1)
        i = block.find(b"\n", i + 1)
    return out


def read(partition: Partition, text_column: str):
    """The partition's records as a DataFrame (CSV: every column a string, blanks as ""; JSON
    lines: one record per line; Parquet: its own types). The text column becomes strings."""
    import pandas as pd
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(partition.url)
    if partition.format == "parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as fh:
            frame = pq.ParquetFile(fh).read_row_groups(list(range(partition.start, partition.stop))).to_pandas()
    else:
        with fs.open(path, "rb") as fh:
            fh.seek(partition.start)
            data = fh.read(partition.stop - partition.start)
        if partition.format == "csv":
            frame = pd.read_csv(io.BytesIO(partition.header + data), dtype=str, keep_default_na=False,
                                na_filter=False, encoding="utf-8")
        else:
            decoder = msgspec.json.Decoder()
            records = [decoder.decode(line) for line in data.splitlines() if line.strip()]
            bad = [r for r in records if not isinstance(r, dict)]
            if bad:
                raise InputError(f"{partition.url}: a JSON line is not an object: {str(bad[0])[:80]}")
            frame = pd.DataFrame.from_records(records)
    if text_column not in frame.columns:
        if len(frame) == 0:
            frame[text_column] = pd.Series([], dtype=str)
        else:
            columns = ", ".join(map(str, frame.columns))
            raise InputError(f"{partition.url} has no column {text_column!r} (columns: {columns})")
    frame[text_column] = [t if isinstance(t, str) else "" if t is None or t != t else str(t)
                          for t in frame[text_column]]
    return frame
