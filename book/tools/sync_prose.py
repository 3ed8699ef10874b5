"""Copy a chapter's shared prose from one of its notebooks into the others.

usage: python -m book.tools.sync_prose CHAPTER FRAMEWORK   (make sync-prose CHAPTER=... FROM=...)

Every shared markdown cell (not tagged `framework-note`) of the other notebooks gets the text
and attachments of its counterpart in FRAMEWORK's notebook (its links to another chapter's
notebook made to name the notebook's own framework); notes and code stay as they are.
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
            text = merge.links_for(ref.source, fw)     # links to other chapters: fw's notebooks
            if (cell.source, cell.get('attachments')) != (text, ref.get('attachments')):
                cell.source = text
                cell.pop('attachments', None)
                if ref.get('attachments'):
                    cell['attachments'] = ref['attachments']
                changed.setdefault(paths[fw], []).append(index)
        if paths[fw] in changed:
            nbformat.write(notebooks[fw], paths[fw])
    return changed


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in chapters.chapters() or sys.argv[2] not in frameworks.IDS:
        sys.exit(f'{__doc__.splitlines()[2]}\nCHAPTER: one of _toc.yml ({", ".join(chapters.chapters())}), '
                 f'FRAMEWORK: {", ".join(frameworks.IDS)}')
    try:
        changed = sync(*sys.argv[1:])
    except merge.MergeError as error:
        sys.exit(f'sync-prose: {error}')
    for path, cells in changed.items():
        print(f'{path.relative_to(chapters.ROOT)}: cells {", ".join(map(str, cells))} now as in {sys.argv[2]}')
    print('done' if changed else 'nothing to change: the shared prose is the same')
