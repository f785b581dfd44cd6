"""Model bundle manifests: reading, and verifying every file against its digest.

A bundle is a directory holding ``manifest.json`` and the files it lists. Loading
refuses a bundle whose manifest is malformed, lists a path outside the bundle, or
whose files are missing or differ from their sha256 — before any model is opened.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tarfile
from pathlib import Path, PurePosixPath

import msgspec

from sentiedge_core.errors import BundleError

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


class Base(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Shared options for stored records: unknown fields are kept out, never rejected."""


class ExitSpec(Base, kw_only=True):
    """An early exit inside the transformer stage (1.5+). After the graph before it, each text's
    hidden states are mean-pooled (over its tokens, then its windows) and read by ``head``; a text
    whose calibrated probability reaches ``confidence`` either way is answered there. The others
    go on through ``rest``: a graph from ``hidden_in`` (the hidden states) and whatever the first
    graph hands on (its ``carried_*`` outputs, e.g. the expanded attention mask) to the next
    exit's ``hidden``, or, for the last exit, to ``pooled``."""

    layer: int  # encoder layers run before this exit (informational)
    head: str  # a two-row linear head over the mean-pooled hidden states, as transformer-head.json
    temperature: float  # calibrates the head's margin for a text of one window
    multi_window_temperature: float  # and for a text of several windows (a long review)
    confidence: float  # in (0.5, 1]; 1 only answers a text the head is certain of
    rest: str
    # (1.7+) a three-row head (negative, neutral, positive) over the same pooled hidden states,
    # deciding which texts this exit answers are neutral; "" = texts it answers are never neutral
    neutral: str = ""

    def __post_init__(self) -> None:
        temperatures = (self.temperature, self.multi_window_temperature)
        if not (0.5 < self.confidence <= 1.0) or not all(math.isfinite(t) and t > 0 for t in temperatures):
            raise ValueError("an exit needs 0.5 < confidence <= 1 and positive, finite temperatures")


class StageSpec(Base, kw_only=True):
    name: str  # "fast" | "transformer"
    kind: str  # "embedding_bag" | "transformer"
    model: str
    tokenizer: str
    temperature: float = 1.0
    buckets: int = 0
    max_tokens: int = 0
    max_len: int = 0
    max_windows: int = 1
    head: str = ""  # transformer only: its classification layer as a file (1.3+); "" = inside the graph
    exits: list[ExitSpec] = []  # transformer only: early exits, in order (1.5+); needs a head
    # transformer only (1.6+): a three-row head (negative, neutral, positive) over the pooled output
    # that decides which texts run to the end are neutral; "" = no neutral class
    neutral: str = ""

    def files(self) -> list[str]:
        """Every bundle file this stage reads."""
        return [self.model, self.tokenizer, *([self.head] if self.head else []),
                *([self.neutral] if self.neutral else []),
                *(name for e in self.exits for name in (e.head, e.rest, *([e.neutral] if e.neutral else [])))]


class RouteSpec(Base, kw_only=True):
    temperature: float  # calibrates the fast stage's margin on this route
    threshold: float  # the fast stage answers at or above this (calibrated) confidence
    stacker: list[float]  # [w_fast, w_transformer, bias] over logit margins, for escalated texts


class CascadeSpec(Base, kw_only=True):
    long_text_tokens: int  # fast-tokenizer tokens above which a text takes the "long" route
    short: RouteSpec
    long: RouteSpec
    # Thin evidence: on the short route, a text of at most this many tokens, or one with a
    # negation cue, always escalates — the fast stage is confidently wrong on "not bad at all".
    thin_tokens: int = 0  # 0: off (bundles before 1.2)
    negation_cues: list[str] = []
    # The fast stage calibrated per length bucket: a text of at most length_buckets[i] tokens
    # (the first that fits) uses bucket_temperatures[i]; longer than every bound, its route's.
    length_buckets: list[int] = []
    bucket_temperatures: list[float] = []
    # The stacker for escalated short-route texts of at most thin_tokens tokens (1.4.1+): such
    # texts are mostly customers' words, where the transformer deserves more weight than on
    # movie snippets. Empty: the short route's own stacker answers them too.
    thin_stacker: list[float] = []

    def __post_init__(self) -> None:
        if self.thin_stacker and (len(self.thin_stacker) != 3 or not all(math.isfinite(v) for v in self.thin_stacker)):
            raise ValueError("thin_stacker needs three finite numbers [w_fast, w_transformer, bias] (or none)")


class Golden(Base, kw_only=True):
    text: str
    label: str


class Manifest(Base, kw_only=True):
    schema_version: int = SCHEMA_VERSION
    name: str
    version: str
    labels: list[str]  # the binary head's rows: [negative, positive]
    label_set: list[str] = []  # every label served, where more than ``labels`` (1.6+: with "neutral")
    files: dict[str, str]  # relative path -> sha256 hex
    stages: list[StageSpec]
    cascade: CascadeSpec
    golden: list[Golden] = []
    # (1.7+, optional) the deep stage's head (sentiedge_core.deep): read only when EDGE_DEEP_STAGE is on;
    # "" = the bundle has none
    deep_stage: str = ""
    license: str = ""
    provenance: dict = {}
    metrics: dict = {}
    # Predicted-label and confidence-bin shares on the test splits, for drift (sentiedge_core.monitoring).
    reference: dict = {}
    created: str = ""

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise BundleError(f"manifest has no stage named {name!r}")


_decoder = msgspec.json.Decoder(Manifest)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_member(root: Path, name: str) -> Path:
    """Resolve ``name`` inside ``root``; refuse absolute paths and ``..`` escapes."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise BundleError(f"bundle file name {name!r} is not a plain relative path")
    path = (root / pure).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BundleError(f"bundle file {name!r} points outside the bundle")
    return path


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root} is not a model bundle: {MANIFEST} not found")
    try:
        manifest = _decoder.decode(path.read_bytes())
    except msgspec.ValidationError as exc:
        raise BundleError(f"{path}: invalid manifest: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BundleError(f"{path}: manifest is not valid JSON: {exc}") from exc
    if manifest.schema_version != SCHEMA_VERSION:
        raise BundleError(f"{path}: manifest schema {manifest.schema_version} is not supported "
                          f"(this edge reads schema {SCHEMA_VERSION})")
    return manifest


def verify(root: Path) -> Manifest:
    """Read the manifest and check every listed file; every stage file must be listed."""
    manifest = read_manifest(root)
    for name, expected in manifest.files.items():
        path = safe_member(root, name)
        if not path.is_file():
            raise BundleError(f"bundle {manifest.name} {manifest.version}: file {name} is missing")
        actual = sha256_file(path)
        if actual != expected.lower():
            raise BundleError(f"bundle {manifest.name} {manifest.version}: {name} has sha256 {actual[:12]}…, "
                              f"manifest says {expected[:12]}…; the file is corrupt or was altered")
    if manifest.deep_stage and manifest.deep_stage not in manifest.files:
        raise BundleError(f"the deep stage uses {manifest.deep_stage}, which the manifest does not list with a digest")
    for spec in manifest.stages:
        if spec.exits and not spec.head:
            raise BundleError(f"stage {spec.name} has early exits but no separate head")
        for name in spec.files():
            if name not in manifest.files:
                raise BundleError(f"stage {spec.name} uses {name}, which the manifest does not list with a digest")
    return manifest


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def pack(bundle_dir: Path, tar_path: Path) -> None:
    """A deterministic tar of a bundle directory (sorted names, no owners or times): the
    form in which bundles travel between operator, control plane and edges."""
    with tarfile.open(tar_path, "w:", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in bundle_dir.iterdir() if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with path.open("rb") as fh:
                tar.addfile(info, fh)


def unpack(tar_path: Path, into: Path) -> None:
    """Unpack a bundle tar: plain files at the top level only, nothing else is written."""
    try:
        with tarfile.open(tar_path, "r:") as tar:
            members = tar.getmembers()
            for m in members:
                name = m.name
                if not m.isfile() or name != PurePosixPath(name).name or name in ("", ".", "..") or "\\" in name:
                    raise BundleError(f"bundle member {name!r} is not a plain top-level file")
            for m in members:
                source = tar.extractfile(m)
                assert source is not None  # a regular file (checked above)
                with open(into / m.name, "wb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.TarError as exc:
        raise BundleError(f"not a readable bundle tar: {exc}") from exc
