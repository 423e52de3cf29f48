"""The demo app started by ``python -m bustapi demo``: the seed's three examples."""
