"""The optimiser and the learning-rate schedule, as released: linear warm-up, then steps of lr_decay_rate."""
import numpy as np
import torch


def build_optimizer(arg, model, criterion):
    """SGD (momentum 0.9) or Adam over the model and, in a group of its own at base_lr x --te-lr-ratio, whatever the
    objective trains with it (LST's text encoder with --te-lr-ratio > 0)."""
    groups = [{'params': model.parameters(), 'lr': arg.base_lr}]
    trained_with = list(criterion.parameters())
    if trained_with:
        groups.append({'params': trained_with, 'lr': arg.base_lr * arg.te_lr_ratio})
    if arg.optimizer == 'SGD':
        return torch.optim.SGD(groups, lr=arg.base_lr, momentum=0.9, nesterov=arg.nesterov,
                               weight_decay=arg.weight_decay)
    return torch.optim.Adam(groups, lr=arg.base_lr, weight_decay=arg.weight_decay)


def learning_rate(arg, epoch):
    if epoch < arg.warm_up_epoch:
        return arg.base_lr * (epoch + 1) / arg.warm_up_epoch
    return float(arg.base_lr * arg.lr_decay_rate ** np.sum(epoch >= np.array(arg.step)))        # numpy's, as released


def adjust_learning_rate(optimizer, arg, epoch):
    """Set epoch `epoch`'s learning rate (0-based) in the optimiser's groups; returns the model's."""
    lr = learning_rate(arg, epoch)
    for group, ratio in zip(optimizer.param_groups, (1, arg.te_lr_ratio)):
        group['lr'] = lr * ratio
    return lr
