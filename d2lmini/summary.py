"""Model summaries, printed the same way in every framework."""


def layer_label(name, layer):
    """`b1 (Sequential)` for a child the model named, `Sequential` for one it only numbered."""
    kind = getattr(layer, '__name__', None) or type(layer).__name__
    return f'{name} ({kind})' if name and not str(name).isdigit() else kind


def print_layer_shape(name, shape):
    print(f'{name:<20} output shape: {tuple(int(d) for d in shape)}')
