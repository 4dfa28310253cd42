"""Augmentation of flow images (B, S, S, 3) with channels (u, v, optical strain), jit-able:
each transformation moves the flow vectors with the image (a mirror negates u; a rotation
turns (u, v)), and mixup of images and their targets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mirror(images: jax.Array) -> jax.Array:
  """Flow images (B, S, S, 3) mirrored left-right: the flow then points the other way
  horizontally, so u (channel 0) is negated; v and strain are only mirrored."""
  return images[:, :, ::-1, :] * jnp.array([-1.0, 1.0, 1.0], images.dtype)


def augment(rng: jax.Array, images: jax.Array, flip: bool = True, shift: int = 0) -> jax.Array:
  """Random horizontal flip and shift of flow images (B, S, S, 3) -> same shape.

  A mirrored flow field points the other way horizontally, so a flip also negates
  u (channel 0); v and strain are only mirrored (exact for images centred on 0, as
  the input pipeline gives them). A shift moves the image by up to `shift` pixels in
  each direction, filling with the replicated edge: after a per-image min-max scaling
  0 is not "no motion", so zeros would paint a border that the data never has.
  """
  b, h, w, _ = images.shape
  flip_rng, shift_rng = jax.random.split(rng)
  if flip:
    do = jax.random.bernoulli(flip_rng, 0.5, (b, 1, 1, 1))
    images = jnp.where(do, mirror(images), images)
  if shift > 0:
    padded = jnp.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode='edge')
    offsets = jax.random.randint(shift_rng, (b, 2), 0, 2 * shift + 1)
    crop = lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1]))
    images = jax.vmap(crop)(padded, offsets)
  return images


def warp(rng: jax.Array, images: jax.Array, max_rotation: float, max_scale: float) -> jax.Array:
  """Random small rotations and scalings of flow images (B, S, S, 3) -> same shape, the
  flow vectors turned and scaled with the image.

  Each image is rotated by an angle drawn uniformly within +-`max_rotation` degrees and
  scaled by a factor within 1 +- `max_scale` about its centre (bilinear, edge replicated).
  A point moved by R(a) s carries a motion vector moved the same way, so (u, v), in the
  image's axes (x right, y down), become R(a) s (u, v); the strain channel, a ratio of
  displacements, is only resampled. The vectors turn about each image's median (u, v),
  its background's motion: the flow images' per-image scaling leaves "no motion" there,
  not at 0.
  """
  b, h, w, _ = images.shape
  angle_rng, scale_rng = jax.random.split(rng)
  angle = jnp.deg2rad(jax.random.uniform(angle_rng, (b,), minval=-1, maxval=1) * max_rotation)
  scale = 1.0 + jax.random.uniform(scale_rng, (b,), minval=-1, maxval=1) * max_scale
  rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing='ij')

  def one(image, a, s):
    cos, sin = jnp.cos(a), jnp.sin(a)
    # the input point that lands on each output pixel: R(-a) p / s
    src_x = (cos * cols + sin * rows) / s + (w - 1) / 2
    src_y = (-sin * cols + cos * rows) / s + (h - 1) / 2
    sample = lambda c: jax.scipy.ndimage.map_coordinates(c, [src_y, src_x], order=1, mode='nearest')
    u, v, strain = (sample(image[..., c]) for c in range(3))
    mu, mv = jnp.median(image[..., 0]), jnp.median(image[..., 1])
    du, dv = u - mu, v - mv
    u, v = mu + s * (cos * du - sin * dv), mv + s * (sin * du + cos * dv)
    return jnp.stack([u, v, strain], axis=-1).astype(image.dtype)

  return jax.vmap(one)(images, angle, scale)


def mirrored_halves(rng: jax.Array, images: jax.Array) -> jax.Array:
  """Half of the images (B, S, S, 3) -> same shape made of one half of the face and its
  mirror (u negated), left or right half at random: the "Décalcomanie" augmentation of
  Byun et al. (Sensors 2022, 22(17) 6671) for flow images. The split is at the centre
  column (an odd side keeps its centre column)."""
  b, _, w, _ = images.shape
  do_rng, side_rng = jax.random.split(rng)
  do = jax.random.bernoulli(do_rng, 0.5, (b, 1, 1, 1))
  left = jax.random.bernoulli(side_rng, 0.5, (b, 1, 1, 1))
  col = jnp.arange(w).reshape(1, 1, w, 1)
  keep = jnp.where(left, col < w - w // 2, col >= w // 2)  # the kept half, centre included
  halves = jnp.where(keep, images, mirror(images))
  return jnp.where(do, halves, images)


def mixup(rng: jax.Array, images: jax.Array, targets: jax.Array, alpha: float):
  """Mixup (Zhang et al., ICLR 2018): each sample mixed with another of the batch.

  images (B, S, S, 3), targets (B, C) -> the same shapes; one weight lam ~ Beta(alpha,
  alpha) per sample, lam >= 0.5 so that each sample stays closest to itself.
  """
  perm_rng, lam_rng = jax.random.split(rng)
  b = images.shape[0]
  lam = jax.random.beta(lam_rng, alpha, alpha, (b,))
  lam = jnp.maximum(lam, 1 - lam)
  perm = jax.random.permutation(perm_rng, b)
  mix = lambda a: (
    lam.reshape((b,) + (1,) * (a.ndim - 1)) * a
    + (1 - lam.reshape((b,) + (1,) * (a.ndim - 1))) * a[perm]
  )
  return mix(images), mix(targets)
