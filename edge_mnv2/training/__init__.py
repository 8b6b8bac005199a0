"""Training in PyTorch: the paper's recipe and its resumable loop (``train``), RMSProp as TensorFlow
defines it (``optim``), and what each task contributes: data, loss and validation metrics (``tasks``).
"""
