"""JAX with Flax and Optax: the whole step (forward, gradient, SGD update) in one jax.jit."""
import flax
import jax
import numpy as np
import optax
from jax import numpy as jnp


def version():
    return f'jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}'


def wait(batch):
    jax.block_until_ready(batch)


class HandLoop:
    def __init__(self, model, params, lr, device):
        optimizer = optax.sgd(lr)

        def step(params, opt_state, X, y):
            def loss_fn(params):
                logits = model.apply({'params': params}, X)
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        def validation_loss(params, X, y):
            logits = model.apply({'params': params}, X)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        self.validation_loss = jax.jit(validation_loss)
        # As d2lmini does: donate the old parameters where XLA can reuse them (not on the CPU).
        self.step = jax.jit(step, donate_argnums=(0, 1) if device.platform == 'gpu' else ())
        self.device = device
        self.params = jax.device_put(params, device)
        self.opt_state = optimizer.init(self.params)

    def epoch(self, loader):
        losses = []
        for X, y in loader:
            X, y = jax.device_put((X, y), self.device)
            self.params, self.opt_state, loss = self.step(self.params, self.opt_state, X, y)
            losses.append(loss)
        return np.asarray(jnp.stack(losses))

    def evaluate(self, X, y):
        X, y = jax.device_put((X, y), self.device)
        return float(self.validation_loss(self.params, X, y))
