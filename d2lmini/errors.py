"""Errors a reader can hit, each with a message that says what happened and how to fix it."""


class D2lminiError(Exception):
    """Base class of d2lmini's own errors."""


class DataNotFoundError(D2lminiError, FileNotFoundError):
    """No verified copy of a data set could be found or downloaded."""


class DataIntegrityError(D2lminiError, ValueError):
    """A data file exists but its content is not the expected one."""


class NonFiniteLossError(D2lminiError, FloatingPointError):
    """Training produced a NaN or infinite loss."""

    def __init__(self, message, epoch, step):
        super().__init__(message)
        self.epoch, self.step = epoch, step


class CheckpointError(D2lminiError, ValueError):
    """A checkpoint is corrupt or was written for another framework, model or run."""


class ModelError(D2lminiError, ValueError):
    """A model cannot be trained as it is: it has no parameters, or its outputs do not fit
    the labels it is trained on."""
