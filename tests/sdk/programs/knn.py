# ruff: noqa: UP006  (the seed programs keep their flytekit-era typing spelling)
"""Seed example: KNN model selection with a dynamic workflow (flytekit -> caddis)."""

import os
import typing
from statistics import mean, pstdev

import joblib
from sklearn.datasets import make_classification
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from caddis import Resources, dynamic, task, workflow
from caddis.types.file import JoblibSerializedFile


@task(cache=True, cache_version="0.1", limits=Resources(mem="600Mi"))
def get_dataset() -> (typing.List[typing.List[float]], typing.List[float]):
    """Fetch the dataset"""
    X, y = make_classification(
        n_samples=200, n_features=15, n_informative=10, n_redundant=3, random_state=5
    )
    return X.tolist(), y.tolist()


@task(cache=True, cache_version="0.1", limits=Resources(mem="600Mi"))
def get_models() -> typing.List[JoblibSerializedFile]:
    """Get a list of models to evaluate, each with a specific 'k' value"""
    models = list()
    for n in range(2, 8):
        fname = "model-k" + str(n) + ".joblib.dat"
        joblib.dump(KNeighborsClassifier(n_neighbors=n), fname)
        models.append(fname)
    return models


@task
def helper_evaluate_model(name: str, scores: typing.List[float]) -> typing.List[str]:
    """A helper task to showcase calling task within a dynamic workflow loop"""
    return [
        str(os.path.basename(name)),
        str(round(mean(scores), 2)),
        str(round(pstdev(scores), 3)),
    ]


@dynamic(cache=True, cache_version="0.1", limits=Resources(mem="1000Mi"))
def evaluate_model(
    models: typing.List[JoblibSerializedFile],
    X: typing.List[typing.List[float]],
    y: typing.List[float],
) -> typing.List[typing.List[str]]:
    """A dynamic workflow to compute the cross-validation score across different models"""
    final_result = list()
    for model_ser in models:
        model = joblib.load(model_ser)
        cv = RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=1)
        scores = cross_val_score(model, X, y, scoring="accuracy", cv=cv, n_jobs=1)
        final_result.append(helper_evaluate_model(name=str(model_ser), scores=scores.tolist()))
    return final_result


@workflow
def wf() -> typing.List[typing.List[str]]:
    """A workflow to call the concerned tasks"""
    X, y = get_dataset()
    models = get_models()
    return evaluate_model(models=models, X=X, y=y)
