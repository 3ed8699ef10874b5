"""PyTorch, eager: the loop from any tutorial, channels-last on the CPU as PyTorch's
performance guide recommends for convolutional networks (and as d2lmini does)."""
import torch
from torch.nn import functional as F


def version():
    return f'torch {torch.__version__}'


def wait(batch):
    """Eager CPU tensors exist once returned."""


class HandLoop:
    def __init__(self, model, params, lr, device):
        self.format = torch.channels_last if device.type == 'cpu' else torch.preserve_format
        self.model, self.device = model.to(device, memory_format=self.format), device
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def epoch(self, loader):
        self.model.train()
        losses = []
        for X, y in loader:
            X, y = X.to(self.device, memory_format=self.format), y.to(self.device)
            loss = F.cross_entropy(self.model(X), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
        return torch.stack(losses).cpu().numpy()

    def evaluate(self, X, y):
        self.model.eval()
        with torch.no_grad():
            X = X.to(self.device, memory_format=self.format)
            return F.cross_entropy(self.model(X), y.to(self.device)).item()
