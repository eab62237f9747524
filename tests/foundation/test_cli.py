"""The CLI lists every command with one-line help and fails with one clear line on user mistakes."""

from __future__ import annotations

import ast
import subprocess

from click.testing import CliRunner

from aftercare.cli import main
from tests.processes import AFTERCARE, ROOT, project_env

KEY = "4Ok1U0Tg5m4bVdXqEJ6kQYAqgQd0yXm8Dq1T7r2V2kE="


def _commands(group, prefix=""):
    import click

    for name, cmd in sorted(group.commands.items()):
        yield prefix + name, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + name + " ")


def test_help_lists_every_command_with_one_line_help():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name, _cmd in _commands(main):
        if " " not in name:
            assert f"  {name} " in result.output
    for name, cmd in _commands(main):
        assert cmd.help and cmd.help.strip(), f"`aftercare {name}` has no help"
        assert len(cmd.help.strip().splitlines()[0]) <= 100
    for required in ("db upgrade", "serve", "stores list", "keys rotate"):
        assert required in dict(_commands(main))


def test_missing_secret_is_one_line_and_non_zero(tmp_path):
    result = subprocess.run([*AFTERCARE, "stores", "list"], env=project_env({"PATH": "/usr/bin:/bin"}), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: configuration: AFTERCARE_SECRET_KEY is not set (required; `aftercare serve --dev` generates "
        "local development secrets instead)"]
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AFTERCARE_SECRET_KEY": "k" * 32, "AFTERCARE_ENCRYPTION_KEY": KEY,
           "AFTERCARE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"}
    result = subprocess.run([*AFTERCARE, "stores", "list"], env=project_env(env), cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: database unreachable:")


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_stores_list_on_an_empty_database(database, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"AFTERCARE_SECRET_KEY": "k" * 32, "AFTERCARE_ENCRYPTION_KEY": KEY, "AFTERCARE_DATABASE_URL": database.url}
    result = CliRunner().invoke(main, ["stores", "list"], env=env)
    assert result.exit_code == 0
    assert result.output == "no stores connected\n"


def test_the_console_script_assembles_the_commands_of_every_layer():
    assert sorted(main.commands) == ["admin", "check", "db", "demo", "flows", "keys", "run-job", "sandbox",
                                     "scheduler", "serve", "shopify-toml", "stores", "sync", "unsubscribe-mailbox"]
    assert sorted(main.commands["stores"].commands) == ["add-amazon", "list"]
    assert sorted(main.commands["sandbox"].commands) == ["amazon", "judgeme", "shopify", "smtp"]
    assert main.commands["sync"].callback.__module__ == "jobs.commands"
    assert main.commands["demo"].callback.__module__ == "demo.commands"


def test_the_app_s_command_modules_import_no_layer_above_the_app_and_not_the_command_line():
    modules = [ROOT / "plugin" / "cli.py", *sorted((ROOT / "plugin" / "commands").glob("*.py"))]
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in {"jobs", "demo", "sandbox", "aftercare"}, f"{path.name} imports {name}"
                if path.name != "cli.py":
                    assert name != "plugin.cli", f"{path.name} imports plugin.cli (an import circle)"
