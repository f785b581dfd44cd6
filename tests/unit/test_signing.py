import json
import shutil

import pytest

from edge_node.errors import BundleError
from sentiedge_core import signing


@pytest.fixture
def bundle(bundle_dir, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(bundle_dir, out)
    return out


def test_a_signed_bundle_verifies_with_the_trusted_key(bundle, tmp_path):
    public = signing.generate(tmp_path / "k")
    kid = signing.sign(bundle, signing.load_private(tmp_path / "k"))
    assert signing.verify(bundle, signing.trusted_keys(str(tmp_path / "k.pub"))) == kid == signing.key_id(public)
    assert signing.verify(bundle, signing.trusted_keys(signing.public_text(public))) == kid


def test_unsigned_untrusted_and_altered_bundles_are_refused(bundle, tmp_path):
    trusted = [signing.generate(tmp_path / "trusted")]
    with pytest.raises(BundleError, match="not signed"):
        signing.verify(bundle, trusted)
    signing.generate(tmp_path / "other")
    signing.sign(bundle, signing.load_private(tmp_path / "other"))
    with pytest.raises(BundleError, match="does not trust"):
        signing.verify(bundle, trusted)
    signing.sign(bundle, signing.load_private(tmp_path / "trusted"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["version"] = "9.9.9"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not verify"):
        signing.verify(bundle, trusted)
    (bundle / "signature.json").write_text("{not json")
    with pytest.raises(BundleError, match="malformed"):
        signing.verify(bundle, trusted)


def test_bad_public_keys_are_named():
    with pytest.raises(BundleError, match="not an Ed25519 public key"):
        signing.trusted_keys("bm90LWEta2V5")
