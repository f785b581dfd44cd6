"""Edge node settings: every field is an ``EDGE_*`` variable and an ``edge-node serve`` flag."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from edge_node import settings_loader
from edge_node.errors import ConfigError
from models import BUNDLE_DIR

PREFIX = "EDGE_"


class EdgeSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    model_dir: str = str(BUNDLE_DIR)
    data_dir: str = "var/edge"
    inference_threads: int = 1
    inference_workers: int = 2
    # Measured in bench/inference.py on 2 cores: batching pays for the fast stage, loses for
    # the transformer at one thread per run, and waiting for a batch to fill only adds
    # latency (batches still form from requests that queue while both workers are busy).
    fast_max_batch: int = 64
    fast_max_wait_ms: float = 0.0
    transformer_max_batch: int = 1
    transformer_max_wait_ms: float = 0.0
    max_texts_per_request: int = 64
    max_text_chars: int = 20_000
    log_level: str = "info"

    def validate(self) -> EdgeSettings:
        checks = [
            (1 <= self.port <= 65535, "port must be 1..65535"),
            (self.inference_threads >= 1, "inference_threads must be >= 1"),
            (self.inference_workers >= 1, "inference_workers must be >= 1"),
            (self.fast_max_batch >= 1 and self.transformer_max_batch >= 1, "max batch sizes must be >= 1"),
            (self.fast_max_wait_ms >= 0 and self.transformer_max_wait_ms >= 0, "max waits must be >= 0 ms"),
            (self.max_texts_per_request >= 1 and self.max_text_chars >= 1, "request limits must be >= 1"),
            (self.log_level in {"critical", "error", "warning", "info", "debug"}, "log_level must be critical|error|warning|info|debug"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid setting: {message}")
        return self

    @property
    def model_path(self) -> Path:
        return Path(self.model_dir)


HELP = {
    "host": "address the HTTP API listens on",
    "port": "HTTP port",
    "model_dir": "model bundle directory",
    "data_dir": "directory for the node's disk store",
    "inference_threads": "ONNX Runtime intra-op threads per run",
    "inference_workers": "ONNX runs allowed in parallel",
    "fast_max_batch": "largest micro-batch for the fast stage",
    "fast_max_wait_ms": "longest a text waits for its fast-stage batch to fill",
    "transformer_max_batch": "largest micro-batch for the transformer stage",
    "transformer_max_wait_ms": "longest a text waits for its transformer batch to fill",
    "max_texts_per_request": "most texts one /v1/sentiment call may carry",
    "max_text_chars": "most characters in one text",
    "log_level": "log level",
}


def load_settings(environ: Mapping[str, str] | None = None, flags: Mapping[str, object] | None = None) -> EdgeSettings:
    return settings_loader.load(EdgeSettings, PREFIX, os.environ if environ is None else environ, flags).validate()
