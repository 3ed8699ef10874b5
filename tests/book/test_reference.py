"""`make reference` (book/tools/reference.py): a chapter notebook run with the full budget and
checkpoints, resumed after an interruption, and kept with its record in the chapter's folder."""
import json
import os

import nbformat

from book.tools import chapters, reference, runs

CODE = '''from torch import nn
from d2lmini import torch as d2l


class MLP(d2l.Classifier):
    def __init__(self, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(10))


d2l.set_seed(0)
data = d2l.FashionMNIST(batch_size=64)
data.train = tuple(a[:640] for a in data.train)
data.val = tuple(a[:128] for a in data.val)
model = MLP()
model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer = d2l.Trainer(max_epochs={epochs})
trainer.fit(model, data)'''


def write_notebook(path, epochs):
    nb = nbformat.v4.new_notebook()
    nb.metadata['kernelspec'] = {'name': 'd2lmini-pytorch', 'display_name': 'd2lmini (PyTorch)',
                                 'language': 'python'}
    nb.cells = [nbformat.v4.new_markdown_cell('# Tiny'),
                nbformat.v4.new_code_cell(CODE.format(epochs=epochs))]
    nbformat.write(nb, str(path))


def test_a_reference_run_resumes_and_keeps_its_record(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('D2LMINI_CHECKPOINT_DIR', raising=False)
    folder = tmp_path / 'book' / 'tiny'
    folder.mkdir(parents=True)
    source = folder / 'tiny_pytorch.ipynb'
    write_notebook(source, epochs=1)        # a run that stops after epoch 1 ...
    reference.run('tiny', 'pytorch', root=tmp_path)
    write_notebook(source, epochs=3)        # ... and is asked for 3: it resumes at epoch 2
    path = reference.run('tiny', 'pytorch', root=tmp_path)
    log = capsys.readouterr().out
    assert 'tiny/pytorch epoch 3/3: train loss' in log
    record = json.loads(path.read_text())
    assert record['status'] == 'finished' and record['budget']['name'] == 'full'
    assert [row['epoch'] for row in record['history']] == [1, 2, 3]
    assert record['resumed_from']['epoch'] == 1
    assert record['reference']['code_hash'] == chapters.code_hash(source)
    kept = nbformat.read(str(folder / 'reference' / 'tiny_pytorch.ipynb'), as_version=4)
    assert runs.records(kept)[0]['history'] == record['history']
    text = json.dumps(kept.cells[-1].outputs)
    assert 'Resuming from the checkpoint ../../_build/reference/tiny/pytorch' in text
    assert str(tmp_path) not in text, 'the kept outputs must not show local paths'
    assert 'D2LMINI_CHECKPOINT_DIR' not in os.environ, 'the settings leaked into this process'


def test_a_run_resumed_in_another_process_adds_up_its_parts(tmp_path, monkeypatch):
    """Time and load of a process that was cut off count in the record of the run it began."""
    monkeypatch.delenv('D2LMINI_CHECKPOINT_DIR', raising=False)
    folder = tmp_path / 'book' / 'tiny'
    folder.mkdir(parents=True)
    source = folder / 'tiny_pytorch.ipynb'
    write_notebook(source, epochs=1)
    directory = reference.checkpoint_dir('tiny', 'pytorch', root=tmp_path)
    directory.mkdir(parents=True)
    cut = dict(started_at='2026-01-01T00:00:00+00:00', code_hash=chapters.code_hash(source),
               git_commit=None, execution_s=1000.0, max_load_average=7.5)
    (directory / 'reference-parts.json').write_text(json.dumps([cut]))
    record = json.loads(reference.run('tiny', 'pytorch', root=tmp_path).read_text())['reference']
    assert record['parts'] == 2 and record['started_at'] == cut['started_at']
    assert record['execution_s'] > 1000 and record['max_load_average'] == 7.5

    write_notebook(source, epochs=2)        # a cut-off part of other code is not added up
    (directory / 'reference-parts.json').write_text(json.dumps([cut]))
    try:
        reference.run('tiny', 'pytorch', root=tmp_path)
    except SystemExit as error:
        assert 'code changed between the parts' in str(error)
    else:
        raise AssertionError('parts of different code were added up')
