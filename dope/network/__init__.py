"""The DOPE network: checkpoint reading and validation, and the model built from torchvision parts."""
