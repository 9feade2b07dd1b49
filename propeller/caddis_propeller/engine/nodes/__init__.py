"""The handlers of the engine's node kinds, one mixin class per kind.

``Engine`` (``engine/executor.py``) combines them over ``EngineCore`` (``engine/core.py``)
and dispatches each node to its kind's ``_eval_*`` method:

- ``task.py``: task nodes (attempts, cache lookup and serialization, retries);
- ``dynamic.py``: task nodes whose attempt returned futures (a nested, compiled graph);
- ``array.py``: array (map) nodes and their items;
- ``branch.py``: branch nodes;
- ``gates.py``: sleep, approve and signal gates;
- ``subworkflow.py``: subworkflow and launch-plan nodes.
"""
