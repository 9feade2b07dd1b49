"""Augment images in parallel with a map task (the seed map-task example, self-contained).

The seed downloads pictures and uses Keras; this version draws its own images with numpy
and Pillow (nothing is downloaded) and augments each one with rotations, shifts, shears,
zooms and flips. ``data_augment`` runs once per image as a map task with retries and
per-image caching; ``coalesce`` flattens the per-image lists.

Run it::

    caddis run examples/image_augmentation.py wf --count 5
    python examples/image_augmentation.py
"""

from __future__ import annotations

import itertools
import os

import numpy as np
from PIL import Image, ImageOps

from caddis import Resources, TaskMetadata, current_context, map_task, task, workflow
from caddis.types.file import FlyteFile

AUGMENTATIONS_PER_IMAGE = 3


@task(limits=Resources(mem="600Mi"))
def make_images(count: int, size: int = 96, seed: int = 0) -> list[FlyteFile]:
    """Draw ``count`` synthetic RGB images (gradients with a random rectangle and noise)."""
    rng = np.random.default_rng(seed)
    out_dir = os.path.join(current_context().working_directory, "images")
    os.makedirs(out_dir, exist_ok=True)
    files = []
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(count):
        img = np.zeros((size, size, 3), dtype=np.float64)
        img[..., 0] = xx / size * 255
        img[..., 1] = yy / size * 255
        img[..., 2] = rng.uniform(0, 255)
        x0, y0 = rng.integers(0, size // 2, 2)
        w, h = rng.integers(size // 6, size // 2, 2)
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        path = os.path.join(out_dir, f"image-{i}.png")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
        files.append(FlyteFile(path))
    return files


def _augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One random augmentation: rotation, shift, shear, zoom and horizontal flip."""
    w, h = img.size
    angle = rng.uniform(-40, 40)
    shear = rng.uniform(-0.2, 0.2)
    zoom = rng.uniform(0.8, 1.2)
    dx, dy = rng.uniform(-0.2, 0.2, 2) * (w, h)
    out = img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    # Affine map (output -> input pixel): zoom about the centre, shear, shift.
    cx, cy = w / 2, h / 2
    a, b = 1 / zoom, shear / zoom
    d, e = 0.0, 1 / zoom
    c = cx - a * cx - b * cy - dx
    f = cy - d * cx - e * cy - dy
    out = out.transform(
        (w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR
    )
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    return out


@task(limits=Resources(mem="1000Mi"), cache=True, cache_version="1.0")
def data_augment(image: FlyteFile) -> list[FlyteFile]:
    """Write AUGMENTATIONS_PER_IMAGE augmented versions of one image."""
    stem = os.path.basename(str(image.path)).rsplit(".", 1)[0]
    preview_dir = os.path.join(current_context().working_directory, "preview")
    os.makedirs(preview_dir, exist_ok=True)
    with open(image, "rb") as fh:
        img = Image.open(fh).convert("RGB")
        img.load()
    # Seeded by the image content: the same image always gives the same augmentations.
    rng = np.random.default_rng(int.from_bytes(img.tobytes()[:8].ljust(8, b"\0"), "little"))
    outputs = []
    for i in range(AUGMENTATIONS_PER_IMAGE):
        path = os.path.join(preview_dir, f"{stem}-aug{i}.jpeg")
        _augment(img, rng).save(path, format="JPEG")
        outputs.append(FlyteFile(path))
    return outputs


@task(limits=Resources(mem="600Mi"))
def coalesce(augmented_list: list[list[FlyteFile]]) -> list[FlyteFile]:
    """Flatten the list of lists into one list."""
    return list(itertools.chain.from_iterable(augmented_list))


@workflow
def wf(count: int = 5, seed: int = 0) -> list[FlyteFile]:
    """Make images, augment each one in a map task (retried once), collect the results."""
    images = make_images(count=count, seed=seed)
    result = map_task(data_augment, metadata=TaskMetadata(retries=1))(image=images)
    return coalesce(augmented_list=result)


if __name__ == "__main__":
    for f in wf(count=5):
        print(f.path)
