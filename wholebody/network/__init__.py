"""The DOPE network: checkpoint reading and validation, and the model built from torchvision parts."""
# Before any module of this package imports from torchvision: torchvision without the torch._dynamo
# it would pull in (about 1 s of startup; see ops.py).
from wholebody.network.ops import import_torchvision as _import_torchvision

_import_torchvision()
