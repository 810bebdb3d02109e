"""MultiServerClient: rollouts spread over several scripted servers; one server stopped in
the middle of a run (with requests in flight) and every rollout still completes."""

from __future__ import annotations

import asyncio
import threading

import pytest

import verifiers as vf
from verifiers.multi_client import MultiServerClient, split_base_urls
from verifiers.testing import ErrorReply


class ThreeTurns(vf.MultiTurnEnv):
    def env_response(self, messages, state, **kwargs):
        return [{"role": "user", "content": f"{state['turn']}+1"}], state


def answer(request):
    a, b = request["messages"][-1]["content"].split("+")
    return f"{int(a) + int(b)}"


def turns_answered(completion, state):
    """1.0 when every model turn gave the sum it was asked for."""
    replies = [m["content"] for m in completion if m["role"] == "assistant"]
    return float(len(replies) == 3 and replies[1:] == ["2", "3"])


@pytest.mark.timeout(120)
def test_a_server_stopped_mid_run_loses_no_rollout(make_scripted_server):
    killed = threading.Event()
    answered = {"count": 0}
    victim = None

    async def victim_handler(request):
        answered["count"] += 1
        if answered["count"] == 10:  # stop this server while this request (and others) wait
            threading.Thread(target=victim.stop, daemon=True).start()
            killed.set()
            await asyncio.sleep(5)
        return answer(request)

    healthy = [make_scripted_server(handler=answer, latency_ms=20) for _ in range(2)]
    victim = make_scripted_server(handler=victim_handler, latency_ms=20)
    client = MultiServerClient([healthy[0].base_url, victim.base_url, healthy[1].base_url],
                               cooldown=60)
    env = ThreeTurns(dataset=[{"question": f"{i}+0", "answer": ""} for i in range(20)],
                     max_turns=3, rubric=vf.Rubric(funcs=[turns_answered]),
                     retry_policy=vf.RetryPolicy(max_retries=2, backoff_base=0.01, timeout=10))
    results = env.evaluate(client, "m", rollouts_per_example=2, max_concurrent=16)

    assert killed.is_set()
    assert results["errors"] == [None] * 40  # every rollout finished...
    assert results["rewards"] == [1.0] * 40  # ...with every turn answered
    stats = client.stats()
    victim_stats = stats[victim.base_url]
    assert victim_stats["requests"] >= 10 and victim_stats["failures"] >= 1
    assert victim_stats["down"]  # skipped for the rest of the run
    # its failed requests went to the others: 120 model turns answered in all
    served = sum(s.stats["completed"] for s in healthy) + victim.stats["completed"]
    assert served >= 120
    assert all(s.stats["completed"] > 20 for s in healthy)  # the load was spread


def test_requests_spread_and_client_errors_are_not_retried(make_scripted_server):
    servers = [make_scripted_server(latency_ms=5) for _ in range(3)]
    client = MultiServerClient(",".join(s.base_url for s in servers))

    async def run():
        return await asyncio.gather(*[
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
            for i in range(30)])

    replies = asyncio.run(run())
    assert [r.choices[0].message.content for r in replies] == [str(i) for i in range(30)]
    assert all(s.stats["completed"] >= 5 for s in servers)

    bad = make_scripted_server(default_reply=ErrorReply(400, "bad request"))
    other = make_scripted_server()
    pair = MultiServerClient([bad.base_url, other.base_url])
    import openai

    async def one():
        return await pair.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])

    outcomes = []
    for _ in range(2):  # the first request of the two goes to `bad` in turn order
        try:
            outcomes.append(asyncio.run(one()).choices[0].message.content)
        except openai.BadRequestError:
            outcomes.append("400")
    assert "400" in outcomes  # the request's own error is raised, not sent elsewhere
    assert other.stats["completed"] == outcomes.count("x")


def test_every_server_down_raises_the_last_error(make_scripted_server):
    import openai

    servers = [make_scripted_server() for _ in range(2)]
    urls = [s.base_url for s in servers]
    for server in servers:
        server.stop()
    client = MultiServerClient(urls, cooldown=0)
    with pytest.raises(openai.APIConnectionError):
        asyncio.run(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]))
    assert all(s["failures"] == 1 for s in client.stats().values())


def test_base_urls_are_checked():
    assert split_base_urls(" http://a:1/v1/, http://b:2/v1 ") == ["http://a:1/v1", "http://b:2/v1"]
    with pytest.raises(ValueError, match="http://"):
        split_base_urls("a:1")
    with pytest.raises(ValueError, match="twice"):
        split_base_urls(["http://a/v1", "http://a/v1"])
    with pytest.raises(ValueError, match="at least one"):
        split_base_urls("")


def test_vf_eval_takes_several_servers(installed_envs, make_scripted_server, tmp_path, capsys):
    from verifiers.cli.eval import main

    def reply(request):
        return request["messages"][-1]["content"].split()[-1]

    up, gone = make_scripted_server(handler=reply), make_scripted_server(handler=reply)
    gone_url = gone.base_url
    gone.stop()  # one of the two servers is away for the whole run
    code = main(["vf-toy-math", "-m", "scripted", "-b", f"{up.base_url},{gone_url}", "-n", "3",
                 "-r", "2", "-a", '{"num_examples": 4}', "--max-retries", "1"])
    assert code == 0
    err = capsys.readouterr().err
    assert "6 rollouts" in err and "0 failed" in err
    assert up.stats["completed"] == 6
    assert main(["vf-toy-math", "-m", "scripted", "-b", f"{up.base_url},localhost:1"]) == 2
    assert "'localhost:1' is not a URL" in capsys.readouterr().err
