"""The chapters' figures, in the form each front end shows.

A figure's one source is `book/<chapter>/figures/<name>.svg` (drawn by the chapter's
`figures/make_figures.py`, or by run_numbers.draw for the reference curves). From it come:

- for the notebooks (Colab, GitHub, Jupyter): a PNG beside it, `<name>.png`, linked from the
  markdown by its absolute address in the repository,
  `https://raw.githubusercontent.com/<owner>/<repo>/<branch>/book/<chapter>/figures/<name>.png`.
  Why this form: Colab ignores markdown-cell attachments (googlecolab/colabtools#3836) and does
  not show embedded SVG (googlecolab/colabtools#2092); GitHub renders neither attachments
  (huggingface/notebooks#578) nor `data:` images in markdown, and raw.githubusercontent.com
  serves SVG as text/plain, which an <img> does not show, but PNG as image/png. An address works
  in all three (offline, a notebook shows the alt text instead). The branch is _config.yml's
  `repository.branch`, the one the book's Colab links open, so a notebook shows the figures of
  its own version.
- for the book (HTML and PDF): the build rewrites those addresses to the SVG beside the page
  (`localize`): vector, and there before the repository is published.

The PNG is rendered by Debian's Chromium (which prints the PDFs too) at twice the SVG's size,
and carries the SHA-256 of the SVG it was rendered from in a PNG text chunk, so a test tells a
stale PNG without rendering again (renderings differ by a few bytes between machines).

    python -m book.tools.figures render book/<chapter>       # every SVG of figures/ -> PNG
    python -m book.tools.figures link book/<chapter>/*.ipynb  # figure links -> the address form
"""
import hashlib
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import nbformat
from book.tools import chapters

HASH_KEY = 'd2lmini-source-sha256'     # the PNG text chunk holding its SVG's hash
SCALE = 2                              # PNG pixels per SVG pixel: sharp on high-density screens
RAW = 'https://raw.githubusercontent.com'
# A markdown image or an <img src>: its address, whatever the form (attachment:, relative, URL).
IMAGE = re.compile(r'(!\[[^\]]*\]\(\s*<?|<img\b[^>]*?\bsrc\s*=\s*["\'])([^\s)>"\']+)')
# The name of a chapter figure in any of the forms an author may write it: an attachment or a
# path relative to the notebook (an address elsewhere is another site's image, left alone).
FIGURE_NAME = re.compile(r'(?:attachment:|(?:\.\./[\w-]+/|\./)?figures/)(?P<name>[\w.-]+)\.(?:svg|png)')


class FigureError(Exception):
    """A figure link or file is not as the front ends need it; says which and how to fix it."""


def url(chapter, name, root=chapters.ROOT):
    """The address notebooks link the PNG of `figures/<name>.svg` of `chapter` by."""
    owner, repo, branch, book = chapters.github(root)
    path = '/'.join(p for p in (book, 'book', chapter, 'figures', f'{name}.png') if p)
    return f'{RAW}/{owner}/{repo}/{branch}/{path}'


def svg_size(svg):
    """(width, height) in CSS pixels of an SVG file's outer element (px or pt units)."""
    head = svg.read_text()[:2000]
    size = []
    for attribute in ('width', 'height'):
        match = re.search(rf'<svg\b[^>]*?\b{attribute}="([\d.]+)(px|pt)?"', head, re.S)
        if not match:
            raise FigureError(f'{svg}: its <svg> element has no {attribute} in px or pt, so its '
                              f'PNG size is unknown; give it width and height attributes')
        size.append(round(float(match[1]) * (4 / 3 if match[2] == 'pt' else 1)))
    return tuple(size)


def source_hash(svg):
    return hashlib.sha256(pathlib.Path(svg).read_bytes()).hexdigest()


def png_source_hash(png):
    """The SVG hash a PNG of `render` carries, or None."""
    from PIL import Image
    with Image.open(png) as image:
        return image.text.get(HASH_KEY)


def browser():
    found = shutil.which('chromium') or shutil.which('chromium-browser')
    if not found:
        raise FigureError('Rendering figures needs Chromium (Debian: apt-get install chromium; '
                          '`make setup` installs it).')
    return found


def render(svg):
    """Write `<name>.png` beside `svg`: Chromium's rendering at SCALE times its size, with the
    SVG's hash in a text chunk. Returns the PNG's path."""
    from PIL import Image, PngImagePlugin
    svg = pathlib.Path(svg).resolve()
    width, height = svg_size(svg)
    png = svg.with_suffix('.png')
    with tempfile.TemporaryDirectory() as tmp:
        shot = pathlib.Path(tmp) / 'shot.png'
        done = subprocess.run(
            [browser(), '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
             f'--user-data-dir={tmp}/profile', f'--force-device-scale-factor={SCALE}',
             f'--window-size={width},{height}', f'--screenshot={shot}', svg.as_uri()],
            capture_output=True, text=True, timeout=120)
        if done.returncode or not shot.exists():
            raise FigureError(f'Chromium could not render {svg}: {done.stderr.strip()[-500:]}')
        info = PngImagePlugin.PngInfo()
        info.add_text(HASH_KEY, source_hash(svg))
        with Image.open(shot) as image:
            image.save(png, pnginfo=info, optimize=True)
    return png


def render_chapter(chapter_dir):
    """Render every SVG of `<chapter_dir>/figures` whose PNG is missing or stale. Raises
    FigureError if there is no such folder."""
    if not (pathlib.Path(chapter_dir) / 'figures').is_dir():
        raise FigureError(f'{chapter_dir} has no figures folder: give a chapter folder, '
                          f'e.g. book/googlenet')
    done = []
    for svg in sorted((pathlib.Path(chapter_dir) / 'figures').glob('*.svg')):
        png = svg.with_suffix('.png')
        if not png.exists() or png_source_hash(png) != source_hash(svg):
            done.append(render(svg))
    return done


def _rewrite(nb, change):
    """Apply `change(address) -> address` to every image address in nb's markdown cells."""
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            cell.source = IMAGE.sub(lambda m: m.group(1) + change(m.group(2)), cell.source)


def link(notebook, root=chapters.ROOT):
    """Rewrite a chapter notebook's figure links (attachment:x.svg, figures/x.svg, ...) to the
    address form and drop its cell attachments. Returns True if the file changed."""
    notebook = pathlib.Path(notebook)
    chapter = notebook.parent.name
    nb = nbformat.read(str(notebook), as_version=4)
    before = nbformat.writes(nb)

    figures = notebook.parent / 'figures'

    def change(address):
        match = FIGURE_NAME.fullmatch(address)
        if not match:
            return address
        if not (figures / f'{match["name"]}.svg').is_file():
            raise FigureError(f'{notebook}: the image {address} has no source '
                              f'{figures / match["name"]}.svg; draw it there (or fix the name)')
        return url(chapter, match['name'], root)
    _rewrite(nb, change)
    for cell in nb.cells:
        cell.pop('attachments', None)
    if nbformat.writes(nb) == before:
        return False
    nbformat.write(nb, str(notebook))
    return True


def localize(nb, chapter, root=chapters.ROOT):
    """For the book: rewrite the addresses of `chapter`'s figures in nb (a page in
    book/<chapter>/) to the SVGs beside it, `figures/<name>.svg` (in place). Raises
    FigureError for a figure whose SVG does not exist."""
    prefix = url(chapter, '', root).removesuffix('.png')

    def change(address):
        if not address.startswith(prefix) or not address.endswith('.png'):
            return address
        name = address[len(prefix):-len('.png')]
        if not (pathlib.Path(root) / 'book' / chapter / 'figures' / f'{name}.svg').is_file():
            raise FigureError(f'book/{chapter}: a cell shows the figure {name}, but there is no '
                              f'book/{chapter}/figures/{name}.svg')
        return f'figures/{name}.svg'
    _rewrite(nb, change)
    return nb


def problems(notebook, root=chapters.ROOT):
    """What keeps a chapter notebook's figures from showing in Colab, on GitHub or in the book:
    a list of sentences (empty if none)."""
    notebook = pathlib.Path(notebook)
    chapter, found = notebook.parent.name, []
    figures = pathlib.Path(root) / 'book' / chapter / 'figures'
    nb = nbformat.read(str(notebook), as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != 'markdown':
            continue
        if cell.get('attachments'):
            found.append(f'{notebook.name}, cell {index}: carries attachments, which Colab and '
                         f'GitHub do not show')
        for match in IMAGE.finditer(cell.source):
            address = match.group(2)
            name = re.fullmatch(r'(?P<name>[\w.-]+)\.png', address.rsplit('/', 1)[-1])
            if name is None or address != url(chapter, name['name'], root):
                found.append(f'{notebook.name}, cell {index}: the image {address} is not linked '
                             f'by its address in the repository (run python -m '
                             f'book.tools.figures link {notebook})')
                continue
            svg, png = figures / f'{name["name"]}.svg', figures / f'{name["name"]}.png'
            if not svg.is_file() or not png.is_file():
                found.append(f'{notebook.name}, cell {index}: {svg.name} or {png.name} is missing '
                             f'from book/{chapter}/figures')
            elif png_source_hash(png) != source_hash(svg):
                found.append(f'book/{chapter}/figures/{png.name} was not rendered from the '
                             f'current {svg.name} (run python -m book.tools.figures render '
                             f'book/{chapter})')
    return found


def main(argv):
    if len(argv) < 2 or argv[0] not in ('render', 'link'):
        sys.exit(__doc__.rsplit('\n\n', 1)[-1])
    try:
        for path in argv[1:]:
            if argv[0] == 'render':
                done = render_chapter(path)
                print(f'{path}: rendered {", ".join(p.name for p in done) or "nothing (all current)"}')
            else:
                print(f'{path}: {"linked" if link(path) else "nothing to change"}')
    except FigureError as error:
        sys.exit(f'figures: {error}')


if __name__ == '__main__':
    main(sys.argv[1:])
