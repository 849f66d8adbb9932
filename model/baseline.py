"""The release's `model.baseline.Model`: a plain adaptive GCN (fixed identity subsets refined by learned,
L2-normalised adjacencies) with single-scale temporal convolutions. Kept so its checkpoints and configs load."""
import math

import numpy as np
import torch
import torch.nn as nn

from model import ctrgcn
from model.ctrgcn import Model as CTRGCN, identity, init_graph_unit, unit_tcn


def conv_branch_init(conv, branches):
    n, k1, k2 = conv.weight.shape[:3]
    nn.init.normal_(conv.weight, 0, math.sqrt(2. / (n * k1 * k2 * branches)))
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


class unit_gcn(nn.Module):
    def __init__(self, in_channels, out_channels, A, adaptive=True):
        super().__init__()
        self.in_c, self.out_c = in_channels, out_channels
        self.num_subset = A.shape[0]
        self.adaptive = adaptive
        A = torch.from_numpy(np.asarray(A, dtype=np.float32))
        if adaptive:
            self.PA = nn.Parameter(A)
        else:
            self.register_buffer('A', A, persistent=False)
        self.conv_d = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(self.num_subset))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = identity
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        init_graph_unit(self)
        for conv in self.conv_d:
            conv_branch_init(conv, self.num_subset)

    def forward(self, x):
        N, C, T, V = x.shape
        if self.adaptive:
            A = self.PA / (torch.norm(self.PA, 2, dim=1, keepdim=True) + 1e-4)
        else:
            A = self.A
        y = sum(conv(torch.matmul(x.reshape(N, C * T, V), A[i]).view(N, C, T, V))
                for i, conv in enumerate(self.conv_d))
        return self.relu(self.bn(y) + self.down(x))


class TCN_GCN_unit(ctrgcn.TCN_GCN_unit):
    """The baseline's unit: its own graph convolution and a single 5-frame temporal convolution."""

    def make_gcn(self, in_channels, out_channels, A, adaptive):
        return unit_gcn(in_channels, out_channels, A, adaptive=adaptive)

    def make_tcn(self, channels, stride, kernel_size, dilations):
        return unit_tcn(channels, channels, kernel_size=5, stride=stride)


class Model(CTRGCN):
    """Same stem, pooling and classifier as CTR-GCN; its units use `num_set` identity subsets."""

    def __init__(self, num_class=60, num_point=25, num_person=2, graph=None, graph_args=None, in_channels=3,
                 drop_out=0, adaptive=True, num_set=3):
        super().__init__(num_class, num_point, num_person, graph, graph_args, in_channels, drop_out, adaptive,
                         unit=TCN_GCN_unit, unit_A=np.stack([np.eye(num_point)] * num_set))
