"""Finding, verifying and downloading the data files, and the errors a reader can hit."""
import contextlib
import functools
import gzip
import hashlib
import http.server
import threading

import pytest

from d2lmini import datafiles, fashion_mnist
from d2lmini.errors import DataIntegrityError, DataNotFoundError

LABELS = fashion_mnist.FILES['test-labels']      # the smallest file: 10,008 bytes
UNREACHABLE = 'http://127.0.0.1:9/'              # the discard port: nothing listens


@pytest.fixture(scope='session')
def real_labels():
    """The real test-label file's content, from wherever d2lmini finds it: the Debian
    package, the cache, $D2LMINI_DATA, or a download (session scope: before `places` hides
    them all)."""
    return datafiles.read_verified(LABELS, fashion_mnist.search_places(),
                                   url=fashion_mnist.MIRROR + LABELS.name + '.gz',
                                   cache_dir=fashion_mnist.cache_dir())


@pytest.fixture
def real_gz(real_labels):
    return gzip.compress(real_labels)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty $D2LMINI_DATA, cache and system directories, and no working mirror."""
    dirs = {name: tmp_path / name for name in ('data', 'cache', 'system')}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv('D2LMINI_DATA', str(dirs['data']))
    monkeypatch.setenv('XDG_CACHE_HOME', str(dirs['cache']))
    monkeypatch.setattr(fashion_mnist, 'SYSTEM_DIR', dirs['system'])
    monkeypatch.setattr(fashion_mnist, 'MIRROR', UNREACHABLE)
    dirs['cache_files'] = dirs['cache'] / 'd2lmini' / 'fashion-mnist'
    return dirs


@contextlib.contextmanager
def serve(directory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_port}/'
    finally:
        server.shutdown()
        server.server_close()


def test_system_copy_is_the_real_data():
    system_copy = fashion_mnist.SYSTEM_DIR / (LABELS.name + '.gz')
    if not system_copy.exists():
        pytest.skip('no Debian copy of Fashion-MNIST here (package dataset-fashion-mnist)')
    content = datafiles.read_verified(LABELS, [datafiles.Place(fashion_mnist.SYSTEM_DIR, 'system')])
    assert fashion_mnist.parse_idx(content).shape == (10000,)


def test_search_order_prefers_d2lmini_data(places, real_labels):
    (places['system'] / (LABELS.name + '.gz')).write_bytes(gzip.compress(real_labels))
    (places['data'] / LABELS.name).write_bytes(real_labels)
    (places['system'] / (LABELS.name + '.gz')).write_bytes(b'junk')   # would fail if read
    assert fashion_mnist.read_file('test-labels').shape == (10000,)


def test_plain_and_recompressed_copies_both_verify(places, real_labels):
    content = real_labels
    (places['system'] / (LABELS.name + '.gz')).write_bytes(gzip.compress(content, 1))
    assert fashion_mnist.read_file('test-labels').shape == (10000,)


def test_corrupt_file_names_file_hashes_and_source(places, real_labels):
    content = bytearray(real_labels)
    content[500] ^= 0xFF
    bad = places['data'] / LABELS.name
    bad.write_bytes(bytes(content))
    with pytest.raises(DataIntegrityError) as info:
        fashion_mnist.read_file('test-labels')
    message = str(info.value)
    assert LABELS.name in message and LABELS.sha256 in message and str(bad) in message
    assert '$D2LMINI_DATA' in message and 'got ' in message
    assert bad.read_bytes() == bytes(content)       # the user's file is left alone


def test_truncated_gzip_is_reported(places, real_gz):
    truncated = places['system'] / (LABELS.name + '.gz')
    truncated.write_bytes(real_gz[:2000])
    with pytest.raises(DataIntegrityError, match='truncated') as info:
        fashion_mnist.read_file('test-labels')
    assert str(truncated) in str(info.value)


def test_no_copy_and_no_network_lists_places_and_fixes(places):
    with pytest.raises(DataNotFoundError) as info:
        fashion_mnist.read_file('test-labels')
    message = str(info.value)
    for where in (places['data'], places['cache_files'], places['system'], UNREACHABLE):
        assert str(where) in message
    assert 'apt-get install dataset-fashion-mnist' in message and 'D2LMINI_DATA' in message
    assert not any(places['cache_files'].glob('*'))


def test_download_verifies_then_caches(places, tmp_path, monkeypatch, real_gz):
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / (LABELS.name + '.gz')).write_bytes(real_gz)
    with serve(mirror) as url:
        monkeypatch.setattr(fashion_mnist, 'MIRROR', url)
        assert fashion_mnist.read_file('test-labels').shape == (10000,)
    assert [p.name for p in places['cache_files'].iterdir()] == [LABELS.name + '.gz']
    # the cached copy is used from now on, with the mirror gone
    monkeypatch.setattr(fashion_mnist, 'MIRROR', UNREACHABLE)
    assert fashion_mnist.read_file('test-labels').shape == (10000,)


def test_corrupt_download_leaves_nothing_in_the_cache(places, tmp_path, monkeypatch):
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / (LABELS.name + '.gz')).write_bytes(gzip.compress(b'\0' * LABELS.num_bytes))
    with serve(mirror) as url:
        monkeypatch.setattr(fashion_mnist, 'MIRROR', url)
        with pytest.raises(DataIntegrityError) as info:
            fashion_mnist.read_file('test-labels')
    assert url in str(info.value) and LABELS.sha256 in str(info.value)
    assert not any(places['cache_files'].iterdir())


def test_truncated_download_names_the_url_the_final_path_and_both_hashes(
        places, tmp_path, monkeypatch, real_gz):
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / (LABELS.name + '.gz')).write_bytes(real_gz[:len(real_gz) // 2])
    with serve(mirror) as url:
        monkeypatch.setattr(fashion_mnist, 'MIRROR', url)
        with pytest.raises(DataIntegrityError) as info:
            fashion_mnist.read_file('test-labels')
    message = str(info.value)
    assert url + LABELS.name + '.gz' in message
    assert str(places['cache_files'] / (LABELS.name + '.gz')) in message
    assert '.part' not in message, 'names a temporary file that no longer exists'
    assert LABELS.sha256 in message                                    # expected
    assert hashlib.sha256(real_gz[:len(real_gz) // 2]).hexdigest() in message   # received
    assert not any(places['cache_files'].iterdir())
