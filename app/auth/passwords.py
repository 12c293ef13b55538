"""Argon2id password hashing and the password rules."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters

MIN_LENGTH = 12
MAX_LENGTH = 1024
# zxcvbn's score runs 0 (guessed at once) to 4; 3 means beyond ~10^10 guesses, safe against an online
# attack and slowed well by Argon2 offline (the score ASVS 5.0 and the zxcvbn authors recommend).
MIN_STRENGTH = 3
# zxcvbn's work grows fast with length and it refuses more than 72 characters; a password longer than
# this is judged on its start (the rest only adds strength).
STRENGTH_CHARS = 72
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")
# Digits, punctuation and spaces that people wrap around a word to pass length rules ("Sunshine2024!").
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")
# Runs along the keyboard or the alphabet ("123456789012", "qwertyuiopas", "0987654321...").
_SEQUENCES = ("1234567890" * 4, "0987654321" * 4, "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")


@lru_cache
def common_passwords() -> frozenset[str]:
    """The refused passwords (lower case), read once from common-passwords.txt."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip() and not line.startswith("#"))


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


@lru_cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so a wrong name costs as long as a wrong password.

    Made on first use, not at import: a hash costs a few hundred milliseconds of CPU that every worker
    would spend before it can start reading its facts copy. The app makes it once that read is done.
    """
    return _hasher.hash("not-a-real-password-for-timing")


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches the hash (None: burn the same time, then say no)."""
    try:
        if password_hash is None:
            _hasher.verify(dummy_hash(), password + "x")
            return False
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters and should be redone at login."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def _is_repetition(text: str) -> bool:
    """True for a short unit repeated ("abcabcabcabc") or a common word doubled ("passwordpassword")."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text == text[:size] * (len(text) // size):
            return size <= 4 or text[:size] in common_passwords()
    return False


def is_common(password: str) -> bool:
    """True when the password is on the common list, is a listed word with digits or symbols around it,
    or is a short pattern repeated."""
    lowered = password.lower()
    common = common_passwords()
    # At most four distinct characters ("!!!!2024!!!!", "aabbaabbaabb") is 24 bits at best.
    if lowered in common or len(set(lowered)) <= 4 or _is_repetition(lowered):
        return True
    if any(lowered in run or lowered[::-1] in run for run in _SEQUENCES):
        return True
    core = _DECORATION.sub("", lowered)
    return core != lowered and (core in common or _is_repetition(core))


def weakness(password: str, username: str | None = None) -> str | None:
    """zxcvbn's reason, in plain words, when the password is guessable (score below MIN_STRENGTH)."""
    result = zxcvbn(password[:STRENGTH_CHARS], user_inputs=[username] if username else [])
    if result["score"] >= MIN_STRENGTH:
        return None
    feedback = result["feedback"]
    words = [feedback["warning"], *feedback["suggestions"]]
    advice = " ".join(w.rstrip(".") + "." for w in words if w)
    return "this password is easy to guess" + (": " + advice[0].lower() + advice[1:] if advice else "")


def as_sentence(problem: str) -> str:
    """A problem from password_problem written as a sentence for a form ("Use at least 12 characters.")."""
    return problem[:1].upper() + problem[1:] + ("" if problem.endswith(".") else ".")


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    if is_common(password):
        return "this password is too common; choose another"
    if username and username.lower() in password.lower():
        return "the password must not contain the username"
    return weakness(password, username)


def generate_password() -> str:
    """A random one-time password (20 URL-safe characters) that the policy above accepts."""
    while True:
        password = secrets.token_urlsafe(15)
        # A random draw almost always passes; never hand out one that would fail.
        if password_problem(password) is None:
            return password
