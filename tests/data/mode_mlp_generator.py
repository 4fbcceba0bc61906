"""A generator of one's own, importable by path (``--option generator=mode_mlp_generator:ModeMLPGenerator``):
X = X0 + V · MLP(z), a latent vector z through two layers onto coefficients of the k slow modes V. The last layer
starts at zero, so the network starts exactly at X0. Used by tests/test_generators.py through the command line
and a Dask batch, whose workers import it by its path (tests/data on their PYTHONPATH)."""
import torch
from torch import nn


class ModeMLPGenerator(nn.Module):
    """The network, built from one ``openmm_reparam.GeneratorInputs``: the class is its own factory."""

    def __init__(self, inputs, width: int = 16):
        super().__init__()
        rng = torch.Generator().manual_seed(int(inputs.seed))
        modes = torch.as_tensor(inputs.modes, dtype=torch.float64)
        self.register_buffer("modes", modes)
        self.register_buffer("x0", torch.as_tensor(inputs.positions, dtype=torch.float64))
        self.z = nn.Parameter(torch.randn(width, generator=rng, dtype=torch.float64))
        self.hidden = nn.Linear(width, width, dtype=torch.float64)
        self.out = nn.Linear(width, 3 * modes.shape[1], dtype=torch.float64)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self) -> torch.Tensor:
        coefficients = self.out(torch.tanh(self.hidden(self.z))).view(-1, 3)
        return self.x0 + self.modes @ coefficients


def mode_mlp(inputs) -> nn.Module:
    """The same network from a factory function."""
    return ModeMLPGenerator(inputs, width=8)


NOT_A_GENERATOR = 42
