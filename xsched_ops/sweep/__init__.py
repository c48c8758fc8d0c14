"""What a sweep decides beyond running cells: whether a cell has enough samples (the P99 rule and
the interval across repeats), and the sweep's table of cells and modes (curves, Pareto front,
recommendation). Pure logic over stored results; the runner is ``runner.py``."""
