# ruff: noqa: UP006  (the seed programs keep their flytekit-era typing spelling)
"""Seed example skeleton: image augmentation with a map task (flytekit -> caddis).

The image libraries of the original are replaced by file copies: the structure (FlyteFile
lists, map_task with TaskMetadata, current_context().working_directory) is what matters.
"""

import itertools
import os
import shutil
import typing

import caddis
from caddis import Resources, TaskMetadata, map_task, task, workflow
from caddis.types.file import FlyteFile


@task(limits=Resources(mem="600Mi"))
def fetch_urls(query: str) -> typing.List[FlyteFile]:
    """Fetch URLs of images"""
    return [f"https://example.com/{query}/{i}.jpg" for i in range(5)]


@task(limits=Resources(mem="1000Mi"), cache=True, cache_version="1.0")
def data_augment(image: FlyteFile) -> typing.List[FlyteFile]:
    """Make three 'augmented' copies of an image in the working directory"""
    ctx = caddis.current_context()
    preview_dir = os.path.join(ctx.working_directory, "preview")
    os.makedirs(preview_dir, exist_ok=True)
    stem = os.path.basename(str(image)).rsplit(".")[0]
    out = []
    for i in range(3):
        path = os.path.join(preview_dir, f"{stem}_{i}.jpeg")
        shutil.copyfile(image, path)
        out.append(path)
    return out


@task(limits=Resources(mem="600Mi"))
def coalesce(
    augmented_list: typing.List[typing.List[FlyteFile]],
) -> typing.List[FlyteFile]:
    return list(itertools.chain.from_iterable(augmented_list))


@workflow
def wf(query: str) -> typing.List[FlyteFile]:
    """A workflow to call the concerned tasks"""
    list_images = fetch_urls(query=query)
    result = map_task(
        data_augment,
        metadata=TaskMetadata(retries=1),
    )(image=list_images)
    return coalesce(augmented_list=result)
