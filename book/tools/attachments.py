"""Turn the cell attachments of a merged chapter page into image files beside it.

The chapter notebooks carry their figures as markdown-cell attachments (`![...](attachment:x.svg)`
with the image inside the notebook), so that a notebook opened alone (Colab, a download) shows
them. MyST-NB, which renders the book, ignores attachments (executablebooks/MyST-NB#492: the image
would be 'not readable' and the build fails under -W), so before the HTML build every attachment of
the page is written to `<page folder>/<page name>_attachments/<name>` and its `attachment:` links
are rewritten to that file.

The other direction, for authors: `python -m book.tools.attachments embed <notebook>...` (re)embeds
every `attachment:<name>` of a notebook from the file `figures/<name>` beside it, for instance
after `book/googlenet/figures/make_figures.py` has redrawn the figures.
"""
import base64
import mimetypes
import pathlib
import re
import sys

import nbformat


class AttachmentError(Exception):
    """A cell refers to an attachment it does not carry, or two cells disagree on one name."""


_LINK = re.compile(r'(\]\(\s*<?|\b(?:src|href)\s*=\s*["\'])attachment:([^\s)>"\']+)')


def _decode(mime, data):
    data = ''.join(data) if isinstance(data, list) else data
    if mime.startswith('text/') or mime == 'image/svg+xml':
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            return data.encode('utf-8')          # some writers store SVG as plain text
    return base64.b64decode(data)


def extract(nb, folder_name, where='the page'):
    """Move attachments out of nb's markdown cells (in place).

    Returns {file name: bytes} to write into the folder `folder_name`, which the rewritten
    links point to (relative to the page).
    """
    files = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != 'markdown':
            continue
        attached = cell.get('attachments') or {}

        def replace(match):
            name = match.group(2)
            if name not in attached:
                raise AttachmentError(f'{where}, cell {index}: links attachment:{name}, but the cell has '
                                      f'no such attachment (it has: {", ".join(attached) or "none"}).')
            mime, data = next(iter(attached[name].items()))
            content = _decode(mime, data)
            if files.get(name, content) != content:
                raise AttachmentError(f'{where}: two cells attach different images named {name!r}; '
                                      f'rename one of them.')
            files[name] = content
            return f'{match.group(1)}{folder_name}/{name}'

        cell.source = _LINK.sub(replace, cell.source)
        cell.pop('attachments', None)
    return files


def extract_to_files(page):
    """Rewrite the notebook file `page` so that its attachments become files beside it."""
    page = pathlib.Path(page)
    nb = nbformat.read(str(page), as_version=4)
    folder = page.parent / f'{page.stem}_attachments'
    files = extract(nb, folder.name, where=str(page.name))
    if files:
        folder.mkdir(exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
    nbformat.write(nb, str(page))
    return sorted(files)


def embed(notebook, figures=None):
    """(Re)attach every image a notebook links as attachment:<name> from figures/<name>.

    Returns the names it embedded. The notebook file is rewritten only if something changed."""
    notebook = pathlib.Path(notebook)
    figures = pathlib.Path(figures) if figures else notebook.parent / 'figures'
    nb = nbformat.read(str(notebook), as_version=4)
    names, changed = [], False
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != 'markdown':
            continue
        for name in sorted({m.group(2) for m in _LINK.finditer(cell.source)}):
            path = figures / name
            if not path.is_file():
                raise AttachmentError(f'{notebook.name}, cell {index}: attachment:{name} has no file {path}')
            mime = mimetypes.guess_type(name)[0] or 'application/octet-stream'
            bundle = {mime: base64.b64encode(path.read_bytes()).decode('ascii')}
            old = (cell.get('attachments') or {}).get(name)
            if old is None or {k: ''.join(v) if isinstance(v, list) else v for k, v in old.items()} != bundle:
                cell['attachments'] = {**(cell.get('attachments') or {}), name: bundle}
                changed = True
            names.append(name)
    if changed:
        nbformat.write(nb, str(notebook))
    return names


if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] != 'embed':
        sys.exit('usage: python -m book.tools.attachments embed <notebook.ipynb>...')
    for path in sys.argv[2:]:
        print(f'{path}: {", ".join(embed(path)) or "no attachment: links"}')
