"""The speed settings d2lmini chooses for each framework (bench/README.md says what each gains):
they must take effect, and must not change what is computed."""
import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kits import KITS


def only(framework, wanted):
    if framework != wanted:
        pytest.skip(f'a {wanted} setting')


def run_python(script, env_update=(), unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_update)
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(script)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


# --- JAX: d2l.max_pool is flax.linen.max_pool, faster -----------------------------------------

POOLS = [((3, 3), (1, 1), ((1, 1), (1, 1))),      # the Inception branch
         ((3, 3), (2, 2), ((1, 1), (1, 1))),      # the halving pool
         ((3, 3), (2, 2), 'SAME'), ((2, 2), (2, 2), 'VALID'), ((3, 2), (1, 2), ((0, 1), (2, 0)))]


@pytest.mark.parametrize('window, strides, padding', POOLS)
def test_jax_max_pool_matches_flax_ties_included(framework, window, strides, padding):
    only(framework, 'jax')
    import jax
    from flax import linen as nn
    from d2lmini import jax as d2l
    rng = np.random.default_rng(0)
    # Values from {0, 1, 2}: nearly every window holds several equal maxima, and which one
    # takes the gradient must be the one Flax's (XLA's select_and_scatter) picks.
    X = rng.integers(0, 3, (3, 9, 8, 5)).astype(np.float32)
    X[0, :2] = -np.inf      # windows whose maxima are -inf, as the padding is
    G = rng.standard_normal(nn.max_pool(X, window, strides, padding).shape).astype(np.float32)
    outputs = {}
    for name, pool in [('flax', nn.max_pool), ('d2l', d2l.max_pool)]:
        Y, pull = jax.vjp(lambda x: pool(x, window, strides, padding), X)
        outputs[name] = np.asarray(Y), np.asarray(pull(G)[0])
    np.testing.assert_array_equal(outputs['d2l'][0], outputs['flax'][0])
    np.testing.assert_array_equal(outputs['d2l'][1], outputs['flax'][1])


def test_jax_max_pool_gradient_under_jit(framework):
    only(framework, 'jax')
    import jax
    import jax.numpy as jnp
    from flax import linen as nn
    from d2lmini import jax as d2l
    X = jnp.asarray(np.random.default_rng(2).standard_normal((2, 6, 6, 3)), jnp.float32)
    loss = lambda pool: lambda x: (pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(jax.jit(jax.grad(loss(d2l.max_pool)))(X),
                               jax.grad(loss(nn.max_pool))(X), rtol=0, atol=0)


YNN_SCRIPT = '''
    import jax, jax.numpy as jnp
    if {!r} == 'd2l':
        from d2lmini import jax as d2l      # after jax, as the notebook imports them
    x, w = jnp.ones((8, 12, 12, 32)), jnp.ones((3, 3, 32, 16))
    conv = lambda x, w: jax.lax.conv_general_dilated(
        x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')).sum()
    print('ynn_fusion' in jax.jit(jax.grad(conv, (0, 1))).lower(x, w).compile().as_text())
'''


def test_jax_convolutions_leave_ynnpack_unless_the_user_says(framework):
    only(framework, 'jax')
    script = YNN_SCRIPT
    assert run_python(script.format('plain'), unset=['XLA_FLAGS']) == ['True']   # XLA's default
    assert run_python(script.format('d2l'), unset=['XLA_FLAGS']) == ['False']
    own = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_convolution'}
    assert run_python(script.format('d2l'), env_update=own) == ['True']


# --- PyTorch: channels-last on the CPU --------------------------------------------------------

def test_torch_trainer_is_channels_last_on_cpu_with_the_same_gradients(framework):
    only(framework, 'pytorch')
    import torch
    kit = KITS['pytorch']()
    d2l = kit.d2l
    data = d2l.FashionMNIST(batch_size=32).take(train_examples=64, val_examples=32)
    d2l.set_seed(0)
    model, _ = kit.make_model(data)
    trainer = d2l.Trainer(max_epochs=1)
    trainer.fit(model, data)

    def channels_last(t):     # strides tell (with one channel, is_contiguous could not)
        return t.stride() == torch.empty(t.shape, memory_format=torch.channels_last).stride()

    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(channels_last(m.weight) for m in convs)
    X, y = trainer.prepare_batch(next(iter(data.train_dataloader())))
    assert channels_last(X) and y.dim() == 1
    # Same loss and gradients as in the default layout (up to float32 rounding).
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    X = X.clone(memory_format=torch.contiguous_format)
    assert not channels_last(X) and not channels_last(plain.net[0].weight)
    grads = []
    for net, inputs in [(model, trainer.prepare_batch([X])[0]), (plain, X)]:
        net.zero_grad()
        net.loss(net(inputs), y).backward()
        grads.append([p.grad.numpy().copy() for p in net.parameters()])
    for g, h in zip(*grads):
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6)


# --- MXNet: all cores for its OpenMP pool -----------------------------------------------------

MX_SCRIPT = '''
    import os
    from d2lmini import mxnet as d2l
    import mxnet as mx
    x, w = mx.nd.ones((16, 16, 24, 24)), mx.nd.ones((16, 16, 3, 3))
    mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=16, no_bias=True, pad=(1, 1)).wait_to_read()
    print(os.environ.get('OMP_NUM_THREADS'), len(os.listdir('/proc/self/task')))
'''


def test_mxnet_uses_every_core_without_omp_num_threads(framework):
    only(framework, 'mxnet')
    cores = os.cpu_count()
    if cores < 2:
        pytest.skip('one core: nothing to share out')
    # MXNet alone would take half the cores (it assumes two hyperthreads per core): the
    # setting must come from d2lmini, and reach MXNet, whose worker then starts its own
    # OpenMP pool: as many threads in all as with OMP_NUM_THREADS set to every core by hand.
    by_d2lmini = run_python(MX_SCRIPT, unset=['OMP_NUM_THREADS'])
    by_hand = run_python(MX_SCRIPT, env_update={'OMP_NUM_THREADS': str(cores)})
    single = run_python(MX_SCRIPT, env_update={'OMP_NUM_THREADS': '1'})
    assert by_d2lmini == by_hand and by_d2lmini[0] == str(cores)
    assert int(single[1]) < int(by_hand[1])     # the thread count does tell the two apart
