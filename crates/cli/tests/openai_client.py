"""The official `openai` Python client against a running `culturesteer serve`.

Run by crates/cli/tests/interop.rs:

    python3 openai_client.py --base-url http://127.0.0.1:PORT/v1

Every check goes through the client's typed responses (pydantic models), so a field of the
wrong type or shape fails here the way it would fail for a user of the library.

Exit status 0 when every check passed, 1 otherwise (each failure on its own line).
"""

import argparse
import math
import os
import sys
import traceback

import openai

failures = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run(name, fn, client, model):
    try:
        fn(client, model)
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, the run goes on
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(limit=3)


# ---------------------------------------------------------------------------------------------
# Behaviour the server has today.
# ---------------------------------------------------------------------------------------------


def models_list(client, model):
    page = client.models.list()
    ids = [m.id for m in page.data]
    check(ids == [model], f"models.list() ids {ids}, expected [{model!r}]")
    m = page.data[0]
    check(m.object == "model", f"object {m.object!r}")
    check(isinstance(m.created, int), f"created {m.created!r}")
    check(isinstance(m.owned_by, str) and m.owned_by, f"owned_by {m.owned_by!r}")


def chat_whole(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Name a colour."},
        ],
        max_tokens=8,
        temperature=0,
    )
    check(r.object == "chat.completion", f"object {r.object!r}")
    check(r.id.startswith("chatcmpl"), f"id {r.id!r}")
    check(r.model == model, f"model {r.model!r}")
    check(len(r.choices) == 1, f"{len(r.choices)} choices")
    c = r.choices[0]
    check(c.index == 0, f"index {c.index}")
    check(c.message.role == "assistant", f"role {c.message.role!r}")
    check(isinstance(c.message.content, str) and c.message.content != "", f"content {c.message.content!r}")
    check(c.finish_reason in ("stop", "length"), f"finish_reason {c.finish_reason!r}")
    u = r.usage
    check(u is not None, "no usage")
    check(u.prompt_tokens > 0, f"prompt_tokens {u.prompt_tokens}")
    check(1 <= u.completion_tokens <= 8, f"completion_tokens {u.completion_tokens}")
    check(u.total_tokens == u.prompt_tokens + u.completion_tokens, f"total_tokens {u.total_tokens}")
    if c.finish_reason == "length":
        check(u.completion_tokens == 8, "finish_reason length before max_tokens")


def chat_logprobs(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say yes or no."}],
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    c = r.choices[0]
    check(c.logprobs is not None and c.logprobs.content, "no logprobs.content")
    check(len(c.logprobs.content) == r.usage.completion_tokens, "one logprob entry per generated token")
    for e in c.logprobs.content:
        check(e.logprob <= 0 and math.isfinite(e.logprob), f"logprob {e.logprob}")
        check(len(e.top_logprobs) == 3, f"{len(e.top_logprobs)} top_logprobs")
        tops = [t.logprob for t in e.top_logprobs]
        check(tops == sorted(tops, reverse=True), f"top_logprobs not sorted: {tops}")
        # Greedy: the generated token is the most likely one.
        check(abs(e.logprob - tops[0]) < 1e-4, f"greedy token {e.logprob} vs best {tops[0]}")
        check(e.bytes == list(e.token.encode()), "bytes are the token's UTF-8")
    check("".join(e.token for e in c.logprobs.content) == c.message.content, "tokens spell the content")


def chat_stream(client, model):
    messages = [{"role": "user", "content": "Count from one to five."}]
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    check(len(chunks) >= 3, f"{len(chunks)} chunks")
    for ch in chunks:
        check(ch.object == "chat.completion.chunk", f"object {ch.object!r}")
        check(ch.model == model, f"model {ch.model!r}")
    last, body = chunks[-1], chunks[:-1]
    # With include_usage: the last chunk has no choices and the usage of the whole request.
    check(last.choices == [], f"last chunk has choices {last.choices}")
    check(last.usage is not None, "last chunk has no usage")
    check(last.usage.completion_tokens == whole.usage.completion_tokens, "streamed usage equals whole usage")
    check(last.usage.prompt_tokens == whole.usage.prompt_tokens, "streamed prompt_tokens")
    check(last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens, "total_tokens")
    for ch in body:
        check(ch.usage is None, "usage before the last chunk")
        check(len(ch.choices) == 1, "one choice per chunk")
    check(body[0].choices[0].delta.role == "assistant", "first delta names the role")
    text = "".join(ch.choices[0].delta.content or "" for ch in body)
    check(text == whole.choices[0].message.content, f"stream {text!r} != whole {whole.choices[0].message.content!r}")
    finishes = [ch.choices[0].finish_reason for ch in body if ch.choices[0].finish_reason]
    check(finishes == [whole.choices[0].finish_reason], f"finish reasons {finishes}")
    check(body[-1].choices[0].finish_reason is not None, "finish_reason on the last choice chunk")
    # Without stream_options no chunk carries usage.
    plain = list(client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=0, stream=True))
    check(all(ch.usage is None and len(ch.choices) == 1 for ch in plain), "usage without include_usage")


def completion_echo_scoring(client, model):
    prompt = "The capital of France is Paris"
    r = client.completions.create(model=model, prompt=prompt, echo=True, max_tokens=0, logprobs=1)
    check(r.object == "text_completion", f"object {r.object!r}")
    check(r.id.startswith("cmpl"), f"id {r.id!r}")
    c = r.choices[0]
    check(c.text == prompt, f"echoed text {c.text!r}")
    lp = c.logprobs
    check(lp is not None, "no logprobs")
    n = len(lp.tokens)
    check(n >= 2, f"{n} tokens")
    check(r.usage.prompt_tokens == n, f"prompt_tokens {r.usage.prompt_tokens} vs {n} echoed tokens")
    check(r.usage.completion_tokens == 0, f"completion_tokens {r.usage.completion_tokens}")
    check(len(lp.token_logprobs) == n, "token_logprobs length")
    check(len(lp.text_offset) == n, "text_offset length")
    check(len(lp.top_logprobs) == n, "top_logprobs length")
    check(lp.token_logprobs[0] is None, f"first token_logprob {lp.token_logprobs[0]!r}")
    check(lp.top_logprobs[0] is None, "first top_logprobs")
    for x in lp.token_logprobs[1:]:
        check(isinstance(x, float) and math.isfinite(x) and x <= 0, f"token_logprob {x!r}")
    check(lp.text_offset == sorted(lp.text_offset), f"text_offset not monotone {lp.text_offset}")
    check(lp.text_offset[0] == 0, f"text_offset[0] {lp.text_offset[0]}")
    for i in range(1, n):
        check(lp.top_logprobs[i] and all(v <= 0 for v in lp.top_logprobs[i].values()), f"top_logprobs[{i}]")
        # The echoed token's own log-prob is listed under its text.
        check(abs(lp.top_logprobs[i].get(lp.tokens[i], 1.0) - lp.token_logprobs[i]) < 1e-6, f"top_logprobs[{i}] lacks the token")
    # The prompt's text tokens (after the first) spell its end.
    check(prompt.endswith("".join(lp.tokens[2:])), f"tokens {lp.tokens}")
    # " Paris" after "The capital of France is" is likely for any language model.
    check(lp.token_logprobs[-1] > -6, f"log-prob of ' Paris' {lp.token_logprobs[-1]}")


def completion_next_token(client, model):
    r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=1, logprobs=5, temperature=0)
    c = r.choices[0]
    check(len(c.logprobs.tokens) == 1, f"tokens {c.logprobs.tokens}")
    top = c.logprobs.top_logprobs[0]
    check(len(top) == 5, f"{len(top)} top entries")
    best = max(top, key=top.get)
    check(c.logprobs.tokens[0] == best and c.text == best, f"greedy token {c.logprobs.tokens[0]!r} vs best {best!r}")
    check(abs(c.logprobs.token_logprobs[0] - top[best]) < 1e-6, "its log-prob is the best one")
    check(c.logprobs.text_offset == [len("The capital of France is")], f"text_offset {c.logprobs.text_offset}")
    check(r.usage.completion_tokens == 1, f"completion_tokens {r.usage.completion_tokens}")


def completion_generate(client, model):
    prompt = "Once upon a time"
    r = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0)
    c = r.choices[0]
    check(isinstance(c.text, str) and c.text, f"text {c.text!r}")
    check(c.logprobs is None, "logprobs without asking")
    check(c.finish_reason in ("stop", "length"), f"finish_reason {c.finish_reason!r}")
    check(1 <= r.usage.completion_tokens <= 10, f"completion_tokens {r.usage.completion_tokens}")
    check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "total_tokens")
    again = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0)
    check(again.choices[0].text == c.text, "greedy generation is deterministic")
    # Streaming gives the same text.
    chunks = list(client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0, stream=True))
    check("".join(ch.choices[0].text for ch in chunks if ch.choices) == c.text, "streamed text")
    # A batch of prompts: one choice per prompt, in order.
    b = client.completions.create(model=model, prompt=[prompt, "Hello"], max_tokens=3, temperature=0)
    check([x.index for x in b.choices] == [0, 1], f"batch indices {[x.index for x in b.choices]}")


def errors(client, model):
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=1)
        raise AssertionError("unknown model accepted")
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"status {e.status_code}")
        check(isinstance(e.body, dict) and "no-such-model" in e.body.get("message", ""), f"body {e.body!r}")
    try:
        client.completions.create(model=model, prompt="hi", max_tokens=1, temperature=3.5)
        raise AssertionError("temperature 3.5 accepted")
    except openai.UnprocessableEntityError as e:
        check(e.status_code == 422, f"status {e.status_code}")
        check(e.body.get("param") == "temperature", f"body {e.body!r}")
    try:
        client.chat.completions.create(model=model, messages=[], max_tokens=1)
        raise AssertionError("empty messages accepted")
    except openai.APIStatusError as e:
        check(e.status_code == 422, f"status {e.status_code}")
    # The server keeps serving after the errors.
    client.completions.create(model=model, prompt="hi", max_tokens=1, temperature=0)


def stop_sequences(client, model):
    base = client.completions.create(model=model, prompt="1, 2, 3,", max_tokens=12, temperature=0).choices[0].text
    check("," in base, f"no comma to stop at in {base!r}")
    r = client.completions.create(model=model, prompt="1, 2, 3,", max_tokens=12, temperature=0, stop=[","])
    c = r.choices[0]
    check(c.text == base.split(",")[0], f"stopped text {c.text!r} vs {base!r}")
    check(c.finish_reason == "stop", f"finish_reason {c.finish_reason!r}")
    s = list(client.completions.create(model=model, prompt="1, 2, 3,", max_tokens=12, temperature=0, stop=[","], stream=True))
    check("".join(ch.choices[0].text for ch in s if ch.choices) == c.text, "streamed stop")


def seeded_sampling(client, model):
    ask = lambda seed: client.completions.create(model=model, prompt="Once upon a time", max_tokens=12, temperature=1.0, seed=seed).choices[0].text
    a, b = ask(7), ask(7)
    check(a == b, f"same seed, different text: {a!r} vs {b!r}")
    others = {ask(s) for s in (8, 9, 10)}
    check(len(others | {a}) > 1, "four seeds gave the same text")
    ch = lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Tell a story."}], max_tokens=12, temperature=1.0, seed=7
    ).choices[0].message.content
    check(ch() == ch(), "same seed, different chat text")


def echo_top_k(client, model):
    # Echoed prompt positions list the k most likely tokens (not only the echoed one).
    r = client.completions.create(model=model, prompt="The capital of France is Paris", echo=True, max_tokens=0, logprobs=3)
    lp = r.choices[0].logprobs
    for i in range(1, len(lp.tokens)):
        top = lp.top_logprobs[i]
        # The k best, plus the echoed token when it is not among them (OpenAI's shape).
        check(len(top) in (3, 4), f"top_logprobs[{i}] has {len(top)} entries")
        check(lp.tokens[i] in top, f"top_logprobs[{i}] lacks the echoed token")
        best = sorted(top.values(), reverse=True)[:3]
        check(len(top) == 3 or lp.token_logprobs[i] < best[-1], f"top_logprobs[{i}]: 4 entries though the echoed token is in the top 3")


def text_offset_without_bos(client, model):
    # text_offset indexes the echoed text: BOS contributes no characters.
    prompt = "The capital of France is Paris"
    r = client.completions.create(model=model, prompt=prompt, echo=True, max_tokens=0, logprobs=1)
    c = r.choices[0]
    lp = c.logprobs
    check(c.text == prompt, f"text {c.text!r}")
    for i, (tok, off) in enumerate(zip(lp.tokens, lp.text_offset)):
        check(0 <= off <= len(c.text), f"text_offset[{i}] {off}")
        if i > 0:
            check(c.text[off:].startswith(tok), f"text[{off}:] does not start with token {i} {tok!r}")
    check(lp.text_offset[1] == 0, f"the first text token starts at {lp.text_offset[1]}, not 0")


def logprobs_many_tokens(client, model):
    r = client.completions.create(model=model, prompt="Once upon a time", max_tokens=5, logprobs=2, temperature=0)
    c = r.choices[0]
    lp = c.logprobs
    n = r.usage.completion_tokens
    check(len(lp.tokens) == n and len(lp.token_logprobs) == n and len(lp.top_logprobs) == n, "one entry per generated token")
    check("".join(lp.tokens) == c.text, f"tokens {lp.tokens} vs text {c.text!r}")
    for i in range(n):
        check(lp.token_logprobs[i] <= 0, f"token_logprob {lp.token_logprobs[i]}")
        check(len(lp.top_logprobs[i]) == 2, f"top_logprobs[{i}] {lp.top_logprobs[i]}")
    e = client.completions.create(model=model, prompt="Once upon a time", max_tokens=5, logprobs=1, temperature=0, echo=True)
    check(e.choices[0].text.startswith("Once upon a time"), "echo with generation")


def logprobs_stream(client, model):
    chunks = list(client.completions.create(model=model, prompt="Once upon a time", max_tokens=4, logprobs=1, temperature=0, stream=True))
    got = [ch.choices[0].logprobs for ch in chunks if ch.choices and ch.choices[0].text]
    check(got and all(g is not None and g.token_logprobs for g in got), "streamed chunks carry logprobs")
    chat = list(
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0, stream=True, logprobs=True, top_logprobs=2
        )
    )
    got = [ch.choices[0].logprobs for ch in chat if ch.choices and ch.choices[0].delta.content]
    check(got and all(g is not None and g.content for g in got), "streamed chat chunks carry logprobs")


def n_choices(client, model):
    r = client.completions.create(model=model, prompt="Once upon a time", max_tokens=4, n=3, temperature=1, seed=1)
    check([c.index for c in r.choices] == [0, 1, 2], f"indices {[c.index for c in r.choices]}")
    c = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, n=2, temperature=1, seed=1)
    check([x.index for x in c.choices] == [0, 1], f"chat indices {[x.index for x in c.choices]}")



CHECKS = [
    ("models.list", models_list),
    ("chat.completions.create", chat_whole),
    ("chat.completions.create logprobs/top_logprobs", chat_logprobs),
    ("chat.completions.create stream + include_usage", chat_stream),
    ("completions.create echo max_tokens=0 logprobs=1", completion_echo_scoring),
    ("completions.create max_tokens=1 logprobs=5", completion_next_token),
    ("completions.create max_tokens>1, stream, batch", completion_generate),
    ("stop sequences (whole and streamed)", stop_sequences),
    ("seed: same seed same text, other seeds differ", seeded_sampling),
    ("errors map to the client's exceptions", errors),
    ("echoed top_logprobs list the top k", echo_top_k),
    ("text_offset without BOS text", text_offset_without_bos),
    ("logprobs with max_tokens>1 (and echo)", logprobs_many_tokens),
    ("logprobs with stream", logprobs_stream),
    ("n>1", n_choices),
]




def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True, help="http://HOST:PORT/v1")
    args = ap.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=os.environ.get("CULTURESTEER_API_KEY", "none"), max_retries=0, timeout=300)
    print(f"openai {openai.__version__} against {args.base_url}", flush=True)
    model = client.models.list().data[0].id
    checks = CHECKS
    for name, fn in checks:
        run(name, fn, client, model)
    if failures:
        print(f"{len(failures)} of {len(checks)} checks failed: {', '.join(failures)}", flush=True)
        sys.exit(1)
    print(f"all {len(checks)} checks passed", flush=True)


if __name__ == "__main__":
    main()
