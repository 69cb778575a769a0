"""Running a clip: decoding media, the Engine, the run record, timings, FLOPs, the dependency analysis and the fusion measurement."""
