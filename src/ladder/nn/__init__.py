"""The network and its training: the model, its kernels, the recipe, batches, data parallelism, checkpoints,
the device, and what a size costs."""
