"""Find a data file, verify it, and download it only when no local copy exists.

A file may be stored plain or gzip-compressed; it is verified by the SHA-256 of its
*decompressed* content, so copies that were compressed differently (the upstream mirror, a
Debian package) all pass. Downloads go to a temporary name and are renamed only once verified,
so an interrupted or corrupt download never leaves anything behind in the cache.
"""
import dataclasses
import gzip
import hashlib
import os
import pathlib
import urllib.error
import urllib.request
import zlib

from d2lmini.errors import DataIntegrityError, DataNotFoundError


@dataclasses.dataclass(frozen=True)
class DataFile:
    name: str           # decompressed file name, e.g. 'train-labels-idx1-ubyte'
    num_bytes: int      # size of the decompressed content
    sha256: str         # of the decompressed content


@dataclasses.dataclass(frozen=True)
class Place:
    path: pathlib.Path
    origin: str         # what the place is, for error messages


def cache_root():
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return pathlib.Path(base) / 'd2lmini'


def read_verified(file, places, url=None, cache_dir=None, fixes=()):
    """The decompressed, verified bytes of `file`, from the first place that has a copy.

    A copy that exists but fails verification is an error, not something to skip: silently
    using another copy would hide a damaged file from its owner.
    """
    for place in places:
        for candidate in (place.path / file.name, place.path / (file.name + '.gz')):
            if candidate.is_file():
                return _check(file, _decompress(candidate), f'{candidate} ({place.origin})')
    searched = [f'{place.path} ({place.origin})' for place in places]
    if url is not None and cache_dir is not None:
        try:
            return _download(file, url, pathlib.Path(cache_dir))
        except (urllib.error.URLError, OSError) as error:
            searched.append(f'{url} (download failed: {getattr(error, "reason", error)})')
    raise DataNotFoundError(
        f'Could not find {file.name} (plain or .gz). Looked in:\n  - ' + '\n  - '.join(searched)
        + ('\nTo fix it, either:\n  - ' + '\n  - '.join(fixes) if fixes else ''))


def _decompress(path):
    raw = path.read_bytes()
    if not path.name.endswith('.gz'):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DataIntegrityError(
            f'{path.name} could not be decompressed ({error}): the file is truncated or not gzip '
            f'data. Source: {path}. Delete it and fetch it again.') from None


def _check(file, content, source, fix='Delete it (or fix the copy there) and try again.'):
    actual = hashlib.sha256(content).hexdigest()
    if actual != file.sha256 or len(content) != file.num_bytes:
        raise DataIntegrityError(
            f'{file.name} is corrupt or truncated: expected SHA-256 {file.sha256} '
            f'({file.num_bytes} bytes), got {actual} ({len(content)} bytes). '
            f'Source: {source}. {fix}')
    return content


def _download(file, url, cache_dir):
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / (file.name + '.gz')
    partial = cache_dir / f'.{file.name}.{os.getpid()}.part.gz'   # .gz: decompressed when read
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, 'wb') as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        # The partial file is gone when the error is read: name the URL and the final path.
        source = f'{url} (downloaded for {target}; nothing was saved)'
        fix = 'Try again, or put a good copy of the file in one of the places searched.'
        raw = partial.read_bytes()
        try:
            content = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise DataIntegrityError(
                f'{file.name}: the download is truncated or not gzip data ({error}): received '
                f'{len(raw)} bytes with SHA-256 {hashlib.sha256(raw).hexdigest()}; expected '
                f'content with SHA-256 {file.sha256} ({file.num_bytes} bytes decompressed). '
                f'Source: {source}. {fix}') from None
        content = _check(file, content, source, fix)
        os.replace(partial, target)
        return content
    finally:
        partial.unlink(missing_ok=True)
