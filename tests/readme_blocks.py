"""The fenced code blocks of a Markdown file, with the heading they sit under.

Used by tests/test_readme.py and by .ci/wheels (which runs the README's install block as written):

    python3 tests/readme_blocks.py README.md Install      # prints the first bash block under it
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^#+ (.+)$", re.M)


@dataclass(frozen=True)
class Block:
    heading: str  # the nearest heading above ("" before the first)
    lang: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0] if self.text.strip() else ""


def blocks(path: str | Path) -> list[Block]:
    text = Path(path).read_text()
    found = []
    heading, prose_from = "", 0
    for match in _FENCE.finditer(text):  # headings only from the prose between blocks
        headings = _HEADING.findall(text, prose_from, match.start())
        heading = headings[-1].strip() if headings else heading
        found.append(Block(heading, match.group(1), match.group(2)))
        prose_from = match.end()
    return found


def block_under(path: str | Path, heading: str, lang: str = "bash") -> Block:
    for block in blocks(path):
        if block.heading == heading and block.lang == lang:
            return block
    raise LookupError(f"no {lang} block under '{heading}' in {path}")


if __name__ == "__main__":
    print(block_under(sys.argv[1], sys.argv[2]).text, end="")
