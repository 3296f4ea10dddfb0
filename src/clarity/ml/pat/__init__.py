"""The Pretrained Actigraphy Transformer (PAT) architecture, its training and export.

Ruan FY, Zhang A, Oh JY, Jin S, Jacobson NC. "AI Foundation Models for Wearable Movement Data
in Mental Health Research." arXiv:2411.15240 (code: njacobsonlab/Pretrained-Actigraphy-
Transformer, CC BY 4.0). Only the architecture is reproduced here; the published weights are
not shipped (they can be loaded with :mod:`clarity.ml.pat.weights_h5` by whoever holds them).

A network trained by this package is "PAT architecture, trained on Depresjon", never "PAT".

Import-light: this package's ``__init__`` imports nothing. ``config`` and ``weeks`` are numpy
only (serving uses them); ``model``, ``pretrain``, ``finetune``, ``evaluate``, ``export`` and
``weights_h5`` need the ``train`` extra (torch, onnx, onnxscript, h5py).
"""
