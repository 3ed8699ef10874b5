"""How much of a training run to actually do: `D2LMINI_BUDGET=full|smoke|auto`.

The notebook code is the same under every budget; only the Trainer looks at it.
"""
import dataclasses
import os

from d2lmini import checks

ENV_VAR = 'D2LMINI_BUDGET'
CHOICES = ('full', 'smoke', 'auto')


@dataclasses.dataclass(frozen=True)
class Budget:
    name: str
    reason: str
    max_epochs: int = None          # None: no cap
    max_train_batches: int = None
    max_val_batches: int = None

    def __post_init__(self):
        if self.name not in ('full', 'smoke'):
            raise ValueError(f"Budget name={self.name!r} is not allowed: use 'full' or 'smoke'.")
        for field in ('max_epochs', 'max_train_batches', 'max_val_batches'):
            value = getattr(self, field)
            if value is not None:
                checks.integer(field, value, 1)

    def epochs(self, requested):
        return requested if self.max_epochs is None else min(requested, self.max_epochs)

    def train_batches(self, available):
        return available if self.max_train_batches is None else min(available, self.max_train_batches)

    def val_batches(self, available):
        return available if self.max_val_batches is None else min(available, self.max_val_batches)

    def describe(self):
        if self.name == 'full':
            return (f"budget 'full' ({self.reason}): every epoch and batch the code asks for. "
                    f"Set {ENV_VAR}=smoke for a quick check.")
        return (f"budget 'smoke' ({self.reason}): at most {self.max_epochs} epochs of "
                f"{self.max_train_batches} training and {self.max_val_batches} validation batches. "
                f"Set {ENV_VAR}=full to train for real.")


# Small enough that a whole GoogLeNet notebook runs in well under a minute on a 2-core CPU,
# large enough that every code path (epoch end, validation, plotting) runs twice.
SMOKE_CAPS = dict(max_epochs=2, max_train_batches=2, max_val_batches=1)


def choice(environ=os.environ):
    """The budget asked for: 'full', 'smoke' or 'auto' (case and spaces ignored; unset or
    empty means 'auto'). The one parser of `D2LMINI_BUDGET`, for d2lmini and the tools."""
    value = environ.get(ENV_VAR, 'auto').strip().lower() or 'auto'
    if value not in CHOICES:
        raise ValueError(f'{ENV_VAR}={value!r} is not one of {", ".join(CHOICES)}.')
    return value


def resolve(gpu_available):
    """The budget in force, from the environment and whether the framework sees a GPU."""
    choice_ = choice()
    if choice_ == 'full':
        return Budget('full', f'{ENV_VAR}=full')
    if choice_ == 'smoke':
        return Budget('smoke', f'{ENV_VAR}=smoke', **SMOKE_CAPS)
    if gpu_available:
        return Budget('full', f'{ENV_VAR}=auto and a GPU was found')
    return Budget('smoke', f'{ENV_VAR}=auto and no GPU was found', **SMOKE_CAPS)
