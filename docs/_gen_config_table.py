"""Regenerate the field table in docs/config.md from saddle.config.FIELDS.

Run: python docs/_gen_config_table.py  (tests/test_docs.py checks the table is current)
"""

from pathlib import Path

from saddle.config import FIELDS, OPTIMIZER_DEFAULTS

BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"


def table() -> str:
    rows = ["| Field | Group | Default | Allowed / meaning |", "|---|---|---|---|"]
    for name, spec in FIELDS.items():
        default = "optimizer's" if spec.default is None else f"`{spec.default}`"
        allowed = spec.help
        if spec.choices:
            allowed = ", ".join(f"`{c}`" for c in spec.choices) + f": {spec.help}"
        rows.append(f"| `{name}` | {spec.group} | {default} | {allowed.replace('|', '/')} |")
    rows += ["", "Optimizer defaults (fields not listed do not apply and are normalized "
             "to null):", ""]
    rows += ["| Optimizer | Defaults |", "|---|---|"]
    for opt, d in OPTIMIZER_DEFAULTS.items():
        items = ", ".join(f"`{k}={v}`" for k, v in d.items() if v is not None)
        rows.append(f"| `{opt}` | {items} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    p = Path(__file__).with_name("config.md")
    p.write_text(render(p.read_text()))
