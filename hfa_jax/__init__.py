"""hfa_jax: HFA-Net micro-expression recognition in JAX/Flax.

HFA-Net: Zhang et al., "HFA-Net: hierarchical feature aggregation network for
micro-expression recognition", Complex & Intelligent Systems 11(3):169, 2025.
"""
from hfa_jax.models import HFANet

__all__ = ['HFANet']
__version__ = '0.1.0'
