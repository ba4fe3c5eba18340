"""avuie.trainer: I-LoRA (ilora.py), the Crab+ and modular models, the training recipe and prediction.

Imports nothing heavy at package import; see trainer/README.md. Entry points: `avuie train`, `avuie predict`,
`torchrun ... -m avuie train ...`.
"""
