"""Data files read by the cost model: AWS prices (aws_prices.json) and the figures measured
on moto by ``python -m benchmarks.aws_cost_inputs`` (aws_cost_inputs.json).
"""
