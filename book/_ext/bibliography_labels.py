"""Author-year labels in the bibliography, matching the author-year citations in the text.

The book cites in author-year form (``bibtex_reference_style: author_year``), but pybtex's default label style
gives the bibliography's entries alphabetic labels such as ``[YHZ+22]``, which a reader cannot match with "Yang et al.
(2022)". This Sphinx extension registers a label style that writes "Yang et al., 2022" ("Peyré and Cuturi, 2019",
"Cuturi, 2013"; a letter is added when two entries would share a label), and a formatting style ``authoryear`` that
uses it; ``_config.yml`` selects it with ``bibtex_default_style: authoryear``.
"""

from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    return " ".join(part.render_as("text") for part in person.rich_last_names)


class AuthorYearLabels(BaseLabelStyle):
    """``Surname, year``, ``Surname and Surname, year`` or ``Surname et al., year``."""

    def format_label(self, entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        year = entry.fields.get("year", "n.d.")
        if not people:
            return f"{entry.key}, {year}"
        if len(people) == 1:
            names = _surname(people[0])
        elif len(people) == 2:
            names = f"{_surname(people[0])} and {_surname(people[1])}"
        else:
            names = f"{_surname(people[0])} et al."
        return f"{names}, {year}"

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [self.format_label(entry) for entry in entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield f"{label}{chr(ord('a') + seen[label] - 1)}"
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``unsrt`` formatting with :class:`AuthorYearLabels`, sorted by author and year."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
