"""Code shared by the micro-expression TFDS builders (parsing, labels, flows, build loop)."""
