"""The worked exercises (book/googlenet_exercises): the chapter links each exercise to its
answer, the four frameworks print the same tables, and the prose quotes what the code printed.

nbval (make test-notebooks) reruns every notebook and checks that the cells tagged
nbval-check-output print what the notebook stores; these tests check what is stored."""
import re

import nbformat
import pytest

from book.tools import chapters, merge, showing
from d2lmini.frameworks import IDS

CHAPTER, EXERCISES = 'googlenet', 'googlenet_exercises'
CHECKED = 'nbval-check-output'
ANSWERED = (1, 2, 3, 4, 5)
# A number as the prose quotes printed results: with a thousands comma, a decimal point or a
# percent sign (1,503.0; 23.9; 83%). Plain integers (10 classes, 4096 units) are no results.
NUMBER = re.compile(r'(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+%)(?![\w])')


def notebooks(chapter):
    return {fw: nbformat.read(path, as_version=4) for fw, path in chapters.notebooks(chapter).items()}


def text_of(outputs):
    return ''.join(o.get('text', '') if o.output_type == 'stream'
                   else o.get('data', {}).get('text/plain', '') for o in outputs)


def sections(nb):
    """{exercise number: [its cells]} for the '## Exercise N' sections of a notebook."""
    found, current = {}, None
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            heading = re.match(r'## (?:Exercise (\d+)|.*)', cell.source)
            if heading:
                current = int(heading.group(1)) if heading.group(1) else None
        if current is not None:
            found.setdefault(current, []).append(cell)
    return found


def test_the_chapter_links_each_exercise_to_its_answer_in_its_own_framework():
    answers = notebooks(EXERCISES)
    for fw, nb in notebooks(CHAPTER).items():
        exercises = next(c.source for c in nb.cells if c.source.startswith('## Exercises'))
        links = re.findall(r'\]\(\.\./([\w-]+)/([\w-]+)\.ipynb#exercise-(\d+)\)', exercises)
        assert links == [(EXERCISES, f'{EXERCISES}_{fw}', str(n)) for n in range(1, 6)], fw
        assert sorted(sections(answers[fw])) == [1, 2, 3, 4, 5]


def test_each_answered_exercise_has_an_answer_section_with_code_in_every_framework():
    for fw, nb in notebooks(EXERCISES).items():
        for number, cells in sections(nb).items():
            answer = [c for c in cells if c.cell_type == 'markdown' and c.source.startswith('### Answer')]
            code = [c for c in cells if c.cell_type == 'code']
            assert bool(answer) == bool(code) == (number in ANSWERED), (fw, number)


def test_the_four_frameworks_store_the_same_checked_outputs():
    """Where every framework has checked cells between the same two shared cells, they print
    the same text: the tables are framework-free, computed from each framework's layers."""
    layouts = {fw: merge.layout(nb, fw) for fw, nb in notebooks(EXERCISES).items()}
    compared = 0
    for group in range(len(layouts[IDS[0]].groups)):
        outputs = {fw: [text_of(cell.outputs) for _, cell in lay.groups[group]
                        if cell.cell_type == 'code' and CHECKED in cell.metadata.get('tags', [])]
                   for fw, lay in layouts.items()}
        if all(outputs.values()):
            assert all(text.strip() for text in outputs[IDS[0]]), f'group {group}: empty output'
            for fw in IDS[1:]:
                assert outputs[fw] == outputs[IDS[0]], f'group {group}: {fw} differs from {IDS[0]}'
            compared += 1
    assert compared >= 4, 'the tables of exercises 2, 4 and 5 are checked cells'


@pytest.mark.parametrize('fw', IDS)
def test_the_answers_quote_only_numbers_their_code_printed(fw):
    """Results in an answer's prose are read off its outputs, not typed: each number in the
    shared cells of its `### Answer` section (but those that cite a source: facts from
    datasheets and papers; and those quoted from the training runs' records in the places
    showing.py fills) appears in a stored output of the same exercise."""
    for number, cells in sections(notebooks(EXERCISES)[fw]).items():
        printed = ''.join(text_of(c.outputs) for c in cells if c.cell_type == 'code')
        answer = next((i for i, c in enumerate(cells) if c.source.startswith('### Answer')), len(cells))
        for cell in cells[answer:]:         # the answer's prose, not the question's
            if cell.cell_type != 'markdown' or merge.NOTE_TAG in cell.metadata.get('tags', []) \
                    or '](http' in cell.source:
                continue
            # not math or code, nor the numbers that showing.py quotes from the runs' records
            prose = showing.QUOTE_BLOCK.sub('', showing.QUOTE_SPAN.sub('', cell.source))
            prose = re.sub(r'\$[^$]*\$|`[^`]*`', '', prose)
            missing = [n for n in NUMBER.findall(prose) if n not in printed]
            assert not missing, f'exercise {number}: {missing} are in the prose but in no output'
