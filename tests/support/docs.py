"""The shell blocks of the README and docs/, and a runner that executes them as a reader would.

A ```bash block runs, in document order, in one shell per document, unless the line just above it is
`<!-- not run: REASON -->`. The working folder stands for a checkout: the reader's `.venv` is the suite's own
(installed by the README's own set-up command), and `examples/` and `scripts/` are linked in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.+?) -->$")


@dataclass(frozen=True)
class ShellBlock:
    document: Path
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None  # the reason given, when the block is not run

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def shell_blocks(document: Path) -> list[ShellBlock]:
    lines = document.read_text().splitlines()
    blocks, number = [], 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if not fence:
            number += 1
            continue
        end = next(i for i in range(number + 1, len(lines)) if lines[i].startswith("```"))
        if fence.group(1) in ("bash", "sh", "shell"):
            above = _NOT_RUN.match(lines[number - 1].strip()) if number else None
            blocks.append(ShellBlock(document, number + 1, "\n".join(lines[number + 1:end]),
                                     above.group("reason") if above else None))
        number = end + 1
    return blocks


def reader_environment(work: Path) -> dict[str, str]:
    """A shell as a newcomer has it: none of this machine's Flywheel or Slack settings, the suite's venv as
    `.venv` in the working folder."""
    for name, target in ((".venv", Path(sys.prefix)), ("examples", ROOT / "examples"), ("scripts", ROOT / "scripts")):
        if not (work / name).exists():
            (work / name).symlink_to(target)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "SLACK_"))}
    env["FLYWHEEL_CHARTS"] = "off"  # the pictures are not what these runs check
    return env


def run_blocks(blocks: list[ShellBlock], work: Path, *, timeout: float = 600) -> subprocess.CompletedProcess:
    """Every block in one bash, stopping at the first failing command; markers say which block ran."""
    script = ["set -euo pipefail"]
    for block in blocks:
        script += [f"echo '::: {block.where}'", block.code]
    return subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=reader_environment(work),
                          capture_output=True, text=True, timeout=timeout, check=False)


def failed_block(result: subprocess.CompletedProcess) -> str:
    markers = re.findall(r"^::: (.+)$", result.stdout, flags=re.MULTILINE)
    return markers[-1] if markers else "before the first block"


def demo_command() -> str:
    """The README's demo command, without the install in front of it (the suite's venv is installed)."""
    [line] = [line for block in shell_blocks(ROOT / "README.md") for line in block.code.splitlines()
              if line.rstrip().endswith("flywheel demo")]
    return line.split("&&")[-1].strip()
