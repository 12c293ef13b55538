"""The password policy: a zxcvbn strength estimate on top of the common list, wherever a password is set."""

from __future__ import annotations

import html
import io

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth import accounts
from app.auth.passwords import generate_password, password_problem
from app.cli import main as cli_main
from tests.conftest import PASSWORD, Client, csrf_from

# Each passes the length rule and the common list, yet an attacker's first guesses include it.
GUESSABLE = ["asdfghjklasdf", "zaq12wsxcde3", "P@ssw0rd2024", "trustno1trustno1", "0987654321qw"]
STRONG = "marble otter climbs the quiet lighthouse"


@pytest.mark.parametrize("password", GUESSABLE)
def test_guessable_passwords_are_refused_with_a_reason(password: str) -> None:
    problem = password_problem(password, "maria")
    assert problem is not None
    assert problem.startswith("this password is easy to guess: ")  # then zxcvbn's warning in plain words


def test_a_strong_passphrase_and_the_test_password_are_accepted() -> None:
    assert password_problem(STRONG, "maria") is None
    assert password_problem(PASSWORD, "analyst1") is None  # every test fixture logs in with it


def test_the_username_counts_against_the_password() -> None:
    """zxcvbn is given the username: the name in leetspeak (which the substring rule misses) is refused."""
    assert password_problem("Qu1nt3ss4-grov!") is None
    assert password_problem("Qu1nt3ss4-grov!", "quintessa-grov") is not None


@pytest.mark.parametrize("password", GUESSABLE)
def test_the_change_password_form_says_why_beside_the_field(client: Client, password: str) -> None:
    client.login("viewer")
    page = client.get("/account/password")
    r = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": password, "confirm": password, "csrf_token": csrf_from(page.text)},
    )
    assert r.status_code == 422
    text = html.unescape(r.text)
    assert '<p class="field-error" id="new-error">This password is easy to guess: ' in text
    assert 'aria-describedby="new-error"' in text


def test_the_change_password_form_accepts_a_strong_passphrase(client: Client) -> None:
    client.login("viewer")
    page = client.get("/account/password")
    r = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": STRONG, "confirm": STRONG, "csrf_token": csrf_from(page.text)},
    )
    assert r.status_code == 303


@pytest.mark.parametrize("password", GUESSABLE)
def test_create_user_command_refuses_guessable_passwords(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert cli_main(["create-user", "--username", "cli-weak", "--role", "viewer", "--password-stdin"]) == 2
    assert "easy to guess" in capsys.readouterr().err


def test_account_creation_with_a_chosen_password_applies_the_policy(db: Session) -> None:
    with pytest.raises(accounts.AccountError, match="easy to guess"):
        accounts.create_user(db, None, "weakling", "viewer", password="trustno1trustno1")
    user, generated = accounts.create_user(db, None, "strongling", "viewer", password=STRONG)
    assert user.id and generated is None


def test_generated_passwords_pass_the_policy() -> None:
    """One-time passwords (first admin, new accounts, resets) are drawn by generate_password."""
    for _ in range(50):
        assert password_problem(generate_password()) is None
    assert accounts.one_time_password() != accounts.one_time_password()
