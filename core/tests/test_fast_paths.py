"""Small speed-ups on the rollout path keep behaviour: the JSON-like deep copy and the
garbage-collector thresholds during a generation."""

from __future__ import annotations

import copy
import gc
import threading

import verifiers as vf
from verifiers.utils.copying import json_copy
from verifiers.utils.gc_tuning import GENERATION_THRESHOLD, fewer_collections


def test_json_copy_is_a_deep_copy():
    class Marker:
        def __init__(self):
            self.items = [1]

    message = {"role": "user", "content": [{"type": "text", "text": "hi"}],
               "n": 1, "x": 1.5, "ok": True, "none": None, "t": (1, [2]), "obj": Marker()}
    copied = json_copy([message])
    assert copied[0]["obj"] is not message["obj"] and copied[0]["content"] == message["content"]
    copied[0]["content"][0]["text"] = "changed"
    copied[0]["t"][1].append(3)
    copied[0]["obj"].items.append(2)
    assert message["content"][0]["text"] == "hi" and message["t"] == (1, [2])
    assert message["obj"].items == [1]
    looped: list = []
    looped.append(looped)
    again = json_copy(looped)  # a cycle: falls back to copy.deepcopy
    assert again[0] is again and again is not looped
    assert json_copy("text") == "text" and json_copy(None) is None
    assert json_copy({"a": [1, {"b": 2}]}) == copy.deepcopy({"a": [1, {"b": 2}]})


def test_fewer_collections_raises_the_threshold_and_puts_it_back():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with fewer_collections():
            assert gc.get_threshold() == (GENERATION_THRESHOLD, 10, 10)
            with fewer_collections():  # nested: one change
                pass
            assert gc.get_threshold()[0] == GENERATION_THRESHOLD
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(100_000, 10, 10)  # already higher: left alone
        with fewer_collections():
            assert gc.get_threshold()[0] == 100_000
        gc.set_threshold(0)  # collection switched off by the user: left off
        with fewer_collections():
            assert gc.get_threshold()[0] == 0
        gc.set_threshold(700, 10, 10)
        with fewer_collections():
            gc.set_threshold(5000, 10, 10)  # someone else's change meanwhile: kept
        assert gc.get_threshold()[0] == 5000
    finally:
        gc.set_threshold(*before)


def test_concurrent_generations_share_one_change():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with fewer_collections():
            inside.set()
            release.wait(10)

    try:
        worker = threading.Thread(target=hold)
        worker.start()
        inside.wait(10)
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == GENERATION_THRESHOLD  # the other is still running
        release.set()
        worker.join(10)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_generation_restores_the_threshold(make_scripted_server):
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    seen = []

    def reward(completion, **_):
        seen.append(gc.get_threshold()[0])
        return 1.0

    try:
        server = make_scripted_server(default_reply="hi")
        env = vf.SingleTurnEnv(dataset=[{"question": str(i), "answer": "1"} for i in range(4)],
                               rubric=vf.Rubric(funcs=[reward]))
        results = env.evaluate(server.client(), "m")
        assert results["rewards"] == [1.0] * 4
        assert seen == [GENERATION_THRESHOLD] * 4
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
