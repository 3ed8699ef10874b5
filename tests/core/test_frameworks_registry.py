"""d2lmini.frameworks, the registry every tool reads, agrees with the adapters it names.

Read from the adapters' source, so that one framework-free run checks all four (each framework
imports only in its own environment)."""
import ast
import colorsys
import itertools
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


def test_each_framework_has_its_own_colour_and_marker_in_the_figures():
    """So that no two lines of a figure look alike (the hue alone fails some readers)."""
    colours = [fw.color for fw in frameworks.FRAMEWORKS]
    markers = [fw.marker for fw in frameworks.FRAMEWORKS]
    assert len(set(markers)) == len(markers)
    hues = [360 * colorsys.rgb_to_hls(*(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)))[0]
            for c in colours]
    for i, j in itertools.combinations(range(len(hues)), 2):
        apart = min(abs(hues[i] - hues[j]), 360 - abs(hues[i] - hues[j]))
        assert apart >= 35, f'{colours[i]} and {colours[j]} are only {apart:.0f} degrees of hue apart'
