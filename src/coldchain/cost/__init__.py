"""The AWS cost model behind ``coldchain aws cost``.

* :mod:`~coldchain.cost.inputs`: prices and measured figures as typed values; DynamoDB sizes.
* :mod:`~coldchain.cost.data`: reads the packaged data files (coldchain/data/).
* :mod:`~coldchain.cost.scenario`: a fleet and its choices, the deployment, the bill's types.
* :mod:`~coldchain.cost.lines`: each line of the bill, a quantity times a price.
* :mod:`~coldchain.cost.model`: :func:`bill` and :func:`cheapest`.

Everything but ``data`` is pure; nothing here imports boto3 or click.
"""
