"""`spanlens completion bash|zsh|fish` prints a completion script that the shell loads and that
completes spanlens's commands, options and choices (issue 18 §2).

bash is always there and is driven for real: the script is sourced and its completion
function called as bash calls it on TAB. zsh and fish are driven when installed (zsh: the
script registers itself under compinit; fish: `complete -C`), else only the script is checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SPANLENS = str(Path(sys.executable).parent / "spanlens")

#: Sources the script ($1), then completes the words after it as bash does on TAB: one
#: candidate a line.
BASH_DRIVER = r"""
source "$1"
shift
spec=$(complete -p spanlens) || exit 3
fn=${spec##* -F }
fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$fn" spanlens "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def script(shell: str, tmp_path: Path) -> Path:
    done = subprocess.run(
        [SPANLENS, "completion", shell], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "status" in done.stdout and "json" in done.stdout
    path = tmp_path / f"spanlens.{shell}"
    path.write_text(done.stdout)
    return path


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_completes_commands_options_choices_and_folders(tmp_path: Path) -> None:
    path = script("bash", tmp_path)
    (tmp_path / "project").mkdir()

    def complete(*words: str) -> list[str]:
        argv = ["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "driver", str(path)]
        return run([*argv, "spanlens", *words], tmp_path).split()

    assert complete("st") == ["status", "stats"]
    assert complete("status", "--j") == ["--json"]
    assert complete("enrich", "--re") == ["--retry-failed"]
    assert complete("completion", "") == ["bash", "zsh", "fish"]
    assert complete("model", "in") == ["install"]
    assert complete("index", "pro") == ["project"]  # ROOT completes as a folder


def test_fish_completes_commands_and_options(tmp_path: Path) -> None:
    path = script("fish", tmp_path)

    def complete(line: str) -> list[str]:
        out = run(["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"], tmp_path)
        return [row.split("\t")[0] for row in out.splitlines()]

    assert sorted(complete("spanlens st")) == ["stats", "status"]
    assert complete("spanlens status --j") == ["--json"]


def test_zsh_script_registers_under_compinit(tmp_path: Path) -> None:
    path = script("zsh", tmp_path)
    assert path.read_text().startswith("#compdef spanlens")
    # zsh completes only inside its line editor; the check: the script parses, and loaded as
    # users load it, it registers its function for `spanlens`.
    run(["zsh", "-n", str(path)], tmp_path)
    out = run(
        ["zsh", "-f", "-c", f'autoload -U compinit; compinit -u; eval "$(<{path})"; '
         "print -r -- ${_comps[spanlens]}"],
        tmp_path,
    )  # fmt: skip
    assert out.strip() == "_shtab_spanlens"
    assert "status:'files and spans" in path.read_text()  # the commands it offers


def test_every_shell_gets_a_script_and_others_are_refused(tmp_path: Path) -> None:
    for shell in ("bash", "zsh", "fish"):
        assert script(shell, tmp_path).stat().st_size > 1000
    done = subprocess.run(
        [SPANLENS, "completion", "csh"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "invalid choice" in done.stderr
