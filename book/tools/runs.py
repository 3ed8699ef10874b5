"""The run records in executed notebooks.

`Trainer.fit` puts one record of each run in its cell's outputs: a display output with the
MIME type `application/vnd.d2lmini.run+json` (d2lmini/record.py: budget, device, history, ...).
The page's run table (showing.py) says from them which runs produced the page's outputs.
"""
from d2lmini.record import MIME_TYPE as MIME


def is_record(output):
    return output.get('output_type') == 'display_data' and MIME in output.get('data', {})


def records(nb):
    """Every run record in the notebook's code cells, in order."""
    return [out['data'][MIME] for cell in nb.cells if cell.cell_type == 'code'
            for out in cell.get('outputs', []) if is_record(out)]
