"""Sovereignty what-ifs: export-control classes, scenario files (who may buy what, when, and
how much), and the year-by-year roadmap search built on the training estimator."""
