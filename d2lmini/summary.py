"""Model summaries, printed the same way in every framework."""


def print_layer_shape(name, shape):
    print(f'{name:<20} output shape: {tuple(int(d) for d in shape)}')


def count_parameters(shapes):
    """Number of scalars in tensors of the given shapes."""
    total = 0
    for shape in shapes:
        size = 1
        for d in shape:
            size *= int(d)
        total += size
    return total
