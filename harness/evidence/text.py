"""Shortening text for tables without cutting a word in half.

Why: a reason cut at a fixed width (`client id 13 is )`) reads as a
different sentence. Every table that must stay narrow shortens here: at a
word boundary, with an ellipsis that says text was left out, and the
caller points at where the full text is (an evidence file, a details
element, the JSON beside the table).
"""

from __future__ import annotations

ELLIPSIS = "\u2026"


def shorten(text: str, width: int) -> str:
    """`text` if it fits in `width` characters, else its longest prefix of
    whole words that fits with " …" appended (trailing punctuation that
    would dangle, like an opening bracket or a colon, is dropped). A single
    word longer than `width` is kept whole: a word is never cut."""
    text = " ".join(str(text).split())
    if len(text) <= width or " " not in text:
        return text  # it fits, or it is one word: nothing may be cut
    cut = text[: max(0, width - 2) + 1]
    space = cut.rfind(" ")
    head = (cut[:space] if space > 0 else text.split(" ", 1)[0]).rstrip(" ([{:;,-=/")
    return f"{head} {ELLIPSIS}" if head else text.split(" ", 1)[0] + f" {ELLIPSIS}"


def was_shortened(text: str) -> bool:
    return text.endswith(ELLIPSIS)


__all__ = ["ELLIPSIS", "shorten", "was_shortened"]
