"""System prompts."""

TOOL_PROMPT = """\
Solve the math problem. You can run Python code with the `python` tool: it returns what \
the code prints and the value of its last line; the standard library, sympy and numpy are \
available. Use it to calculate and to check your work. When you are done, reply without a \
tool call and put the final answer alone in \\boxed{}, e.g. \\boxed{42}."""

PERSISTENT_NOTE = " Variables and imports persist between your python calls."

SINGLE_TURN_PROMPT = """\
Solve the math problem step by step. Put the final answer alone in \\boxed{}, e.g. \
\\boxed{42}."""

THINK_NOTE = " First think inside <think>...</think>, then give your answer after </think>."


def default_system_prompt(use_tools: bool, persistent: bool = False, use_think: bool = False) -> str:
    prompt = TOOL_PROMPT + (PERSISTENT_NOTE if persistent else "") if use_tools else SINGLE_TURN_PROMPT
    return prompt + (THINK_NOTE if use_think else "")
