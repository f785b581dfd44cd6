"""Build, evaluate and hold the Sentiedge sentiment model bundles.

The release bundle lives in ``models/sentiment-cascade/``. Building it needs the
``train`` extra (torch, transformers); evaluating it needs only the serving stack.
"""

from sentiedge_core import BUNDLE_DIR

__all__ = ["BUNDLE_DIR"]
