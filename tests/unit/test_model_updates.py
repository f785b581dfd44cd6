import asyncio

import pytest

from edge_node.errors import EdgeError
from edge_node.sync.model_updates import ModelUpdates
from sentiedge_core.bundle import MANIFEST, pack, sha256_file


@pytest.fixture
def tar(bundle_dir, tmp_path):
    path = tmp_path / "bundle.tar"
    pack(bundle_dir, path)
    return path


def source(tar, fail_after: int | None = None, seen: list | None = None):
    data = tar.read_bytes()

    async def download(offset: int):
        if seen is not None:
            seen.append(offset)
        position = offset
        while position < len(data):
            if fail_after is not None and position >= fail_after:
                raise ConnectionError("stream broke")
            block = data[position: position + (1 << 20)]
            position += len(block)
            yield block

    return download


def test_a_broken_download_resumes_where_it_stopped(tar, bundle_dir, tmp_path):
    updates = ModelUpdates(tmp_path / "models", threads=1)
    sha = sha256_file(bundle_dir / MANIFEST)
    size, digest = tar.stat().st_size, sha256_file(tar)
    with pytest.raises(ConnectionError):
        asyncio.run(updates.fetch(sha, digest, size, source(tar, fail_after=5 << 20)))
    offsets: list[int] = []
    path = asyncio.run(updates.fetch(sha, digest, size, source(tar, seen=offsets)))
    assert offsets == [5 << 20]  # resumed, not restarted
    assert sha256_file(path / MANIFEST) == sha
    assert not list((tmp_path / "models").glob("*.part"))


def test_a_bundle_that_does_not_match_its_digest_is_refused_and_discarded(tar, bundle_dir, tmp_path):
    updates = ModelUpdates(tmp_path / "models", threads=1)
    sha = sha256_file(bundle_dir / MANIFEST)
    with pytest.raises(EdgeError, match="does not match its sha256"):
        asyncio.run(updates.fetch(sha, "0" * 64, tar.stat().st_size, source(tar)))
    assert not (tmp_path / "models" / sha).exists() and not list((tmp_path / "models").glob("*.part"))
    with pytest.raises(EdgeError, match="does not hash to its address"):
        asyncio.run(updates.fetch("f" * 64, sha256_file(tar), tar.stat().st_size, source(tar)))
