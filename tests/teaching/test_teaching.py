"""The exercise registry behind the teaching notebooks' check_answer."""
from __future__ import annotations

import dataclasses

import pytest

from astrocal_widgets.simulate import camera_preset
from astrocal_widgets.teaching import exercises as teaching_exercises
from astrocal_widgets.teaching.exercises import _REGISTRY, Exercise, check_answer, register


@pytest.fixture
def scratch_exercise():
    item = register(Exercise("test-gain-times-ten", "Ten times the gain?",
                             lambda camera: (camera.gain * 10, f"gain {camera.gain} e-/ADU times 10")))
    yield item
    _REGISTRY.pop(item.name, None)


def test_the_answer_follows_the_camera(scratch_exercise):
    mono = camera_preset("mono")
    other = dataclasses.replace(mono, gain=mono.gain * 2)
    assert check_answer("test-gain-times-ten", mono.gain * 10)
    assert not check_answer("test-gain-times-ten", mono.gain * 10, camera=other)
    verdict = check_answer("test-gain-times-ten", mono.gain * 10 * 1.5)
    assert not verdict and "the answer is" in str(verdict) and "e-/ADU" in verdict.explanation


def test_unknown_names_and_duplicates_are_refused(scratch_exercise):
    with pytest.raises(KeyError, match="no exercise named 'nope'"):
        check_answer("nope", 1)
    with pytest.raises(ValueError, match="already registered"):
        register(Exercise("test-gain-times-ten", "again", lambda camera: (0, "")))


def test_every_registered_exercise_has_a_question():
    for name, item in teaching_exercises().items():
        assert item.question.strip(), name
