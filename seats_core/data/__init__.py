"""Generated data: the scenes the miniature learns from, demo clips, synthetic benchmark folders."""
