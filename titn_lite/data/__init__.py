"""The images: the datasets and the paper's transforms (``datasets``), the same augmentation
on whole batches (``augment``), and CutMix and MixUp (``mixing``)."""

from titn_lite.data.datasets import dataset_info, list_datasets, load_dataset, load_tensors
from titn_lite.data.mixing import cutmix

__all__ = ["cutmix", "dataset_info", "list_datasets", "load_dataset", "load_tensors"]
