"""The DOPE network: checkpoint reading and validation, and the model built from torchvision parts."""
# Before any module here imports from torchvision: torchvision without torch._dynamo (startup.py).
from dope.startup import import_torchvision as _import_torchvision

_import_torchvision()
