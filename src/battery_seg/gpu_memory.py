"""Give GPU memory back when a job is done, so napari (and other programs) can use it."""

from __future__ import annotations

import gc
import sys

__all__ = ["release_gpu_memory"]


def release_gpu_memory() -> bool:
    """Collect unreachable tensors and return PyTorch's cached CUDA blocks to the driver.

    PyTorch keeps freed GPU memory reserved for its own reuse; a training or segmentation run
    inside napari would hold it until napari closes. Does nothing (and imports nothing) unless
    this process has initialised CUDA. Returns whether memory was released.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return False
    gc.collect()
    torch.cuda.empty_cache()
    return True
