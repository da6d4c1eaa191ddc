"""The synthetic video world: procedural clips of moving shapes with a ground-truth scene graph,
questions of all five VideoRFT problem types, reference reasoning, and frame captions."""
