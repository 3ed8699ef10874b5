"""The run records in executed notebooks, and the chapter page's run-it-yourself table.

`Trainer.fit` puts one record of each run in its cell's outputs: a display output with the
MIME type `application/vnd.d2lmini.run+json` (d2lmini/record.py: budget, device, history, ...).
The table says, per framework, which budget on which device produced the page's outputs, and
for a framework whose training cell shows a reference run (reference.py), which run that was.
"""
import re

from d2lmini.record import MIME_TYPE as MIME


def is_record(output):
    return output.get('output_type') == 'display_data' and MIME in output.get('data', {})


def records(nb):
    """Every run record in the notebook's code cells, in order."""
    return [out['data'][MIME] for cell in nb.cells if cell.cell_type == 'code'
            for out in cell.get('outputs', []) if is_record(out)]


def _escape(text):
    """Markdown-escape text that goes into a table cell."""
    return re.sub(r'([\\`*_\[\]<>|{}$])', r'\\\1', str(text))


def _outputs(recs, shown_reference=None):
    if shown_reference:
        text = f"reference run: {_escape(shown_reference['description'])}"
        if not shown_reference['current']:
            text += ' (**produced by an earlier version of this code**)'
        return text
    if not recs:
        return 'no training in this notebook (no budget applies)'
    described = []
    for rec in recs:
        text = (f"**{_escape(rec['budget']['name'])}** budget on **{_escape(rec['device']['name'])}** "
                f"({_escape(rec['budget']['reason'])})")
        if rec['status'] != 'finished':
            text += f", {_escape(rec['status'])} after {rec['epochs_run']} of {rec['epochs_requested']} epochs"
        if text not in described:
            described.append(text)
    return '; '.join(described)


def table_markdown(rows):
    """The run-it-yourself table and, after smoke runs, a warning.

    rows: one (Framework, Colab address, download path relative to the page, records,
    shown reference) each; the last is None, or {description, current} of the reference run
    whose outputs the training cell shows.
    """
    lines = []
    for fw, colab_url, download, recs, shown_reference in rows:
        links = f'[Open in Colab]({colab_url}) · {{download}}`Download notebook <{download}>`'
        if fw.colab_note:
            links += f' ({{ref}}`{fw.colab_note} <run-in-colab>`)'
        lines.append(f'* - {fw.label}\n  - {links}\n  - {_outputs(recs, shown_reference)}')
    text = ('```{list-table}\n:header-rows: 1\n:widths: 14 46 40\n:class: framework-run-table\n\n'
            '* - Framework\n  - Run it yourself\n  - Training outputs on this page come from\n'
            + '\n'.join(lines) + '\n```\n')
    smoke = {(r['budget']['max_epochs'], r['budget']['max_train_batches'], r['budget']['max_val_batches'])
             for *_, recs, _ in rows for r in recs if r['budget']['name'] == 'smoke'}
    if smoke:
        caps = (' (at most {} epochs of {} training and {} validation batches)'.format(*smoke.pop())
                if len(smoke) == 1 else '')
        text += ('\n```{admonition} Smoke-test outputs\n:class: warning framework-smoke-warning\n'
                 f'Outputs marked **smoke** above come from a quick check that the code runs{caps}: '
                 'their losses, accuracies and curves say nothing about what the model can learn. '
                 'Run the notebook with `D2LMINI_BUDGET=full`, or on a GPU, for real results.\n```\n')
    stale = [fw.label for fw, *_, shown in rows if shown and not shown['current']]
    if stale:
        text += ('\n```{admonition} Outputs of an earlier version of the code\n'
                 ':class: warning framework-stale-warning\n'
                 f'The training outputs shown for {", ".join(stale)} come from a reference run of '
                 'code that has changed since: they may differ from what the code on this page '
                 'produces. `make reference` runs it again.\n```\n')
    return text
