"""Scene-rendered training data: the plan, seeded and ordered output, refusals counted, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from training import scene_data
from training.scene_data import KINDS, default_scene_cache, plan, read_cache, render_scenes, summary
from training.upload_styles import GROUPS


@pytest.fixture(scope="module")
def digits(mnist):
    """A handful of MNIST training digits and their labels."""
    return mnist.x_train[:12], mnist.y_train[:12]


def test_plan_weights_photos_two_to_one_and_uses_every_digit_before_reusing_one():
    sources, kinds = plan(300, 40, seed=0)
    photos = np.isin(kinds, list(GROUPS["photos"]))
    assert photos.sum() == 200
    assert set(kinds) == set(KINDS)
    for first in range(0, 280, 40):
        assert sorted(sources[first : first + 40]) == list(range(40))
    again_sources, again_kinds = plan(300, 40, seed=0)
    other_sources, _ = plan(300, 40, seed=1)
    assert (sources == again_sources).all() and (kinds == again_kinds).all()
    assert not (sources == other_sources).all()


def test_kind_names_are_unique_across_the_groups():
    assert len(KINDS) == sum(len(kinds) for kinds in GROUPS.values())


def test_render_is_seeded_and_keeps_labels_with_their_images(digits):
    images, labels = digits
    first = render_scenes(images, labels, 30, seed=0, workers=1)
    again = render_scenes(images, labels, 30, seed=0, workers=1)
    assert first.images.shape == (len(first.labels), 28, 28) and first.images.dtype == np.float32
    assert first.images.min() >= 0.0 and first.images.max() <= 1.0
    assert len(first.images) + sum(first.refused.values()) == 30
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, labels[first.sources])
    # The images come in the plan's order, less the refused ones.
    planned = iter(zip(*plan(30, len(images), seed=0), strict=True))
    assert all(image in planned for image in zip(first.sources, first.kinds, strict=True))


def test_a_pool_of_processes_renders_exactly_what_one_process_does(digits, monkeypatch):
    images, labels = digits
    # Small tasks, so that 30 images make three of them and go to the pool.
    monkeypatch.setattr(scene_data, "CHUNK", 10)
    alone = render_scenes(images, labels, 30, seed=3, workers=1)
    pooled = render_scenes(images, labels, 30, seed=3, workers=2)
    np.testing.assert_array_equal(alone.images, pooled.images)
    np.testing.assert_array_equal(alone.sources, pooled.sources)
    assert alone.refused == pooled.refused


def test_refused_images_are_skipped_and_counted_per_kind(digits, monkeypatch):
    images, labels = digits
    # An empty upload is one that preprocessing always refuses.
    monkeypatch.setitem(scene_data.KINDS, "sticky_note", lambda digit, rng: b"")
    scenes = render_scenes(images, labels, 50, seed=0, workers=1)
    planned = int(np.sum(plan(50, len(images), seed=0)[1] == "sticky_note"))
    assert planned > 0 and scenes.refused["sticky_note"] == planned
    assert "sticky_note" not in set(scenes.kinds) and scenes.counts()["sticky_note"] == 0
    assert set(scenes.refused) == set(KINDS) and len(scenes.images) + sum(scenes.refused.values()) == 50
    record = summary(scenes)
    assert record["refused_per_kind"]["sticky_note"] == planned and sum(record["per_kind"].values()) == record["images"]


def test_a_kind_that_breaks_names_itself_and_the_image(digits, monkeypatch):
    images, labels = digits

    def broken(digit, rng):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(scene_data, "KINDS", dict.fromkeys(KINDS, broken))
    with pytest.raises(RuntimeError, match=r"image 0 \(seed 5\) broke rendering"):
        render_scenes(images, labels, 3, seed=5, workers=1)


def test_the_second_call_reads_the_cache(digits, tmp_path, monkeypatch):
    images, labels = digits
    first = render_scenes(images, labels, 20, seed=0, cache_dir=tmp_path, workers=1)
    assert not first.cached and first.cache_path.is_file() and first.cache_path.parent == tmp_path

    def no_rendering(*args, **kwargs):
        raise AssertionError("the cached images were rendered again")

    monkeypatch.setattr(scene_data, "_render", no_rendering)
    second = render_scenes(images, labels, 20, seed=0, cache_dir=tmp_path, workers=1)
    assert second.cached and second.cache_path == first.cache_path
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.kinds, second.kinds)
    assert second.refused == first.refused and second.render_seconds == pytest.approx(first.render_seconds)


def test_images_rendered_by_other_code_are_not_cached(digits, tmp_path, monkeypatch, capsys):
    images, labels = digits
    render_chunk = scene_data._render_chunk

    def edited_meanwhile(task):
        chunk_images, kept, _ = render_chunk(task)
        return chunk_images, kept, "the digest of app/preprocess.py as edited after this process imported it"

    monkeypatch.setattr(scene_data, "_render_chunk", edited_meanwhile)
    scenes = render_scenes(images, labels, 5, seed=0, cache_dir=tmp_path, workers=1)
    assert len(scenes.images) + sum(scenes.refused.values()) == 5 and not list(tmp_path.iterdir())
    assert "changed on disk while rendering" in capsys.readouterr().err


CHANGES = [
    ("seed", lambda images, labels: {"seed": 1}),
    ("count", lambda images, labels: {"count": 21}),
    ("digits", lambda images, labels: {"digits": images[::-1]}),
    ("labels", lambda images, labels: {"labels": (labels + 1) % 10}),
]


@pytest.mark.parametrize(("change", "changed"), CHANGES, ids=[change for change, _ in CHANGES])
def test_the_cache_key_changes_with_what_decides_the_images(digits, change, changed):
    images, labels = digits
    arguments = {"digits": images, "labels": labels, "count": 20, "seed": 0}
    assert scene_data.cache_key(**arguments) != scene_data.cache_key(**{**arguments, **changed(images, labels)})


def test_a_damaged_cache_file_is_treated_as_absent(tmp_path):
    damaged = tmp_path / "20-damaged.npz"
    damaged.write_bytes(b"not an npz file")
    assert read_cache(damaged) is None
    assert read_cache(tmp_path / "missing.npz") is None


def test_the_default_cache_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_scene_cache() == tmp_path / "digitserve" / "scenes"
