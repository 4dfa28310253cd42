"""hfa_jax: HFA-Net micro-expression recognition in JAX/Flax."""
