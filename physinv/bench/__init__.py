"""Studies built on the library: reproducible experiments with their figures and tables."""
