"""The CLI's usage errors in the CLI's language: a missing or unknown option, a bad value, an
option without its value, an unknown or missing command, extra arguments — the catalogue's text
(``cli.usage_*``) with the parameter's name, exit code 2 and the translated "--help" hint, in a
fresh process of the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from quarters.messages import t


def run(lang: str, *args: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("QUARTERS_LANG", "LANG", "LC_ALL")}
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**base, "COLUMNS": "200", "LANG": "C.UTF-8", "QUARTERS_LANG": lang})


CASES = {  # arguments → (catalogue key, its values)
    "missing_option": (["analyze", "transfer"], "cli.usage_missing_option",
                       {"name": "'--reference'"}),
    "no_such_option": (["analyze", "transfer", "--levle", "x"], "cli.usage_no_such_option",
                       {"name": "'--levle'"}),
    "needs_value": (["analyze", "transfer", "--top"], "cli.usage_option_needs_value",
                    {"name": "'--top'"}),
    "no_such_command": (["analyze", "nosuch"], "cli.usage_no_such_command",
                        {"name": "'nosuch'"}),
    "missing_command": (["import"], "cli.usage_missing_command", {}),
    "extra_arguments": (["analyze", "indicators", "extra", "zwei"],
                        "cli.usage_extra_arguments", {"args": "extra zwei"}),
}
ENGLISH_ONLY = ("Missing option", "No such option", "Invalid value", "requires an argument",
                "No such command", "Missing command", "Got unexpected", "Possible options",
                "Input should be", "greater than or equal")


def message(result: subprocess.CompletedProcess) -> str:
    """The error panel's text, its lines joined."""
    lines = [line.strip().strip("│").strip() for line in result.stderr.splitlines()
             if line.strip().startswith("│")]
    return " ".join(lines)


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("case", list(CASES))
def test_usage_errors_come_from_the_catalogue(lang, case):
    args, key, values = CASES[case]
    result = run(lang, *args)
    assert result.returncode == 2, result.stderr
    text = message(result)
    assert t(key, lang, **values) in text, result.stderr
    hint = t("cli.help.word.try_help", lang, command="'quarters ")  # "Hilfe: 'quarters …"
    assert hint.partition("'quarters ")[0] + "'quarters " in result.stderr
    if lang == "de":
        assert not [w for w in ENGLISH_ONLY if w in text], text


@pytest.mark.parametrize("lang", ["de", "en"])
def test_a_bad_value_names_the_option_and_why(lang):
    result = run(lang, "analyze", "transfer", "--reference", "x", "--top", "abc")
    assert result.returncode == 2
    why = t("problem.validation.int_parsing", lang)
    assert message(result) == t("cli.usage_invalid", lang, name="'--top'", reason=why)
    low = run(lang, "serve", "--workers", "0")
    assert low.returncode == 2
    assert message(low) == t("cli.usage_invalid", lang, name="'--workers'",
                             reason=t("problem.validation.greater_than_equal", lang, ge=1))


def test_an_unknown_option_suggests_the_close_one():
    result = run("de", "analyze", "transfer", "--levle", "x")
    assert "'--level'" in message(result) and t("cli.usage_did_you_mean", "de", names="")[:7] \
        in message(result)
