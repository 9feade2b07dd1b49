"""Explore the classification accuracy of KNN with k from 2 to 7 (seed dynamic example).

``get_dataset`` and ``get_models`` are cached tasks; ``evaluate_model`` is a ``@dynamic`` that
loops over the models (a list known only at run time), cross-validates each one and calls a
helper task per model. Models travel between tasks as ``JoblibSerializedFile`` values.

The defaults are the seed's parameters (5000 samples, 7 splits repeated twice). Tests shrink
the run with the workflow inputs ``n_samples``, ``n_repeats`` and ``n_jobs`` (cross-validation
workers; -1, the seed's choice, uses every core)::

    caddis run examples/knn_model_selection.py wf
    caddis run examples/knn_model_selection.py wf --n_samples 400 --n_repeats 1 --n_jobs 1
    python examples/knn_model_selection.py
"""

from __future__ import annotations

import os
from statistics import mean, pstdev

import joblib
from sklearn.datasets import make_classification
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from caddis import Resources, current_context, dynamic, task, workflow
from caddis.types.file import JoblibSerializedFile


@task(cache=True, cache_version="0.1", limits=Resources(mem="600Mi"))
def get_dataset(
    n_samples: int = 5000,
) -> tuple[list[list[float]], list[float]]:
    """Fetch the dataset: a random n-class classification problem."""
    X, y = make_classification(
        n_samples=n_samples, n_features=15, n_informative=10, n_redundant=3, random_state=5
    )
    return X.tolist(), y.tolist()


@task(cache=True, cache_version="0.1", limits=Resources(mem="600Mi"))
def get_models() -> list[JoblibSerializedFile]:
    """Get a list of models to evaluate, each with a specific 'k' value."""
    models = []
    workdir = current_context().working_directory
    for n in range(2, 8):
        fname = os.path.join(workdir, "model-k" + str(n) + ".joblib.dat")
        joblib.dump(KNeighborsClassifier(n_neighbors=n), fname)
        models.append(JoblibSerializedFile(fname))
    return models


@task
def helper_evaluate_model(name: str, scores: list[float]) -> list[str]:
    """A helper task to showcase calling a task within a dynamic workflow loop."""
    return [
        str(os.path.basename(name)),
        str(round(mean(scores), 2)),
        str(round(pstdev(scores), 3)),
    ]


@dynamic(cache=True, cache_version="0.1", limits=Resources(mem="1000Mi"))
def evaluate_model(
    models: list[JoblibSerializedFile],
    X: list[list[float]],
    y: list[float],
    n_repeats: int = 2,
    n_jobs: int = -1,
) -> list[list[str]]:
    """Cross-validate every model; compiled and run at execution time."""
    final_result = []
    for model_ser in models:
        model = joblib.load(model_ser)
        cv = RepeatedStratifiedKFold(n_splits=7, n_repeats=n_repeats, random_state=1)
        scores = cross_val_score(model, X, y, scoring="accuracy", cv=cv, n_jobs=n_jobs)
        final_result.append(
            helper_evaluate_model(name=os.path.basename(str(model_ser)), scores=scores.tolist())
        )
    return final_result


@workflow
def wf(n_samples: int = 5000, n_repeats: int = 2, n_jobs: int = -1) -> list[list[str]]:
    """Get the dataset and the models, then evaluate every model."""
    X, y = get_dataset(n_samples=n_samples)
    models = get_models()
    return evaluate_model(models=models, X=X, y=y, n_repeats=n_repeats, n_jobs=n_jobs)


if __name__ == "__main__":
    # KNN_N_SAMPLES / KNN_N_REPEATS / KNN_N_JOBS shrink the run (the tests use them).
    print(
        wf(
            n_samples=int(os.environ.get("KNN_N_SAMPLES", "5000")),
            n_repeats=int(os.environ.get("KNN_N_REPEATS", "2")),
            n_jobs=int(os.environ.get("KNN_N_JOBS", "-1")),
        )
    )
