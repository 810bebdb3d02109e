"""Fault tolerance: a server failing 20% of requests (500s, timeouts, garbage, dropped
connections, 429s) does not stop a run, and every rollout is accounted for."""

from collections import Counter

import pytest

import verifiers as vf

pytestmark = pytest.mark.integration


def handler(request):
    a, b = request["messages"][-1]["content"].split("+")
    return f"<answer>{int(a) + int(b)}</answer>"


def correct(parser, completion, answer):
    return float(parser.parse_answer(completion) == answer)


@pytest.mark.timeout(180)
def test_500_rollouts_at_concurrency_64_with_20_percent_failures(make_scripted_server):
    server = make_scripted_server(
        handler=handler, latency_ms=5, failure_rate=0.2,
        failure_kinds=["500", "timeout", "garbage", "drop", "429"], hang_s=5.0, seed=7,
        record_requests=False,
    )
    parser = vf.XMLParser(["answer"])
    env = vf.SingleTurnEnv(
        dataset=[{"question": f"{i}+{i + 1}", "answer": str(2 * i + 1)} for i in range(250)],
        parser=parser, rubric=vf.Rubric(funcs=[correct], parser=parser),
        retry_policy=vf.RetryPolicy(max_retries=3, backoff_base=0.02, timeout=1.0),
    )
    results = env.evaluate(server.client(), "m", rollouts_per_example=2, max_concurrent=64)

    keys = list(zip(results["example_ids"], results["rollout_indices"], strict=True))
    assert len(keys) == len(set(keys)) == 500  # every rollout accounted for, once
    stats = server.stats
    assert sum(stats["failures"].values()) > 50  # the faults really happened...
    assert stats["total"] > 500  # ...and were retried
    for reward, error in zip(results["rewards"], results["errors"], strict=True):
        if error is None:
            assert reward == 1.0  # finished rollouts are correct
        else:
            assert reward == 0.0 and error.startswith("model_error")  # failed ones say why
    # with 3 retries a rollout fails only if 4 attempts in a row do (0.2**4): a handful at most
    assert results.num_failed <= 10
    reasons = Counter(e.split(":")[0] for e in results["errors"] if e)
    assert set(reasons) <= {"model_error"}
    print(f"\nfaults injected: {dict(stats['failures'])}; requests {stats['total']}; "
          f"failed rollouts {results.num_failed}")
