"""Hypothesis settings profiles for the project's own tests.

``default``: deterministic (derandomized) and without deadlines, so CI runs are
reproducible and a loaded 2-core machine does not flake. ``thorough``: many
more examples, random; opt in with ``HYPOTHESIS_PROFILE=thorough pytest``.
Tests that set ``max_examples`` themselves keep their own (small) budget under
``default``; ``thorough`` multiplies nothing, it overrides the default only.

Scheduling under xdist: the ``slow`` tests first, work stealing between workers, a thread share per worker
(the hooks below).
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
    # Each xdist worker gets an equal share of the cores (torch would start one intra-op thread per core in
    # every worker, oversubscribing a 2-core machine); plain `pytest` keeps torch's default.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from compress.runtime.devices import cap_threads

        cap_threads()
    # Work stealing for the project's own tests (`-n` alone means xdist's 'load'). Under 'load' the slow tests,
    # scheduled first, all fell in the first worker's initial batch and the other worker, its batch done, sat
    # idle for the last ten minutes of the run (measured); with 'worksteal' an idle worker takes pending tests
    # from a busy one's queue. The claims run (`pytest claims`) is not affected: this conftest is the tests'.
    elif getattr(config.option, "dist", "no") == "load":
        config.option.dist = "worksteal"


def pytest_collection_modifyitems(config, items):
    # Longest first: the `slow` tests (end-to-end runs, the paper dry run) start at once on every worker
    # instead of one of them starting last and ending the run alone. Stable: collection order otherwise.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
