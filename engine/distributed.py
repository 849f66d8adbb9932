"""Devices and processes: the device of each process, DistributedDataParallel support (`torchrun --nproc_per_node N
[--nnodes M ...] main_multipart_ntu.py ...`) and DataParallel over one process's GPUs."""
import os

import torch
import torch.distributed as dist
import torch.nn as nn



def init_from_env():
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK); (rank, world, local_rank)."""
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        return 0, 1, 0
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if world > 1 and not dist.is_initialized():
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        if backend == 'nccl':
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    return rank, world, local_rank


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(tensor):
    """All ranks' tensors concatenated along dim 0; gradients flow back only into this rank's part."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[dist.get_rank()] = tensor
    return torch.cat(parts)


def all_mean(value):
    """Mean of a Python number over ranks."""
    if not is_distributed():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64,
                     device='cuda' if dist.get_backend() == 'nccl' else 'cpu')
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def barrier():
    if is_distributed():
        dist.barrier()


def cleanup():
    if is_distributed():
        dist.destroy_process_group()


def choose_device(requested, amp, world, local_rank, log):
    """The device of this process (`requested`: --device, GPU indexes or ['cpu']) and whether it runs mixed
    precision (CUDA only)."""
    if torch.cuda.is_available() and requested != ['cpu']:
        device = torch.device('cuda', local_rank if world > 1 else requested[0])
    else:
        device = torch.device('cpu')
        if requested not in ([0], ['cpu']):
            log(f'No CUDA device: running on the CPU (--device {requested} ignored).')
    return device, amp and device.type == 'cuda'


def parallel(model, device, requested, world, find_unused):
    """What training passes go through: DDP over the processes, DataParallel over one process's GPUs, or the model.
    `find_unused`: some parameters get no gradient (LST's text heads past the first)."""
    if world > 1:
        ids = [device.index] if device.type == 'cuda' else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
    if device.type == 'cuda' and len(requested) > 1:
        return nn.DataParallel(model, device_ids=requested, output_device=device.index)
    return model
