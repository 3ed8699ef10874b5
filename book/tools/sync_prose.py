"""Copy a chapter's shared prose from one of its notebooks into the others.

usage: python -m book.tools.sync_prose CHAPTER FRAMEWORK   (make sync-prose CHAPTER=... FROM=...)

Every shared markdown cell (not tagged `framework-note`) of the other notebooks gets the text
and attachments of its counterpart in FRAMEWORK's notebook; notes and code stay as they are.
Refuses, naming the cells, when the notebooks' cell structure differs.
"""
import sys

import nbformat

from book.tools import chapters, merge
from d2lmini import frameworks


def sync(chapter, source, root=chapters.ROOT):
    """Rewrite the other notebooks of `chapter`; returns {path: numbers of the changed cells}."""
    paths = chapters.notebooks(chapter, root)
    paths = {source: paths.pop(source), **paths}          # the source is the reference
    notebooks = {fw: nbformat.read(path, as_version=4) for fw, path in paths.items()}
    layouts = {fw: merge.layout(nb, paths[fw].relative_to(root).as_posix()) for fw, nb in notebooks.items()}
    merge.check_structure(layouts, texts=False)
    changed = {}
    for fw, lay in list(layouts.items())[1:]:
        for (_, ref), (index, cell) in zip(layouts[source].shared, lay.shared):
            if (cell.source, cell.get('attachments')) != (ref.source, ref.get('attachments')):
                cell.source = ref.source
                cell.pop('attachments', None)
                if ref.get('attachments'):
                    cell['attachments'] = ref['attachments']
                changed.setdefault(paths[fw], []).append(index)
        if paths[fw] in changed:
            nbformat.write(notebooks[fw], paths[fw])
    return changed


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__.split('\n\n')[1])
    chapter, source = argv
    if chapter not in chapters.chapters() or source not in frameworks.IDS:
        sys.exit(f'sync-prose: choose a chapter of _toc.yml ({", ".join(chapters.chapters())}) '
                 f'and a framework ({", ".join(frameworks.IDS)})')
    changed = sync(chapter, source)
    for path, cells in changed.items():
        print(f'{path.relative_to(chapters.ROOT)}: cells {", ".join(map(str, cells))} now as in {source}')
    print('nothing to change: the shared prose is the same' if not changed else 'done')


if __name__ == '__main__':
    try:
        main(sys.argv[1:])
    except (chapters.ChapterError, merge.MergeError) as error:
        sys.exit(f'sync-prose: {error}')
