"""The `openai` Python package against `hearth serve` (run by crates/hearth/tests/server_api.rs).

Reads HEARTH_BASE_URL (http://127.0.0.1:PORT/v1), HEARTH_API_KEY and HEARTH_MODEL; the server
samples greedily. Exits non-zero on the first failed check.
"""

import os
import sys

import openai

base_url = os.environ["HEARTH_BASE_URL"]
key = os.environ["HEARTH_API_KEY"]
model = os.environ["HEARTH_MODEL"]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
messages = [{"role": "user", "content": "Write three sentences about the sea."}]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


assert [m.id for m in client.models.list().data] == [model]

# Non-streaming: text, finish_reason and usage.
r = client.chat.completions.create(model=model, messages=messages, max_tokens=20)
whole = r.choices[0].message.content
check(r.object == "chat.completion", f"object {r.object}")
check(len(whole.split()) >= 3, f"a reply of words: {whole!r}")
check(r.choices[0].finish_reason == "length", f"finish_reason {r.choices[0].finish_reason}")
check(r.usage is not None and r.usage.completion_tokens == 20, f"usage {r.usage}")
check(r.usage.prompt_tokens > 5 and r.usage.total_tokens == r.usage.prompt_tokens + 20, f"usage {r.usage}")

# Streaming, with OpenAI's usage chunk: the same greedy text.
pieces, finish, usage = [], None, None
stream = client.chat.completions.create(
    model=model, messages=messages, max_tokens=20, stream=True, stream_options={"include_usage": True}
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
check("".join(pieces) == whole, f"streamed {''.join(pieces)!r} != whole {whole!r}")
check(len(pieces) > 3, f"streamed in pieces: {pieces}")
check(finish == "length", f"streamed finish_reason {finish}")
check(usage is not None and usage.completion_tokens == 20, f"streamed usage {usage}")

# A stop sequence from the middle of the reply ends it just before.
word = whole.split()[3]
r = client.chat.completions.create(model=model, messages=messages, max_tokens=20, stop=[word])
check(r.choices[0].message.content == whole[: whole.find(word)], f"stopped reply {r.choices[0].message.content!r}")
check(r.choices[0].finish_reason == "stop", f"stop finish_reason {r.choices[0].finish_reason}")

# Errors arrive as the package's typed exceptions.
try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    check(False, "an unknown model was accepted")
except openai.NotFoundError as e:
    check(e.code == "not_found", f"unknown model error {e.body}")
try:
    openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    check(False, "a wrong key was accepted")
except openai.AuthenticationError:
    pass
print("openai client checks passed")
