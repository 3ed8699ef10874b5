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
        return self.loss(y_hat, batch[-1]), self.accuracy(y_hat, batch[-1])


def mean_if(values, averaged):
    return values.mean() if averaged else values
