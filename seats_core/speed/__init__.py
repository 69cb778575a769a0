"""Speed benchmarks: prefill timings and FLOPs per method on real shapes (`seats bench`), the vision encoder's."""
