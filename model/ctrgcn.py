"""CTR-GCN (Chen et al., ICCV 2021) and the LST multi-part models built on it.

Parameter names and shapes are those of the released code (Uason-Chen/CTR-GCN, MartinXM/LST), so released
checkpoints load with `strict=True`. The four released LST class names are one `LSTModel` with different joint
groups. Everything follows the input's device (no hard-coded `.cuda()`).
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from model.objective import CrossEntropyObjective, LSTObjective, this_process_only
from specs import layouts
from text.encoders import text_width
from torchlight import import_class


def init_conv(layer):
    """He-normal weights (fan-out) and a zero bias: CTR-GCN's initialisation of convolutions and linear layers."""
    nn.init.kaiming_normal_(layer.weight, mode='fan_out')
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def init_bn(bn, scale):
    """BatchNorm starting as a scaling by `scale` (1e-6 lets a residual branch start near zero)."""
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def weights_init(module):
    """Initialisation the release applies to the temporal blocks (note: BatchNorm weights ~ N(1, 0.02))."""
    if isinstance(module, nn.Conv2d):
        init_conv(module)
    elif isinstance(module, nn.BatchNorm2d):
        module.weight.data.normal_(1.0, 0.02)
        module.bias.data.fill_(0)


def init_graph_unit(unit):
    """The released init of a graph-convolution unit: Kaiming convs, unit BatchNorms, a near-zero output BN."""
    for m in unit.modules():
        if isinstance(m, nn.Conv2d):
            init_conv(m)
        elif isinstance(m, nn.BatchNorm2d):
            init_bn(m, 1)
    init_bn(unit.bn, 1e-6)


def zero(x):
    return 0


def identity(x):
    return x


# The layers keep the released modules and parameters; their forward passes run the same computation in fewer and
# cheaper operations. On the CPU, torch's NCHW kernels for 1x1 convolutions, batch norm and max-pooling are 2-8x
# slower than matrix products and the channels-last kernels, and an operation on tensors of mixed layouts 3-10x
# slower than on one layout, so activations are channels-last between layers (the graph aggregation alone reads
# and writes N,C,T,V). In eval mode each BatchNorm is folded into the convolution before it where there is one.

def channels_last(x):
    return x.contiguous(memory_format=torch.channels_last)


def positions(x):
    """x (N,C,T,V) as channels-last rows, N x T*V x C (a view when x is channels-last)."""
    N, C, T, V = x.shape
    return channels_last(x).permute(0, 2, 3, 1).reshape(N, T * V, C)


def pointwise(x, weight, bias):
    """A 1x1 convolution (weight Cout x Cin) as one matrix product over every position: a channels-last result.
    An NCHW x outside autograd is read as it is (the eval-mode graph convolution's output)."""
    N, _, T, V = x.shape
    if x.is_contiguous() and not torch.is_grad_enabled():
        rows = torch.baddbmm(bias, x.flatten(2).transpose(1, 2), weight.t().expand(N, -1, -1))
    else:
        rows = F.linear(positions(x).flatten(0, 1), weight, bias)
    return rows.view(N, T, V, -1).permute(0, 3, 1, 2)


def project(rows, weights):
    """weight @ rows[n]^T for every n and weight: channels-last rows (N x positions x Cin) into contiguous N x Cout
    x positions tensors, with, under autograd, the gradient of `rows` in their own layout."""
    if torch.is_grad_enabled():
        return Projections.apply(rows, *weights)
    return products(rows, weights)


def channel_products(x, weights):
    """weight @ x[n] over every position, for every n and weight (Cout x Cin): contiguous N x Cout x T*V tensors.
    Outside autograd an NCHW x is read as it is (a plain matrix product, at 64 channels about twice as fast as
    reading channels-last rows); otherwise x's channels-last rows go through `project`."""
    if x.is_contiguous() and not torch.is_grad_enabled():
        columns = x.flatten(2)
        return [torch.bmm(weight.expand(x.size(0), -1, -1), columns) for weight in weights]
    return project(positions(x), weights)


def products(rows, weights):
    return [torch.bmm(weight.expand(rows.size(0), -1, -1), rows.transpose(1, 2)) for weight in weights]


class Projections(torch.autograd.Function):
    """`project` with its gradients written out: autograd's formula for the products would give the rows' gradient
    the NCHW layout, and every operation after it would mix layouts; the rows' gradient accumulates in place."""

    @staticmethod
    def forward(ctx, rows, *weights):
        ctx.save_for_backward(rows, *weights)
        return tuple(products(rows, weights))

    @staticmethod
    def backward(ctx, *grads):
        rows, *weights = (t.to(grads[0].dtype) for t in ctx.saved_tensors)  # under autocast, the grads' is the lower
        expanded = [weight.expand(rows.size(0), -1, -1) for weight in weights]
        grad_rows = torch.bmm(grads[0].transpose(1, 2), expanded[0])
        for grad, weight in zip(grads[1:], expanded[1:]):
            grad_rows.baddbmm_(grad.transpose(1, 2), weight)
        return grad_rows, *(torch.bmm(grad, rows).sum(0) for grad in grads)


def affine(norms):
    """The eval-mode BatchNorm2d layers `norms` (consecutive channels) as a per-channel scale and shift."""
    weight, bias, mean, var = (torch.cat([getattr(norm, name) for norm in norms])
                               for name in ('weight', 'bias', 'running_mean', 'running_var'))
    scale = weight / torch.sqrt(var + norms[0].eps)
    return scale, bias - mean * scale


def folded(weight, bias, norms):
    """A convolution's weight and bias with the eval-mode BatchNorms after it folded in."""
    scale, shift = affine(norms)
    return weight * scale.view(-1, *[1] * (weight.dim() - 1)), bias * scale + shift


def convolve(conv, x, weight=None, bias=None):
    """`conv(x)` (an nn.Conv2d; other weights if given): through `pointwise` for a 1x1 kernel, else on
    channels-last input. Under autograd a strided 1x1 kernel runs on channels-last input too (slicing x for the
    stride would give its gradient the NCHW layout); outside it, on the slice."""
    weight, bias = (conv.weight, conv.bias) if weight is None else (weight, bias)
    if conv.kernel_size == (1, 1) and conv.padding == (0, 0) and (
            conv.stride == (1, 1) or not torch.is_grad_enabled()):
        return pointwise(every(x, conv.stride[0]), weight.flatten(1), bias)
    return F.conv2d(channels_last(x), weight, bias, conv.stride, conv.padding, conv.dilation)


def every(x, step):
    """Every `step`-th frame of x, in x's memory format (x itself for a step of 1)."""
    if step == 1:
        return x
    return x[:, :, ::step].contiguous(memory_format=torch.contiguous_format if x.is_contiguous() else
                                      torch.channels_last)


def eval_constants(module, compute):
    """compute(): the tensors a forward pass derives from `module`'s parameters and buffers alone (weights
    concatenated, norms folded in). In eval mode outside autograd they are computed once per value of those
    tensors (their storage and version counters, which in-place updates and loading bump) and reused; otherwise
    on every call, so that gradients reach the parameters, and while tracing or compiling, so that an exported or
    compiled network computes them from its parameters rather than holding copies as constants."""
    if module.training or torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return compute()
    sources = [*module.parameters(), *module.buffers()]
    if any(t.is_inference() for t in sources):                     # they have no version counter
        return compute()
    key = [(t.data_ptr(), t._version, t.dtype, t.device, t.shape) for t in sources]
    cache = module.__dict__.get('_eval_constants')
    if cache is None or cache[0] != key:
        # the detached references keep the sources' memory, so that no new tensor can take their addresses
        cache = module.__dict__['_eval_constants'] = (key, [t.detach() for t in sources], compute())
    return cache[2]


class ConvNorm(nn.Module):
    """A convolution `conv` and the BatchNorm `bn` after it; in eval mode one convolution with the norm folded in."""

    def forward(self, x):
        if self.bn.training:
            return self.bn(convolve(self.conv, x))
        return convolve(self.conv, x, *eval_constants(self, self.folded_weights))

    def folded_weights(self):
        return folded(self.conv.weight, self.conv.bias, [self.bn])


def batch_norm(x, norms):
    """The BatchNorm2d layers `norms`, each over its own consecutive channels of x, as one batch norm on
    channels-last x: per channel the same computation, and in training the same update of each layer's running
    statistics (the layers share eps and momentum, as built here)."""
    first = norms[0]
    weight, bias, mean, var = (torch.cat([getattr(norm, name) for norm in norms])
                               for name in ('weight', 'bias', 'running_mean', 'running_var'))
    out = F.batch_norm(channels_last(x), mean, var, weight, bias, first.training, first.momentum, first.eps)
    if first.training:
        sizes = [norm.num_features for norm in norms]
        with torch.no_grad():
            for norm, norm_mean, norm_var in zip(norms, mean.split(sizes), var.split(sizes)):
                norm.running_mean.copy_(norm_mean)
                norm.running_var.copy_(norm_var)
                norm.num_batches_tracked.add_(1)
    return out


def max_pool(pool, x):
    """`pool(x)` through torch's channels-last kernel: the same values and gradients (a window's first maximum
    takes its gradient)."""
    return pool(channels_last(x))


def stacked(convs, names):
    """The 1x1 convs `names` of every subset, concatenated per subset: an (S, out, in) weight, (S, out, 1) bias."""
    weight = torch.stack([torch.cat([getattr(c, n).weight.flatten(1) for n in names]) for c in convs])
    bias = torch.stack([torch.cat([getattr(c, n).bias for n in names]) for c in convs])
    return weight, bias.unsqueeze(-1)


class TemporalConv(ConvNorm):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1):
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0),
                              stride=(stride, 1), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels)



class MultiScale_TemporalConv(nn.Module):
    """Temporal convolution branches with different dilations, plus a max-pool and a 1x1 branch."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, dilations=(1, 2, 3, 4), residual=True,
                 residual_kernel_size=1):
        super().__init__()
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ValueError(f'out_channels ({out_channels}) must be a multiple of the {num_branches} branches')
        branch_channels = self.branch_channels = out_channels // num_branches
        kernel_sizes = kernel_size if isinstance(kernel_size, (list, tuple)) else [kernel_size] * len(dilations)

        def reduce():
            return [nn.Conv2d(in_channels, branch_channels, kernel_size=1),
                    nn.BatchNorm2d(branch_channels), nn.ReLU(inplace=True)]

        self.branches = nn.ModuleList(
            nn.Sequential(*reduce(), TemporalConv(branch_channels, branch_channels, ks, stride, dilation))
            for ks, dilation in zip(kernel_sizes, dilations))
        self.branches.append(nn.Sequential(
            *reduce(), nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)),
            nn.BatchNorm2d(branch_channels)))
        self.branches.append(nn.Sequential(
            nn.Conv2d(in_channels, branch_channels, kernel_size=1, stride=(stride, 1)),
            nn.BatchNorm2d(branch_channels)))

        if not residual:
            self.residual = zero
        elif in_channels == out_channels and stride == 1:
            self.residual = identity
        else:
            self.residual = TemporalConv(in_channels, out_channels, residual_kernel_size, stride)
        self.apply(weights_init)

    def forward(self, x):
        """`cat([branch(x) for branch in self.branches], 1) + self.residual(x)`, the work of the branches merged:
        the 1x1 reductions that go through ReLU are one product, and in training one batch norm, as are the batch
        norms that end the branches; in eval mode the norms are folded into the convolutions before them, and the
        max-pool branch's is a scale and shift."""
        hidden, plain = self.branches[:-1], self.branches[-1]
        weights = eval_constants(self, self.branch_weights)
        reduced = pointwise(x, *weights['reduce'])
        if self.training:
            reduced = batch_norm(reduced, [branch[1] for branch in hidden])
        parts = reduced.relu_().split(self.branch_channels, 1)
        ends = [convolve(branch[3].conv, part, *weight) for branch, part, weight in
                zip(hidden[:-1], parts, weights['temporal'])]
        pooled = max_pool(hidden[-1][3], parts[-1])
        if not self.training:
            scale, shift = weights['pooled']
            pooled = pooled.mul_(scale.view(-1, 1, 1)).add_(shift.view(-1, 1, 1))
        pieces = ends + [pooled, convolve(plain[0], x, *weights['plain'])]
        if self.training or torch.is_grad_enabled():
            out = torch.cat(pieces, 1)
            if self.training:
                out = batch_norm(out, [branch[3].bn for branch in hidden[:-1]] + [hidden[-1][4], plain[1]])
        else:                   # N,C,T,V: the layout the next graph convolution's products and aggregation read
            N, _, T, V = pooled.shape
            out = torch.cat(pieces, 1, out=pooled.new_empty(N, sum(piece.size(1) for piece in pieces), T, V))
        return out.add_(self.residual(x))

    def branch_weights(self):
        """The weights and biases the branches' convolutions run with: the reductions' concatenated, and in eval
        mode every norm folded in (the max-pool branch's as a scale and shift)."""
        hidden, plain = self.branches[:-1], self.branches[-1]
        reduce = (torch.cat([branch[0].weight.flatten(1) for branch in hidden]),
                  torch.cat([branch[0].bias for branch in hidden]))
        temporal = [(branch[3].conv.weight, branch[3].conv.bias) for branch in hidden[:-1]]
        if self.training:
            return dict(reduce=reduce, temporal=temporal, plain=(plain[0].weight, plain[0].bias))
        return dict(reduce=folded(*reduce, [branch[1] for branch in hidden]),
                    temporal=[branch[3].folded_weights() for branch in hidden[:-1]],
                    plain=folded(plain[0].weight, plain[0].bias, [plain[1]]), pooled=affine([hidden[-1][4]]))


class CTRGC(nn.Module):
    """Channel-wise topology refinement graph convolution for one adjacency subset."""

    def __init__(self, in_channels, out_channels, rel_reduction=8, mid_reduction=1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        if in_channels in (3, 9):
            self.rel_channels, self.mid_channels = 8, 16
        else:
            self.rel_channels, self.mid_channels = in_channels // rel_reduction, in_channels // mid_reduction
        self.conv1 = nn.Conv2d(in_channels, self.rel_channels, kernel_size=1)
        self.conv2 = nn.Conv2d(in_channels, self.rel_channels, kernel_size=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.conv4 = nn.Conv2d(self.rel_channels, out_channels, kernel_size=1)
        self.tanh = nn.Tanh()
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            init_conv(conv)

    def forward(self, x, A=None, alpha=1):
        """The released per-subset computation; `unit_gcn` runs all subsets at once with the same weights."""
        x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
        x1 = self.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        x1 = self.conv4(x1) * alpha + (A.unsqueeze(0).unsqueeze(0) if A is not None else 0)
        return torch.einsum('ncuv,nctv->nctu', x1, x3)


class unit_gcn(nn.Module):
    def __init__(self, in_channels, out_channels, A, adaptive=True, residual=True):
        super().__init__()
        self.out_c = out_channels
        self.adaptive = adaptive
        self.num_subset = A.shape[0]
        self.convs = nn.ModuleList(CTRGC(in_channels, out_channels) for _ in range(self.num_subset))
        if not residual:
            self.down = zero
        elif in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = identity
        A = torch.from_numpy(np.asarray(A, dtype=np.float32))
        if adaptive:
            self.PA = nn.Parameter(A)
        else:
            # Not in the state dict (as released), but moves with the module to the input's device.
            self.register_buffer('A', A, persistent=False)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        init_graph_unit(self)

    def forward(self, x):
        weights = eval_constants(self, self.subset_weights)
        if self.training:
            return self.bn(channels_last(self.graph_conv(x, weights))).add_(self.residual(x)).relu_()
        return self.graph_conv(x, weights, self.eval_residual(x, weights)).relu_()

    def residual(self, x):
        """Training mode: the residual branch."""
        if isinstance(self.down, nn.Sequential):
            conv, norm = self.down
            return norm(convolve(conv, x))
        return self.down(x)

    def eval_residual(self, x, weights):
        """Eval mode: the residual as a new contiguous N,C,T,V tensor (None when there is none)."""
        if isinstance(self.down, nn.Sequential):
            weight, bias = weights['down']
            return channel_products(x, [weight])[0].view(x.size(0), -1, *x.shape[2:]).add_(bias.view(-1, 1, 1))
        if self.down is identity:
            return x.clone(memory_format=torch.contiguous_format)
        return None

    def subset_weights(self):
        """What the graph convolution reads of the parameters: conv1 and conv2 of every subset stacked; conv4's
        weight and bias scaled by alpha beside a column of ones (for A); each A^T as a row; conv3's weights and
        biases. In eval mode the norm's scale is folded into conv3's and its shift kept, and the residual's norm
        is folded into its convolution."""
        A = self.PA if self.adaptive else self.A
        C, V = self.out_c, A.size(-1)
        mixes = []
        for conv in self.convs:
            weight = torch.cat([conv.conv4.weight.flatten(1), conv.conv4.bias.unsqueeze(1)], 1) * self.alpha
            mixes.append(torch.cat([weight, weight.new_ones(C, 1)], 1))
        weights = dict(relation=stacked(self.convs, ('conv1', 'conv2')), mixes=mixes,
                       graph=[a.t().reshape(1, 1, V * V) for a in A],
                       values=[conv.conv3.weight.flatten(1) for conv in self.convs],
                       biases=[conv.conv3.bias for conv in self.convs])
        if not self.training:
            scale, weights['shift'] = affine([self.bn])
            weights['values'] = [weight * scale.unsqueeze(1) for weight in weights['values']]
            weights['biases'] = [bias * scale for bias in weights['biases']]
            if isinstance(self.down, nn.Sequential):
                conv, norm = self.down
                weights['down'] = folded(conv.weight.flatten(1), conv.bias, [norm])
        return weights

    def graph_conv(self, x, weights=None, residual=None):
        """Sum over subsets of CTRGC(x, A[i], alpha), in fewer and cheaper operations than the release's loop,
        with `weights` (default: `subset_weights()`); in eval mode with the norm applied and added to `residual`
        (which it overwrites) if given.

        Equal to `sum(conv(x, A[i], self.alpha) for i, conv in enumerate(self.convs))`. conv3's bias goes through
        the aggregation as bias[c] * sum over v of adjacency[n, c, u, v], so each subset's values are one product
        without a bias; the aggregations are batched matmuls accumulated in place.
        """
        weights = weights or self.subset_weights()
        N, _, T, V = x.shape
        C = self.out_c
        adjacencies = self.adjacencies(x, weights)
        y = sum(adjacency.view(N, C, V, V).sum(2) * bias.view(C, 1)
                for adjacency, bias in zip(adjacencies, weights['biases']))
        if 'shift' in weights:
            y = y + weights['shift'].view(C, 1)
        if residual is not None:
            y = residual.add_(y.unsqueeze(2))
        y = y.view(N * C, -1, V)
        for value, adjacency in zip(channel_products(x, weights['values']), adjacencies):
            # y[n, c, t, u] += sum over v of value[n, c, t, v] * adjacency[n, c, u, v]: in place, but the first
            # product without a residual, which spreads y over time into a new tensor
            value = value.view(N * C, T, V)
            y = y.baddbmm_(value, adjacency) if y.size(1) == T else torch.baddbmm(y, value, adjacency)
        return y.view(N, C, T, V)

    def adjacencies(self, x, weights):
        """Every subset's channel-wise adjacency, transposed as the aggregation reads it: N*C x V(v) x V(u).

        conv1/conv2 are 1x1, so they commute with the mean over time and run once, for all subsets, on the
        time-averaged input; alpha scales conv4's weight and bias, which with A^T are one product.
        """
        N, _, _, V = x.shape
        C = self.out_c
        w12, b12 = weights['relation']
        x_mean = x.mean(2)                                                          # N, Cin, V
        q, k = (torch.matmul(w12.unsqueeze(1), x_mean.unsqueeze(0)) + b12.unsqueeze(1)).chunk(2, dim=2)
        relation = torch.tanh(q.unsqueeze(-2) - k.unsqueeze(-1)).flatten(-2)        # S, N, R, V*V: [v, u]
        ones = relation.new_ones(N, 1, V * V)
        return [torch.bmm(mix.expand(N, -1, -1), torch.cat([rel, ones, graph.expand(N, -1, -1)], 1)).view(N * C, V, V)
                for mix, rel, graph in zip(weights['mixes'], relation, weights['graph'])]


class unit_tcn(ConvNorm):
    def __init__(self, in_channels, out_channels, kernel_size=9, stride=1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0),
                              stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        init_conv(self.conv)
        init_bn(self.bn, 1)



class TCN_GCN_unit(nn.Module):
    """Graph convolution, then temporal convolution, with a residual connection around both."""

    def __init__(self, in_channels, out_channels, A, stride=1, residual=True, adaptive=True, kernel_size=5,
                 dilations=(1, 2)):
        super().__init__()
        self.gcn1 = self.make_gcn(in_channels, out_channels, A, adaptive)
        self.tcn1 = self.make_tcn(out_channels, stride, kernel_size, dilations)
        self.relu = nn.ReLU(inplace=True)
        if not residual:
            self.residual = zero
        elif in_channels == out_channels and stride == 1:
            self.residual = identity
        else:
            self.residual = unit_tcn(in_channels, out_channels, kernel_size=1, stride=stride)

    def make_gcn(self, in_channels, out_channels, A, adaptive):
        return unit_gcn(in_channels, out_channels, A, adaptive=adaptive)

    def make_tcn(self, channels, stride, kernel_size, dilations):
        return MultiScale_TemporalConv(channels, channels, kernel_size=kernel_size, stride=stride,
                                       dilations=dilations, residual=False)

    def forward(self, x):
        return self.tcn1(self.gcn1(x)).add_(self.residual(x)).relu_()


# (in, out, stride) of the ten units, in multiples of the base width 64.
UNITS = [(None, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 2, 2), (2, 2, 1), (2, 2, 1), (2, 4, 2), (4, 4, 1),
         (4, 4, 1)]
BASE_CHANNEL = 64


class Model(nn.Module):
    """CTR-GCN: ten TCN-GCN units over a spatial graph, global pooling, a linear classifier.

    `logits(x)` is the inference pass, which the test phase and tools/ run; `forward` is what training runs, and
    `objective(...)` what training minimises on its output.
    """

    text_head = None                   # CTR-GCN learns from the labels alone: no text encoder's features
    training_only = ()                 # attributes the inference pass does not use
    has_unsupervised_heads = False     # DDP: every parameter gets a gradient

    def __init__(self, num_class=60, num_point=25, num_person=2, graph=None, graph_args=None, in_channels=3,
                 drop_out=0, adaptive=True, *, unit=TCN_GCN_unit, unit_A=None):
        """`unit` and `unit_A` (the adjacency subsets given to every unit; default: the graph's) let variants
        such as `model.baseline.Model` reuse the stem, pooling and classifier."""
        super().__init__()
        self.build_backbone(num_point, num_person, graph, graph_args, in_channels, adaptive, unit, unit_A)
        self.build_classifier(num_class, drop_out)

    def build_backbone(self, num_point, num_person, graph, graph_args, in_channels, adaptive, unit=TCN_GCN_unit,
                       unit_A=None):
        if graph is None:
            raise ValueError('model argument `graph` is required, e.g. graph: graph.ntu_rgb_d.Graph')
        self.graph = import_class(graph, packages=('graph',), base=object)(**(graph_args or {}))
        if self.graph.num_node != num_point:
            raise ValueError(f'num_point={num_point} but the graph {graph} has {self.graph.num_node} joints')
        A = self.graph.A if unit_A is None else unit_A
        self.num_point = num_point
        self.num_person = num_person
        self.in_channels = in_channels
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * num_point)
        for index, (c_in, c_out, stride) in enumerate(UNITS, start=1):
            setattr(self, f'l{index}', unit(in_channels if c_in is None else c_in * BASE_CHANNEL, c_out * BASE_CHANNEL,
                                            A, stride=stride, residual=c_in is not None, adaptive=adaptive))
        self.out_channels = UNITS[-1][1] * BASE_CHANNEL
        init_bn(self.data_bn, 1)

    def build_classifier(self, num_class, drop_out):
        self.num_class = num_class
        self.fc = nn.Linear(self.out_channels, num_class)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2. / num_class))
        self.drop_out = nn.Dropout(drop_out) if drop_out else identity

    def check_input(self, x):
        """Accept N,C,T,V,M (or N,T,V*C with one person) and return N,C,T,V,M, with a clear error otherwise."""
        expected = f'expected input of shape N,C,T,V,M = N,{self.in_channels},T,{self.num_point},{self.num_person}'
        if self.num_person == 1:
            expected += f' (or N,T,V*C = N,T,{self.num_point * self.in_channels})'
        if x.dim() == 3:
            N, T, VC = x.shape
            if self.num_person != 1 or VC != self.num_point * self.in_channels:
                raise ValueError(f'{expected}, got {tuple(x.shape)}')
            x = x.view(N, T, self.num_point, -1).permute(0, 3, 1, 2).unsqueeze(-1)
        if x.dim() != 5:
            raise ValueError(f'{expected}, got a tensor of rank {x.dim()} with shape {tuple(x.shape)}')
        _, C, _, V, M = x.shape
        if (C, V, M) != (self.in_channels, self.num_point, self.num_person):
            raise ValueError(f'{expected}, got {tuple(x.shape)}')
        return x

    def encode(self, x):
        """The input as the backbone reads it: CTR-GCN's unchanged."""
        return x

    def features(self, x):
        """Backbone: N,C,T,V,M -> N*M, 256, T/4, V."""
        N, C, T, V, M = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T)
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        for index in range(1, len(UNITS) + 1):
            x = getattr(self, f'l{index}')(x)
        return x

    def pool(self, x, N):
        """Global average over joints and time, then persons: N*M,C,T,V -> N,C."""
        return x.view(N, -1, x.size(1), x.size(2) * x.size(3)).mean(3).mean(1)

    def classify(self, pooled):
        return self.fc(self.drop_out(pooled))

    def logits(self, x):
        """N,C,T,V,M (or N,T,V*C) -> class scores, N x num_class: the inference pass."""
        x = self.encode(self.check_input(x))
        return self.classify(self.pool(self.features(x), x.size(0)))

    def forward(self, x):
        return self.logits(x)

    def objective(self, **text_settings):
        """The cross-entropy of the logits; the text settings LST's objective takes are not used."""
        return CrossEntropyObjective()

    def inference_network(self):
        """The inference pass as a network of its own (what tools/export.py traces)."""
        return InferenceNetwork(self)


class InferenceNetwork(nn.Module):
    """A trained model's inference pass, `model.logits`, as a module whose weights are those of the pass alone: it
    holds the model's modules, parameters and buffers but its `training_only` ones (LST's text heads), shared, not
    copied. An exported network thus carries the model's weights under their own names and none of the heads'."""

    def __init__(self, model):
        super().__init__()
        for name, module in model.named_children():
            if name not in model.training_only:
                self.add_module(name, module)
        for name, parameter in model.named_parameters(recurse=False):
            if name not in model.training_only:
                self.register_parameter(name, parameter)
        for name, buffer in model.named_buffers(recurse=False):
            if name not in model.training_only:
                self.register_buffer(name, buffer, persistent=False)
        self.inference_pass = model.logits          # runs on the modules above: the same objects
        self.eval()                                 # and so the model: an inference network

    def forward(self, x):
        return self.inference_pass(x)


# part_list[i] of the released checkpoints pools these groups; forward returns [head, hand, hip, foot].
PART_HEAD_ORDER = ('head', 'hand', 'foot', 'hip')
PART_OUTPUT_ORDER = ('head', 'hand', 'hip', 'foot')
STREAMS = ('joint', 'bone')


def joint_groups_for(joint_groups, graph):
    """The joints each part head pools: the graph layout's groups for a stream ('joint' or 'bone'), the groups of a
    named layout and stream ('ntu_bone', 'coco_joint', ...), or a {head, hand, hip, foot: [joints]} dict; checked."""
    if not isinstance(joint_groups, str):
        return layouts.check_groups(joint_groups, graph.num_node, 'model_args joint_groups')
    name, _, stream = joint_groups.rpartition('_')
    if stream not in STREAMS or (name and name not in layouts.NAMED):
        known = list(STREAMS) + [f'{n}_{s}' for n in layouts.NAMED for s in STREAMS]
        raise ValueError(f'unknown joint_groups {joint_groups!r}; known: {", ".join(known)}, or a dict')
    if not name and not hasattr(graph, 'layout'):
        raise ValueError(f'joint_groups {joint_groups!r}: the graph {type(graph).__name__} has no layout to take '
                         f'them from; give them as a {{head, hand, hip, foot: [joints]}} dict')
    groups = (layouts.NAMED[name] if name else graph.layout).groups[stream]
    return layouts.check_groups(groups, graph.num_node, f'model_args joint_groups {joint_groups!r}')


class LSTModel(Model):
    """CTR-GCN with LST's training-only heads: a global feature head per text encoder and four body-part heads.

    The input is first encoded per frame as x <- (I - A_outward^k) x (k = 0: unchanged; k = 1: bone vectors on NTU).
    forward returns (logits, {head_name: global feature}, logit_scale [1, 5], [head, hand, hip, foot] features).
    The logits are exactly CTR-GCN's on the encoded input (`logits`): the heads cost nothing at inference.
    """

    joint_groups = 'joint'              # the graph layout's groups for joint streams
    default_k = 0
    training_only = ('part_list', 'linear_head', 'logit_scale') + tuple(f'{p}_joints' for p in PART_HEAD_ORDER)

    def __init__(self, num_class=60, num_point=25, num_person=2, graph=None, graph_args=None, in_channels=3,
                 drop_out=0, adaptive=True, head=('ViT-B/32',), k=None, joint_groups=None):
        # Built in the release's order (backbone, part and text heads, classifier), so that a seed gives the
        # release's initial weights; hence not Model.__init__.
        nn.Module.__init__(self)
        self.build_backbone(num_point, num_person, graph, graph_args, in_channels, adaptive)
        self.build_heads(head, joint_groups_for(joint_groups or self.joint_groups, self.graph))
        self.build_classifier(num_class, drop_out)
        self.k = self.default_k if k is None else k
        encoding = torch.from_numpy(self.graph.k_hop_encoding(self.k)).float()
        self.register_buffer('A_vector', encoding, persistent=False)

    def build_heads(self, head, groups):
        self.head = [head] if isinstance(head, str) else list(head)
        if not self.head:
            raise ValueError('model argument `head` needs at least one text encoder name, e.g. ["ViT-B/32"]')
        widths = {name: text_width(name) for name in self.head}
        for name in PART_HEAD_ORDER:
            self.register_buffer(f'{name}_joints', torch.tensor(groups[name]), persistent=False)
        self.logit_scale = nn.Parameter(torch.ones(1, 5) * np.log(1 / 0.07))
        # Part features are compared with the first head's text features, so they share its width (the release
        # hard-codes 512, which only works for 512-wide encoders).
        part_width = widths[self.head[0]]
        self.part_list = nn.ModuleList(nn.Linear(self.out_channels, part_width) for _ in PART_HEAD_ORDER)
        self.linear_head = nn.ModuleDict()
        for name, width in widths.items():
            self.linear_head[name] = nn.Linear(self.out_channels, width)
            init_conv(self.linear_head[name])

    @property
    def text_head(self):
        """The text encoder whose features supervise the global feature (the part features share its width)."""
        return self.head[0]

    @property
    def has_unsupervised_heads(self):
        """Only the first text head is supervised, as released: under DDP the others get no gradient."""
        return len(self.head) > 1

    def encode(self, x):
        """Every frame's joints through (I - A_outward^k): the k-hop encoding the backbone reads."""
        return torch.einsum('uv,nctvm->nctum', self.A_vector, x)

    def forward(self, x):
        x = self.encode(self.check_input(x))
        N, M = x.size(0), x.size(4)
        feature = self.features(x)                                         # N*M, C, T', V
        pooled = self.pool(feature, N)
        per_person = feature.view(N, M, *feature.shape[1:])                # N, M, C, T', V
        # as released: mean over the group's joints, then time, then persons
        parts = {name: layer(per_person[..., getattr(self, f'{name}_joints')].mean(4).mean(3).mean(1))
                 for name, layer in zip(PART_HEAD_ORDER, self.part_list)}
        global_features = {name: self.linear_head[name](pooled) for name in self.head}
        return self.classify(pooled), global_features, self.logit_scale, [parts[name] for name in PART_OUTPUT_ORDER]

    def objective(self, text, loss_alpha, generator=None, gather=this_process_only, world=1):
        """Cross-entropy + `loss_alpha` x the contrastive loss against `text`'s features of the batch's classes
        (model.objective.LSTObjective)."""
        return LSTObjective(text, self.text_head, loss_alpha, generator, gather, world)


class Model_lst_4part(LSTModel):
    """LST on NTU joint streams (the release's default k = 0; the configs use k = 8)."""
    joint_groups, default_k = 'ntu_joint', 0


class Model_lst_4part_bone(LSTModel):
    """LST on NTU bone streams (k = 1 turns joints into bones inside the model)."""
    joint_groups, default_k = 'ntu_bone', 1


class Model_lst_4part_ucla(LSTModel):
    """LST on NW-UCLA joint streams."""
    joint_groups, default_k = 'ucla_joint', 1


class Model_lst_4part_bone_ucla(LSTModel):
    """LST on NW-UCLA bone streams."""
    joint_groups, default_k = 'ucla_bone', 1
