"""Model summaries, printed the same way in every framework."""


def print_layer_shape(name, shape):
    print(f'{name:<20} output shape: {tuple(int(d) for d in shape)}')

