"""TensorFlow: the whole step (forward, gradient, Keras SGD update) in one tf.function."""
import tensorflow as tf


def version():
    return f'tensorflow {tf.__version__}, keras {tf.keras.__version__}'


def wait(batch):
    """Tensors converted from NumPy exist once returned."""


class HandLoop:
    def __init__(self, model, params, lr, device):
        optimizer = tf.keras.optimizers.SGD(lr)

        @tf.function
        def step(X, y):
            with tf.GradientTape() as tape:
                logits = model(X, training=True)
                loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        @tf.function
        def validation_loss(X, y):
            return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                y, model(X, training=False), from_logits=True))

        self.step, self.validation_loss, self.device = step, validation_loss, device

    def epoch(self, loader):
        with tf.device(self.device):
            losses = [self.step(X, y) for X, y in loader]
            return tf.stack(losses).numpy()

    def evaluate(self, X, y):
        with tf.device(self.device):
            return float(self.validation_loss(X, y))
