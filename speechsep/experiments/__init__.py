"""Experiment grids that reproduce the papers' tables (train every row, evaluate, write the table)."""
