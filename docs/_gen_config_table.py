"""Regenerate the field table in docs/config.md from the config's fields and the registries.

Run: python docs/_gen_config_table.py  (tests/test_docs.py checks the table is current)
"""

from pathlib import Path

from saddle.config import FIELDS, core_defaults
from saddle.registry import FAMILIES, OPTIMIZERS

BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"


def _owners() -> dict[str, list[str]]:
    """Field name -> the components that own it (component fields only)."""
    out: dict[str, list[str]] = {}
    for reg in FAMILIES:
        for spec in reg:
            for name in spec.field_names:
                out.setdefault(name, []).append(spec.name)
    return out


def table() -> str:
    owners = _owners()
    rows = ["| Field | Group | Used by | Default | Allowed / meaning |", "|---|---|---|---|---|"]
    for name, spec in FIELDS.items():
        default = "component's" if spec.default is None else f"`{spec.default}`"
        allowed = spec.help
        if spec.choices:
            allowed = ", ".join(f"`{c}`" for c in spec.choices) + f": {spec.help}"
        used = ", ".join(owners.get(name, [])) or "all"
        rows.append(f"| `{name}` | {spec.group} | {used} | {default} | "
                    f"{allowed.replace('|', '/')} |")
    rows += ["", "Optimizer defaults (fields not listed do not apply and are normalized "
             "to null):", ""]
    rows += ["| Optimizer | Defaults |", "|---|---|"]
    for opt in OPTIMIZERS:
        items = ", ".join(f"`{k}={v}`" for k, v in opt.defaults.items() if v is not None)
        rows.append(f"| `{opt.name}` | {items} |")
    overrides = [(c.family, spec.name, core_defaults(spec)) for c in FAMILIES for spec in c
                 if core_defaults(spec)]
    if overrides:
        rows += ["", "Core defaults a component overrides while it is chosen (for fields not "
                 "given; `derived`: its normalize hook computes the value):", ""]
        rows += ["| Component | Defaults |", "|---|---|"]
        for family, name, d in overrides:
            items = ", ".join(f"`{k}={'derived' if v is None else v}`" for k, v in d.items())
            rows.append(f"| {family} `{name}` | {items} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    p = Path(__file__).with_name("config.md")
    p.write_text(render(p.read_text()))
