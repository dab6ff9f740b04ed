"""Feature contracts: a pydantic model compiled once, at decoration, into checks that run per call.

``contract`` (the compiled ``Contract``), ``spec`` (a field's rules read from pydantic),
``codegen`` (the generated fast row check), ``rules`` (one value against one rule), ``batch``
(lists of rows, arrays, DataFrames), ``violation`` (the record every check produces),
``serialize`` (JSON), ``infer`` (a contract from training data), ``parity`` (training vs
serving features, for test suites).

Imports only modeltel's leaves (``_errors``, ``_names``); never the call path, export, the CLI,
the loop or operations.
"""
