"""--bids-filter-file and label options: parsed and checked into pybids queries."""

from __future__ import annotations

import json
from pathlib import Path


from ..errors import UserInputError
from .runs import _ENTITY_ALIASES, _FIXED_ENTITIES, _LABEL_RE, _SUFFIXES


def load_bids_filters(path) -> dict:
    """Read and validate a ``--bids-filter-file`` (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserInputError(
            f"Cannot read the BIDS filter file {path} ({err.strerror or err}). "
            "Give the path of an existing, readable JSON file to --bids-filter-file."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserInputError(
            f"The BIDS filter file {path} is not valid JSON ({err.msg} at line {err.lineno}, "
            f"column {err.colno}). Fix the syntax, e.g. "
            '{"megre": {"acquisition": "highres"}}.'
        ) from None
    return normalize_bids_filters(data, source=str(path))


def normalize_bids_filters(filters, source: str = "the BIDS filters") -> dict:
    """Validate filters and return ``{"megre": dict | False, "t2starw": dict | False}``.

    Entity names are expanded to pybids names (``acq`` -> ``acquisition``). Idempotent.
    """
    if filters is None:
        return {q: {} for q in _SUFFIXES}
    if not isinstance(filters, dict):
        raise UserInputError(
            f"{source} must be a JSON object, got {type(filters).__name__}. Use e.g. "
            '{"megre": {"acquisition": "highres"}} or the flat form {"acquisition": "highres"}.'
        )
    keys = {str(k).lower() for k in filters}
    queries = keys & set(_SUFFIXES)
    if queries and queries != keys:
        raise UserInputError(
            f"{source} mixes query keys ({', '.join(sorted(queries))}) with other keys "
            f"({', '.join(sorted(keys - queries))}). Use either the per-query form "
            '{"megre": {...}, "t2starw": {...}} or a flat entity object, not both.'
        )
    if not queries:
        flat = _normalize_entities(filters, source)
        return {q: dict(flat) for q in _SUFFIXES}
    out = {q: {} for q in _SUFFIXES}
    for key, value in filters.items():
        query = str(key).lower()
        if value is False:
            out[query] = False
        elif isinstance(value, dict):
            out[query] = _normalize_entities(value, f"{source} ({key})")
        else:
            raise UserInputError(
                f'In {source}, "{key}" must be an object of entity filters or false '
                f"(to skip {_SUFFIXES[query]} files), got {json.dumps(value)}."
            )
    return out


def _normalize_entities(entities: dict, source: str) -> dict:
    out = {}
    for key, value in entities.items():
        name = _ENTITY_ALIASES.get(str(key).lower())
        if name is None:
            if str(key).lower() in _FIXED_ENTITIES:
                hint = ("select subjects with --participant-label"
                        if str(key).lower() in ("subject", "sub")
                        else "qsmprep sets it itself")
            else:
                hint = "allowed: " + ", ".join(sorted(set(_ENTITY_ALIASES.values())))
            raise UserInputError(f'{source} cannot filter on "{key}" ({hint}). Remove that key.')
        values = value if isinstance(value, list) else [value]
        for v in values:
            ok = v is None or (isinstance(v, int) and not isinstance(v, bool)) or (
                isinstance(v, str) and (v == "*" or _LABEL_RE.match(v)))
            if not ok or (isinstance(value, list) and (v is None or v == "*" or not value)):
                raise UserInputError(
                    f'{source} has an invalid value {json.dumps(value)} for "{key}". Use an '
                    'alphanumeric label, an integer, a list of those, null (entity absent) '
                    'or "*" (entity present).'
                )
        out[name] = list(value) if isinstance(value, list) else value
    return out


def _to_query(value):
    from bids.layout import Query

    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    return value


# -------------------------------------------------------------------- discovery
def _clean_labels(labels, prefix: str, what: str) -> list[str] | None:
    if labels is None or (not isinstance(labels, str) and len(labels) == 0):
        return None  # nothing given: all of them
    if isinstance(labels, str):
        labels = [labels]
    out = []
    for raw in labels:
        lab = str(raw).strip()
        if lab.startswith(prefix + "-"):
            lab = lab[len(prefix) + 1:]
        if not _LABEL_RE.match(lab):
            raise UserInputError(
                f'"{raw}" is not a valid {what} label: BIDS labels contain only letters and '
                f"digits. Give it as e.g. 01 or {prefix}-01."
            )
        if lab not in out:
            out.append(lab)
    return out
