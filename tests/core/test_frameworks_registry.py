"""d2lmini.frameworks, the registry every tool reads, agrees with the adapters it names.

Read from the adapters' source, so that one framework-free run checks all four (each framework
imports only in its own environment)."""
import ast
import pathlib

import pytest

from d2lmini import frameworks

D2LMINI = pathlib.Path(frameworks.__file__).parent


def class_attribute(module, class_name, attribute):
    """The literal value `attribute` is given in `class_name`'s body in d2lmini/<module>.py."""
    tree = ast.parse((D2LMINI / f'{module}.py').read_text())
    body = next(node for node in tree.body
                if isinstance(node, ast.ClassDef) and node.name == class_name).body
    for node in body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], 'id', None) == attribute):
            return ast.literal_eval(node.value)
    raise AssertionError(f'd2lmini/{module}.py: {class_name} sets no {attribute}')


def test_ids_modules_and_layouts_are_well_formed():
    assert len(set(frameworks.IDS)) == len(frameworks.IDS)
    for fw in frameworks.FRAMEWORKS:
        assert (D2LMINI / f'{fw.module}.py').is_file(), f'{fw.id}: no d2lmini/{fw.module}.py'
        assert fw.layout in ('NCHW', 'NHWC'), f'{fw.id}: layout {fw.layout!r}'


@pytest.mark.parametrize('fw', frameworks.FRAMEWORKS, ids=frameworks.IDS)
def test_the_adapter_gives_the_registrys_layout_and_id(fw):
    assert class_attribute(fw.module, 'FashionMNIST', 'layout') == fw.layout, (
        f'd2lmini/{fw.module}.py and d2lmini/frameworks.py disagree on the layout of {fw.id}')
    assert class_attribute(fw.module, 'Trainer', 'framework') == fw.id
