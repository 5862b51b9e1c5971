"""
What a spawn may ask for: only what the spawn form offers.

BricsSlurmSpawner checks the form's values by their shape (a runtime of HH:MM:SS, one digit of
GPUs), so a crafted POST, or the REST API, can ask for 23:59:59 or 9 GPUs, which the form never
offers. Here every value of a field the form shows as a choice must be one of its choices, and
every other value is a plain word.
"""

import re
from html.parser import HTMLParser

# How the form's fields are named in a message.
FIELD_NAMES = {"brics_project": "project", "runtime": "job duration", "ngpus": "number of GPUs"}
# Free-text fields (partition, reservation) end up in the job script's #SBATCH lines.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.:-]*")


class _Choices(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.choices = {}
        self._select = None
        self._option = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "select" and a.get("name"):
            self._select = a["name"]
            self.choices.setdefault(self._select, [])
        elif tag == "option" and self._select is not None and "disabled" not in a:
            self._option = [a.get("value", ""), ""]
            self.choices[self._select].append(self._option)

    def handle_data(self, data):
        if self._option is not None:
            self._option[1] += data

    def handle_endtag(self, tag):
        if tag == "option":
            self._option = None
        elif tag == "select":
            self._select = None


def offered_choices(form_html):
    """{field: [(value, label), ...]} for every <select> of the form (disabled options left out)."""
    parser = _Choices()
    parser.feed(form_html or "")
    parser.close()
    return {name: [(v, label.strip() or v) for v, label in options] for name, options in parser.choices.items()}


def refusal(options, choices):
    """Why `options` (field -> value) asks for what the form does not offer, as the start of a
    sentence; None when it does not."""
    for field, value in options.items():
        # None: an optional field left empty; _xsrf and the like are JupyterHub's, not the job's.
        if value is None or field.startswith("_"):
            continue
        what = FIELD_NAMES.get(field, field)
        if field in choices:
            allowed = choices[field]
            if value not in [v for v, _ in allowed]:
                offered = ", ".join(label for _, label in allowed) or "nothing"
                return f"The {what} {_shown(value)} is not one the spawn form offers ({offered})"
        elif not isinstance(value, str) or not _PLAIN_WORD.fullmatch(value):
            return f"The {what} {_shown(value)} is not a plain word of letters, digits and . _ : -"
    return None


def _shown(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
