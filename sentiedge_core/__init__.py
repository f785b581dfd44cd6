"""What the edge node and the control plane mean the same way: the bundle format and its
signing, the sentiment model and cascade, pseudonymization and privacy request kinds, app
credentials, rule and experiment definitions, drift statistics and settings loading.

Neither service is imported from here, and this package imports neither Litestar nor gRPC:
each service is a thin transport over it (the edge over HTTP, the control plane over gRPC).
"""

from pathlib import Path

BUNDLE_DIR = Path(__file__).resolve().parent.parent / "models" / "sentiment-cascade"  # the release bundle
