"""Training and validation steps written once for the frameworks whose models are called
with their inputs: a mixin for their `Module` classes."""


class Steps:
    """`training_step` and `validation_step` in terms of `forward_pass`, `loss` and `accuracy`.

    A framework module mixes this into its `Module`; JAX, whose steps take the parameters
    explicitly, defines its own.
    """

    def forward_pass(self, inputs, training):
        return self(*inputs)

    def training_step(self, batch):
        return self.loss(self.forward_pass(batch[:-1], training=True), batch[-1])

    def validation_step(self, batch):
        y_hat = self.forward_pass(batch[:-1], training=False)
        return self.validation_loss(y_hat, batch[-1]), self.accuracy(y_hat, batch[-1])

    def validation_loss(self, y_hat, y):
        """The loss validation reports: the training loss, unless a model says otherwise (a
        classifier with label smoothing reports plain cross-entropy)."""
        return self.loss(y_hat, y)


def mean_if(values, averaged):
    return values.mean() if averaged else values


def smoothing_of(model, label_smoothing=None):
    """The label smoothing a classifier's loss applies: `label_smoothing` if given, else the
    model's `label_smoothing` hyperparameter (0.0 when it has none). A float in [0, 1);
    ValueError otherwise."""
    eps = getattr(model, 'label_smoothing', 0.0) if label_smoothing is None else label_smoothing
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1:
        raise ValueError(f'label_smoothing={eps!r} is not allowed: it must be a number in [0, 1), '
                         f'the weight of the uniform distribution in the targets (e.g. 0.1).')
    return float(eps)
