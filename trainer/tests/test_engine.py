"""InProcessEngine on the tiny model: exact greedy tokens and raw logprobs, batching,
stopping, tool calls, environments end to end, and generation with the current weights."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
import torch

import verifiers as vf
from verifiers_trainer import InProcessEngine

QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]
IDS = {"return_token_ids": True}


def chat(engine: InProcessEngine, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    return asyncio.run(engine.chat.completions.create(model="local", messages=messages, **kwargs))


def ids_of(response: Any) -> tuple[list[int], list[int]]:
    """(prompt token ids, completion token ids) of a response with return_token_ids."""
    return response.model_extra["prompt_token_ids"], response.choices[0].model_extra["token_ids"]


def forward_logprobs(model: Any, prompt: list[int], completion: list[int]) -> list[float]:
    """log_softmax of one full forward pass over prompt + completion, at the completion."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return [logprobs[len(prompt) - 1 + i, t].item() for i, t in enumerate(completion)]


def template_ids(tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any) -> list[int]:
    return tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                         return_dict=False, **kwargs)


# -- exactness ------------------------------------------------------------------------------


def test_greedy_tokens_equal_model_generate(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    for question in ("What is 2 + 3?", "Write a poem about the sea.", "def f(x):"):
        messages = [{"role": "user", "content": question}]
        response = chat(engine, messages, temperature=0, max_tokens=40, extra_body=IDS)
        prompt, completion = ids_of(response)
        assert prompt == template_ids(tokenizer, messages)
        reference = model.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=40, do_sample=False,
        )[0, len(prompt):].tolist()
        assert completion == reference
        assert len(set(completion)) > 5  # the random model writes varied text, not one token
        message = response.choices[0].message
        assert message.content == tokenizer.decode(completion, skip_special_tokens=True)
        assert response.usage.prompt_tokens == len(prompt)
        assert response.usage.completion_tokens == len(completion)


@pytest.mark.parametrize("sampling", [
    {"temperature": 0},
    {"temperature": 0.7, "top_p": 0.9, "seed": 1,
     "extra_body": {"top_k": 50, "min_p": 0.01, "repetition_penalty": 1.3}},
])
def test_logprobs_are_raw_logprobs_of_a_full_forward_pass(tiny, sampling):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    extra = {**IDS, **sampling.pop("extra_body", {})}
    response = chat(engine, QUESTION, max_tokens=48, logprobs=True, top_logprobs=3,
                    extra_body=extra, **sampling)
    prompt, completion = ids_of(response)
    content = response.choices[0].logprobs.content
    assert len(content) == len(completion) > 0
    got = [entry.logprob for entry in content]
    want = forward_logprobs(model, prompt, completion)
    assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-4
    assert [entry.token for entry in content] == [tokenizer.decode([t]) for t in completion]
    for entry in content:
        alternatives = [alt.logprob for alt in entry.top_logprobs]
        assert len(alternatives) == 3 and alternatives == sorted(alternatives, reverse=True)
        assert entry.logprob <= alternatives[0] + 1e-6


def test_prompt_ids_follow_the_chat_template_and_render_tools(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    tools = [{"type": "function", "function": {
        "name": "lookup", "description": "Look a word up.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}}}}]
    messages = [{"role": "system", "content": "Be brief."}, *QUESTION]
    response = chat(engine, messages, tools=tools, temperature=0, max_tokens=4, extra_body=IDS)
    prompt, _ = ids_of(response)
    assert prompt == template_ids(tokenizer, messages, tools=tools)
    rendered = tokenizer.decode(prompt)
    assert "<tools>\n" + json.dumps(tools[0]) + "\n</tools>" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")


# -- batching -------------------------------------------------------------------------------


@pytest.mark.parametrize("in_thread", [False, True], ids=["loop-thread", "worker-thread"])
def test_concurrent_requests_are_batched_and_equal_unbatched_results(tiny, in_thread):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer, generate_in_thread=in_thread)
    requests = []
    for i in range(8):
        sampling: dict[str, Any] = {"temperature": 0}
        if i == 5:  # a sampled, seeded request in the same batch
            sampling = {"temperature": 0.8, "seed": 7}
        requests.append(dict(
            model="local",
            messages=[{"role": "user", "content": f"Question {i}: " + "why? " * i}],
            max_tokens=8 + 4 * i, logprobs=True, extra_body=IDS, **sampling,
        ))
    alone = [asyncio.run(engine.chat.completions.create(**r)) for r in requests]
    assert engine.stats.batches == 8

    async def together() -> list[Any]:
        return await asyncio.gather(*(engine.chat.completions.create(**r) for r in requests))

    batched = asyncio.run(together())
    assert engine.stats.batches - 8 < 8
    assert engine.stats.largest_batch > 1
    for a, b in zip(alone, batched):
        assert ids_of(a) == ids_of(b)
        assert a.choices[0].message.content == b.choices[0].message.content
        la = [e.logprob for e in a.choices[0].logprobs.content]
        lb = [e.logprob for e in b.choices[0].logprobs.content]
        assert max(abs(x - y) for x, y in zip(la, lb)) <= 1e-4
    assert [len(ids_of(b)[1]) for b in batched] == [8 + 4 * i for i in range(8)]


def test_sampling_filters_and_penalties(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    greedy = ids_of(chat(engine, QUESTION, temperature=0, max_tokens=24, extra_body=IDS))[1]
    # filters that leave only the top token make sampling greedy
    for extra in ({"top_k": 1}, {"min_p": 1.0}, {"top_p": 1e-6}):
        sampled = chat(engine, QUESTION, temperature=1.5, max_tokens=24, extra_body={**IDS, **extra})
        assert ids_of(sampled)[1] == greedy, extra
    # strong penalties forbid repeats (repetition: prompt tokens too; presence: output only)
    prompt, out = ids_of(chat(engine, QUESTION, temperature=0, max_tokens=24,
                              extra_body={**IDS, "repetition_penalty": 100.0}))
    assert len(set(out)) == len(out) and not set(out) & set(prompt)
    _, out = ids_of(chat(engine, QUESTION, temperature=0, max_tokens=24, presence_penalty=50.0,
                         extra_body=IDS))
    assert len(set(out)) == len(out)
    _, out = ids_of(chat(engine, QUESTION, temperature=0, max_tokens=24, frequency_penalty=50.0,
                         extra_body=IDS))
    assert len(set(out)) == len(out)


def test_seeded_sampling_is_reproducible(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    runs = [ids_of(chat(engine, QUESTION, temperature=1.0, seed=s, max_tokens=24, extra_body=IDS))[1]
            for s in (3, 3, 4)]
    assert runs[0] == runs[1] != runs[2]


# -- stopping -------------------------------------------------------------------------------


def test_max_tokens_ends_with_length(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    response = chat(engine, QUESTION, temperature=0, max_tokens=5, extra_body=IDS)
    assert response.choices[0].finish_reason == "length"
    assert len(ids_of(response)[1]) == 5
    response = chat(engine, QUESTION, temperature=0, max_tokens=50, max_completion_tokens=3,
                    extra_body=IDS)
    assert len(ids_of(response)[1]) == 3


def test_eos_ends_with_stop_and_is_not_in_the_text(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    eos = tokenizer.eos_token_id
    response = chat(engine, QUESTION, temperature=0, max_tokens=20, logit_bias={eos: 100.0},
                    extra_body={**IDS, "min_tokens": 3})
    _, completion = ids_of(response)
    assert completion[-1] == eos and len(completion) == 4
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.content == tokenizer.decode(completion[:3])


def test_stop_strings_cut_the_text(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    full = chat(engine, QUESTION, temperature=0, max_tokens=40,
                extra_body={**IDS, "ignore_eos": True})
    _, ids = ids_of(full)
    text = full.choices[0].message.content
    # a token whose (ASCII) text first appears in the output exactly where that token starts
    for j in range(2, len(ids)):
        piece = tokenizer.decode([ids[j]])
        before = tokenizer.decode(ids[:j])
        usable = len(piece) >= 2 and piece.isascii() and text.startswith(before)
        if usable and text.find(piece) == len(before):
            break
    else:
        pytest.skip("no usable stop string in this output")
    for include in (False, True):
        cut = chat(engine, QUESTION, temperature=0, max_tokens=40, stop=[piece, "no such text"],
                   extra_body={**IDS, "ignore_eos": True, "include_stop_str_in_output": include})
        assert cut.choices[0].finish_reason == "stop"
        assert cut.choices[0].model_extra["stop_reason"] == piece
        assert ids_of(cut)[1] == ids[:j + 1]
        assert cut.choices[0].message.content == before + (piece if include else "")


def test_context_length_is_enforced_like_vllm(tiny):
    model, tokenizer = tiny
    prompt_len = len(template_ids(tokenizer, QUESTION))
    engine = InProcessEngine(model, tokenizer, max_model_len=prompt_len + 5)
    response = chat(engine, QUESTION, temperature=0, max_tokens=50, extra_body=IDS)
    assert len(ids_of(response)[1]) == 5 and response.choices[0].finish_reason == "length"
    small = InProcessEngine(model, tokenizer, max_model_len=prompt_len)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        chat(small, QUESTION, max_tokens=5)
    # the core sees a context-length error: the rollout ends truncated, not failed
    env = vf.SingleTurnEnv(dataset=[{"prompt": QUESTION, "answer": "5"}])
    results = env.evaluate(small, "local", sampling_args={"max_tokens": 5})
    assert results["errors"] == [None] and results["states"][0]["is_truncated"]


def test_unsupported_requests_are_refused_clearly(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    with pytest.raises(openai.BadRequestError, match="n=2 is not supported"):
        chat(engine, QUESTION, n=2, max_tokens=5)
    with pytest.raises(openai.BadRequestError, match="stream=True"):
        chat(engine, QUESTION, stream=True, max_tokens=5)
    with pytest.raises(openai.BadRequestError, match="temperature must be >= 0"):
        chat(engine, QUESTION, temperature=-1, max_tokens=5)
    with pytest.raises(openai.BadRequestError, match="outside the vocabulary"):
        chat(engine, QUESTION, logit_bias={5000: 1.0}, max_tokens=5)
    # transport options are accepted and ignored
    response = chat(engine, QUESTION, max_tokens=2, timeout=5.0, extra_headers={"X-A": "b"})
    assert response.choices[0].finish_reason == "length"


# -- completions API and models.list ----------------------------------------------------------


def test_completions_api_returns_legacy_logprobs_and_token_ids(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    response = asyncio.run(engine.completions.create(
        model="local", prompt="def add(a, b):", max_tokens=12, temperature=0, logprobs=2,
        extra_body=IDS,
    ))
    choice = response.choices[0]
    prompt = tokenizer("def add(a, b):")["input_ids"]
    assert response.model_extra["prompt_token_ids"] == prompt
    completion = choice.model_extra["token_ids"]
    assert len(completion) == 12 and choice.finish_reason == "length"
    got = choice.logprobs.token_logprobs
    assert max(abs(a - b) for a, b in zip(got, forward_logprobs(model, prompt, completion))) <= 1e-4
    assert len(choice.logprobs.top_logprobs) == 12 and len(choice.logprobs.top_logprobs[0]) <= 2
    assert choice.text == tokenizer.decode(completion)
    models = asyncio.run(engine.models.list())
    assert [m.id for m in models.data] == ["local"]


def _shape(value: Any, key: str | None = None) -> Any:
    """The keys of a JSON value, recursively (a list by its first item; the legacy
    ``top_logprobs`` maps, keyed by token text, as one ``<token>`` key)."""
    if key == "top_logprobs" and value and isinstance(value[0], dict) and "token" not in value[0]:
        return [{"<token>": None}]
    if isinstance(value, dict):
        return {k: _shape(item, k) for k, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def test_engine_and_scripted_server_answer_in_the_same_wire_shape(tiny):
    """Both render with ``verifiers.utils.openai_wire``: the same fields, set the same way
    (the engine adds vLLM's ``stop_reason``)."""
    from verifiers.testing import ScriptedServer

    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    chat_kwargs = dict(model="local", messages=QUESTION, max_tokens=4, temperature=0,
                       logprobs=True, top_logprobs=2, extra_body=IDS)
    text_kwargs = dict(model="local", prompt="def f(x):", max_tokens=4, temperature=0,
                       logprobs=2, extra_body=IDS)

    async def ask(client: Any) -> tuple[Any, Any]:
        return (await client.chat.completions.create(**chat_kwargs),
                await client.completions.create(**text_kwargs))

    with ScriptedServer(default_reply="four") as server:
        scripted = asyncio.run(ask(server.client()))
    local = asyncio.run(ask(engine))
    for ours, theirs in zip(local, scripted, strict=True):
        mine = _shape(ours.model_dump(exclude_unset=True))
        assert mine["choices"][0].pop("stop_reason", "missing") is None
        assert mine == _shape(theirs.model_dump(exclude_unset=True))


# -- environments through the engine ----------------------------------------------------------


def test_single_turn_env_evaluates_through_the_engine(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    env = vf.SingleTurnEnv(
        dataset=[{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(4)],
        system_prompt="Answer with a number.",
    )
    results = env.evaluate(engine, "local", sampling_args={
        "temperature": 0, "max_tokens": 12, "logprobs": True, "return_token_ids": True,
    })
    assert results["errors"] == [None] * 4
    for prompt, state in zip(results["prompts"], results["states"]):
        (turn,) = state["turns"]
        assert turn["prompt_token_ids"] == template_ids(tokenizer, prompt)
        assert len(turn["completion_token_ids"]) == len(turn["completion_logprobs"]) > 0
        assert state["usage"]["completion_tokens"] == len(turn["completion_token_ids"])
    assert engine.stats.batches < 4  # the four rollouts ran concurrently


def test_completion_mode_env_records_token_ids(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    env = vf.SingleTurnEnv(dataset=[{"question": "def add(a, b):", "answer": ""}],
                           message_type="completion")
    results = env.evaluate(engine, "local", sampling_args={
        "temperature": 0, "max_tokens": 8, "logprobs": 1, "return_token_ids": True,
    })
    (turn,) = results["states"][0]["turns"]
    assert turn["prompt_token_ids"] == tokenizer("def add(a, b):")["input_ids"]
    assert len(turn["completion_token_ids"]) == len(turn["completion_logprobs"]) == 8


class AskAgain(vf.MultiTurnEnv):
    def env_response(self, messages, state, **kwargs):
        return [{"role": "user", "content": f"Go on ({state['turn']})."}], state


def test_multi_turn_env_records_every_turn(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    env = AskAgain(dataset=[{"question": "Tell me a story.", "answer": ""}] * 2, max_turns=3)
    eos = tokenizer.eos_token_id
    results = env.evaluate(engine, "local", sampling_args={  # 5 tokens, then <|im_end|>
        "temperature": 0, "max_tokens": 20, "logit_bias": {eos: 100.0}, "min_tokens": 5,
        "logprobs": True, "return_token_ids": True,
    })
    assert results["errors"] == [None, None]
    for prompt, completion, state in zip(results["prompts"], results["completions"],
                                         results["states"]):
        assert len(state["turns"]) == 3
        for k, turn in enumerate(state["turns"]):
            messages = list(prompt) + list(completion[:2 * k])
            assert turn["prompt_token_ids"] == template_ids(tokenizer, messages)
            assert len(turn["completion_logprobs"]) == len(turn["completion_token_ids"]) == 6
            assert turn["finish_reason"] == "stop" and turn["completion_token_ids"][-1] == eos
            assert completion[2 * k]["content"] == tokenizer.decode(
                turn["completion_token_ids"], skip_special_tokens=True)
    processed = env.process_env_results(results["prompts"], results["completions"],
                                        results["states"], results["rewards"], tokenizer)
    assert len(processed) >= 2 and not any(processed["from_text"])


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


def _teach(model: Any, tokenizer: Any, conversation: list[dict[str, Any]], tools: Any,
           steps: int = 200, lr: float = 1e-2) -> None:
    """Overfit the tiny model on one conversation's assistant turns (a few dozen steps), so
    that greedy decoding replays it: a random model will not call a tool by itself."""
    full = tokenizer.apply_chat_template(conversation, tools=tools, tokenize=True,
                                         return_dict=False)
    labels = [-100] * len(full)
    for k, message in enumerate(conversation):
        if message["role"] == "assistant":
            start = len(template_ids(tokenizer, conversation[:k], tools=tools))
            end = len(tokenizer.apply_chat_template(conversation[:k + 1], tools=tools,
                                                    tokenize=True, return_dict=False))
            labels[start:end] = full[start:end]
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=torch.tensor([full]), labels=torch.tensor([labels])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.01, f"the tiny model did not learn the conversation (loss {loss})"


def test_tool_env_rollout_calls_the_tool_and_turns_extend(tiny):
    model, tokenizer = tiny
    env = vf.ToolEnv(tools=[add], dataset=[{"prompt": QUESTION, "answer": "5"}], max_turns=4)
    conversation = [
        *QUESTION,
        {"role": "assistant", "content": "", "tool_calls": [{"id": "x", "type": "function",
         "function": {"name": "add", "arguments": json.dumps({"a": 2, "b": 3})}}]},
        {"role": "tool", "tool_call_id": "x", "content": "5"},
        {"role": "assistant", "content": "The answer is 5."},
    ]
    _teach(model, tokenizer, conversation, env.oai_tools)
    engine = InProcessEngine(model, tokenizer)
    results = env.evaluate(engine, "local", sampling_args={
        "temperature": 0, "max_tokens": 60, "logprobs": True, "return_token_ids": True,
    })
    assert model.training  # the engine restored train mode
    assert results["errors"] == [None]
    state, completion = results["states"][0], results["completions"][0]
    assert state["tool_calls"] == 1 and state["tool_errors"] == 0
    call = completion[0]["tool_calls"][0]
    assert call["function"] == {"name": "add", "arguments": '{"a": 2, "b": 3}'}
    assert call["id"].startswith("call_")
    assert completion[1] == {"role": "tool", "tool_call_id": call["id"], "content": "5"}
    assert completion[2]["content"] == "The answer is 5."
    first, second = state["turns"]
    assert first["finish_reason"] == "tool_calls" and second["finish_reason"] == "stop"
    seen = first["prompt_token_ids"] + first["completion_token_ids"]
    assert second["prompt_token_ids"][:len(seen)] == seen  # the second prompt extends the first
    processed = env.process_env_results(results["prompts"], results["completions"],
                                        results["states"], results["rewards"], tokenizer)
    assert len(processed) == 1  # one training sample: model tokens 1, tool tokens 0
    mask = processed["completion_mask"][0]
    env_tokens = len(second["prompt_token_ids"]) - len(seen)
    assert mask == ([1] * len(first["completion_token_ids"]) + [0] * env_tokens
                    + [1] * len(second["completion_token_ids"]))


PLAIN_CHATML = (  # role and content only: tool calls are not shown (SmolLM2's template)
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_without_tool_support_sees_the_call_on_the_next_turn(tiny):
    """With a chat template that drops ``tool_calls``, the next turn's prompt still holds the
    call the model wrote, so the turns extend into one training sample."""
    model, tokenizer = tiny
    tokenizer.chat_template = PLAIN_CHATML
    env = vf.ToolEnv(tools=[add], dataset=[{"prompt": QUESTION, "answer": "5"}], max_turns=4)
    call_text = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'
    conversation = [*QUESTION, {"role": "assistant", "content": call_text},
                    {"role": "tool", "content": "5"},
                    {"role": "assistant", "content": "The answer is 5."}]
    _teach(model, tokenizer, conversation, None, steps=600, lr=3e-3)
    results = env.evaluate(InProcessEngine(model, tokenizer), "local", sampling_args={
        "temperature": 0, "max_tokens": 60, "return_token_ids": True})
    state, completion = results["states"][0], results["completions"][0]
    assert results["errors"] == [None]
    assert state["tool_calls"] == 1, completion
    assert completion[0]["tool_calls"][0]["function"]["name"] == "add"
    first, second = state["turns"]
    assert call_text in tokenizer.decode(second["prompt_token_ids"])
    seen = first["prompt_token_ids"] + first["completion_token_ids"]
    assert second["prompt_token_ids"][:len(seen)] == seen
    processed = env.process_env_results(results["prompts"], results["completions"],
                                        results["states"], results["rewards"], tokenizer)
    assert len(processed) == 1


def test_parsed_tool_calls_come_back_as_openai_tool_calls(tiny):
    """A request with tools whose output is a call (taught to the tiny model) returns
    message.tool_calls, content None and finish_reason "tool_calls"."""
    model, tokenizer = tiny
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    conversation = [*QUESTION, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]
    _teach(model, tokenizer, conversation, tools)
    engine = InProcessEngine(model, tokenizer)
    response = chat(engine, QUESTION, tools=tools, temperature=0, max_tokens=30)
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert message.tool_calls[0].function.name == "f"
    assert message.tool_calls[0].function.arguments == "{}"
    # tool_choice="none": the text is returned as is
    response = chat(engine, QUESTION, tools=tools, tool_choice="none", temperature=0,
                    max_tokens=30)
    assert response.choices[0].message.tool_calls is None
    assert "<tool_call>" in response.choices[0].message.content


# -- the current weights ----------------------------------------------------------------------


def test_generation_uses_the_current_weights(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    model.train()
    before = chat(engine, QUESTION, temperature=0, max_tokens=16, logprobs=True, extra_body=IDS)
    assert model.training  # restored after generating
    prompt, completion = ids_of(before)
    # a real optimizer step after generating (inference-mode tensors must not leak into it)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = -torch.log_softmax(model(torch.tensor([prompt + completion])).logits[0], -1)[
        range(len(prompt) - 1, len(prompt) + len(completion) - 1), completion].sum()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model.model.norm.weight.mul_(1.5)  # and an in-place edit
    after = chat(engine, QUESTION, temperature=0, max_tokens=16, logprobs=True, extra_body=IDS)
    prompt_after, completion_after = ids_of(after)
    got = [e.logprob for e in after.choices[0].logprobs.content]
    want = forward_logprobs(model, prompt_after, completion_after)
    assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-4
    old = [e.logprob for e in before.choices[0].logprobs.content]
    assert abs(got[0] - old[0]) > 1e-2


def test_a_peft_model_generates_with_its_adapter(tiny):
    peft = pytest.importorskip("peft")
    model, tokenizer = tiny
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=False)  # random adapter: it changes the output
    lora = peft.get_peft_model(model, config)
    engine = InProcessEngine(lora, tokenizer)
    response = chat(engine, QUESTION, temperature=0, max_tokens=16, logprobs=True, extra_body=IDS)
    prompt, completion = ids_of(response)
    got = [e.logprob for e in response.choices[0].logprobs.content]
    assert max(abs(a - b) for a, b in zip(got, forward_logprobs(lora, prompt, completion))) <= 1e-4
    with lora.disable_adapter():
        base = forward_logprobs(lora, prompt, completion)
    assert max(abs(a - b) for a, b in zip(got, base)) > 1e-3
