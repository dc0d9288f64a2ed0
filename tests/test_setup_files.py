"""The README's commands, .ci/run and environment.yml agree with each other and with pyproject."""

import re

from tests.helpers.tiny_runs import REPO


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())[:2]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    quickstart, tests = readme_commands()
    assert "lit-seg quickstart" in quickstart and "pytest" in tests
    assert tests in (REPO / ".ci" / "run").read_text().splitlines()


def test_environment_installs_the_project_with_python_311() -> None:
    environment = (REPO / "environment.yml").read_text()
    assert "python=3.11" in environment and '-e ".[test]"' in environment
    assert 'requires-python = ">=3.11"' in (REPO / "pyproject.toml").read_text()
