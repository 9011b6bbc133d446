"""Chat templates: a model's own Jinja template turns a conversation into its prompt text.

An instruct model was fine-tuned on conversations written in one exact layout. SmolLM2 uses
ChatML; its template (stored in the GGUF as `tokenizer.chat_template`) renders

    [{"role": "user", "content": "Hi"}]   with add_generation_prompt=True

as

    <|im_start|>system
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    <|im_start|>user
    Hi<|im_end|>
    <|im_start|>assistant

and the model continues with the answer, ending it with `<|im_end|>`. The template comes from
the model file, so it is untrusted code: it runs in Jinja's immutable sandbox, set up as
transformers sets it up (`trim_blocks`, `lstrip_blocks`, `raise_exception`, a `tojson` that
keeps non-ASCII text, `strftime_now`), so both render a template to the same text.

    >>> render_chat("{% for m in messages %}[{{ m.role }}] {{ m.content }}\\n{% endfor %}",
    ...             [{"role": "user", "content": "Hi"}])
    '[user] Hi\\n'
"""

import json
from datetime import datetime
from functools import cache

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from glassformer.errors import UserError


def _raise_exception(message: str):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@cache
def compile_template(template: str) -> jinja2.Template:
    """The template compiled once, in the sandbox; a syntax error is one UserError."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise UserError(
            f"the model's chat template is not valid Jinja ({e.message}, line {e.lineno}); "
            "fix the template or chat without one."
        ) from None


def render_chat(
    template: str,
    messages: list[dict[str, str]],
    add_generation_prompt: bool = True,
    **special_tokens: str,
) -> str:
    """The prompt text for `messages` (dicts with "role" and "content").

    `add_generation_prompt` appends the opening of the assistant's turn, so the model's next
    tokens are its answer. `special_tokens` (e.g. `bos_token="<s>"`) are visible to the template.
    """
    try:
        return compile_template(template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **special_tokens
        )
    except jinja2.exceptions.TemplateError as e:  # raise_exception, sandbox violations, ...
        raise UserError(
            f"the model's chat template refused the conversation ({e}); "
            "check the roles and their order (e.g. user and assistant alternating)."
        ) from None
