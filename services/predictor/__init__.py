"""The predictor: what lives where.

- ``tasks/``: the task definitions (labels, label-from-history rule, the model's input text).
- the top-level modules (``routing``, ``embedding``, ``tuned``, ``encoders``, ``array_cache``): the
  model parts a loaded bundle is made of, used by both sides below. Bundles store their class paths
  (``services.predictor.routing.RepoRouter``, ...), so these modules stay put. ``kinds`` builds a
  fresh, unfitted model of each kind from them.
- ``serving/``: the consumer (``worker``) and the bundle format (``bundle``: write, load, verify,
  predict); ``service`` declares the predictor service around them for the composition root.
- ``training/``: offline data sets, training, evaluation and scoring, the demo models, and the
  commands that run them (``commands``).

Imports point downward only: ``serving`` and ``training`` import the model parts and ``tasks``;
``training`` imports ``serving.bundle`` (the format's one owner); nothing imports ``training``
but the composition root and the benchmarks.
"""
