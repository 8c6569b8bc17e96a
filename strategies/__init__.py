"""Built-in strategies. Each registers through the `harness.strategies` entry point group,
exactly as a third-party plugin does; nothing in `harness/` imports this package."""
