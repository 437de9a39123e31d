"""Datasets for gan_jax: TFDS builders that prepare offline, and in-memory arrays for training.

Training code calls `gan_jax.data.source.load(name)`; preparing a dataset is a one-off
`python -m gan_jax.data.prepare NAME`. Nothing is imported here, so `import gan_jax.data`
stays cheap and never pulls in TFDS.
"""
