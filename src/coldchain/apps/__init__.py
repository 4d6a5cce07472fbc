"""Entry points that only wire: the CLI, the worker, the simulator, the Lambda handlers."""
