"""The paper's optimizer: RMSProp as TensorFlow implements it.

PyTorch's ``RMSprop`` differs from TensorFlow's, which the paper used: TF adds epsilon *inside* the
square root, starts the mean square at 1, and folds the learning rate into the momentum buffer (so a
learning-rate decay does not jolt the velocity). TF-slim's MobileNet training used epsilon 1.0.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class RMSpropTF(Optimizer):
    """TensorFlow-style RMSProp with momentum and L2 weight decay (added to the gradient, as TF-slim)."""

    def __init__(
        self,
        params,
        lr: float = 0.045,
        decay: float = 0.9,
        momentum: float = 0.9,
        eps: float = 1.0,
        weight_decay: float = 4e-5,
    ):
        if lr <= 0 or not 0 <= decay < 1 or not 0 <= momentum < 1 or eps <= 0 or weight_decay < 0:
            raise ValueError(
                f"invalid RMSpropTF settings lr={lr} decay={decay} momentum={momentum} "
                f"eps={eps} weight_decay={weight_decay}"
            )
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] and p.ndim > 1:  # no decay on BatchNorm and biases
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p)
                    state["momentum_buffer"] = torch.zeros_like(p)
                square_avg = state["square_avg"]
                square_avg.mul_(group["decay"]).addcmul_(grad, grad, value=1 - group["decay"])
                update = grad / square_avg.add(group["eps"]).sqrt_()
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(update, alpha=group["lr"])
                p.sub_(buf)
        return loss
