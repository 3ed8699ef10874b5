"""Model summaries, printed the same way in every framework."""


def layer_label(name, layer):
    """`b1 (Sequential)` for a child the model named, `Sequential` for one it only numbered."""
    kind = getattr(layer, '__name__', None) or type(layer).__name__
    return f'{name} ({kind})' if name and not str(name).isdigit() else kind


def top_level_children(model, is_module, children_of):
    """The (name, child) pairs a layer summary walks, as a list: those of `model.net` when it
    is a module (`is_module`), else the model's own, as `children_of(module)` lists them.
    Raises TypeError when there are none."""
    net = getattr(model, 'net', None)
    top = net if is_module(net) else model
    children = list(children_of(top))
    if not children:
        raise TypeError(f'layer_summary lists the child modules of {type(top).__name__}, and it '
                        f'has none.')
    return children


def shape_printing_hook(name):
    """A forward hook `(layer, inputs, output)`, as PyTorch and Gluon call them, that prints the
    output shape of the layer the model calls `name`."""
    return lambda layer, inputs, output: print_layer_shape(layer_label(name, layer), output.shape)


def print_layer_shape(name, shape):
    print(f'{name:<20} output shape: {tuple(int(d) for d in shape)}')
