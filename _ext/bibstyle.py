"""Author-year citations, in the text and on the References page, with a/b suffixes.

sphinxcontrib-bibtex's ``author_year`` reference style writes "Maclaurin et al., 2015" for
two different works of 2015, and its bibliography styles label entries alphabetically
("[MDA15]"), so a reader cannot go from a citation to its entry by eye. This extension
registers

* the pybtex label style ``author_year``: "Gould et al., 2016", "Boyd and Vandenberghe,
  2004", with "2015a", "2015b" for one author list's works of one year (in the order of
  the bibliography);
* the bibliography style ``author_year`` (pybtex's ``plain`` with those labels);
* the reference style ``author_year_suffixed``: sphinxcontrib-bibtex's ``author_year``
  with the year taken from the label, so that the text and the References page agree.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import pybtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.template import join, join2, node, post_text, pre_text, reference


def _authors(entry):
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(p.prelast_names + p.last_names) for p in persons]
    if not names:
        return entry.fields.get("title", "Anonymous")
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        bases = [f"{_authors(e)}, {e.fields.get('year', 'n.d.')}" for e in entries]
        counts, seen = Counter(bases), defaultdict(int)
        for base in bases:
            if counts[base] > 1:
                seen[base] += 1
                yield base + "abcdefghijklmnopqrstuvwxyz"[seen[base] - 1]
            else:
                yield base


class AuthorYearStyle(PlainStyle):
    default_label_style = "author_year"
    default_sorting_style = "author_year_title"


@node
def label_year(children, data):
    """The year of the entry's label, with its suffix ("2015a")."""
    assert not children
    return Text(data["formatted_entry"].label.rsplit(", ", 1)[-1])


@dataclasses.dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name):
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[
                join(sep=self.author_year_sep)[
                    self.person.author_or_editor_or_title(full="s" in role_name),
                    label_year,
                ]
            ],
            post_text,
        ]


@dataclasses.dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name):
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[
                self.bracket.left,
                join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
                    pre_text,
                    reference[label_year],
                    post_text,
                ],
                self.bracket.right,
            ],
        ]


@dataclasses.dataclass
class SuffixedAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    def __post_init__(self):
        super().__post_init__()
        # replace the two author-year sub-styles (the first two) by the suffixed ones
        self.styles[0] = _Parenthetical(
            bracket=self.bracket_parenthetical,
            person=self.person,
            author_year_sep=self.author_year_sep,
            pre_text_sep=self.pre_text_sep,
            post_text_sep=self.post_text_sep,
        )
        self.styles[1] = _Textual(
            bracket=self.bracket_textual,
            person=self.person,
            text_reference_sep=self.text_reference_sep,
            pre_text_sep=self.pre_text_sep,
            post_text_sep=self.post_text_sep,
        )
        self.role_style.update(
            (role_name, style) for style in self.styles[:2] for role_name in style.role_names()
        )


def setup(app):
    pybtex.plugin.register_plugin("pybtex.style.labels", "author_year", AuthorYearLabelStyle)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    register_plugin(
        "sphinxcontrib.bibtex.style.referencing",
        "author_year_suffixed",
        SuffixedAuthorYearReferenceStyle,
    )
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
