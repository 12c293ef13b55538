"""Argon2id password hashing and the password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters

MIN_LENGTH = 12
# The most common passwords of 12+ characters seen in breach lists, plus obvious app-specific ones.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456123456",
        "qwertyuiopas",
        "qwertyuiop123",
        "1q2w3e4r5t6y",
        "password1234",
        "password12345",
        "passwordpassword",
        "iloveyou1234",
        "abcdefghijkl",
        "abc123abc123",
        "111111111111",
        "000000000000",
        "aaaaaaaaaaaa",
        "letmein12345",
        "welcome12345",
        "administrator",
        "adminadmin123",
        "changeme1234",
        "signalboard1",
        "signalboard123",
        "qwerty123456",
        "football1234",
        "monkey123456",
        "dragon123456",
        "baseball1234",
        "superman1234",
        "trustno11234",
        "1qaz2wsx3edc",
        "zaq12wsxcde3",
        "q1w2e3r4t5y6",
        "passw0rd1234",
        "p@ssword1234",
        "p@ssw0rd1234",
        "correcthorsebatterystaple",
        "mypassword123",
        "sunshine1234",
        "princess1234",
    }
)


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters and should be redone at login."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > 1024:
        return "use at most 1024 characters"
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) <= 2:
        return "this password is too common; choose another"
    if username and username.lower() in lowered:
        return "the password must not contain the username"
    return None
