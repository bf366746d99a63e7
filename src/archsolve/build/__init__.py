"""Designs as torch: ``nn.Module``s and the meta-device trace (``modules``), standalone PyTorch
source (``emit``) and the Keras-style summary (``summary``).
"""
